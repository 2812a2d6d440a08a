//! Settings resolution: the command line, the environment, `.env` and the
//! config file, combined once into one [`Settings`].
//!
//! Precedence: flag > environment > `.env` > config file > default (the first
//! three are clap's, see [`crate::cli`]). Resolution is in two stages so that
//! `check` can validate the config without a URL or a token:
//! [`ConfigSettings`] (the file and what depends only on it and the flags),
//! then [`Settings`] (plus where GitLab is and who we are there).
//!
//! Every error here is the user's to fix: [`SettingsError::exit_code`] is 2.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::cli::{ApiArg, Options, Parsed};
use crate::config::{AgeFrom, ApiMode, Config, ConfigError};
use crate::gitlab::{Backend, ClientOptions, GitlabClient, RetryPolicy};
use crate::pass::PassOptions;
use crate::schedule::Schedule;
use crate::secret::Secret;

/// Requests in flight when neither flag, env nor config says.
pub(crate) const DEFAULT_CONCURRENCY: NonZeroUsize = NonZeroUsize::new(8).expect("8 is not 0");
/// The API when neither `--api` nor the config says.
pub(crate) const DEFAULT_API: ApiMode = ApiMode::Auto;
/// HTTP request timeout when neither flag nor env says.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the settings cannot be used. Every variant is a usage or config error.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Neither `--config` nor `REPOSITORY_CONFIG_PATH`.
    #[error("no config file given: set --config or REPOSITORY_CONFIG_PATH")]
    NoConfigPath,
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither `--url` nor `GITLAB_URL`.
    #[error("no GitLab URL given: set --url or GITLAB_URL")]
    NoUrl,
    /// `--url` does not parse.
    #[error("--url {text:?} is not a URL: {reason}")]
    UrlUnparsable {
        /// What was given.
        text: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `--url` is not http(s) with a host.
    #[error("--url {0:?} must be an http:// or https:// URL with a host")]
    UrlScheme(String),
    /// `--url` has a query or fragment (where a token might hide).
    #[error("--url must be GitLab's base URL, without a query or fragment (give the token with --token)")]
    UrlQuery,
    /// `--url` has a user or password.
    #[error("--url must not hold credentials; give the token with --token")]
    UrlCredentials,
    /// No token from any source.
    #[error("no GitLab token given: set --token, GITLAB_TOKEN, --token-file or GITLAB_TOKEN_FILE")]
    NoToken,
    /// `--token-file` cannot be read.
    #[error("--token-file {}: {reason}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// An entry reads `publishedAt`, which only GraphQL has.
    #[error(
        "{json_path}.age_from: \"published\" needs the GraphQL API (REST has no publishedAt), but api is \"rest\"; set api to \"auto\" or \"graphql\""
    )]
    PublishedNeedsGraphql {
        /// The entry's (or rule's) JSON path.
        json_path: String,
    },
    /// `daemon` (or `check --daemon`) without a schedule.
    #[error("daemon needs a schedule: set \"schedule\" in the config (full form) or --schedule / SCHEDULE")]
    NoSchedule,
}

impl SettingsError {
    /// 2: the user has to change a flag, a variable or the config.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(2)
    }
}

/// The config file and the settings that depend only on it and the flags.
#[derive(Debug, Clone)]
pub(crate) struct ConfigSettings {
    /// Where the config was read from.
    pub path: PathBuf,
    /// The validated config.
    pub config: Arc<Config>,
    /// `--api`, else the config's, else [`DEFAULT_API`].
    pub api: ApiMode,
    /// `--concurrency`, else the config's, else [`DEFAULT_CONCURRENCY`].
    pub concurrency: NonZeroUsize,
    /// `--schedule`, else the config's.
    pub schedule: Option<Schedule>,
    /// What the settings changed or doubt, for the log and `check`.
    pub warnings: Vec<String>,
}

