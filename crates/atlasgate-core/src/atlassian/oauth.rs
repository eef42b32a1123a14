//! The OAuth 2.0 (3LO) client: code exchange, refresh, `/me` and
//! accessible-resources (docs/atlassian-behaviour.md §1–2).

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::ids::CloudId;

/// How long one call to the auth server may take before its answer counts as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A token endpoint answer. Tokens are opaque (docs/atlassian-behaviour.md §1): never parse them.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    /// Absent without `offline_access`, and sometimes on a refresh (docs/atlassian-behaviour.md §1):
    /// the caller keeps the old refresh token then.
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    #[serde(default = "default_expires_in")]
    pub expires_in: i64,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub token_type: Option<String>,
}

fn default_expires_in() -> i64 {
    3600
}

/// The account behind a grant, from `GET /me`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct AtlassianAccount {
    pub account_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// One site the grant covers, entries of accessible-resources merged by cloud id.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct AccessibleSite {
    pub cloud_id: CloudId,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// `jira`, `confluence`: derived from the entries' scopes, since the
    /// endpoint lists one entry per product without naming it.
    pub products: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ResourceEntry {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, rename = "avatarUrl")]
    avatar_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
}

/// Why a call to Atlassian failed, classified for the refresh engine.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The grant is dead (`invalid_grant`, or `access_denied` which Atlassian
    /// also uses for a revoked consent): only a new consent helps.
    #[error("Atlassian refused the grant ({error})")]
    GrantRevoked { error: String },
    /// Atlassian answered with another 4xx: our request was wrong.
    #[error("Atlassian rejected the request with status {status} ({error})")]
    Rejected { status: u16, error: String },
    /// 5xx or 429: try again later.
    #[error("Atlassian answered {status}")]
    Unavailable { status: u16 },
    /// No answer (connect error, reset, timeout): the request may or may not
    /// have been handled. For a refresh, that means "maybe rotated".
    #[error("no answer from Atlassian: {0}")]
    Lost(String),
    /// An answer we could not read.
    #[error("unreadable answer from Atlassian: {0}")]
    Decode(String),
}

impl OAuthError {
    /// Worth retrying (with the same refresh token, inside the reuse window).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OAuthError::Unavailable { .. } | OAuthError::Lost(_) | OAuthError::Decode(_)
        )
    }

    fn from_reqwest(e: reqwest::Error) -> OAuthError {
        // Strip the URL: reqwest's Display would include it, and URLs are all
        // we would leak here (bodies and tokens never reach the error).
        OAuthError::Lost(e.without_url().to_string())
    }
}

/// Our OAuth client registration plus where Atlassian lives.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    auth_url: Url,
    api_url: Url,
    client_id: String,
    client_secret: SecretString,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("auth_url", &self.auth_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `base` + `path`, keeping any path prefix `base` carries.
pub fn join_url(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

impl OAuthClient {
    pub fn new(
        http: reqwest::Client,
        auth_url: Url,
        api_url: Url,
        client_id: String,
        client_secret: SecretString,
    ) -> Self {
        OAuthClient {
            http,
            auth_url,
            api_url,
            client_id,
            client_secret,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The consent URL (docs/atlassian-behaviour.md §1: every parameter is required).
    pub fn authorize_url(&self, scopes: &[String], redirect_uri: &str, state: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("audience", "api.atlassian.com"),
            ("client_id", self.client_id.as_str()),
            ("scope", scopes.join(" ").as_str()),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("response_type", "code"),
            ("prompt", "consent"),
        ])
        .unwrap_or_default()
        // Atlassian documents scopes as `%20`-separated.
        .replace('+', "%20");
        format!("{}?{}", join_url(&self.auth_url, "authorize"), query)
    }

    pub async fn exchange_code(
        &self,
        code: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let body = serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "code": code.expose_secret(),
            "redirect_uri": redirect_uri,
        });
        self.token_call(body).await
    }

    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, OAuthError> {
        let body = serde_json::json!({
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "refresh_token": refresh_token.expose_secret(),
        });
        self.token_call(body).await
    }

    async fn token_call(&self, body: serde_json::Value) -> Result<TokenResponse, OAuthError> {
        let request = self
            .http
            .post(join_url(&self.auth_url, "oauth/token"))
            .json(&body);
        send_for(request, "token response").await
    }

    /// `GET /me` (needs `read:me`).
    pub async fn me(&self, access_token: &SecretString) -> Result<AtlassianAccount, OAuthError> {
        self.api_get(access_token, "me").await
    }

    /// `GET /oauth/token/accessible-resources`, merged: the same cloud id can
    /// appear once per product (docs/atlassian-behaviour.md §2).
    pub async fn accessible_sites(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<AccessibleSite>, OAuthError> {
        let entries: Vec<ResourceEntry> = self
            .api_get(access_token, "oauth/token/accessible-resources")
            .await?;
        Ok(merge_resources(entries))
    }

    async fn api_get<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
    ) -> Result<T, OAuthError> {
        let request = self
            .http
            .get(join_url(&self.api_url, path))
            .bearer_auth(access_token.expose_secret())
            .header("accept", "application/json");
        send_for(request, path).await
    }
}

