//! The command line: `serve`, `demo`, `migrate`, `check-config`, `keys`,
//! `apps`, `connections` (`list`, `import`), `sync`. Each command resolves only the settings it
//! needs; `serve` and `check-config` look at all of them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::apps::{self, parse_webhook_url, AppName, NewApp, ReturnOrigin};
use crate::audit::Actor;
use crate::config::{ConfigError, Overrides, Resolved, Settings, DATABASE_URL, ENCRYPTION_KEYS};
use crate::server::Application;
use crate::store::Store;
use crate::vault::{keys, Cipher};

#[derive(Debug, Parser)]
#[command(
    name = "atlasgate",
    version,
    about = "A self-hosted broker between your applications and Atlassian Cloud"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings given as flags win over the environment and the file. Secrets
/// (keys, client secret, admin token) have no flag: they would show in `ps`.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./atlasgate.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// ATLASGATE_DATABASE_URL
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// ATLASGATE_LISTEN
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// ATLASGATE_PUBLIC_URL
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// ATLASSIAN_CLIENT_ID
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// ATLASSIAN_AUTH_URL
    #[arg(long, global = true, value_name = "URL")]
    pub auth_url: Option<String>,
    /// ATLASSIAN_API_URL
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
    /// ATLASGATE_REFRESH_MARGIN (seconds)
    #[arg(long, global = true, value_name = "SECS")]
    pub refresh_margin: Option<String>,
    /// ATLASGATE_LOG (tracing filter)
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// ATLASGATE_LOG_FORMAT (json or pretty)
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// ATLASGATE_TRUSTED_PROXIES (comma-separated CIDRs)
    #[arg(long, global = true, value_name = "CIDRS")]
    pub trusted_proxies: Option<String>,
    /// ATLASGATE_INSECURE_HTTP (true allows http:// URLs on non-loopback hosts)
    #[arg(long, global = true, value_name = "BOOL")]
    pub insecure_http: Option<String>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            database_url: self.database_url.clone(),
            listen: self.listen.clone(),
            public_url: self.public_url.clone(),
            client_id: self.client_id.clone(),
            auth_url: self.auth_url.clone(),
            api_url: self.api_url.clone(),
            refresh_margin: self.refresh_margin.clone(),
            log: self.log.clone(),
            log_format: self.log_format.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            insecure_http: self.insecure_http.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker (migrates the database first).
    Serve,
    /// Run the whole product on atlassim with no configuration.
    Demo(DemoArgs),
    /// Apply database migrations.
    Migrate,
    /// Print every setting as ok / missing / invalid; non-zero if `serve` would refuse.
    CheckConfig,
    /// Encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apps (clients of atlasgate).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Connections.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Issue syncs.
    #[command(subcommand)]
    Sync(SyncCommand),
}

#[derive(Debug, Clone, Default, Args)]
pub struct DemoArgs {
    /// Walk the whole product without a person and exit 0 only if every step worked.
    #[arg(long)]
    pub scripted: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new key for ATLASGATE_ENCRYPTION_KEYS.
    Generate,
    /// Re-encrypt every stored value with the first key of ATLASGATE_ENCRYPTION_KEYS.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app; prints its API key (and webhook secret) once.
    Create(CreateAppArgs),
    /// List apps.
    List,
    /// Change an app's name, webhook URL or return origins.
    Update(UpdateAppArgs),
    /// An app's API keys.
    #[command(subcommand)]
    Keys(AppKeysCommand),
    /// New webhook signing secret; prints it once. The old one keeps signing
    /// for ATLASGATE_WEBHOOK_SECRET_OVERLAP seconds.
    RotateWebhookSecret(AppArg),
    /// Delete an app: its connections are disconnected (Jira webhooks
    /// deleted), its syncs, synced issues, keys and pending events removed.
    Delete(AppArg),
}

#[derive(Debug, Args)]
pub struct AppArg {
    /// The app's id or name.
    #[arg(value_name = "APP")]
    pub app: String,
}

