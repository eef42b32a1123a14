//! The OpenAPI document's frame: info, tags and security schemes. The paths
//! come from each handler's `#[utoipa::path]` via the routers (`server.rs`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The security scheme name of the app API key (`Authorization: Bearer agk_…`).
pub const APP_KEY: &str = "app_key";
/// The security scheme name of the admin token.
pub const ADMIN_TOKEN: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "atlasgate",
        description = "A self-hosted broker between your applications and Atlassian Cloud (Jira, Confluence). Errors are RFC 9457 `application/problem+json`."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "admin", description = "Administration (ATLASGATE_ADMIN_TOKEN)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            APP_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("agk_…")
                    .description(Some(
                        "The app's API key, shown once when the app is created",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ATLASGATE_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}
