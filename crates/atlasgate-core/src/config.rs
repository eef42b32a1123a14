//! Configuration: flags win, then environment variables, then `atlasgate.toml`.
//!
//! Loading never stops at the first problem. [`Settings::resolve`] looks at
//! every setting and records it as ok / missing / invalid in a [`Report`], so
//! `check-config` and a refused `serve` list every problem at once. Secret
//! values are never part of a report line.
//!
//! The reference for users is `docs/configuration.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::atlassian::budget::{BudgetSettings, DEFAULT_POINTS_PER_HOUR, DEFAULT_POINTS_RESERVE};
use crate::atlassian::limits::{Pacing, DEFAULT_PACING_FACTOR};
use crate::vault::Keyring;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://atlasgate.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_AUTH_URL: &str = "https://auth.atlassian.com";
pub const DEFAULT_API_URL: &str = "https://api.atlassian.com";
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 300;
pub const DEFAULT_CONFIG_FILE: &str = "atlasgate.toml";
/// Atlassian access tokens live one hour; a margin at least that long would
/// refresh on every call.
const ACCESS_TOKEN_LIFETIME_SECS: u64 = 3600;

/// Scopes of the built-in `jira` profile: what the typed Jira operations
/// (projects, boards, sprints, issues, estimates, comments, search) and
/// dynamic webhooks need, plus identity and refresh. The platform API takes
/// the classic scopes; the agile API accepts only granular ones (per the Jira
/// Software spec), hence both kinds.
pub const JIRA_SCOPES: &[&str] = &[
    "offline_access",
    "read:me",
    "read:jira-work",
    "write:jira-work",
    "read:jira-user",
    "manage:jira-webhook",
    // Jira Software agile 1.0: boards, board configuration (estimation field),
    // sprints, sprint issues, backlog, estimation.
    "read:board-scope:jira-software",
    "read:board-scope.admin:jira-software",
    "read:project:jira",
    "read:sprint:jira-software",
    "read:issue-details:jira",
    "read:jql:jira",
    "read:issue:jira-software",
    "write:issue:jira-software",
];

/// Scopes of the built-in `confluence` profile: spaces and pages (v2 API),
/// page writes (`POST`/`PUT /pages` need `write:page:confluence`), and CQL
/// search (v1 `/search` needs `search:confluence`; Atlassian's v1 reference).
pub const CONFLUENCE_SCOPES: &[&str] = &[
    "offline_access",
    "read:me",
    "read:confluence-space.summary",
    "read:confluence-content.all",
    "read:page:confluence",
    "read:space:confluence",
    "write:page:confluence",
    "search:confluence",
];

/// A named scope set; one consent (one token family) per connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub scopes: Vec<String>,
}

impl Profile {
    /// Space-separated, as the `scope` parameter of `/authorize` wants it.
    pub fn scope_param(&self) -> String {
        self.scopes.join(" ")
    }
}

/// The built-in profiles `jira`, `confluence` and `atlassian` (both).
pub fn builtin_profiles() -> BTreeMap<String, Profile> {
    let to_vec = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut both = to_vec(JIRA_SCOPES);
    for s in CONFLUENCE_SCOPES {
        if !both.iter().any(|x| x == s) {
            both.push(s.to_string());
        }
    }
    BTreeMap::from([
        (
            "jira".to_string(),
            Profile {
                scopes: to_vec(JIRA_SCOPES),
            },
        ),
        (
            "confluence".to_string(),
            Profile {
                scopes: to_vec(CONFLUENCE_SCOPES),
            },
        ),
        ("atlassian".to_string(), Profile { scopes: both }),
    ])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Everything `serve` needs, validated.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    /// Without a trailing slash; may carry a path prefix.
    pub public_url: Url,
    pub encryption_keys: Keyring,
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: Url,
    pub api_url: Url,
    /// `None` = admin routes are off (404).
    pub admin_token: Option<SecretString>,
    pub refresh_margin: Duration,
    pub profiles: BTreeMap<String, Profile>,
    pub log: String,
    pub log_format: LogFormat,
    /// Burst pacing of calls to Atlassian; `None` = off (`ATLASGATE_PACING`).
    pub pacing: Option<Pacing>,
    /// The points budget (`ATLASGATE_POINTS_PER_HOUR`, `ATLASGATE_POINTS_RESERVE`).
    pub points: BudgetSettings,
    /// Peers whose `X-Forwarded-For` is believed (docs/design.md §12).
    pub trusted_proxies: TrustedProxies,
    /// Secret overlap and retention ages (docs/design.md §13–15).
    pub lifecycle: Lifecycle,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &mask_database_url(&self.database_url))
            .field("listen", &self.listen)
            .field("public_url", &self.public_url.as_str())
            .field("encryption_keys", &self.encryption_keys)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth_url", &self.auth_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field("refresh_margin", &self.refresh_margin)
            .field("profiles", &self.profiles)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("pacing", &self.pacing)
            .field("points", &self.points)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl Config {
    /// A complete configuration for tests, built without touching the process
    /// environment: port 0, the given database, atlassim's default client.
    /// Adjust the public fields afterwards.
    #[allow(clippy::expect_used)] // literals; a unit test guards them
    pub fn for_tests(database_url: impl Into<String>, encryption_keys: Keyring) -> Config {
        let url = |s: &str| parse_base_url(s).expect("literal URL");
        Config {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: url("http://127.0.0.1:0"),
            encryption_keys,
            client_id: "atlasgate-dev".into(),
            client_secret: SecretString::from("atlasgate-dev-secret"),
            auth_url: url("http://127.0.0.1:9000"),
            api_url: url("http://127.0.0.1:9000"),
            admin_token: None,
            refresh_margin: Duration::from_secs(DEFAULT_REFRESH_MARGIN_SECS),
            profiles: builtin_profiles(),
            log: "info".into(),
            log_format: LogFormat::Pretty,
            pacing: Some(Pacing::default()),
            points: BudgetSettings::default(),
            trusted_proxies: TrustedProxies::default(),
            lifecycle: Lifecycle::default(),
        }
    }

    /// `{public_url}/oauth/callback`, the redirect URI registered with Atlassian.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/oauth/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// `{public_url}{path}`; `path` starts with `/`.
    pub fn public_link(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
    }
}