#[derive(Debug, Args)]
pub struct UpdateAppArgs {
    /// The app's id or name.
    #[arg(value_name = "APP")]
    pub app: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, value_name = "URL", conflicts_with = "no_webhook")]
    pub webhook_url: Option<String>,
    /// Remove the webhook URL (events are then skipped).
    #[arg(long)]
    pub no_webhook: bool,
    /// Allowed `return_to` origin (repeatable); replaces the list.
    #[arg(long = "return-origin", value_name = "ORIGIN")]
    pub return_origins: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AppKeysCommand {
    /// An additional API key; prints it once.
    Create(AppArg),
    /// The app's keys (id, prefix, created, last used; never the key).
    List(AppArg),
    /// Revoke a key: it answers 401 within 10 s on every process.
    Revoke(RevokeKeyArgs),
}

#[derive(Debug, Args)]
pub struct RevokeKeyArgs {
    /// The app's id or name.
    #[arg(value_name = "APP")]
    pub app: String,
    /// The key's id (`key_…`, from `apps keys list`).
    #[arg(value_name = "KEY")]
    pub key: String,
}

#[derive(Debug, Args)]
pub struct CreateAppArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Allowed `return_to` origin (repeatable), `scheme://host[:port]`.
    #[arg(long = "return-origin", value_name = "ORIGIN")]
    pub return_origins: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List connections.
    List,
    /// Import existing grants from a JSON-lines file (docs/importing.md).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The app the connections belong to: its id or its name.
    #[arg(long, value_name = "APP")]
    pub app: String,
    /// JSON lines, one `{owner, profile?, refresh_token, access_token?, expires_at?, cloud_id?}` a line.
    #[arg(long, value_name = "PATH")]
    pub file: PathBuf,
    /// Imports in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Imports that call Atlassian (one token refresh each) started per second.
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND")]
    pub rate: f64,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show every sync and its progress.
    Status,
}

/// Run a parsed command line; the exit code is the process's.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atlasgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

/// A command failure: printed as `atlasgate: {message}`, exit code 1 (2 for config).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn failed(e: impl std::fmt::Display) -> CliError {
        CliError::Failed(e.to_string())
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let settings = match Settings::load(&cli.global.overrides(), &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("atlasgate: {e}");
            return ExitCode::from(2);
        }
    };
    let resolved = settings.resolve();
    let result = match cli.command {
        Command::Serve => serve(resolved).await,
        Command::CheckConfig => return check_config(&resolved),
        Command::Migrate => migrate(&resolved).await,
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", keys::generate().expose_secret());
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => rotate(&resolved).await,
        Command::Apps(AppsCommand::Create(args)) => create_app(&resolved, args).await,
        Command::Apps(AppsCommand::List) => list_apps(&resolved).await,
        Command::Apps(AppsCommand::Update(args)) => update_app(&resolved, args).await,
        Command::Apps(AppsCommand::Keys(cmd)) => app_keys(&resolved, cmd).await,
        Command::Apps(AppsCommand::RotateWebhookSecret(a)) => rotate_secret(&resolved, a).await,
        Command::Apps(AppsCommand::Delete(a)) => delete_app(&resolved, a).await,
        Command::Demo(args) => demo(args).await,
        Command::Connections(ConnectionsCommand::List) => list_connections(&resolved).await,
        Command::Connections(ConnectionsCommand::Import(args)) => {
            import_connections(resolved, args).await
        }
        Command::Sync(SyncCommand::Status) => sync_status(&resolved).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Config(e)) => {
            eprintln!("atlasgate: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("atlasgate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "demo")]
async fn demo(args: DemoArgs) -> Result<(), CliError> {
    crate::demo::run(args.scripted)
        .await
        .map_err(|e| CliError::Failed(format!("{e:#}")))
}

/// A production build leaves the emulator out (see `docs/operations.md`);
/// the subcommand stays so the answer says why instead of "unknown command".
#[cfg(not(feature = "demo"))]
async fn demo(_args: DemoArgs) -> Result<(), CliError> {
    Err(CliError::Failed(
        "`demo` is not in this build: atlasgate was built without its `demo` feature \
         (cargo build --no-default-features leaves atlassim out); build with the default \
         features to run the demo"
            .into(),
    ))
}

fn check_config(resolved: &Resolved) -> ExitCode {
    print!("{}", resolved.report);
    if resolved.report.is_ok() {
        println!("configuration ok");
        ExitCode::SUCCESS
    } else {
        println!("configuration has problems: `atlasgate serve` would refuse to start");
        ExitCode::FAILURE
    }
}

