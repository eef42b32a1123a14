//! Typed calls to Atlassian's auth server and identity endpoints.
//!
//! Everything that talks OAuth with `auth.atlassian.com` / `api.atlassian.com`
//! lives here so that error classification (definitive refusal vs. a lost or
//! failed answer) is decided in one place; the refresh engine builds on it.

pub mod oauth;

pub use oauth::{AccessibleSite, AtlassianAccount, OAuthClient, OAuthError, TokenResponse};
pub mod budget;
pub mod client;
pub mod limits;
pub mod pages;
pub mod path;
pub mod priority;
pub mod templates;

pub use client::{
    ApiRequest, ApiResponse, AtlassianClient, AtlassianError, ClientPolicy, Product, RequestBody,
};
pub use pages::PageGuard;
