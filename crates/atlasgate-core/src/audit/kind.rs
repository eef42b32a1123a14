//! The record kinds, exactly as docs/design.md §14 names them.

pub const TOKEN_SERVED: &str = "token.served";
pub const TOKEN_REFRESHED: &str = "token.refreshed";
pub const CONNECTION_CREATED: &str = "connection.created";
pub const CONNECTION_NEEDS_REAUTH: &str = "connection.needs_reauth";
pub const CONNECTION_DISCONNECTED: &str = "connection.disconnected";
pub const OWNER_ERASED: &str = "owner.erased";
pub const APP_CREATED: &str = "app.created";
pub const APP_UPDATED: &str = "app.updated";
pub const APP_DELETED: &str = "app.deleted";
pub const KEY_CREATED: &str = "key.created";
pub const KEY_REVOKED: &str = "key.revoked";
pub const WEBHOOK_SECRET_ROTATED: &str = "webhook_secret.rotated";
pub const ADMIN_LOGIN: &str = "admin.login";
pub const ADMIN_LOGIN_FAILED: &str = "admin.login_failed";

/// Every kind (the API's `kind` filter accepts only these).
pub const ALL: &[&str] = &[
    TOKEN_SERVED,
    TOKEN_REFRESHED,
    CONNECTION_CREATED,
    CONNECTION_NEEDS_REAUTH,
    CONNECTION_DISCONNECTED,
    OWNER_ERASED,
    APP_CREATED,
    APP_UPDATED,
    APP_DELETED,
    KEY_CREATED,
    KEY_REVOKED,
    WEBHOOK_SECRET_ROTATED,
    ADMIN_LOGIN,
    ADMIN_LOGIN_FAILED,
];