fn init_logging(resolved: &Resolved) {
    let (filter, format) = resolved.log();
    // A second init (tests running commands in-process) is harmless.
    let _ = crate::logging::init(&filter, format);
}

async fn serve(resolved: Resolved) -> Result<(), CliError> {
    if !resolved.report.is_ok() {
        return Err(CliError::Failed(format!(
            "refusing to start; fix these settings:\n{}",
            ProblemList(&resolved)
        )));
    }
    init_logging(&resolved);
    let config = resolved.into_config()?;
    let app = Application::build(config).await.map_err(CliError::failed)?;
    // Scripts read this line to learn the port (`ATLASGATE_LISTEN=127.0.0.1:0`).
    println!("listening on http://{}", app.address());
    let _ = std::io::stdout().flush();
    tracing::info!(address = %app.address(), public_url = %app.state().config.public_url, "atlasgate serving");
    app.run_until_stopped().await.map_err(CliError::failed)
}

/// Every setting, problems included (what `serve` prints when it refuses).
struct ProblemList<'a>(&'a Resolved);

impl std::fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.report)
    }
}

async fn open_store(resolved: &Resolved) -> Result<Store, CliError> {
    let url = resolved.database_url()?;
    let store = Store::connect(&url).await.map_err(CliError::failed)?;
    store.migrate().await.map_err(CliError::failed)?;
    Ok(store)
}

async fn migrate(resolved: &Resolved) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL])?;
    init_logging(resolved);
    let url = resolved.database_url()?;
    let store = Store::connect(&url).await.map_err(CliError::failed)?;
    let pending = store.pending_migrations().await.map_err(CliError::failed)?;
    store.migrate().await.map_err(CliError::failed)?;
    println!(
        "applied {} migration(s); database is current",
        pending.len()
    );
    Ok(())
}

async fn rotate(resolved: &Resolved) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL, ENCRYPTION_KEYS])?;
    init_logging(resolved);
    let cipher = Cipher::new(resolved.keyring()?);
    let store = open_store(resolved).await?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut on_progress = |p: keys::RotateProgress| {
        let label = format!("{}.{}", p.column.table, p.column.column);
        match &bar {
            Some(bar) => {
                bar.set_message(label);
                bar.set_length(p.total);
                bar.set_position(p.scanned);
            }
            None => eprintln!(
                "{label}: {}/{} scanned, {} re-encrypted",
                p.scanned, p.total, p.reencrypted
            ),
        }
    };
    let report = keys::rotate(&store, &cipher, &mut on_progress)
        .await
        .map_err(CliError::failed)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let left = keys::count_on_old_keys(&store, &cipher)
        .await
        .map_err(CliError::failed)?;
    println!(
        "re-encrypted {} of {} value(s) with key `{}`; {} value(s) left on other keys",
        report.reencrypted,
        report.scanned,
        cipher.primary_key_id(),
        left
    );
    if left == 0 {
        println!(
            "keys other than `{}` can now be removed from ATLASGATE_ENCRYPTION_KEYS",
            cipher.primary_key_id()
        );
    }
    Ok(())
}

async fn create_app(resolved: &Resolved, args: CreateAppArgs) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL, ENCRYPTION_KEYS])?;
    init_logging(resolved);
    let mut problems = Vec::new();
    let name = AppName::parse(&args.name).map_err(|e| problems.push(format!("--name: {e}")));
    let webhook_url = args
        .webhook_url
        .as_deref()
        .map(parse_webhook_url)
        .transpose()
        .map_err(|e| problems.push(format!("--webhook-url: {e}")));
    let mut return_origins = Vec::new();
    for o in &args.return_origins {
        match ReturnOrigin::parse(o) {
            Ok(o) => return_origins.push(o),
            Err(e) => problems.push(format!("--return-origin: {e}")),
        }
    }
    let (Ok(name), Ok(webhook_url)) = (name, webhook_url) else {
        return Err(CliError::Failed(problems.join("\n")));
    };
    if !problems.is_empty() {
        return Err(CliError::Failed(problems.join("\n")));
    }
    let cipher = Cipher::new(resolved.keyring()?);
    let store = open_store(resolved).await?;
    let created = apps::create(
        &store,
        &cipher,
        NewApp {
            name,
            webhook_url,
            return_origins,
        },
    )
    .await
    .map_err(CliError::failed)?;
    println!("app created: {} ({})", created.app.name, created.app.id);
    println!(
        "api key (shown once, store it now): {}",
        created.api_key.expose()
    );
    if let Some(secret) = &created.webhook_secret {
        println!("webhook signing secret (shown once): {}", secret.expose());
    }
    Ok(())
}