/// Values given as command-line flags (the highest layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub client_id: Option<String>,
    pub auth_url: Option<String>,
    pub api_url: Option<String>,
    pub refresh_margin: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub trusted_proxies: Option<String>,
    pub insecure_http: Option<String>,
}

/// `atlasgate.toml`. Unknown keys are an error that names the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub encryption_keys: Option<String>,
    pub admin_token: Option<String>,
    pub refresh_margin: Option<TomlScalar>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub pacing: Option<String>,
    pub pacing_factor: Option<TomlScalar>,
    pub points_per_hour: Option<TomlScalar>,
    pub points_reserve: Option<TomlScalar>,
    pub trusted_proxies: Option<String>,
    pub insecure_http: Option<TomlScalar>,
    pub webhook_secret_overlap: Option<TomlScalar>,
    pub retention_days: Option<TomlScalar>,
    pub audit_retention_days: Option<TomlScalar>,
    pub atlassian: Option<FileAtlassian>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAtlassian {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub auth_url: Option<String>,
    pub api_url: Option<String>,
}

/// `refresh_margin = 300` or `refresh_margin = "300"` (`pacing_factor = 0.9`);
/// `insecure_http = true` or `"true"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TomlScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl TomlScalar {
    fn into_string(self) -> String {
        match self {
            TomlScalar::Bool(b) => b.to_string(),
            TomlScalar::Int(i) => i.to_string(),
            TomlScalar::Float(f) => f.to_string(),
            TomlScalar::Str(s) => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration is not usable:\n{0}")]
    Invalid(Report),
}

/// The state of one setting in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The value as it may be shown (masked for secrets).
    Ok(String),
    Missing,
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The environment variable name (or `profiles.NAME`).
    pub name: String,
    pub status: Status,
    /// Where the value came from: `flag`, `env`, `file`, `default`.
    pub source: &'static str,
}

