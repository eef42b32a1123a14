//! The API gateway: `/ex/jira/{cloudId}/…` and `/ex/confluence/{cloudId}/…`.
//!
//! Every operation goes through [`Ctx`], an extractor that does what
//! `api.atlassian.com` does before Jira sees a request: the `latency_ms`
//! delay, the bearer check, the cloud id check, the per-operation scope check
//! and (when on) the rate limits. Handlers then only see authorised calls.

pub mod fallback;
pub mod routes;
pub mod scopes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};

use crate::auth::AccessInfo;
use crate::errors::ApiError;
use crate::model::{AppState, Product};
use crate::ratelimit::Limiter;
use crate::webhooks::Dispatcher;
pub use routes::{Api, Op, Route, ROUTES};

/// Gateway state that lives beside the world: rate-limit buckets and the
/// webhook delivery queues. One per router.
pub struct Runtime {
    pub limiter: Limiter,
    pub dispatcher: Dispatcher,
}

/// Headers the gateway adds to a successful response (rate-limit headers);
/// filled by [`Ctx`], applied by [`apply_response_headers`].
#[derive(Clone, Default)]
struct ExtraHeaders(Arc<Mutex<HeaderMap>>);

/// Quota points a handler charged for the objects it returns, applied once
/// it has answered (handlers charge while holding the world lock, which the
/// quota's pools also live behind); then the quota headers are refreshed.
#[derive(Clone, Default)]
struct PendingCharge(Arc<Mutex<Option<Pending>>>);

struct Pending {
    state: AppState,
    policy: crate::quota::Policy,
    client_id: String,
    cloud_id: String,
    points: u64,
}

impl PendingCharge {
    /// Charge what was recorded; the headers to put on the answer.
    fn settle(&self) -> Option<HeaderMap> {
        let p = self.0.lock().ok()?.take()?;
        (p.points > 0)
            .then(|| crate::quota::charge(&p.state, p.policy, &p.client_id, &p.cloud_id, p.points))
    }
}

/// Every gateway route (Jira platform, Jira Software, Confluence) plus the
/// issue routes of the control plane.
pub fn router() -> Router<AppState> {
    let runtime = Arc::new(Runtime {
        limiter: Limiter::default(),
        dispatcher: Dispatcher::default(),
    });
    let mut router = Router::new();
    for route in ROUTES {
        for path in routes::gateway_paths(route) {
            router = router.route(&path, method_router(route));
        }
    }
    router
        .merge(crate::sim_issues::router())
        .fallback(fallback::handle)
        .method_not_allowed_fallback(fallback::handle)
        .layer(axum::middleware::from_fn(apply_response_headers))
        .layer(Extension(runtime))
}

