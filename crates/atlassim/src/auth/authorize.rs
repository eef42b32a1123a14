//! `GET /authorize` (parameter checks, consent page) and `POST /authorize/decision`.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use chrono::Duration;
use serde::Deserialize;
use url::Url;

use super::consent_page;
use super::store::{random_token, PendingConsent};
use super::ConsentDecision;
use crate::model::{AppState, Product, SimState, World};

/// How long a consent page stays answerable.
const CONSENT_PAGE_TTL_SECS: i64 = 1800;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthorizeQueryParams {
    audience: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    response_type: Option<String>,
    prompt: Option<String>,
}

/// An `/authorize` failure that must not redirect: the client or redirect URI
/// cannot be trusted, so the user sees an error page instead.
fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(consent_page::render_error(message))).into_response()
}

/// Redirect back to the (registered) redirect URI with `error=`.
fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect_with(redirect_uri, &params)
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            // The real auth server answers 302 Found.
            (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not a valid URL.",
        ),
    }
}

/// Sites the consent screen offers: those with a product the requested
/// scopes are for (every site of the user when no scope names a product).
fn offered_sites(world: &World, account_id: &str, scopes: &[String]) -> Vec<String> {
    let wants = |p: Product| scopes.iter().any(|s| s.contains(p.as_str()));
    let any_product = wants(Product::Jira) || wants(Product::Confluence);
    world
        .sites
        .iter()
        .filter(|s| s.users.iter().any(|u| u == account_id))
        .filter(|s| !any_product || s.products.iter().any(|p| wants(*p)))
        .map(|s| s.cloud_id.clone())
        .collect()
}

pub(crate) async fn show_authorize(
    State(app): State<AppState>,
    Query(q): Query<AuthorizeQueryParams>,
) -> Response {
    let now = app.clock.now();
    let mut world = app.world();
    let Some(client) = q
        .client_id
        .as_deref()
        .and_then(|id| world.client(id))
        .cloned()
    else {
        return error_page(StatusCode::BAD_REQUEST, "Unknown or missing client_id.");
    };
    let Some(redirect_uri) = q
        .redirect_uri
        .clone()
        .filter(|r| client.redirect_uris.contains(r))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is missing or is not a callback URL registered for this app.",
        );
    };
    let state = q.state.as_deref().filter(|s| !s.is_empty());
    if q.response_type.as_deref() != Some("code") {
        return error_redirect(
            &redirect_uri,
            "unsupported_response_type",
            "Unsupported response_type: only code is supported",
            state,
        );
    }
    match q.audience.as_deref() {
        None | Some("") => {
            return error_redirect(
                &redirect_uri,
                "invalid_request",
                "Missing required parameter: audience",
                state,
            )
        }
        Some("api.atlassian.com") => {}
        Some(other) => {
            return error_redirect(
                &redirect_uri,
                "access_denied",
                &format!("Service not found: {other}"),
                state,
            )
        }
    }
    let scopes: Vec<String> = q
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return error_redirect(
            &redirect_uri,
            "invalid_request",
            "Missing required parameter: scope",
            state,
        );
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return error_redirect(
            &redirect_uri,
            "invalid_scope",
            &format!("The scope '{bad}' is not configured for this app"),
            state,
        );
    }
    if q.prompt.as_deref() != Some("consent") {
        return error_redirect(
            &redirect_uri,
            "invalid_request",
            "The prompt parameter must be consent",
            state,
        );
    }
    let Some(state) = state else {
        return error_redirect(
            &redirect_uri,
            "invalid_request",
            "Missing required parameter: state",
            None,
        );
    };

    let preset = world.auth.next_consent.take();
    let decision = match preset {
        Some(d) => Some(d),
        None if app.config.auto_consent => Some(ConsentDecision::default()),
        None => None,
    };
    let pending = PendingConsent {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes,
        state: state.to_string(),
        expires_at: now + Duration::seconds(CONSENT_PAGE_TTL_SECS),
    };
    if let Some(decision) = decision {
        return finish(&app, &mut world, pending, decision);
    }
    let request_id = random_token();
    let page = consent_html(&world, &pending, &request_id, None);
    world.auth.pending.retain(|_, p| p.expires_at > now);
    world.auth.pending.insert(request_id, pending);
    Html(page).into_response()
}

