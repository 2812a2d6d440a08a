//! The commands, from parsed command line to exit code.
//!
//! This is the edge: settings are resolved here (flag, then environment, then
//! `.env`, then config, then default), the one [`GitlabClient`] is built here,
//! and every outcome is mapped to an exit code here: 0 success, 1 something
//! failed, 2 usage or config error.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::cli::{self, ApiArg, Command, LogFormatArg, Options, Parsed};
use crate::config::{AgeFrom, ApiMode, Config, ConfigError};
use crate::gitlab::{Backend, ClientBuildError, ClientOptions, GitlabClient, RetryPolicy};
use crate::logging::{self, LogFormat};
use crate::pass::{self, PassOptions, PassReport};
use crate::schedule::Schedule;
use crate::secret::Secret;

/// Why `daemon` (and `check --daemon`) refuse a config.
pub const NO_SCHEDULE: &str =
    "daemon needs a schedule: set \"schedule\" in the config (full form) or --schedule / SCHEDULE";

/// Requests in flight when neither flag, env nor config says.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The API when neither `--api` nor the config says.
pub const DEFAULT_API: ApiMode = ApiMode::Auto;
/// HTTP request timeout when neither flag nor env says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a command stopped, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad command line or settings: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Bad or unreadable config: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The work was attempted and something failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl AppError {
    fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Usage(_) | AppError::Config(_) => ExitCode::from(2),
            AppError::Failed(_) => ExitCode::from(1),
        }
    }
}

impl From<ClientBuildError> for AppError {
    fn from(err: ClientBuildError) -> Self {
        AppError::Usage(err.to_string())
    }
}

/// Runs the program: parse, set up logging, run the command, exit.
pub fn main() -> ExitCode {
    let parsed = match cli::parse() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let options = &parsed.cli.options;
    let level = options
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned());
    let filter = match logging::filter(&level) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let format = match options.log_format {
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Text => LogFormat::Text,
    };
    let _log_guard = match logging::init(format, filter, options.log_file.as_deref()) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(&parsed)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}

async fn dispatch(parsed: &Parsed) -> Result<ExitCode, AppError> {
    match parsed.cli.command.clone().unwrap_or(Command::Once) {
        Command::Once => once(parsed).await,
        Command::Daemon => crate::daemon::run(parsed).await,
        Command::Check { online, daemon } => check(parsed, online, daemon).await,
        Command::Demo => crate::demo::run(&parsed.cli.options).await,
    }
}

/// Everything a pass needs, resolved from the command line, the environment
/// and the config file. Built at start, and again on each reload.
pub struct Prepared {
    /// The validated config.
    pub config: Arc<Config>,
    /// GitLab, through the chosen API (the client's cancel token is the caller's).
    pub backend: Backend,
    /// Dry run, concurrency, TLS warning.
    pub pass_options: PassOptions,
    /// `--schedule`, else the config's.
    pub schedule: Option<Schedule>,
}

/// Loads and validates everything; any problem is a usage or config error.
pub fn prepare(parsed: &Parsed, cancel: &CancellationToken) -> Result<Prepared, AppError> {
    let options = &parsed.cli.options;
    let config = load_config(options)?;
    check_api(options, &config)?;
    let connection = resolve_connection(parsed)?;
    let client = GitlabClient::new(&client_options(options, &config, connection), cancel.clone())?;
    Ok(Prepared {
        backend: backend(client, options, &config),
        pass_options: pass_options(options, &config),
        schedule: options.schedule.clone().or_else(|| config.schedule.clone()),
        config: Arc::new(config),
    })
}

async fn once(parsed: &Parsed) -> Result<ExitCode, AppError> {
    let cancel = CancellationToken::new();
    let Prepared {
        config,
        backend,
        pass_options,
        ..
    } = prepare(parsed, &cancel)?;
    let stop = cancel.clone();
    let mut signals = crate::daemon::Signals::register()
        .map_err(|err| AppError::Failed(format!("cannot install signal handlers: {err}")))?;
    tokio::spawn(async move {
        signals.next_stop().await;
        tracing::warn!(
            operation = "interrupted",
            "interrupted: finishing requests in flight, sending no new ones (a second signal exits at once)"
        );
        stop.cancel();
        signals.next_stop().await;
        std::process::exit(1);
    });
    let report = pass::run_pass(&backend, &config, &pass_options).await;
    Ok(exit_for(&report))
}