fn method_router(route: &Route) -> MethodRouter<AppState> {
    use crate::{agile, confluence, jira, webhooks};
    let filter = match route.method {
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    };
    match route.op {
        Op::ServerInfo => on(filter, jira::server_info),
        Op::Myself => on(filter, jira::myself),
        Op::ProjectList => on(filter, jira::list_projects),
        Op::ProjectSearch => on(filter, jira::search_projects),
        Op::ProjectGet => on(filter, jira::get_project),
        Op::Fields => on(filter, jira::list_fields),
        Op::SearchJqlGet => on(filter, jira::search_jql_get),
        Op::SearchJqlPost => on(filter, jira::search_jql_post),
        Op::SearchRemoved => on(filter, jira::search_removed),
        Op::IssueGet => on(filter, jira::get_issue),
        Op::IssueEdit => on(filter, jira::edit_issue),
        Op::IssueDelete => on(filter, jira::delete_issue),
        Op::IssueCreate => on(filter, jira::create_issue),
        Op::CommentList => on(filter, jira::list_comments),
        Op::CommentAdd => on(filter, jira::add_comment),
        // simjira
        Op::TransitionsGet => on(filter, jira::transitions::get_transitions),
        Op::TransitionDo => on(filter, jira::transitions::do_transition),
        Op::UserSearch => on(filter, jira::users::find_users),
        Op::UserAssignableSearch => on(filter, jira::users::find_assignable_users),
        Op::UserGet => on(filter, jira::users::get_user),
        Op::UsersSearch => on(filter, jira::users::get_all_users),
        Op::UserBulk => on(filter, jira::users::bulk_get_users),
        Op::IssueAssign => on(filter, jira::users::assign_issue),
        Op::ChangelogGet => on(filter, jira::changelog::get_changelog),
        Op::ChangelogBulk => on(filter, jira::changelog::bulk_fetch),
        Op::CommentGet => on(filter, jira::comments::get_comment),
        Op::CommentUpdate => on(filter, jira::comments::update_comment),
        Op::CommentDelete => on(filter, jira::comments::delete_comment),
        // end simjira
        Op::WebhookList => on(filter, webhooks::list_webhooks),
        Op::WebhookRegister => on(filter, webhooks::register_webhooks),
        Op::WebhookDelete => on(filter, webhooks::delete_webhooks),
        Op::WebhookRefresh => on(filter, webhooks::refresh_webhooks),
        Op::BoardList => on(filter, agile::list_boards),
        Op::BoardGet => on(filter, agile::get_board),
        Op::BoardConfiguration => on(filter, agile::get_board_configuration),
        Op::BoardSprints => on(filter, agile::list_board_sprints),
        Op::BoardBacklog => on(filter, agile::get_backlog),
        Op::SprintGet => on(filter, agile::get_sprint),
        Op::SprintIssues => on(filter, agile::get_sprint_issues),
        Op::EstimationGet => on(filter, agile::get_estimation),
        Op::EstimationSet => on(filter, agile::set_estimation),
        Op::SpaceList => on(filter, confluence::list_spaces),
        Op::SpaceGet => on(filter, confluence::get_space),
        Op::SpacePages => on(filter, confluence::list_space_pages),
        Op::PageList => on(filter, confluence::list_pages),
        Op::PageGet => on(filter, confluence::get_page),
        // simmeta
        Op::IssueLinkCreate => on(filter, jira::links::create_link),
        Op::IssueLinkGet => on(filter, jira::links::get_link),
        Op::IssueLinkDelete => on(filter, jira::links::delete_link),
        Op::IssueLinkTypes => on(filter, jira::catalog::list_link_types),
        Op::RemoteLinkList => on(filter, jira::links::list_remote_links),
        Op::RemoteLinkCreate => on(filter, jira::links::create_remote_link),
        Op::RemoteLinkDeleteByGlobalId => on(filter, jira::links::delete_remote_link_by_global_id),
        Op::RemoteLinkGet => on(filter, jira::links::get_remote_link),
        Op::RemoteLinkUpdate => on(filter, jira::links::update_remote_link),
        Op::RemoteLinkDelete => on(filter, jira::links::delete_remote_link),
        Op::CreateMetaIssueTypes => on(filter, jira::meta::createmeta_issue_types),
        Op::CreateMetaFields => on(filter, jira::meta::createmeta_fields),
        Op::EditMeta => on(filter, jira::meta::editmeta),
        Op::Priorities => on(filter, jira::catalog::list_priorities),
        Op::Statuses => on(filter, jira::catalog::list_statuses),
        Op::StatusCategories => on(filter, jira::catalog::list_status_categories),
        Op::ResolutionSearch => on(filter, jira::catalog::search_resolutions),
        Op::IssueTypes => on(filter, jira::catalog::list_issue_types),
        Op::ProjectStatuses => on(filter, jira::catalog::project_statuses),
        Op::ProjectVersions => on(filter, jira::catalog::project_versions),
        Op::ProjectComponents => on(filter, jira::catalog::project_components),
        Op::ApproximateCount => on(filter, jira::meta::approximate_count),
        Op::SprintCreate => on(filter, agile::create_sprint),
        Op::SprintPartialUpdate => on(filter, agile::partially_update_sprint),
        Op::SprintUpdate => on(filter, agile::update_sprint),
        Op::SprintMoveIssues => on(filter, agile::move_to_sprint),
        Op::BacklogMoveIssues => on(filter, agile::move_to_backlog),
        Op::IssueRank => on(filter, agile::rank),
        Op::BoardIssues => on(filter, agile::board_issues),
        Op::BoardEpics => on(filter, agile::board_epics),
        Op::EpicIssues => on(filter, agile::epic_issues),
        // simconf
        Op::PageCreate => on(filter, confluence::pages_write::create_page),
        Op::PageUpdate => on(filter, confluence::pages_write::update_page),
        Op::PageDelete => on(filter, confluence::pages_write::delete_page),
        Op::PageChildren => on(filter, confluence::pages_write::list_children),
        Op::PageLabels => on(filter, confluence::pages_write::list_labels),
        Op::CqlSearch => on(filter, confluence::v1::search),
        Op::ContentSearch => on(filter, confluence::v1::content_search),
        Op::ContentGet => on(filter, confluence::v1::get_content),
        Op::ContentCreate => on(filter, confluence::v1::create_content),
        Op::ContentUpdate => on(filter, confluence::v1::update_content),
        Op::ContentDelete => on(filter, confluence::v1::delete_content),
        Op::ContentHistory => on(filter, confluence::v1::content_history),
    }
}

async fn apply_response_headers(mut req: Request, next: Next) -> Response {
    let extra = ExtraHeaders::default();
    let pending = PendingCharge::default();
    req.extensions_mut().insert(extra.clone());
    req.extensions_mut().insert(pending.clone());
    let mut response = next.run(req).await;
    let headers = extra.0.lock().map(|h| h.clone()).unwrap_or_default();
    for (k, v) in headers.iter() {
        response.headers_mut().entry(k.clone()).or_insert(v.clone());
    }
    if let Some(quota) = pending.settle() {
        for (k, v) in quota.iter() {
            response.headers_mut().insert(k.clone(), v.clone());
        }
    }
    response
}

