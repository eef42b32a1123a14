//! Authorization codes, grants, token families and the tokens themselves.
//!
//! The rules follow Atlassian's rotating refresh tokens (docs/atlassian-behaviour.md §1):
//! every refresh rotates; a used refresh token stays usable for the reuse
//! window; a use after the window revokes the whole family (every refresh and
//! access token in it); a refresh token dies after `refresh_inactivity_secs`
//! without being exchanged; an optional absolute lifetime counts from the
//! family's first consent.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::Duration;
use rand::RngCore as _;

use crate::config::SimConfig;
use crate::model::{SimState, Timestamp, World};

use super::ConsentDecision;

/// How long an authorization code can be exchanged.
pub const CODE_TTL_SECS: i64 = 600;

/// What a valid access token grants, as the gateway needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessInfo {
    pub client_id: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    /// Cloud ids the grant covers (one grant per app per account covers
    /// every site the user consented to, whichever token was used).
    pub cloud_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("unknown access token")]
    Unknown,
    #[error("access token expired")]
    Expired,
    #[error("access token revoked")]
    Revoked,
}

/// Why a code or refresh token was refused (all map to 403 `invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("unknown or invalid authorization code")]
    InvalidCode,
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    #[error("unknown or invalid refresh token")]
    InvalidRefreshToken,
}

/// A freshly issued token pair.
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

pub(crate) struct AuthCode {
    client_id: String,
    account_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires_at: Timestamp,
    used: bool,
}

/// One grant per (app, Atlassian account); consenting again adds sites.
pub(crate) struct Grant {
    pub cloud_ids: Vec<String>,
}

struct Family {
    client_id: String,
    account_id: String,
    scopes: Vec<String>,
    created_at: Timestamp,
    revoked: bool,
    access_tokens: Vec<String>,
}

struct RefreshRecord {
    family: u64,
    issued_at: Timestamp,
    /// When it was first exchanged (rotated away).
    used_at: Option<Timestamp>,
}

struct AccessRecord {
    family: u64,
    expires_at: Timestamp,
    /// Set when the family rotates past this token: the token keeps working
    /// until this instant (the staff-described 10-minute grace) or its own
    /// expiry, whichever comes first.
    superseded_until: Option<Timestamp>,
}

/// A consent page shown and not yet answered.
pub(crate) struct PendingConsent {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: String,
    pub expires_at: Timestamp,
}

#[derive(Default)]
pub struct AuthState {
    codes: HashMap<String, AuthCode>,
    pub(crate) grants: HashMap<(String, String), Grant>,
    families: HashMap<u64, Family>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    access_tokens: HashMap<String, AccessRecord>,
    pub(crate) pending: HashMap<String, PendingConsent>,
    /// Decision preset through `POST /__sim/consent`; used once.
    pub(crate) next_consent: Option<ConsentDecision>,
    next_family: u64,
}

// Hand-written: the maps are keyed by secrets.
impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("codes", &self.codes.len())
            .field("grants", &self.grants.len())
            .field("families", &self.families.len())
            .field("refresh_tokens", &self.refresh_tokens.len())
            .field("access_tokens", &self.access_tokens.len())
            .finish_non_exhaustive()
    }
}