/// Every setting and its state; printed by `check-config` and a refused `serve`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn problems(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| !matches!(e.status, Status::Ok(_)))
    }

    pub fn is_ok(&self) -> bool {
        self.problems().next().is_none()
    }

    fn push(&mut self, name: &str, source: &'static str, status: Status) {
        self.entries.push(Entry {
            name: name.to_string(),
            status,
            source,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &self.entries {
            match &e.status {
                Status::Ok(shown) => {
                    writeln!(f, "{:width$}  ok       {} ({})", e.name, shown, e.source)?
                }
                Status::Missing => writeln!(f, "{:width$}  missing  required", e.name)?,
                Status::Invalid(why) => {
                    writeln!(f, "{:width$}  invalid  {} ({})", e.name, why, e.source)?
                }
            }
        }
        Ok(())
    }
}

/// The merged raw values of the three layers, before validation.
pub struct Settings {
    values: BTreeMap<&'static str, (String, &'static str)>,
    profiles: BTreeMap<String, (Profile, &'static str)>,
}

/// Environment variable names, in report order.
pub const DATABASE_URL: &str = "ATLASGATE_DATABASE_URL";
pub const LISTEN: &str = "ATLASGATE_LISTEN";
pub const PUBLIC_URL: &str = "ATLASGATE_PUBLIC_URL";
pub const ENCRYPTION_KEYS: &str = "ATLASGATE_ENCRYPTION_KEYS";
pub const CLIENT_ID: &str = "ATLASSIAN_CLIENT_ID";
pub const CLIENT_SECRET: &str = "ATLASSIAN_CLIENT_SECRET";
pub const AUTH_URL: &str = "ATLASSIAN_AUTH_URL";
pub const API_URL: &str = "ATLASSIAN_API_URL";
pub const ADMIN_TOKEN: &str = "ATLASGATE_ADMIN_TOKEN";
pub const REFRESH_MARGIN: &str = "ATLASGATE_REFRESH_MARGIN";
pub const LOG: &str = "ATLASGATE_LOG";
pub const LOG_FORMAT: &str = "ATLASGATE_LOG_FORMAT";
pub const PACING: &str = "ATLASGATE_PACING";
pub const PACING_FACTOR: &str = "ATLASGATE_PACING_FACTOR";
pub const POINTS_PER_HOUR: &str = "ATLASGATE_POINTS_PER_HOUR";
pub const POINTS_RESERVE: &str = "ATLASGATE_POINTS_RESERVE";
pub const TRUSTED_PROXIES: &str = "ATLASGATE_TRUSTED_PROXIES";
pub const INSECURE_HTTP: &str = "ATLASGATE_INSECURE_HTTP";
pub const WEBHOOK_SECRET_OVERLAP: &str = "ATLASGATE_WEBHOOK_SECRET_OVERLAP";
pub const RETENTION_DAYS: &str = "ATLASGATE_RETENTION_DAYS";
pub const AUDIT_RETENTION_DAYS: &str = "ATLASGATE_AUDIT_RETENTION_DAYS";

const ALL_VARS: &[&str] = &[
    DATABASE_URL,
    LISTEN,
    PUBLIC_URL,
    ENCRYPTION_KEYS,
    CLIENT_ID,
    CLIENT_SECRET,
    AUTH_URL,
    API_URL,
    ADMIN_TOKEN,
    REFRESH_MARGIN,
    LOG,
    LOG_FORMAT,
    PACING,
    PACING_FACTOR,
    POINTS_PER_HOUR,
    POINTS_RESERVE,
    TRUSTED_PROXIES,
    INSECURE_HTTP,
    WEBHOOK_SECRET_OVERLAP,
    RETENTION_DAYS,
    AUDIT_RETENTION_DAYS,
];

impl Settings {
    /// Merge flags, the environment (`env` looks a variable up) and the file.
    /// The file is `overrides.config_file`, else `./atlasgate.toml` if present.
    pub fn load(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => Some(read_file(path)?),
            None => {
                let path = Path::new(DEFAULT_CONFIG_FILE);
                if path.is_file() {
                    Some(read_file(path)?)
                } else {
                    None
                }
            }
        };
        Ok(Settings::merge(overrides, env, file.unwrap_or_default()))
    }

    /// Merge already-parsed layers (tests use this directly).
    pub fn merge(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        file: FileConfig,
    ) -> Settings {
        let mut values = BTreeMap::new();
        let atl = file.atlassian.unwrap_or_default();
        let from_file: [(&'static str, Option<String>); 21] = [
            (DATABASE_URL, file.database_url),
            (LISTEN, file.listen),
            (PUBLIC_URL, file.public_url),
            (ENCRYPTION_KEYS, file.encryption_keys),
            (CLIENT_ID, atl.client_id),
            (CLIENT_SECRET, atl.client_secret),
            (AUTH_URL, atl.auth_url),
            (API_URL, atl.api_url),
            (ADMIN_TOKEN, file.admin_token),
            (
                REFRESH_MARGIN,
                file.refresh_margin.map(TomlScalar::into_string),
            ),
            (LOG, file.log),
            (LOG_FORMAT, file.log_format),
            (PACING, file.pacing),
            (
                PACING_FACTOR,
                file.pacing_factor.map(TomlScalar::into_string),
            ),
            (
                POINTS_PER_HOUR,
                file.points_per_hour.map(TomlScalar::into_string),
            ),
            (
                POINTS_RESERVE,
                file.points_reserve.map(TomlScalar::into_string),
            ),
            (TRUSTED_PROXIES, file.trusted_proxies),
            (
                INSECURE_HTTP,
                file.insecure_http.map(TomlScalar::into_string),
            ),
            (
                WEBHOOK_SECRET_OVERLAP,
                file.webhook_secret_overlap.map(TomlScalar::into_string),
            ),
            (
                RETENTION_DAYS,
                file.retention_days.map(TomlScalar::into_string),
            ),
            (
                AUDIT_RETENTION_DAYS,
                file.audit_retention_days.map(TomlScalar::into_string),
            ),
        ];
        for (name, v) in from_file {
            if let Some(v) = v {
                values.insert(name, (v, "file"));
            }
        }
        for name in ALL_VARS {
            if let Some(v) = env(name).filter(|v| !v.is_empty()) {
                values.insert(*name, (v, "env"));
            }
        }
        let flags: [(&'static str, &Option<String>); 11] = [
            (DATABASE_URL, &overrides.database_url),
            (LISTEN, &overrides.listen),
            (PUBLIC_URL, &overrides.public_url),
            (CLIENT_ID, &overrides.client_id),
            (AUTH_URL, &overrides.auth_url),
            (API_URL, &overrides.api_url),
            (REFRESH_MARGIN, &overrides.refresh_margin),
            (LOG, &overrides.log),
            (LOG_FORMAT, &overrides.log_format),
            (TRUSTED_PROXIES, &overrides.trusted_proxies),
            (INSECURE_HTTP, &overrides.insecure_http),
        ];
        for (name, v) in flags {
            if let Some(v) = v {
                values.insert(name, (v.clone(), "flag"));
            }
        }
        let mut profiles: BTreeMap<String, (Profile, &'static str)> = builtin_profiles()
            .into_iter()
            .map(|(k, v)| (k, (v, "default")))
            .collect();
        for (name, p) in file.profiles {
            profiles.insert(name, (p, "file"));
        }
        Settings { values, profiles }
    }

    fn get(&self, name: &str) -> Option<(&str, &'static str)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), *s))
    }

    /// Validate every setting. The [`Resolved`] holds each value that is ok,
    /// and the report lists all of them.
    pub fn resolve(&self) -> Resolved {
        let mut r = Resolved::default();

        let (db, src) = self
            .get(DATABASE_URL)
            .unwrap_or((DEFAULT_DATABASE_URL, "default"));
        match check_database_url(db) {
            Ok(()) => {
                r.report
                    .push(DATABASE_URL, src, Status::Ok(mask_database_url(db)));
                r.database_url = Some(db.to_string());
            }
            Err(why) => r.report.push(DATABASE_URL, src, Status::Invalid(why)),
        }

        let (listen, src) = self.get(LISTEN).unwrap_or((DEFAULT_LISTEN, "default"));
        match listen.parse::<SocketAddr>() {
            Ok(addr) => {
                r.report.push(LISTEN, src, Status::Ok(addr.to_string()));
                r.listen = Some(addr);
            }
            Err(_) => r.report.push(
                LISTEN,
                src,
                Status::Invalid(format!("`{listen}` is not an address like 127.0.0.1:8080")),
            ),
        }

        let (v, src) = self.get(INSECURE_HTTP).unwrap_or(("false", "default"));
        let insecure_http = match v.trim() {
            "true" => {
                r.report.push(
                    INSECURE_HTTP,
                    src,
                    Status::Ok("true (http:// allowed on any host)".into()),
                );
                true
            }
            "false" => {
                r.report.push(
                    INSECURE_HTTP,
                    src,
                    Status::Ok("false (http:// only on loopback)".into()),
                );
                false
            }
            other => {
                r.report.push(
                    INSECURE_HTTP,
                    src,
                    Status::Invalid(format!("`{other}` is neither `true` nor `false`")),
                );
                false
            }
        };
        for (name, default, slot) in [
            (PUBLIC_URL, DEFAULT_PUBLIC_URL, &mut r.public_url),
            (AUTH_URL, DEFAULT_AUTH_URL, &mut r.auth_url),
            (API_URL, DEFAULT_API_URL, &mut r.api_url),
        ] {
            let (v, src) = self.get(name).unwrap_or((default, "default"));
            match parse_base_url(v).and_then(|url| {
                if insecure_http {
                    Ok(url)
                } else {
                    refuse_plain_http(url)
                }
            }) {
                Ok(url) => {
                    let shown = url.as_str().trim_end_matches('/').to_string();
                    r.report.push(name, src, Status::Ok(shown));
                    *slot = Some(url);
                }
                Err(why) => r.report.push(name, src, Status::Invalid(why)),
            }
        }

        match self.get(ENCRYPTION_KEYS) {
            None => r.report.push(ENCRYPTION_KEYS, "default", Status::Missing),
            Some((v, src)) => match Keyring::parse(v) {
                Ok(k) => {
                    let shown = format!(
                        "{} key(s): {} (encrypts with `{}`)",
                        k.len(),
                        k.ids().collect::<Vec<_>>().join(", "),
                        k.primary_id()
                    );
                    r.report.push(ENCRYPTION_KEYS, src, Status::Ok(shown));
                    r.encryption_keys = Some(k);
                }
                Err(e) => r
                    .report
                    .push(ENCRYPTION_KEYS, src, Status::Invalid(e.to_string())),
            },
        }

        match self.get(CLIENT_ID) {
            None => r.report.push(CLIENT_ID, "default", Status::Missing),
            Some((v, src)) => {
                r.report.push(CLIENT_ID, src, Status::Ok(v.to_string()));
                r.client_id = Some(v.to_string());
            }
        }
        match self.get(CLIENT_SECRET) {
            None => r.report.push(CLIENT_SECRET, "default", Status::Missing),
            Some((v, src)) => {
                r.report
                    .push(CLIENT_SECRET, src, Status::Ok(mask_secret(v)));
                r.client_secret = Some(SecretString::from(v.to_string()));
            }
        }
        match self.get(ADMIN_TOKEN) {
            None => r.report.push(
                ADMIN_TOKEN,
                "default",
                Status::Ok("unset (admin routes off)".into()),
            ),
            Some((v, src)) if v.len() < 16 => r.report.push(
                ADMIN_TOKEN,
                src,
                Status::Invalid(format!(
                    "too short ({} characters, need at least 16)",
                    v.len()
                )),
            ),
            Some((v, src)) => {
                r.report.push(ADMIN_TOKEN, src, Status::Ok(mask_secret(v)));
                r.admin_token = Some(Some(SecretString::from(v.to_string())));
            }
        }
        if self.get(ADMIN_TOKEN).is_none() {
            r.admin_token = Some(None);
        }

        let margin_default = DEFAULT_REFRESH_MARGIN_SECS.to_string();
        let (v, src) = self
            .get(REFRESH_MARGIN)
            .unwrap_or((margin_default.as_str(), "default"));
        match v.trim().parse::<u64>() {
            Ok(secs) if secs < ACCESS_TOKEN_LIFETIME_SECS => {
                r.report.push(REFRESH_MARGIN, src, Status::Ok(format!("{secs} seconds")));
                r.refresh_margin = Some(Duration::from_secs(secs));
            }
            Ok(secs) => r.report.push(
                REFRESH_MARGIN,
                src,
                Status::Invalid(format!(
                    "{secs} seconds is not less than the {ACCESS_TOKEN_LIFETIME_SECS}-second access-token lifetime"
                )),
            ),
            Err(_) => r.report.push(
                REFRESH_MARGIN,
                src,
                Status::Invalid(format!("`{v}` is not a whole number of seconds")),
            ),
        }

        let (v, src) = self.get(LOG).unwrap_or(("info", "default"));
        match tracing_subscriber::EnvFilter::try_new(v) {
            Ok(_) => {
                r.report.push(LOG, src, Status::Ok(v.to_string()));
                r.log = Some(v.to_string());
            }
            Err(e) => r.report.push(
                LOG,
                src,
                Status::Invalid(format!("not a tracing filter: {e}")),
            ),
        }
        let (v, src) = self.get(LOG_FORMAT).unwrap_or(("pretty", "default"));
        match v {
            "pretty" => {
                r.report.push(LOG_FORMAT, src, Status::Ok(v.into()));
                r.log_format = Some(LogFormat::Pretty);
            }
            "json" => {
                r.report.push(LOG_FORMAT, src, Status::Ok(v.into()));
                r.log_format = Some(LogFormat::Json);
            }
            other => r.report.push(
                LOG_FORMAT,
                src,
                Status::Invalid(format!("`{other}` is neither `json` nor `pretty`")),
            ),
        }

        r.pacing = self.resolve_pacing(&mut r.report);
        r.points = self.resolve_points(&mut r.report);
        let (v, src) = self.get(TRUSTED_PROXIES).unwrap_or(("", "default"));
        match TrustedProxies::parse(v) {
            Ok(t) => {
                r.report
                    .push(TRUSTED_PROXIES, src, Status::Ok(t.to_string()));
                r.trusted_proxies = Some(t);
            }
            Err(why) => r.report.push(TRUSTED_PROXIES, src, Status::Invalid(why)),
        }

        r.lifecycle = self.resolve_lifecycle(&mut r.report);

        let mut profiles = BTreeMap::new();
        let mut profiles_ok = true;
        for (name, (p, src)) in &self.profiles {
            let label = format!("profiles.{name}");
            match check_profile(name, p) {
                Ok(()) => {
                    r.report.push(&label, src, Status::Ok(p.scope_param()));
                    profiles.insert(name.clone(), p.clone());
                }
                Err(why) => {
                    profiles_ok = false;
                    r.report.push(&label, src, Status::Invalid(why));
                }
            }
        }
        if profiles_ok {
            r.profiles = Some(profiles);
        }
        r
    }
}

impl Settings {
    /// `ATLASGATE_PACING` and `ATLASGATE_PACING_FACTOR`; `Some` when both are
    /// valid (the factor is checked even when pacing is off, so turning it
    /// back on cannot meet a surprise).
    fn resolve_pacing(&self, report: &mut Report) -> Option<Option<Pacing>> {
        let (v, src) = self.get(PACING).unwrap_or(("on", "default"));
        let on = match v.trim() {
            "on" => {
                report.push(PACING, src, Status::Ok("on".into()));
                Some(true)
            }
            "off" => {
                report.push(
                    PACING,
                    src,
                    Status::Ok("off (calls go to Atlassian unpaced)".into()),
                );
                Some(false)
            }
            other => {
                report.push(
                    PACING,
                    src,
                    Status::Invalid(format!("`{other}` is neither `on` nor `off`")),
                );
                None
            }
        };
        let default = DEFAULT_PACING_FACTOR.to_string();
        let (v, src) = self
            .get(PACING_FACTOR)
            .unwrap_or((default.as_str(), "default"));
        let factor = match v.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 && f <= MAX_PACING_FACTOR => {
                report.push(
                    PACING_FACTOR,
                    src,
                    Status::Ok(format!("{f} × Atlassian's published burst rates")),
                );
                Some(f)
            }
            Ok(_) => {
                report.push(
                    PACING_FACTOR,
                    src,
                    Status::Invalid(format!(
                        "`{v}` is not above 0 and at most {MAX_PACING_FACTOR}"
                    )),
                );
                None
            }
            Err(_) => {
                report.push(
                    PACING_FACTOR,
                    src,
                    Status::Invalid(format!("`{v}` is not a number like 0.9")),
                );
                None
            }
        };
        let factor = factor?;
        Some(on?.then(|| Pacing {
            factor,
            ..Pacing::default()
        }))
    }
}

impl Settings {
    /// `ATLASGATE_POINTS_PER_HOUR` (a whole number ≥ 1) and
    /// `ATLASGATE_POINTS_RESERVE` (a share `0 ≤ r < 1`, or a percentage `20%`).
    fn resolve_points(&self, report: &mut Report) -> Option<BudgetSettings> {
        let default = DEFAULT_POINTS_PER_HOUR.to_string();
        let (v, src) = self
            .get(POINTS_PER_HOUR)
            .unwrap_or((default.as_str(), "default"));
        let per_hour = match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 => {
                report.push(
                    POINTS_PER_HOUR,
                    src,
                    Status::Ok(format!(
                        "{n} points an hour until Atlassian's RateLimit-Policy says otherwise"
                    )),
                );
                Some(n)
            }
            _ => {
                report.push(
                    POINTS_PER_HOUR,
                    src,
                    Status::Invalid(format!(
                        "`{v}` is not a whole number of points of at least 1"
                    )),
                );
                None
            }
        };
        let default = DEFAULT_POINTS_RESERVE.to_string();
        let (v, src) = self
            .get(POINTS_RESERVE)
            .unwrap_or((default.as_str(), "default"));
        let t = v.trim();
        let parsed = match t.strip_suffix('%') {
            Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
            None => t.parse::<f64>(),
        };
        let reserve = match parsed {
            Ok(r) if r.is_finite() && (0.0..1.0).contains(&r) => {
                report.push(
                    POINTS_RESERVE,
                    src,
                    Status::Ok(format!(
                        "{}% of the quota left for calls apps make with their own tokens",
                        (r * 1000.0).round() / 10.0
                    )),
                );
                Some(r)
            }
            _ => {
                report.push(
                    POINTS_RESERVE,
                    src,
                    Status::Invalid(format!(
                        "`{v}` is not a share from 0 up to (not including) 1, like 0.2 or 20%"
                    )),
                );
                None
            }
        };
        Some(BudgetSettings {
            per_hour: per_hour?,
            reserve: reserve?,
        })
    }
}

/// A factor above 1 paces above the published rates, for tenants Atlassian
/// gave higher limits; 10× is far past any published tier.
const MAX_PACING_FACTOR: f64 = 10.0;

/// How long a rotated-out webhook secret keeps signing, and how long
/// finished rows and audit records are kept (docs/design.md §13–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// `ATLASGATE_WEBHOOK_SECRET_OVERLAP` (seconds, default 86400).
    pub webhook_secret_overlap_secs: u64,
    /// `ATLASGATE_RETENTION_DAYS` (default 30; 0 keeps everything).
    pub retention_days: u64,
    /// `ATLASGATE_AUDIT_RETENTION_DAYS` (default 365; 0 keeps everything).
    pub audit_retention_days: u64,
}