/// 0 when the pass did everything, 1 otherwise.
pub fn exit_for(report: &PassReport) -> ExitCode {
    if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn check(parsed: &Parsed, online: bool, for_daemon: bool) -> Result<ExitCode, AppError> {
    let options = &parsed.cli.options;
    let path = config_path(options)?;
    let config = Config::load(path)?;
    check_api(options, &config)?;
    let enabled = config.enabled_entries().count();
    println!(
        "config {}: OK ({} form, {} entries, {} enabled)",
        path.display(),
        match config.form {
            crate::config::ConfigForm::Legacy => "legacy",
            crate::config::ConfigForm::Full => "full",
        },
        config.entries.len(),
        enabled
    );
    match options.schedule.as_ref().or(config.schedule.as_ref()) {
        Some(schedule) => {
            let next = schedule
                .next_after(jiff::Timestamp::now())
                .map(|t| t.to_string())
                .unwrap_or_default();
            println!("  schedule \"{}\" (UTC), next run {next}", schedule.as_str());
        }
        None if for_daemon => return Err(AppError::Usage(NO_SCHEDULE.to_owned())),
        None => {}
    }
    for entry in &config.entries {
        println!("  {}: {}", entry.name, entry.summary());
    }
    if !online {
        return Ok(ExitCode::SUCCESS);
    }
    let connection = resolve_connection(parsed)?;
    let base = connection.base_url.clone();
    let client = GitlabClient::new(&client_options(options, &config, connection), CancellationToken::new())?;
    let backend = backend(client, options, &config);
    let mut failures = 0;
    match backend.version().await {
        Ok(version) => println!("GitLab {base}: reachable, version {}", version.version),
        Err(err) => {
            println!("GitLab {base}: FAILED: {}", err.explain());
            return Err(AppError::Failed("GitLab is not usable with these settings".to_owned()));
        }
    }
    for entry in config.enabled_entries() {
        let api = backend.entry(pass::owner(entry));
        match api.repositories().await {
            Ok(repositories) => {
                let matched = repositories
                    .iter()
                    .filter(|r| entry.repository_regex.as_ref().is_none_or(|re| re.is_match(&r.path)))
                    .count();
                let through = repositories.first().map_or("", |r| api.through(r));
                println!(
                    "  {}: OK, {} container repositories ({matched} to clean){}",
                    entry.name,
                    repositories.len(),
                    if through.is_empty() {
                        String::new()
                    } else {
                        format!(", through {through}")
                    }
                );
            }
            Err(err) => {
                failures += 1;
                println!("  {}: FAILED: {}", entry.name, err.explain());
            }
        }
    }
    if failures > 0 {
        return Err(AppError::Failed(format!(
            "{failures} of {enabled} entries cannot be read"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where GitLab is and who we are there.
pub struct Connection {
    /// GitLab's base URL.
    pub base_url: Url,
    /// The token.
    pub token: Secret,
}

fn config_path(options: &Options) -> Result<&Path, AppError> {
    options
        .config
        .as_deref()
        .ok_or_else(|| AppError::Usage("no config file given: set --config or REPOSITORY_CONFIG_PATH".to_owned()))
}

fn load_config(options: &Options) -> Result<Config, AppError> {
    Ok(Config::load(config_path(options)?)?)
}

fn resolve_connection(parsed: &Parsed) -> Result<Connection, AppError> {
    let options = &parsed.cli.options;
    let url_text = options
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| AppError::Usage("no GitLab URL given: set --url or GITLAB_URL".to_owned()))?;
    let base_url = parse_base_url(url_text)?;
    let use_file = match (parsed.token_source, parsed.token_file_source) {
        (Some(token), Some(file)) => file > token,
        (None, Some(_)) => true,
        _ => false,
    };
    let token = if use_file {
        let path = options.token_file.as_deref().expect("a source implies a value");
        read_token_file(path)?
    } else {
        options
            .token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default()
    };
    let token = token.trim_end_matches(['\n', '\r']).to_owned();
    if token.trim().is_empty() {
        return Err(AppError::Usage(
            "no GitLab token given: set --token, GITLAB_TOKEN, --token-file or GITLAB_TOKEN_FILE".to_owned(),
        ));
    }
    Ok(Connection {
        base_url,
        token: Secret::new(token),
    })
}

fn parse_base_url(text: &str) -> Result<Url, AppError> {
    let url: Url = text
        .trim()
        .parse()
        .map_err(|err| AppError::Usage(format!("--url {text:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AppError::Usage(format!(
            "--url {text:?} must be an http:// or https:// URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(AppError::Usage(
            "--url must be GitLab's base URL, without a query or fragment (give the token with --token)".to_owned(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::Usage(
            "--url must not hold credentials; give the token with --token".to_owned(),
        ));
    }
    let loopback = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
    if url.scheme() == "http" && !loopback {
        tracing::warn!(url = %url, "GitLab URL is plain http: the token travels unencrypted");
    }
    Ok(url)
}

fn read_token_file(path: &Path) -> Result<String, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| AppError::Usage(format!("--token-file {}: {err}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the token file is readable by every user; chmod 600 it (or use a systemd credential)"
            );
        }
    }
    Ok(text)
}

/// `--api`, else the config's `api`, else the default.
pub(crate) fn resolve_api(options: &Options, config: &Config) -> ApiMode {
    match options.api {
        Some(ApiArg::Rest) => ApiMode::Rest,
        Some(ApiArg::Graphql) => ApiMode::Graphql,
        Some(ApiArg::Auto) => ApiMode::Auto,
        None => config.api.unwrap_or(DEFAULT_API),
    }
}

/// The API setting, refused when an entry needs what it cannot give.
pub(crate) fn check_api(options: &Options, config: &Config) -> Result<ApiMode, AppError> {
    let api = resolve_api(options, config);
    if api == ApiMode::Rest
        && let Some(entry) = config.entries.iter().find(|e| e.age_from == AgeFrom::Published)
    {
        return Err(AppError::Usage(format!(
            "{}.age_from: \"published\" needs the GraphQL API (REST has no publishedAt), but api is \"rest\"; set api to \"auto\" or \"graphql\"",
            entry.json_path
        )));
    }
    Ok(api)
}

fn concurrency(options: &Options, config: &Config) -> usize {
    options
        .concurrency
        .map(usize::from)
        .or(config.concurrency)
        .unwrap_or(DEFAULT_CONCURRENCY)
}

/// The client settings from options, config and connection.
pub fn client_options(options: &Options, config: &Config, connection: Connection) -> ClientOptions {
    let mut retry = RetryPolicy::default();
    if let Some(ms) = options.retry_base_ms {
        retry.base_delay = Duration::from_millis(ms);
    }
    ClientOptions {
        base_url: connection.base_url,
        token: connection.token,
        timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
        concurrency: concurrency(options, config),
        ca_bundle: options.ssl_path.clone(),
        insecure: options.insecure,
        retry,
    }
}

/// The pass settings from options and config.
pub fn pass_options(options: &Options, config: &Config) -> PassOptions {
    PassOptions {
        dry_run: options.dry_run,
        concurrency: concurrency_nonzero(options, config),
        insecure: options.insecure,
    }
}

fn concurrency_nonzero(options: &Options, config: &Config) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(concurrency(options, config)).unwrap_or(std::num::NonZeroUsize::MIN)
}

/// The backend over `client`, on the API options and config choose.
pub fn backend(client: GitlabClient, options: &Options, config: &Config) -> Backend {
    Backend::new(
        client,
        resolve_api(options, config),
        concurrency_nonzero(options, config),
    )
}