async fn list_connections(resolved: &Resolved) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL])?;
    init_logging(resolved);
    let store = open_store(resolved).await?;
    print!(
        "{}",
        terminal_safe_lines(
            &crate::connections::render_list(&store)
                .await
                .map_err(CliError::failed)?
        )
    );
    Ok(())
}

/// `connections import`: the core against the database, like every other
/// command (no running server or app key needed); `connection.created`
/// events land in the outbox, which the running servers deliver.
async fn import_connections(resolved: Resolved, args: ImportArgs) -> Result<(), CliError> {
    use atlasgate_core::import::bulk::{self, BulkOptions};

    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 100.0) {
        return Err(CliError::Failed(
            "--rate: must be a number of imports per second, above 0 and at most 100".into(),
        ));
    }
    let open = |path: &std::path::Path| {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| CliError::Failed(format!("--file {}: {e}", path.display())))
    };
    let total = bulk::count_lines(open(&args.file)?)
        .map_err(|e| CliError::Failed(format!("--file {}: {e}", args.file.display())))?;
    init_logging(&resolved);
    let config = resolved.into_config()?;
    let store = Store::connect(&config.database_url)
        .await
        .map_err(CliError::failed)?;
    store.migrate().await.map_err(CliError::failed)?;
    let app = match apps::get(&store, &args.app)
        .await
        .map_err(CliError::failed)?
    {
        Some(app) => app,
        None => apps::list(&store)
            .await
            .map_err(CliError::failed)?
            .into_iter()
            .find(|a| a.name == args.app)
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "--app: no app with id or name `{}` (see `atlasgate apps list`)",
                    terminal_safe(&args.app)
                ))
            })?,
    };
    let core = atlasgate_core::Core::new(config, store).map_err(CliError::failed)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{bar:30}] {pos}/{len} lines, {per_sec} · {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let options = BulkOptions {
        concurrency: usize::from(args.concurrency),
        per_second: args.rate,
    };
    let file = open(&args.file)?;
    let summary = bulk::run(&core, &app.id, file, options, |r, so_far| {
        let owner = r
            .owner
            .as_deref()
            .map(|o| format!(" (owner {})", terminal_safe(o)))
            .unwrap_or_default();
        match &bar {
            Some(bar) => {
                bar.set_position(so_far.done() as u64);
                bar.set_message(format!(
                    "{} imported, {} replaced, {} unchanged, {} refused",
                    so_far.imported,
                    so_far.replaced,
                    so_far.unchanged,
                    so_far.refused.len()
                ));
            }
            None => match &r.result {
                Ok((outcome, id)) => eprintln!("line {}: {} {id}{owner}", r.line, outcome.as_str()),
                Err(reason) => {
                    eprintln!("line {}: refused{owner}: {}", r.line, terminal_safe(reason))
                }
            },
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "{} imported, {} replaced, {} unchanged, {} refused",
        summary.imported,
        summary.replaced,
        summary.unchanged,
        summary.refused.len()
    );
    for (line, reason) in &summary.refused {
        println!("  line {line}: {}", terminal_safe(reason));
    }
    if summary.refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} line(s) refused; fix them and run the same command again (imported lines are skipped)",
            summary.refused.len()
        )))
    }
}

async fn sync_status(resolved: &Resolved) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL])?;
    init_logging(resolved);
    let store = open_store(resolved).await?;
    print!(
        "{}",
        terminal_safe_lines(
            &crate::sync::render_status(&store)
                .await
                .map_err(CliError::failed)?
        )
    );
    Ok(())
}