pub const DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS: u64 = 86_400;
pub const DEFAULT_RETENTION_DAYS: u64 = 30;
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 365;
/// A hundred years: larger values are surely typos (and would overflow).
const MAX_DAYS: u64 = 36_500;

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            webhook_secret_overlap_secs: DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS,
            retention_days: DEFAULT_RETENTION_DAYS,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

impl Settings {
    /// A whole number in `0..=max` (with `unit` for the report), or its problem.
    fn resolve_count(
        &self,
        report: &mut Report,
        name: &str,
        default: u64,
        max: u64,
        unit: &str,
        zero_means: &str,
    ) -> Option<u64> {
        let default_s = default.to_string();
        let (v, src) = self.get(name).unwrap_or((default_s.as_str(), "default"));
        match v.trim().parse::<u64>() {
            Ok(0) if !zero_means.is_empty() => {
                report.push(name, src, Status::Ok(format!("0 ({zero_means})")));
                Some(0)
            }
            Ok(n) if n <= max && n > 0 => {
                report.push(name, src, Status::Ok(format!("{n} {unit}")));
                Some(n)
            }
            Ok(n) => {
                report.push(
                    name,
                    src,
                    Status::Invalid(format!("{n} is not between 1 and {max} {unit}")),
                );
                None
            }
            Err(_) => {
                report.push(
                    name,
                    src,
                    Status::Invalid(format!("`{v}` is not a whole number of {unit}")),
                );
                None
            }
        }
    }