fn consent_html(
    world: &World,
    pending: &PendingConsent,
    request_id: &str,
    error: Option<&str>,
) -> String {
    // Without JavaScript the page cannot follow the user picker, so it offers
    // every site any user could grant; the decision is checked on submit.
    let mut site_ids: Vec<String> = Vec::new();
    for user in &world.users {
        for id in offered_sites(world, &user.account_id, &pending.scopes) {
            if !site_ids.contains(&id) {
                site_ids.push(id);
            }
        }
    }
    consent_page::render_consent(
        world,
        &pending.client_id,
        &pending.scopes,
        request_id,
        &site_ids,
        error,
    )
}

/// Apply a consent decision: redirect with a code, or with `access_denied`.
fn finish(
    app: &SimState,
    world: &mut World,
    pending: PendingConsent,
    decision: ConsentDecision,
) -> Response {
    if decision.deny {
        return error_redirect(
            &pending.redirect_uri,
            "access_denied",
            "User did not authorize the request",
            Some(&pending.state),
        );
    }
    let Some(account_id) = decision
        .account_id
        .or_else(|| world.users.first().map(|u| u.account_id.clone()))
    else {
        return error_page(StatusCode::BAD_REQUEST, "There is no user to consent.");
    };
    if world.user(&account_id).is_none() {
        return error_page(StatusCode::BAD_REQUEST, "Unknown user.");
    }
    let offered = offered_sites(world, &account_id, &pending.scopes);
    let sites = decision.sites.unwrap_or_else(|| offered.clone());
    if sites.is_empty() {
        return error_page(StatusCode::BAD_REQUEST, "Choose at least one site.");
    }
    if sites.iter().any(|s| !offered.contains(s)) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The user cannot grant access to one of the chosen sites.",
        );
    }
    let now = app.clock.now();
    world.auth.grant(&pending.client_id, &account_id, &sites);
    let code = world.auth.issue_code(
        now,
        &pending.client_id,
        &account_id,
        &pending.redirect_uri,
        pending.scopes,
    );
    world.stats.codes_issued += 1;
    redirect_with(
        &pending.redirect_uri,
        &[("code", &code), ("state", &pending.state)],
    )
}

/// The consent form posts `request_id`, `account_id`, any number of `site`
/// and `decision` (`accept` or `deny`).
pub(crate) async fn create_decision(State(app): State<AppState>, body: Bytes) -> Response {
    let mut request_id = None;
    let mut account_id = None;
    let mut sites = Vec::new();
    let mut accept = false;
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "request_id" => request_id = Some(value.into_owned()),
            "account_id" => account_id = Some(value.into_owned()),
            "site" => sites.push(value.into_owned()),
            "decision" => accept = value == "accept",
            _ => {}
        }
    }
    let now = app.clock.now();
    let mut world = app.world();
    let request_id = request_id.unwrap_or_default();
    if accept && sites.is_empty() {
        // Ask again on the same request rather than failing the flow.
        if let Some(pending) = world
            .auth
            .pending
            .get(&request_id)
            .filter(|p| p.expires_at > now)
        {
            let page = consent_html(
                &world,
                pending,
                &request_id,
                Some("Choose at least one site."),
            );
            return (StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response();
        }
    }
    let pending = world
        .auth
        .pending
        .remove(&request_id)
        .filter(|p| p.expires_at > now);
    let Some(pending) = pending else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This consent request has expired or was already answered.",
        );
    };
    let decision = ConsentDecision {
        account_id,
        sites: Some(sites),
        deny: !accept,
    };
    finish(&app, &mut world, pending, decision)
}