async fn list_apps(resolved: &Resolved) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL])?;
    init_logging(resolved);
    let store = open_store(resolved).await?;
    let apps = apps::list(&store).await.map_err(CliError::failed)?;
    if apps.is_empty() {
        println!("no apps; create one with `atlasgate apps create --name NAME`");
        return Ok(());
    }
    println!(
        "{:36}  {:24}  {:20}  WEBHOOK / RETURN ORIGINS",
        "ID", "NAME", "CREATED"
    );
    for a in apps {
        let origins: Vec<String> = a.return_origins.iter().map(|o| o.to_string()).collect();
        println!(
            "{:36}  {:24}  {:20}  {} {}",
            terminal_safe(&a.id),
            terminal_safe(&a.name),
            crate::admin::rfc3339(a.created_at),
            terminal_safe(a.webhook_url.as_ref().map(|u| u.as_str()).unwrap_or("-")),
            if origins.is_empty() {
                String::new()
            } else {
                terminal_safe(&format!("[{}]", origins.join(", "))).into_owned()
            }
        );
    }
    Ok(())
}

async fn update_app(resolved: &Resolved, args: UpdateAppArgs) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL, ENCRYPTION_KEYS])?;
    init_logging(resolved);
    let mut problems = Vec::new();
    let mut change = apps::AppUpdate::default();
    if let Some(n) = &args.name {
        match AppName::parse(n) {
            Ok(n) => change.name = Some(n),
            Err(e) => problems.push(format!("--name: {e}")),
        }
    }
    if args.no_webhook {
        change.webhook_url = Some(None);
    } else if let Some(u) = &args.webhook_url {
        match parse_webhook_url(u) {
            Ok(u) => change.webhook_url = Some(Some(u)),
            Err(e) => problems.push(format!("--webhook-url: {e}")),
        }
    }
    if !args.return_origins.is_empty() {
        let mut origins = Vec::new();
        for o in &args.return_origins {
            match ReturnOrigin::parse(o) {
                Ok(o) => origins.push(o),
                Err(e) => problems.push(format!("--return-origin: {e}")),
            }
        }
        change.return_origins = Some(origins);
    }
    if !problems.is_empty() {
        return Err(CliError::Failed(problems.join("\n")));
    }
    let cipher = Cipher::new(resolved.keyring()?);
    let store = open_store(resolved).await?;
    let app = apps::lifecycle::resolve(&store, &args.app)
        .await
        .map_err(|e| not_found_app(e, &args.app))?;
    let updated = apps::lifecycle::update(&store, &cipher, &app.id, change, &Actor::cli())
        .await
        .map_err(CliError::failed)?;
    println!(
        "app updated: {} ({})",
        terminal_safe(&updated.app.name),
        updated.app.id
    );
    if let Some(secret) = &updated.webhook_secret {
        println!("webhook signing secret (shown once): {}", secret.expose());
    }
    Ok(())
}

fn not_found_app(e: atlasgate_core::Error, app: &str) -> CliError {
    match e {
        atlasgate_core::Error::NotFound => {
            CliError::Failed(format!("no app with id or name `{}`", terminal_safe(app)))
        }
        other => CliError::failed(other),
    }
}