    fn resolve_lifecycle(&self, report: &mut Report) -> Option<Lifecycle> {
        let overlap = self.resolve_count(
            report,
            WEBHOOK_SECRET_OVERLAP,
            DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS,
            MAX_DAYS * 86_400,
            "seconds",
            "the old secret stops signing at once",
        );
        let retention = self.resolve_count(
            report,
            RETENTION_DAYS,
            DEFAULT_RETENTION_DAYS,
            MAX_DAYS,
            "days",
            "finished rows are kept forever",
        );
        let audit = self.resolve_count(
            report,
            AUDIT_RETENTION_DAYS,
            DEFAULT_AUDIT_RETENTION_DAYS,
            MAX_DAYS,
            "days",
            "audit records are kept forever",
        );
        Some(Lifecycle {
            webhook_secret_overlap_secs: overlap?,
            retention_days: retention?,
            audit_retention_days: audit?,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// Parse `atlasgate.toml` text; the error names an unknown key.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| e.message().trim().to_string())
}

/// The outcome of validation: each value that is ok, plus the full report.
#[derive(Default, Clone)]
pub struct Resolved {
    pub report: Report,
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<Url>,
    encryption_keys: Option<Keyring>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    auth_url: Option<Url>,
    api_url: Option<Url>,
    admin_token: Option<Option<SecretString>>,
    refresh_margin: Option<Duration>,
    profiles: Option<BTreeMap<String, Profile>>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    pacing: Option<Option<Pacing>>,
    points: Option<BudgetSettings>,
    trusted_proxies: Option<TrustedProxies>,
    lifecycle: Option<Lifecycle>,
}

impl Resolved {
    /// The full configuration `serve` needs, or every problem at once.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if !self.report.is_ok() {
            return Err(ConfigError::Invalid(self.report));
        }
        let report = self.report.clone();
        let missing = || ConfigError::Invalid(report.clone());
        Ok(Config {
            database_url: self.database_url.ok_or_else(missing)?,
            listen: self.listen.ok_or_else(missing)?,
            public_url: self.public_url.ok_or_else(missing)?,
            encryption_keys: self.encryption_keys.ok_or_else(missing)?,
            client_id: self.client_id.ok_or_else(missing)?,
            client_secret: self.client_secret.ok_or_else(missing)?,
            auth_url: self.auth_url.ok_or_else(missing)?,
            api_url: self.api_url.ok_or_else(missing)?,
            admin_token: self.admin_token.ok_or_else(missing)?,
            refresh_margin: self.refresh_margin.ok_or_else(missing)?,
            profiles: self.profiles.ok_or_else(missing)?,
            log: self.log.ok_or_else(missing)?,
            log_format: self.log_format.ok_or_else(missing)?,
            pacing: self.pacing.ok_or_else(missing)?,
            points: self.points.ok_or_else(missing)?,
            trusted_proxies: self.trusted_proxies.ok_or_else(missing)?,
            lifecycle: self.lifecycle.ok_or_else(missing)?,
        })
    }

    /// Only the settings a command needs (e.g. `migrate` needs the database).
    /// Problems in other settings are ignored.
    pub fn require(&self, names: &[&str]) -> Result<(), ConfigError> {
        let bad: Vec<Entry> = self
            .report
            .problems()
            .filter(|e| names.contains(&e.name.as_str()))
            .cloned()
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(Report { entries: bad }))
        }
    }

    pub fn database_url(&self) -> Result<String, ConfigError> {
        self.require(&[DATABASE_URL])?;
        self.database_url
            .clone()
            .ok_or_else(|| ConfigError::Invalid(self.report.clone()))
    }

    /// The secret overlap and retention settings.
    pub fn lifecycle(&self) -> Result<Lifecycle, ConfigError> {
        self.require(&[WEBHOOK_SECRET_OVERLAP, RETENTION_DAYS, AUDIT_RETENTION_DAYS])?;
        self.lifecycle
            .ok_or_else(|| ConfigError::Invalid(self.report.clone()))
    }

    pub fn keyring(&self) -> Result<Keyring, ConfigError> {
        self.require(&[ENCRYPTION_KEYS])?;
        self.encryption_keys
            .clone()
            .ok_or_else(|| ConfigError::Invalid(self.report.clone()))
    }

    pub fn log(&self) -> (String, LogFormat) {
        (
            self.log.clone().unwrap_or_else(|| "info".into()),
            self.log_format.unwrap_or_default(),
        )
    }
}