/// An opaque random string with 256 bits of entropy (Atlassian says clients
/// must not depend on token format, so nothing here is a JWT).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl AuthState {
    /// Record (or widen) the grant of `account_id` to `client_id`.
    pub(crate) fn grant(&mut self, client_id: &str, account_id: &str, cloud_ids: &[String]) {
        let grant = self
            .grants
            .entry((client_id.to_string(), account_id.to_string()))
            .or_insert_with(|| Grant {
                cloud_ids: Vec::new(),
            });
        for id in cloud_ids {
            if !grant.cloud_ids.contains(id) {
                grant.cloud_ids.push(id.clone());
            }
        }
    }

    pub(crate) fn issue_code(
        &mut self,
        now: Timestamp,
        client_id: &str,
        account_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
    ) -> String {
        let code = random_token();
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_string(),
                account_id: account_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                scopes,
                expires_at: now + Duration::seconds(CODE_TTL_SECS),
                used: false,
            },
        );
        code
    }

    /// Exchange a code: single use, short-lived, bound to its client and
    /// redirect URI.
    pub(crate) fn exchange_code(
        &mut self,
        config: &SimConfig,
        now: Timestamp,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
    ) -> Result<IssuedTokens, GrantError> {
        let record = self.codes.get_mut(code).ok_or(GrantError::InvalidCode)?;
        if record.used || record.client_id != client_id || now >= record.expires_at {
            return Err(GrantError::InvalidCode);
        }
        if record.redirect_uri != redirect_uri {
            return Err(GrantError::RedirectMismatch);
        }
        record.used = true;
        let (account_id, scopes) = (record.account_id.clone(), record.scopes.clone());
        let family = self.new_family(now, client_id, &account_id, scopes);
        Ok(self.issue_pair(config, now, family))
    }

    pub(crate) fn new_family(
        &mut self,
        now: Timestamp,
        client_id: &str,
        account_id: &str,
        scopes: Vec<String>,
    ) -> u64 {
        self.next_family += 1;
        let id = self.next_family;
        self.families.insert(
            id,
            Family {
                client_id: client_id.to_string(),
                account_id: account_id.to_string(),
                scopes,
                created_at: now,
                revoked: false,
                access_tokens: Vec::new(),
            },
        );
        id
    }

    /// A new access token, and a refresh token when `offline_access` was granted.
    pub(crate) fn issue_pair(
        &mut self,
        config: &SimConfig,
        now: Timestamp,
        family: u64,
    ) -> IssuedTokens {
        let access_token = random_token();
        let ttl = config.access_token_ttl_secs;
        let (scopes, offline) = match self.families.get_mut(&family) {
            Some(f) => {
                // Forget tokens that can no longer be used, so long-running
                // benchmarks do not grow the maps without bound.
                let access_tokens = &mut self.access_tokens;
                f.access_tokens.retain(|t| match access_tokens.get(t) {
                    Some(r) if r.expires_at > now => true,
                    _ => {
                        access_tokens.remove(t);
                        false
                    }
                });
                f.access_tokens.push(access_token.clone());
                (
                    f.scopes.clone(),
                    f.scopes.iter().any(|s| s == "offline_access"),
                )
            }
            None => (Vec::new(), false),
        };
        self.access_tokens.insert(
            access_token.clone(),
            AccessRecord {
                family,
                expires_at: now + Duration::seconds(ttl),
                superseded_until: None,
            },
        );
        let refresh_token = offline.then(|| {
            let token = random_token();
            self.refresh_tokens.insert(
                token.clone(),
                RefreshRecord {
                    family,
                    issued_at: now,
                    used_at: None,
                },
            );
            token
        });
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ttl,
            scope: scopes.join(" "),
        }
    }

    /// The refresh grant, with rotation, the reuse window and family revocation.
    pub(crate) fn refresh(
        &mut self,
        config: &SimConfig,
        now: Timestamp,
        stats: &mut crate::model::Stats,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<IssuedTokens, GrantError> {
        let record = self
            .refresh_tokens
            .get(refresh_token)
            .ok_or(GrantError::InvalidRefreshToken)?;
        let family_id = record.family;
        let family = self
            .families
            .get(&family_id)
            .ok_or(GrantError::InvalidRefreshToken)?;
        if family.revoked || family.client_id != client_id {
            return Err(GrantError::InvalidRefreshToken);
        }
        if let Some(limit) = config.refresh_absolute_secs {
            if now >= family.created_at + Duration::seconds(limit) {
                return Err(GrantError::InvalidRefreshToken);
            }
        }
        if now >= record.issued_at + Duration::seconds(config.refresh_inactivity_secs) {
            return Err(GrantError::InvalidRefreshToken);
        }
        match record.used_at {
            Some(used_at) if now <= used_at + Duration::seconds(config.reuse_window_secs) => {
                stats.reuse_in_window += 1;
            }
            Some(_) => {
                self.revoke_family(family_id);
                stats.family_revocations += 1;
                return Err(GrantError::InvalidRefreshToken);
            }
            None => {
                if let Some(r) = self.refresh_tokens.get_mut(refresh_token) {
                    r.used_at = Some(now);
                }
                self.supersede_access_tokens(config, now, family_id);
            }
        }
        stats.refreshes += 1;
        Ok(self.issue_pair(config, now, family_id))
    }

    fn supersede_access_tokens(&mut self, config: &SimConfig, now: Timestamp, family: u64) {
        let Some(f) = self.families.get(&family) else {
            return;
        };
        let grace_end = now + Duration::seconds(config.reuse_window_secs);
        for token in &f.access_tokens {
            if let Some(r) = self.access_tokens.get_mut(token) {
                if r.superseded_until.is_none() {
                    r.superseded_until = Some(grace_end);
                }
            }
        }
    }

    fn revoke_family(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    /// Revoke every grant and token family of a user (as a password change or
    /// "Connected apps → remove" does). Returns how many families died.
    pub(crate) fn revoke_account(&mut self, account_id: &str) -> u64 {
        self.grants.retain(|(_, account), _| account != account_id);
        let mut revoked = 0;
        for f in self.families.values_mut() {
            if f.account_id == account_id && !f.revoked {
                f.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    pub(crate) fn check_access(
        &self,
        now: Timestamp,
        token: &str,
    ) -> Result<AccessInfo, AccessError> {
        let record = self.access_tokens.get(token).ok_or(AccessError::Unknown)?;
        let family = self
            .families
            .get(&record.family)
            .ok_or(AccessError::Unknown)?;
        if family.revoked {
            return Err(AccessError::Revoked);
        }
        if now >= record.expires_at {
            return Err(AccessError::Expired);
        }
        if record.superseded_until.is_some_and(|until| now >= until) {
            return Err(AccessError::Revoked);
        }
        let cloud_ids = self
            .grants
            .get(&(family.client_id.clone(), family.account_id.clone()))
            .map(|g| g.cloud_ids.clone())
            .unwrap_or_default();
        Ok(AccessInfo {
            client_id: family.client_id.clone(),
            account_id: family.account_id.clone(),
            scopes: family.scopes.clone(),
            cloud_ids,
        })
    }
}

/// Check a bearer token for the gateway. `world` is the locked world of `state`.
pub fn check_access_token(
    state: &SimState,
    world: &World,
    token: &str,
) -> Result<AccessInfo, AccessError> {
    world.auth.check_access(state.clock.now(), token)
}

/// Scopes a product's entry in accessible-resources carries.
pub fn product_scopes(product: crate::model::Product, scopes: &[String]) -> Vec<String> {
    let marker = product.as_str();
    scopes
        .iter()
        .filter(|s| s.contains(marker))
        .cloned()
        .collect()
}