/// Send with the call timeout; a success decodes as `T` (`what` names it in a
/// decode error), anything else is classified.
async fn send_for<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<T, OAuthError> {
    let response = request
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(OAuthError::from_reqwest)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(OAuthError::from_reqwest)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| OAuthError::Decode(format!("{what}: {}", e.classify_name())));
    }
    Err(classify_failure(status.as_u16(), &bytes))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    // Only the category: serde's message can quote input, i.e. a token.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

fn classify_failure(status: u16, body: &[u8]) -> OAuthError {
    let error = serde_json::from_slice::<OAuthErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    match (status, error.as_str()) {
        (_, "invalid_grant") => OAuthError::GrantRevoked { error },
        // A wrong client secret is also `access_denied` (401); but a revoked
        // consent reads the same, and only a person can fix either.
        (400..=403, "access_denied") => OAuthError::GrantRevoked { error },
        (429, _) | (500..=599, _) => OAuthError::Unavailable { status },
        _ => OAuthError::Rejected {
            status,
            error: if error.is_empty() {
                "unknown".into()
            } else {
                error
            },
        },
    }
}

fn product_of(scope: &str) -> Option<&'static str> {
    if scope.contains("confluence") {
        Some("confluence")
    } else if scope.contains("jira") {
        Some("jira")
    } else {
        None
    }
}

fn merge_resources(entries: Vec<ResourceEntry>) -> Vec<AccessibleSite> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: BTreeMap<String, AccessibleSite> = BTreeMap::new();
    for entry in entries {
        let site = by_id.entry(entry.id.clone()).or_insert_with(|| {
            order.push(entry.id.clone());
            AccessibleSite {
                cloud_id: entry.id.clone().into(),
                name: entry.name.clone(),
                url: entry.url.clone(),
                avatar_url: None,
                products: Vec::new(),
                scopes: Vec::new(),
            }
        });
        if site.avatar_url.is_none() {
            site.avatar_url = entry.avatar_url.clone();
        }
        if site.name.is_empty() {
            site.name = entry.name.clone();
        }
        if site.url.is_empty() {
            site.url = entry.url.clone();
        }
        for scope in entry.scopes {
            if let Some(product) = product_of(&scope) {
                if !site.products.iter().any(|p| p == product) {
                    site.products.push(product.to_string());
                }
            }
            if !site.scopes.contains(&scope) {
                site.scopes.push(scope);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_duplicate_ids_across_products() {
        let entries: Vec<ResourceEntry> = serde_json::from_value(serde_json::json!([
            {"id": "a", "name": "acme", "url": "https://acme.atlassian.net", "scopes": ["read:jira-work"], "avatarUrl": "x"},
            {"id": "b", "name": "globex", "url": "https://globex.atlassian.net", "scopes": ["read:jira-work"]},
            {"id": "a", "name": "acme", "url": "https://acme.atlassian.net", "scopes": ["read:page:confluence"]}
        ]))
        .unwrap_or_default();
        let sites = merge_resources(entries);
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].cloud_id, "a");
        assert_eq!(sites[0].products, vec!["jira", "confluence"]);
        assert_eq!(sites[0].scopes.len(), 2);
        assert_eq!(sites[1].products, vec!["jira"]);
    }

    #[test]
    fn classifies_refusals() {
        assert!(matches!(
            classify_failure(403, br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#),
            OAuthError::GrantRevoked { .. }
        ));
        assert!(matches!(
            classify_failure(503, b""),
            OAuthError::Unavailable { status: 503 }
        ));
        assert!(matches!(
            classify_failure(400, br#"{"error":"invalid_request"}"#),
            OAuthError::Rejected { .. }
        ));
        assert!(classify_failure(502, b"").is_transient());
    }

    #[test]
    fn authorize_url_carries_every_parameter() {
        let client = OAuthClient::new(
            reqwest::Client::new(),
            Url::parse("http://127.0.0.1:9/prefix").unwrap_or_else(|_| unreachable!()),
            Url::parse("http://127.0.0.1:9").unwrap_or_else(|_| unreachable!()),
            "cid".into(),
            SecretString::from("s"),
        );
        let url = client.authorize_url(
            &["read:me".into(), "offline_access".into()],
            "http://x/cb",
            "st",
        );
        assert!(url.starts_with("http://127.0.0.1:9/prefix/authorize?audience=api.atlassian.com&client_id=cid&scope=read%3Ame%20offline_access&redirect_uri="));
        assert!(url.ends_with("&state=st&response_type=code&prompt=consent"));
    }
}