fn check_database_url(v: &str) -> Result<(), String> {
    if v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(())
    } else {
        Err("must start with `sqlite:` or `postgres://`".into())
    }
}

/// An absolute http(s) URL without query or fragment; the trailing slash is dropped.
pub fn parse_base_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{v}` must use http or https"));
    }
    if url.host().is_none() {
        return Err(format!("`{v}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{v}` must not have a query or fragment"));
    }
    let trimmed = v.trim_end_matches('/');
    Url::parse(trimmed).map_err(|e| format!("`{v}` is not a URL ({e})"))
}

/// Without TLS, tokens, codes, cookies and the client secret cross the
/// network in clear text; only a loopback host keeps them on the machine.
fn refuse_plain_http(url: Url) -> Result<Url, String> {
    if url.scheme() == "https" || is_loopback_host(&url) {
        return Ok(url);
    }
    Err(format!(
        "`{}` uses http:// on a host that is not loopback; use https:// (or set {INSECURE_HTTP}=true)",
        url.as_str().trim_end_matches('/')
    ))
}

/// 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and the name `localhost`.
/// Other `*.localhost` names are not trusted: not every resolver maps them
/// to loopback.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical().is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// One network, `ADDR/PREFIX` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(v: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match v.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{v}` is not an IP network like 10.0.0.0/8 or fd00::/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("`{v}`: the prefix length must be 0–{max}")),
            },
        };
        let cidr = Cidr { network, prefix };
        // `10.0.0.1/8` is nearly always a typo for a host or for `10.0.0.0/8`;
        // guessing which would silently trust the wrong peers.
        if cidr.masked(network) != network {
            return Err(format!(
                "`{v}` has host bits set (the network is {}/{prefix})",
                cidr.masked(network)
            ));
        }
        Ok(cidr)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        mask_ip(ip, self.prefix)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }
}

