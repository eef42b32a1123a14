//! `atlassim serve`: run the emulator from the shell. Everything else is in the library.

use std::io::Write as _;
use std::net::SocketAddr;

use atlassim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use atlassim::model::OAuthClient;
use atlassim::{Sim, SimConfig};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "atlassim",
    version,
    about = "A faithful Atlassian Cloud emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the auth server, the API gateway and the control plane on one port.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 2)]
    sites: usize,
    /// Projects per site.
    #[arg(long, default_value_t = 3)]
    projects: usize,
    /// Issues per project.
    #[arg(long, default_value_t = 60)]
    issues: usize,
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET, env = "ATLASSIM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Registered callback URLs (repeatable); replaces the defaults when given.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Grant consent at once (first user, every site) instead of showing the page.
    #[arg(long)]
    auto_consent: bool,
    /// Enforce Jira's burst, per-issue write and hourly quota limits.
    #[arg(long)]
    rate_limits: bool,
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: i64,
    #[arg(long, default_value_t = 600)]
    reuse_window: i64,
    #[arg(long, default_value_t = 90 * 24 * 3600)]
    refresh_inactivity: i64,
    /// Absolute lifetime of a token family from first consent (none by default).
    #[arg(long)]
    refresh_absolute: Option<i64>,
    /// Delay added to every gateway request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seeded dates lie before this day (YYYY-MM-DD, UTC); default today, so
    /// the active sprint is current. Fix it to get byte-identical data.
    #[arg(long, value_parser = parse_epoch)]
    epoch: Option<chrono::DateTime<chrono::Utc>>,
    /// The hourly points quota (Atlassian's 2026 limit), per app unless
    /// --points-per-tenant; every request is refused once it is spent, until
    /// the top of the hour on atlassim's clock.
    #[arg(long)]
    points_per_hour: Option<u64>,
    /// One quota pool per (app, site) instead of one per app.
    #[arg(long)]
    points_per_tenant: bool,
}

fn parse_epoch(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("expected YYYY-MM-DD: {e}"))?;
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

impl ServeArgs {
    fn into_config(self) -> SimConfig {
        let defaults = SimConfig::default();
        let default_client = defaults.clients.first().cloned();
        let redirect_uris = if self.redirect_uris.is_empty() {
            default_client
                .as_ref()
                .map(|c| c.redirect_uris.clone())
                .unwrap_or_default()
        } else {
            self.redirect_uris
        };
        let scopes = atlassim::scopes::registered_scopes();
        SimConfig {
            listen: self.listen,
            seed: self.seed,
            sites: self.sites,
            projects: self.projects,
            issues: self.issues,
            clients: vec![OAuthClient {
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_uris,
                scopes,
            }],
            auto_consent: self.auto_consent,
            rate_limits: self.rate_limits,
            access_token_ttl_secs: self.access_token_ttl,
            reuse_window_secs: self.reuse_window,
            refresh_inactivity_secs: self.refresh_inactivity,
            refresh_absolute_secs: self.refresh_absolute,
            latency_ms: self.latency_ms,
            epoch: self.epoch,
            points_per_hour: self.points_per_hour,
            points_per_tenant: self.points_per_tenant,
            ..defaults
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ATLASSIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    let sim = Sim::start(args.into_config()).await?;
    {
        // Scripts read this first line to learn the port.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sim.base_url())?;
        out.flush()?;
    }
    wait_for_stop().await?;
    sim.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a supervisor or a test harness.
async fn wait_for_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
