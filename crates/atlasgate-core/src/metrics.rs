//! Prometheus metrics, exposed at `GET /metrics` in the text format.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route template (`/v1/connections/{id}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    /// `full` | `incremental`.
    pub kind: String,
    /// `ok` | `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PointsLabels {
    /// The site's cloud id.
    pub site: String,
    /// `interactive` | `background`.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    pub site: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms … ~10 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily,
    refreshes: Family<OutcomeLabels, Counter>,
    sync_passes: Family<PassLabels, Counter>,
    sync_issues_upserted: Counter,
    jira_webhooks_received: Family<OutcomeLabels, Counter>,
    event_deliveries: Family<OutcomeLabels, Counter>,
    retention_removed: Family<TableLabels, Counter>,
    points_used: Family<PointsLabels, Counter>,
    points_remaining: Family<SiteLabels, Gauge>,
    /// route → the (method, status) label sets answered so far, with their
    /// counter and histogram: a request is counted without building (and
    /// allocating) its label strings.
    http_hot: std::sync::RwLock<std::collections::HashMap<String, Vec<HotHttp>>>,
}

/// One label set of `http_requests` / `http_latency`, ready to count.
struct HotHttp {
    method: String,
    status: u16,
    count: Counter,
    latency: Histogram,
}

/// Bounds of the hot map: route templates and statuses are few; any more
/// (unusual methods) are counted the slow way.
const HOT_ROUTES: usize = 512;
const HOT_PER_ROUTE: usize = 32;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("atlasgate");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests (until the response head)",
            http_latency.clone(),
        );
        registry.register(
            "refreshes",
            "Token refreshes against Atlassian, by outcome",
            refreshes.clone(),
        );
        let sync_passes = Family::<PassLabels, Counter>::default();
        let sync_issues_upserted = Counter::default();
        let jira_webhooks_received = Family::<OutcomeLabels, Counter>::default();
        let event_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sync_passes",
            "Sync passes finished, by kind (full, incremental) and outcome (ok, error)",
            sync_passes.clone(),
        );
        registry.register(
            "sync_issues_upserted",
            "Issues created or changed in the local store by sync passes (webhook-applied changes count under jira_webhooks_received)",
            sync_issues_upserted.clone(),
        );
        registry.register(
            "jira_webhooks_received",
            "Jira webhook deliveries received, by outcome (applied = verified and stored for applying, duplicate, rejected)",
            jira_webhooks_received.clone(),
        );
        registry.register(
            "event_deliveries",
            "Attempts to deliver events to apps' webhook URLs, by outcome (delivered, retry, failed = gave up)",
            event_deliveries.clone(),
        );
        let retention_removed = Family::<TableLabels, Counter>::default();
        registry.register(
            "retention_rows_removed",
            "Rows deleted by the retention pass, by table",
            retention_removed.clone(),
        );
        let points_used = Family::<PointsLabels, Counter>::default();
        let points_remaining = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "points_used",
            "Atlassian quota points spent, by site and class (interactive, background)",
            points_used.clone(),
        );
        registry.register(
            "points_remaining",
            "Points left in the site's quota window, as this process last saw the shared budget",
            points_remaining.clone(),
        );
        Metrics {
            retention_removed,
            points_used,
            points_remaining,
            http_hot: Default::default(),
            registry: Mutex::new(registry),
            http_requests,
            http_latency,
            refreshes,
            sync_passes,
            sync_issues_upserted,
            jira_webhooks_received,
            event_deliveries,
        }
    }

    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        {
            let hot = self.http_hot.read().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = hot
                .get(route)
                .and_then(|v| v.iter().find(|h| h.status == status && h.method == method))
            {
                h.count.inc();
                h.latency.observe(seconds);
                return;
            }
        }
        let count = self
            .http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .clone();
        let latency = self
            .http_latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .clone();
        count.inc();
        latency.observe(seconds);
        let mut hot = self.http_hot.write().unwrap_or_else(|e| e.into_inner());
        if hot.len() >= HOT_ROUTES && !hot.contains_key(route) {
            return;
        }
        let v = hot.entry(route.to_string()).or_default();
        if v.len() < HOT_PER_ROUTE && !v.iter().any(|h| h.status == status && h.method == method) {
            v.push(HotHttp {
                method: method.to_string(),
                status,
                count,
                latency,
            });
        }
    }

    /// Count one refresh: `outcome` is e.g. `ok`, `reused`, `invalid_grant`, `error`.
    pub fn refresh(&self, outcome: &str) {
        self.refreshes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Count one sync pass: `kind` is `full` or `incremental`, `outcome` `ok` or `error`.
    pub fn sync_pass(&self, kind: &str, outcome: &str) {
        self.sync_passes
            .get_or_create(&PassLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Count issues a sync pass wrote to the local store (a committed page).
    pub fn sync_issues_upserted(&self, n: u64) {
        self.sync_issues_upserted.inc_by(n);
    }

    /// Count one Jira webhook delivery: `applied`, `duplicate` or `rejected`.
    pub fn jira_webhook(&self, outcome: &str) {
        self.jira_webhooks_received
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Count one event delivery attempt: `delivered`, `retry` or `failed`.
    pub fn event_delivery(&self, outcome: &str) {
        self.event_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Count rows the retention pass deleted from `table`.
    pub fn retention_removed(&self, table: &str, n: u64) {
        self.retention_removed
            .get_or_create(&TableLabels {
                table: table.to_string(),
            })
            .inc_by(n);
    }

    /// Points spent at `site` by calls of `class`.
    pub fn points_used(&self, site: &str, class: &str, n: u64) {
        self.points_used
            .get_or_create(&PointsLabels {
                site: site.to_string(),
                class: class.to_string(),
            })
            .inc_by(n);
    }

    pub fn points_remaining(&self, site: &str, n: i64) {
        self.points_remaining
            .get_or_create(&SiteLabels {
                site: site.to_string(),
            })
            .set(n);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