/// `ip` with all but its first `prefix` bits cleared.
pub fn mask_ip(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ATLASGATE_TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-For`
/// is believed. Empty (the default) means forwarding headers are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Comma-separated CIDRs; every bad entry is named in one message.
    pub fn parse(v: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        let mut bad = Vec::new();
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match Cidr::parse(part) {
                Ok(c) => nets.push(c),
                Err(e) => bad.push(e),
            }
        }
        if bad.is_empty() {
            Ok(TrustedProxies(nets))
        } else {
            Err(bad.join("; "))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none (forwarding headers ignored)");
        }
        let list: Vec<String> = self.0.iter().map(|c| c.to_string()).collect();
        write!(f, "{}", list.join(", "))
    }
}

fn check_profile(name: &str, p: &Profile) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("profile names use letters, digits, `-` and `_`".into());
    }
    if p.scopes.is_empty() {
        return Err("has no scopes".into());
    }
    if let Some(bad) = p
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(format!("scope `{bad}` is empty or contains whitespace"));
    }
    // Without offline_access Atlassian issues no refresh token, and the vault
    // could not keep the connection alive past one hour.
    if !p.scopes.iter().any(|s| s == "offline_access") {
        return Err("must include `offline_access` (no refresh token without it)".into());
    }
    Ok(())
}

/// `abcd…(32 chars)`-style masking: shows nothing of short values.
pub fn mask_secret(v: &str) -> String {
    format!("set ({} characters, hidden)", v.chars().count())
}

/// Hide a password in a database URL.
pub fn mask_database_url(v: &str) -> String {
    match Url::parse(v) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => v.to_string(),
    }
}

impl Config {
    /// The value of one profile, if configured.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn admin_token_matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        match &self.admin_token {
            Some(t) => t
                .expose_secret()
                .as_bytes()
                .ct_eq(candidate.as_bytes())
                .into(),
            None => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn literal_urls_parse() {
        assert!(parse_base_url("http://127.0.0.1:0").is_ok());
        assert_eq!(
            parse_base_url("http://x/prefix/")
                .map(|u| u.to_string())
                .ok()
                .as_deref(),
            Some("http://x/prefix")
        );
    }

    fn resolve(env: &[(&str, &str)], file: &str) -> Resolved {
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        Settings::merge(&Overrides::default(), &env, parse_file(file).unwrap()).resolve()
    }

    fn status<'a>(r: &'a Resolved, name: &str) -> &'a Status {
        &r.report
            .entries
            .iter()
            .find(|e| e.name == name)
            .unwrap()
            .status
    }

    #[test]
    fn lifecycle_settings_default_parse_and_name_bad_values() {
        let r = resolve(&[], "");
        assert_eq!(r.lifecycle, Some(Lifecycle::default()));
        assert_eq!(Lifecycle::default().webhook_secret_overlap_secs, 86_400);
        let r = resolve(
            &[(RETENTION_DAYS, "7")],
            "audit_retention_days = 30\nwebhook_secret_overlap = 0\n",
        );
        assert_eq!(
            r.lifecycle,
            Some(Lifecycle {
                webhook_secret_overlap_secs: 0,
                retention_days: 7,
                audit_retention_days: 30,
            })
        );
        for (name, v) in [
            (RETENTION_DAYS, "-1"),
            (RETENTION_DAYS, "36501"),
            (AUDIT_RETENTION_DAYS, "a year"),
            (WEBHOOK_SECRET_OVERLAP, "1.5"),
        ] {
            let r = resolve(&[(name, v)], "");
            assert!(
                matches!(status(&r, name), Status::Invalid(_)),
                "{name}={v}: {:?}",
                status(&r, name)
            );
            assert_eq!(r.lifecycle, None);
        }
    }

    #[test]
    fn pacing_is_on_at_the_published_rates_times_0_9_by_default() {
        let r = resolve(&[], "");
        assert_eq!(r.pacing, Some(Some(Pacing::default())));
        assert_eq!(Pacing::default().factor, 0.9);
        assert_eq!(status(&r, PACING), &Status::Ok("on".into()));

        let r = resolve(&[(PACING, "off"), (PACING_FACTOR, "0.5")], "");
        assert_eq!(r.pacing, Some(None));
        // The file layer, a TOML float, under the environment.
        let r = resolve(&[], "pacing_factor = 0.5\npacing = \"on\"\n");
        assert_eq!(r.pacing.unwrap().unwrap().factor, 0.5);
        let r = resolve(&[(PACING_FACTOR, "1.5")], "pacing_factor = 0.5\n");
        assert_eq!(r.pacing.unwrap().unwrap().factor, 1.5);
        assert_eq!(
            status(&r, PACING_FACTOR),
            &Status::Ok("1.5 × Atlassian's published burst rates".into())
        );
    }

    #[test]
    fn bad_pacing_values_are_named() {
        for (name, v, why) in [
            (PACING, "maybe", "neither `on` nor `off`"),
            (PACING_FACTOR, "0", "above 0"),
            (PACING_FACTOR, "-1", "above 0"),
            (PACING_FACTOR, "11", "at most 10"),
            (PACING_FACTOR, "NaN", "above 0"),
            (PACING_FACTOR, "fast", "not a number"),
        ] {
            let r = resolve(&[(name, v)], "");
            assert_eq!(r.pacing, None, "{name}={v}");
            match status(&r, name) {
                Status::Invalid(m) => assert!(m.contains(why), "{name}={v}: {m}"),
                other => panic!("{name}={v}: {other:?}"),
            }
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7,fd00::/8").unwrap();
        assert!(t.contains("10.200.3.4".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(!t.contains("fe80::1".parse().unwrap()));
        // An IPv4-mapped IPv6 peer is the IPv4 address it maps.
        assert!(t.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(
            TrustedProxies::parse("0.0.0.0/0").unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_cidrs_are_each_named() {
        let err = TrustedProxies::parse("10.0.0.1/8, 10.0.0.0/33, proxy.internal").unwrap_err();
        assert!(
            err.contains("10.0.0.1/8") && err.contains("10.0.0.0/8"),
            "{err}"
        );
        assert!(err.contains("10.0.0.0/33") && err.contains("0–32"), "{err}");
        assert!(err.contains("proxy.internal"), "{err}");
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:9000",
            "http://localhost:8080",
            "https://atlasgate.example.com",
        ] {
            assert!(
                refuse_plain_http(parse_base_url(ok).unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://atlasgate.example.com",
            "http://10.0.0.5:8080",
            "http://[fd00::1]",
            "http://localhost.evil.example",
            "http://0.0.0.0:8080",
        ] {
            let err = refuse_plain_http(parse_base_url(bad).unwrap()).unwrap_err();
            assert!(err.contains(INSECURE_HTTP), "{bad}: {err}");
        }
    }

    #[test]
    fn builtin_profiles_include_refresh_and_identity() {
        for (_, p) in builtin_profiles() {
            assert!(p.scopes.iter().any(|s| s == "offline_access"));
            assert!(p.scopes.iter().any(|s| s == "read:me"));
        }
    }
}