async fn app_keys(resolved: &Resolved, cmd: AppKeysCommand) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL])?;
    init_logging(resolved);
    let store = open_store(resolved).await?;
    let name = match &cmd {
        AppKeysCommand::Create(a) | AppKeysCommand::List(a) => &a.app,
        AppKeysCommand::Revoke(r) => &r.app,
    };
    let app = apps::lifecycle::resolve(&store, name)
        .await
        .map_err(|e| not_found_app(e, name))?;
    match cmd {
        AppKeysCommand::Create(_) => {
            let k = apps::lifecycle::create_key(&store, &app.id, &Actor::cli())
                .await
                .map_err(CliError::failed)?;
            println!("key created: {}", k.id);
            println!("api key (shown once, store it now): {}", k.key.expose());
        }
        AppKeysCommand::List(_) => {
            let keys = apps::lifecycle::list_keys(&store, &app.id)
                .await
                .map_err(CliError::failed)?;
            println!("{:36}  {:12}  {:20}  LAST USED", "ID", "PREFIX", "CREATED");
            for k in keys {
                println!(
                    "{:36}  {:12}  {:20}  {}",
                    terminal_safe(&k.id),
                    terminal_safe(&k.prefix),
                    crate::admin::rfc3339(k.created_at),
                    k.last_used_at
                        .map(crate::admin::rfc3339)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        AppKeysCommand::Revoke(r) => {
            match apps::lifecycle::revoke_key(&store, &app.id, &r.key, &Actor::cli()).await {
                Ok(_) => println!(
                    "key {} revoked; running atlasgate processes refuse it within 10 s",
                    terminal_safe(&r.key)
                ),
                Err(atlasgate_core::Error::NotFound) => {
                    return Err(CliError::Failed(format!(
                        "app `{}` has no key `{}` (see `atlasgate apps keys list`)",
                        terminal_safe(&app.name),
                        terminal_safe(&r.key)
                    )))
                }
                Err(e) => return Err(CliError::failed(e)),
            }
        }
    }
    Ok(())
}

async fn rotate_secret(resolved: &Resolved, a: AppArg) -> Result<(), CliError> {
    resolved.require(&[DATABASE_URL, ENCRYPTION_KEYS])?;
    init_logging(resolved);
    let lifecycle = resolved.lifecycle()?;
    let cipher = Cipher::new(resolved.keyring()?);
    let store = open_store(resolved).await?;
    let app = apps::lifecycle::resolve(&store, &a.app)
        .await
        .map_err(|e| not_found_app(e, &a.app))?;
    let secret = apps::lifecycle::rotate_webhook_secret(
        &store,
        &cipher,
        &app.id,
        lifecycle.webhook_secret_overlap_secs,
        &Actor::cli(),
    )
    .await
    .map_err(CliError::failed)?;
    println!("webhook signing secret (shown once): {}", secret.expose());
    println!(
        "deliveries carry the old secret's signature too for {} more seconds",
        lifecycle.webhook_secret_overlap_secs
    );
    Ok(())
}

/// Deleting disconnects connections at Atlassian, so this needs the whole
/// configuration, as `serve` does.
async fn delete_app(resolved: &Resolved, a: AppArg) -> Result<(), CliError> {
    if !resolved.report.is_ok() {
        return Err(CliError::Failed(format!(
            "deleting an app disconnects its connections at Atlassian, which needs the whole configuration; fix these settings:\n{}",
            ProblemList(resolved)
        )));
    }
    init_logging(resolved);
    let store = open_store(resolved).await?;
    let app = apps::lifecycle::resolve(&store, &a.app)
        .await
        .map_err(|e| not_found_app(e, &a.app))?;
    let config = resolved.clone().into_config()?;
    let core = atlasgate_core::Core::new(config, store).map_err(CliError::failed)?;
    let n = apps::lifecycle::delete(&core, &app.id, &Actor::cli())
        .await
        .map_err(CliError::failed)?;
    println!(
        "app {} ({}) deleted; {n} connection(s) disconnected",
        terminal_safe(&app.name),
        app.id
    );
    Ok(())
}

/// Text from an app or from Jira (names, JQL, e-mail addresses, error
/// messages) as it may be printed to a terminal: every control character
/// (C0, DEL, C1; ESC starts the sequences that move the cursor, retitle the
/// window or rewrite earlier lines) and every bidirectional-override
/// character (which reorders what is shown) is replaced by a visible
/// `\u{..}` escape. Everything the CLI prints that it did not write itself
/// goes through here.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    escape_for_terminal(text, false)
}

/// [`terminal_safe`] for a rendered table: each line's foreign text is
/// escaped, and the line breaks between rows are kept.
pub fn terminal_safe_lines(text: &str) -> std::borrow::Cow<'_, str> {
    escape_for_terminal(text, true)
}

fn escape_for_terminal(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{terminal_safe, terminal_safe_lines};

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let jql = "project = X\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}31m";
        let shown = terminal_safe(jql);
        assert_eq!(
            shown,
            "project = X\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}\\u{9b}31m"
        );
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(terminal_safe("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(terminal_safe("one\ntwo"), "one\\u{a}two");
        assert_eq!(
            terminal_safe_lines("row 1\u{1b}[A\nrow 2\n"),
            "row 1\\u{1b}[A\nrow 2\n"
        );
        // Ordinary text, accents and all, is untouched (and not copied).
        assert!(matches!(
            terminal_safe("Ünïcödé project = \"ACME\""),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
