//! The core's one error type. The edge turns it into an HTTP answer in one
//! synchronous `From` (no I/O): whatever the answer needs — such as the
//! reconnect link of a dead grant — is already inside.

use http::StatusCode;

use crate::atlassian::AtlassianError;
use crate::jira::writes::{TransitionOption, UserRef};
use crate::store::StoreError;
use crate::vault::refresh::RefreshError;
use crate::vault::VaultError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing — or belonging to another app, which must look the same.
    #[error("not found")]
    NotFound,
    /// One request field is invalid.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The request conflicts with what is stored (e.g. a unique name).
    #[error("{0}")]
    Conflict(String),
    /// The connection's grant is dead; send the person to `connect_url`
    /// (a fresh connect session for the same app, owner and profile).
    #[error("the connection needs a new consent: send the person to connect_url")]
    ReauthRequired { connect_url: String },
    #[error("the connection is disconnected")]
    Disconnected,
    #[error("the connection has no selected site yet (PUT /v1/connections/{{id}}/site)")]
    NoSite,
    /// An import whose grant covers several sites and names none of them:
    /// the caller must pick one (`cloud_id`); nothing was stored.
    #[error("the grant covers {} sites; name one of them as cloud_id", sites.len())]
    SiteRequired {
        sites: Vec<crate::atlassian::AccessibleSite>,
    },
    #[error("Atlassian could not refresh the token right now")]
    RefreshUnavailable { retry_after_secs: u64 },
    #[error("Atlassian rejected the token refresh (status {status})")]
    RefreshRejected { status: u16 },
    #[error("Atlassian cannot be reached: {0}")]
    Unreachable(String),
    /// A non-idempotent request was sent and its answer was lost.
    #[error("the answer from Atlassian was lost; the request may or may not have been applied")]
    OutcomeUnknown,
    #[error("Atlassian did not answer in time")]
    Timeout,
    #[error("Atlassian's rate limit for this site is exhausted; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Atlassian answered a typed call with a non-success status;
    /// `messages` are Jira's `ErrorCollection` messages, joined.
    #[error("Atlassian answered {status}")]
    Upstream {
        status: StatusCode,
        messages: Option<String>,
    },
    /// No transition of the issue leads to `to` (a status name, transition
    /// name or transition id). `reachable`: the status names its
    /// transitions lead to now; `transitions`: the transitions themselves.
    #[error("no transition of {key} leads to {to:?}; reachable now: {}", reachable.join(", "))]
    NoTransition {
        key: String,
        to: String,
        reachable: Vec<String>,
        transitions: Vec<TransitionOption>,
    },
    /// A user search (`{query}` or `{email}`) matched more than one person.
    #[error("{query:?} matches {} users; name one by account id or e-mail", candidates.len())]
    AmbiguousUser {
        query: String,
        candidates: Vec<UserRef>,
    },
    /// A page update named a version that is no longer the current one.
    #[error("page {page_id} is at version {current}; read it again and update from that version")]
    VersionConflict { page_id: String, current: i64 },
    /// A success answer that did not have the expected shape.
    #[error("unexpected answer from Atlassian: {0}")]
    Decode(String),
    /// The database is away right now (restarting, refusing connections,
    /// pool timed out): answered 503 with `Retry-After`.
    #[error("the database is unavailable right now; retry shortly")]
    StoreUnavailable,
    /// Anything else: logged in full by the edge, answered as a bare 500.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The `Retry-After` of a [`Error::StoreUnavailable`] answer, in seconds.
pub const STORE_RETRY_AFTER_SECS: u64 = 2;

/// Every error on its way to `Internal` passes here: one whose chain holds
/// a "database away" error (see [`crate::store::is_unavailable`]) becomes
/// [`Error::StoreUnavailable`] instead.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        let away = e.chain().any(|c| {
            crate::store::unavailable_in(c)
                || matches!(c.downcast_ref::<Error>(), Some(Error::StoreUnavailable))
        });
        if away {
            Error::StoreUnavailable
        } else {
            Error::Internal(e)
        }
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Error {
        Error::from(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::internal(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::internal(e)
    }
}

impl From<VaultError> for Error {
    fn from(e: VaultError) -> Self {
        Error::internal(e)
    }
}

impl From<RefreshError> for Error {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::NotFound => Error::NotFound,
            RefreshError::ReauthRequired { connect_url } => Error::ReauthRequired { connect_url },
            // Only background work sees this one (no app to send a link to);
            // an app-facing path answers `ReauthRequired`.
            RefreshError::NeedsReauth => {
                Error::Conflict("the connection needs a new consent".into())
            }
            RefreshError::Disconnected => Error::Disconnected,
            RefreshError::Unavailable { retry_after_secs } => {
                Error::RefreshUnavailable { retry_after_secs }
            }
            RefreshError::Rejected { status } => Error::RefreshRejected { status },
            RefreshError::StoreUnavailable => Error::StoreUnavailable,
            RefreshError::Internal(msg) => Error::Internal(anyhow::anyhow!(msg)),
        }
    }
}

impl From<AtlassianError> for Error {
    fn from(e: AtlassianError) -> Self {
        let messages = e.jira_messages();
        match e {
            AtlassianError::Refresh(e) => e.into(),
            AtlassianError::NotFound => Error::NotFound,
            AtlassianError::NoSite => Error::NoSite,
            AtlassianError::Unreachable(why) => Error::Unreachable(why),
            AtlassianError::OutcomeUnknown => Error::OutcomeUnknown,
            AtlassianError::Timeout => Error::Timeout,
            AtlassianError::RateLimited { retry_after_secs } => {
                Error::RateLimited { retry_after_secs }
            }
            AtlassianError::Status { status, .. } => Error::Upstream { status, messages },
            AtlassianError::Decode(why) => Error::Decode(why),
        }
    }
}

impl From<crate::apps::AppsError> for Error {
    fn from(e: crate::apps::AppsError) -> Self {
        match e {
            crate::apps::AppsError::NameTaken(_) => Error::Conflict(e.to_string()),
            other => Error::internal(other),
        }
    }
}