/// The route a matched gateway URL template belongs to.
fn route_for(method: &Method, matched: &str) -> Option<&'static Route> {
    static BY_TEMPLATE: OnceLock<HashMap<(String, String), &'static Route>> = OnceLock::new();
    let map = BY_TEMPLATE.get_or_init(|| {
        ROUTES
            .iter()
            .flat_map(|r| {
                routes::gateway_paths(r)
                    .into_iter()
                    .map(move |p| ((r.method.to_string(), p), r))
            })
            .collect()
    });
    map.get(&(method.as_str().to_string(), matched.to_string()))
        .copied()
}

/// An authorised gateway call: who calls, on which site, through which operation.
pub struct Ctx {
    pub state: AppState,
    pub runtime: Arc<Runtime>,
    pub cloud_id: String,
    pub access: AccessInfo,
    pub route: &'static Route,
    /// `http://host/ex/jira/{cloudId}` (or `…/ex/confluence/{cloudId}`): the
    /// base of `self` links, as the real gateway rewrites them.
    pub api_base: String,
    /// The points this request's objects cost, settled after the answer.
    pending: PendingCharge,
}

impl Ctx {
    /// Charge the hourly points quota for core objects returned (1 point
    /// each; the request's base point was charged on entry; writes pay only
    /// that).
    pub fn charge(&self, objects: usize) {
        self.charge_points(objects as u64);
    }

    /// Charge for identity objects returned (users, groups: 2 points each).
    pub fn charge_identity(&self, objects: usize) {
        self.charge_points(2 * objects as u64);
    }

    fn charge_points(&self, points: u64) {
        let Some(policy) = crate::quota::Policy::of(&self.state.config) else {
            return;
        };
        if points == 0 || crate::quota::is_write(self.route) {
            return;
        }
        if let Ok(mut slot) = self.pending.0.lock() {
            slot.get_or_insert_with(|| Pending {
                state: self.state.clone(),
                policy,
                client_id: self.access.client_id.clone(),
                cloud_id: self.cloud_id.clone(),
                points: 0,
            })
            .points += points;
        }
    }

    /// The `/rest/api/3` self-link base.
    pub fn rest_base(&self) -> String {
        format!("{}/rest/api/3", self.api_base)
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(state.config.latency_ms)).await;
        }
        let runtime = parts
            .extensions
            .get::<Arc<Runtime>>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized.into_response())?;
        let extra = parts
            .extensions
            .get::<ExtraHeaders>()
            .cloned()
            .unwrap_or_default();
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let route = route_for(&parts.method, &matched)
            .ok_or_else(|| ApiError::Unauthorized.into_response())?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let cloud_id = params
            .iter()
            .find(|(k, _)| *k == "cloudId")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let issue_param = params
            .iter()
            .find(|(k, _)| *k == "issueIdOrKey")
            .map(|(_, v)| v.to_string());

        let token = bearer(&parts.headers).ok_or_else(|| ApiError::Unauthorized.into_response())?;
        let (access, issue_key) = {
            let world = state.world();
            let access = crate::auth::check_access_token(state, &world, token)
                .map_err(|_| ApiError::Unauthorized.into_response())?;
            let product = if route.api.is_confluence() {
                Product::Confluence
            } else {
                Product::Jira
            };
            let site_ok = world.site(&cloud_id).is_some_and(|s| s.has(product));
            if !site_ok || !access.cloud_ids.contains(&cloud_id) {
                return Err(ApiError::SiteNotFound.into_response());
            }
            // Per-issue write limits count an issue once, whether named by id or key.
            let issue_key = issue_param.map(|p| {
                world
                    .site(&cloud_id)
                    .and_then(|s| s.resolve_issue_id(&p))
                    .map(|id| id.to_string())
                    .unwrap_or(p)
            });
            (access, issue_key)
        };
        let alternatives = scopes::alternatives(route.method, route.api.as_str(), route.path);
        if !alternatives.is_some_and(|alts| scopes::satisfies(&access.scopes, alts)) {
            return Err(ApiError::ScopeMismatch.into_response());
        }
        // The quota refuses first (a spent hour refuses everything), then
        // the burst and per-issue limits; an admitted request pays its base point.
        let quota = crate::quota::Policy::of(&state.config);
        if let Some(policy) = quota {
            crate::quota::check(state, policy, &access.client_id, &cloud_id)
                .map_err(IntoResponse::into_response)?;
        }
        if state.config.rate_limits {
            let headers = runtime
                .limiter
                .check(state, &cloud_id, route, issue_key.as_deref())
                .map_err(IntoResponse::into_response)?;
            if let Ok(mut h) = extra.0.lock() {
                h.extend(headers);
            }
        }
        if let Some(policy) = quota {
            let headers = crate::quota::charge(state, policy, &access.client_id, &cloud_id, 1);
            if let Ok(mut h) = extra.0.lock() {
                // The quota's view wins over the burst bucket's near-limit flag.
                h.extend(headers);
            }
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("api.atlassian.com");
        let product = if route.api.is_confluence() {
            "confluence"
        } else {
            "jira"
        };
        let api_base = format!("http://{host}/ex/{product}/{cloud_id}");
        Ok(Ctx {
            state: state.clone(),
            runtime,
            cloud_id,
            access,
            route,
            api_base,
            pending: parts
                .extensions
                .get::<PendingCharge>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}