impl ConfigSettings {
    /// Reads and validates the config, and combines it with the flags.
    pub(crate) fn resolve(options: &Options) -> Result<ConfigSettings, SettingsError> {
        let path = options.config.clone().ok_or(SettingsError::NoConfigPath)?;
        let config = Config::load(&path)?;
        ConfigSettings::from_config(options, path, config)
    }

    /// Combines an already loaded config (read from `path`) with the flags.
    pub(crate) fn from_config(
        options: &Options,
        path: PathBuf,
        config: Config,
    ) -> Result<ConfigSettings, SettingsError> {
        let api = resolve_api(options, &config);
        let mut config = config;
        let warnings = age_by_created_over_rest(api, &mut config)?;
        Ok(ConfigSettings {
            warnings,
            concurrency: resolve_concurrency(options, &config),
            schedule: options.schedule.clone().or_else(|| config.schedule.clone()),
            config: Arc::new(config),
            path,
            api,
        })
    }

    /// The schedule, required (for `daemon` and `check --daemon`).
    pub(crate) fn required_schedule(&self) -> Result<&Schedule, SettingsError> {
        self.schedule.as_ref().ok_or(SettingsError::NoSchedule)
    }

    /// The pass settings.
    pub(crate) fn pass_options(&self, options: &Options) -> PassOptions {
        PassOptions {
            dry_run: options.dry_run,
            concurrency: self.concurrency,
            insecure: options.insecure,
            pass_timeout: options.pass_timeout.or(self.config.pass_timeout),
        }
    }

    /// GitLab through `client`, on the chosen API.
    pub(crate) fn backend(&self, client: GitlabClient) -> Backend {
        Backend::new(client, self.api, self.concurrency)
    }

    /// `--max-requests-per-minute`, else the config's (above `u32::MAX` a
    /// minute is no ceiling worth keeping apart).
    pub(crate) fn max_requests_per_minute(&self, options: &Options) -> Option<std::num::NonZeroU32> {
        options
            .max_requests_per_minute
            .or_else(|| {
                self.config
                    .max_requests_per_minute
                    .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            })
            .and_then(std::num::NonZeroU32::new)
    }

    /// The client settings, for GitLab at `connection`.
    pub(crate) fn client_options(&self, options: &Options, connection: Connection) -> ClientOptions {
        let mut retry = RetryPolicy::default();
        if let Some(ms) = options.retry_base_ms {
            retry.base_delay = Duration::from_millis(ms);
        }
        ClientOptions {
            base_url: connection.base_url,
            token: connection.token,
            timeout: resolve_timeout(options),
            concurrency: self.concurrency,
            ca_bundle: options.ssl_path.clone(),
            insecure: options.insecure,
            retry,
            max_requests_per_minute: self.max_requests_per_minute(options),
        }
    }
}

/// Everything a pass, or the daemon, needs: resolved once at start, and
/// again on each reload.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The config and what depends on it.
    pub config: ConfigSettings,
    /// The client's settings, connection included.
    pub client: ClientOptions,
    /// Dry run, concurrency, TLS warning.
    pub pass: PassOptions,
    /// HTTP request timeout (also bounds how long a stop waits for a pass).
    pub timeout: Duration,
    /// `--metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
}

impl Settings {
    /// Resolves everything; any problem is a usage or config error.
    pub(crate) fn resolve(parsed: &Parsed) -> Result<Settings, SettingsError> {
        let config = ConfigSettings::resolve(&parsed.cli.options)?;
        for warning in &config.warnings {
            tracing::warn!(operation = "config_warning", "{warning}");
        }
        Settings::with_config(parsed, config)
    }

    /// Adds the connection and the rest to an already resolved config.
    pub(crate) fn with_config(parsed: &Parsed, config: ConfigSettings) -> Result<Settings, SettingsError> {
        let options = &parsed.cli.options;
        let connection = Connection::resolve(parsed)?;
        Ok(Settings {
            client: config.client_options(options, connection),
            pass: config.pass_options(options),
            timeout: resolve_timeout(options),
            metrics_listen: options.metrics_listen,
            config,
        })
    }
}

