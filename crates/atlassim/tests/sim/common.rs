//! Shared helpers: start a simulator on port 0, talk to it without following redirects.
#![allow(dead_code)]

use atlassim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use atlassim::{ConsentDecision, MintTokenRequest, Sim, SimConfig};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = DEFAULT_CLIENT_ID;
pub const CLIENT_SECRET: &str = DEFAULT_CLIENT_SECRET;
pub const REDIRECT_URI: &str = "http://127.0.0.1:8080/oauth/callback";
pub const SCOPES: &str =
    "read:jira-work write:jira-work read:confluence-content.all read:me offline_access";

/// The default configuration on a free port.
pub fn config() -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SimConfig::default()
    }
}

pub async fn spawn_sim(config: SimConfig) -> Sim {
    Sim::start(config).await.expect("start atlassim")
}

pub async fn spawn_default() -> Sim {
    spawn_sim(config()).await
}

/// A client that does not follow redirects (so tests can read `Location`).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The documented authorize parameters, in order, each overridable.
pub fn authorize_params() -> Vec<(&'static str, String)> {
    vec![
        ("audience", "api.atlassian.com".into()),
        ("client_id", CLIENT_ID.into()),
        ("scope", SCOPES.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("state", "xyz-state".into()),
        ("response_type", "code".into()),
        ("prompt", "consent".into()),
    ]
}

pub fn authorize_url(sim: &Sim, params: &[(&str, String)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", sim.auth_url())).unwrap();
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    url.to_string()
}

/// The query of a redirect's `Location`, as pairs.
pub fn location_query(resp: &reqwest::Response) -> Vec<(String, String)> {
    let location = resp
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Run `/authorize` with a preset consent and return the code.
pub async fn authorize_code(
    sim: &Sim,
    decision: ConsentDecision,
    params: &[(&str, String)],
) -> String {
    sim.set_next_consent(decision);
    let resp = authorize(sim, params).await;
    assert_eq!(resp.status(), 302, "authorize should redirect");
    let q = location_query(&resp);
    param(&q, "code").unwrap_or_else(|| panic!("no code in redirect: {q:?}"))
}

/// Send; returns (status, JSON body or Null).
pub async fn status_and_json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// GET `/authorize` with these parameters (redirects not followed).
pub async fn authorize(sim: &Sim, params: &[(&str, String)]) -> reqwest::Response {
    http().get(authorize_url(sim, params)).send().await.unwrap()
}

/// POST the consent page's form to `/authorize/decision`.
pub async fn post_decision(sim: &Sim, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{}/authorize/decision", sim.auth_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A code from `/authorize` with the default consent and parameters.
pub async fn default_code(sim: &Sim) -> String {
    authorize_code(sim, ConsentDecision::default(), &authorize_params()).await
}

/// POST `/oauth/token` with a JSON body; returns (status, body).
pub async fn token_json(sim: &Sim, body: Value) -> (u16, Value) {
    status_and_json(
        http()
            .post(format!("{}/oauth/token", sim.auth_url()))
            .json(&body),
    )
    .await
}

pub fn code_body(code: &str) -> Value {
    json!({
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "redirect_uri": REDIRECT_URI,
    })
}

pub fn refresh_body(refresh_token: &str) -> Value {
    json!({
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
    })
}

/// The whole code flow with the default consent: returns the token response.
pub async fn login(sim: &Sim) -> Value {
    let code = default_code(sim).await;
    let (status, body) = token_json(sim, code_body(&code)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The whole code flow, then one token of the response (`access_token`, `refresh_token`).
pub async fn login_token(sim: &Sim, which: &str) -> String {
    login(sim).await[which].as_str().unwrap().to_string()
}

/// POST `/oauth/token` with a refresh grant; returns (status, body).
pub async fn refresh(sim: &Sim, refresh_token: &str) -> (u16, Value) {
    token_json(sim, refresh_body(refresh_token)).await
}

/// A refresh that must succeed: the new token response.
pub async fn refresh_ok(sim: &Sim, refresh_token: &str) -> Value {
    let (status, body) = refresh(sim, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A bearer token for the first user on every site, with every scope.
pub fn mint_access_token(sim: &Sim) -> String {
    sim.mint_token(MintTokenRequest::default()).access_token
}

/// GET with a bearer token; returns (status, JSON body or Null).
pub async fn get_json(sim: &Sim, path: &str, token: &str) -> (u16, Value) {
    status_and_json(
        http()
            .get(format!("{}{}", sim.api_url(), path))
            .bearer_auth(token),
    )
    .await
}

/// Only the status of a bearer GET.
pub async fn get_status(sim: &Sim, path: &str, token: &str) -> u16 {
    get_json(sim, path, token).await.0
}

/// POST JSON to the control plane.
pub async fn sim_post(sim: &Sim, path: &str, body: Value) -> (u16, Value) {
    status_and_json(
        http()
            .post(format!("{}{}", sim.base_url(), path))
            .json(&body),
    )
    .await
}

pub async fn sim_get(sim: &Sim, path: &str) -> Value {
    http()
        .get(format!("{}{}", sim.base_url(), path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Cloud ids of the seeded sites, in order.
pub fn cloud_ids(sim: &Sim) -> Vec<String> {
    sim.snapshot()["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cloud_id"].as_str().unwrap().to_string())
        .collect()
}

pub fn first_account_id(sim: &Sim) -> String {
    sim.snapshot()["users"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_string()
}