/// Where GitLab is and who we are there.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    /// GitLab's base URL.
    pub base_url: Url,
    /// The token.
    pub token: Secret,
}

impl Connection {
    /// The URL and the token, from the flag, variable, `.env` or token file.
    pub(crate) fn resolve(parsed: &Parsed) -> Result<Connection, SettingsError> {
        let options = &parsed.cli.options;
        let url_text = options
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or(SettingsError::NoUrl)?;
        let base_url = parse_base_url(url_text)?;
        // The later source wins between --token and --token-file, the file on a tie.
        let use_file = match (parsed.token_source, parsed.token_file_source) {
            (Some(token), Some(file)) => file > token,
            (None, Some(_)) => true,
            _ => false,
        };
        let token = match (use_file, options.token_file.as_deref()) {
            (true, Some(path)) => read_token_file(path)?,
            _ => options
                .token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default(),
        };
        let token = token.trim_end_matches(['\n', '\r']).to_owned();
        if token.trim().is_empty() {
            return Err(SettingsError::NoToken);
        }
        Ok(Connection {
            base_url,
            token: Secret::new(token),
        })
    }
}

fn parse_base_url(text: &str) -> Result<Url, SettingsError> {
    let url = text.trim().parse::<Url>().map_err(|err| SettingsError::UrlUnparsable {
        text: text.to_owned(),
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SettingsError::UrlScheme(text.to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SettingsError::UrlQuery);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SettingsError::UrlCredentials);
    }
    let loopback = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
    if url.scheme() == "http" && !loopback {
        tracing::warn!(url = %url, "GitLab URL is plain http: the token travels unencrypted");
    }
    Ok(url)
}

fn read_token_file(path: &Path) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|err| SettingsError::TokenFile {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
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
fn resolve_api(options: &Options, config: &Config) -> ApiMode {
    match options.api {
        Some(ApiArg::Rest) => ApiMode::Rest,
        Some(ApiArg::Graphql) => ApiMode::Graphql,
        Some(ApiArg::Auto) => ApiMode::Auto,
        None => config.api.unwrap_or(DEFAULT_API),
    }
}

/// REST has no `publishedAt`. With `api: rest`, an entry that asks for it
/// is refused; one that has it by default ages its tags by `created_at`
/// instead, and one warning says which entries.
fn age_by_created_over_rest(api: ApiMode, config: &mut Config) -> Result<Vec<String>, SettingsError> {
    if api != ApiMode::Rest {
        return Ok(Vec::new());
    }
    let rules = || config.entries.iter().flat_map(|e| &e.rules);
    if let Some(rule) = rules().find(|r| r.age_from == AgeFrom::Published && r.age_from_set) {
        return Err(SettingsError::PublishedNeedsGraphql {
            json_path: rule.json_path.clone(),
        });
    }
    let mut defaulted = Vec::new();
    for rule in config
        .entries
        .iter_mut()
        .flat_map(|e| &mut e.rules)
        .filter(|r| r.age_from == AgeFrom::Published)
    {
        rule.age_from = AgeFrom::Created;
        defaulted.push(rule.json_path.as_str().to_owned());
    }
    if defaulted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "api is \"rest\", which has no push date (publishedAt): {} age tags by created_at instead of the default \"published\" \
         (with the registry metadata database that is a tag's first push, so a re-pushed tag looks old); \
         set api to \"auto\" or \"graphql\", or age_from to \"created\" to say so",
        defaulted.join(", ")
    )])
}

fn resolve_concurrency(options: &Options, config: &Config) -> NonZeroUsize {
    // clap and the config both refuse 0; a 0 that slipped through means the default.
    options
        .concurrency
        .map(usize::from)
        .or(config.concurrency)
        .and_then(NonZeroUsize::new)
        .unwrap_or(DEFAULT_CONCURRENCY)
}

fn resolve_timeout(options: &Options) -> Duration {
    options.timeout.unwrap_or(DEFAULT_TIMEOUT)
}
