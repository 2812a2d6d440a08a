//! The command line: commands, flags, their environment variables, and how
//! they combine with `.env` and the config file.
//!
//! Precedence: flag > environment > `.env` > config file > default. `.env` is
//! loaded into the environment before parsing and never overrides a variable
//! that is already set, so clap's `env` fallback covers the first three.

// The field docs are clap's --help text, printed verbatim: no markdown
// escapes for rustdoc's sake.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use crate::schedule::Schedule;
use crate::secret::Secret;
use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Deletes old container image tags from GitLab registries.
#[derive(Debug, Parser)]
#[command(
    name = "gitlab-registry-cleaner",
    version,
    about = "Deletes old container image tags from GitLab registries, once or on a schedule",
    after_help = "Every option can also be set by its environment variable or in a .env file in the working \
                  directory. Exit codes: 0 success, 1 something failed, 2 usage or config error."
)]
pub struct Cli {
    /// What to do (default: once).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options shared by every command.
    #[command(flatten)]
    pub options: Options,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run one cleanup pass and exit (the default when no command is given).
    Once,
    /// Stay resident and run passes on the schedule (SIGHUP reloads, SIGTERM stops).
    Daemon,
    /// Validate the config and exit; with --online also reach GitLab.
    Check {
        /// Also call GitLab: its version, and each entry's repository list.
        #[arg(long)]
        online: bool,
        /// Also require what `daemon` needs: a schedule (the config's or --schedule).
        #[arg(long)]
        daemon: bool,
    },
    /// Run against a built-in simulated GitLab on loopback: a dry run, a real pass, then what is left.
    Demo,
    /// List and decide like once --dry-run, write the decisions to a plan file, print a summary; deletes nothing.
    Plan {
        /// Where to write the plan ("-": stdout, as one line after the log).
        #[arg(short = 'o', long, value_name = "FILE", default_value = "plan.json")]
        output: PathBuf,
    },
    /// Delete exactly the tags of a plan file that are unchanged since the plan (same digest).
    Apply {
        /// The plan file that `plan` wrote.
        #[arg(value_name = "FILE")]
        plan: PathBuf,
        /// Refuse a plan older than this, e.g. 2h or 3d.
        #[arg(long, value_parser = parse_pass_timeout, value_name = "DURATION", default_value = "24h")]
        max_plan_age: Duration,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// One JSON object per line (journald, Kibana).
    Json,
    /// Human-readable text.
    Text,
}

/// Which GitLab API to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// REST API v4: a request per tag for its date, a DELETE per tag.
    Rest,
    /// GraphQL: tags with dates 20 a request, 20 deletions a mutation.
    Graphql,
    /// GraphQL, and REST where GraphQL is missing or refuses the query.
    Auto,
}

/// Options of every command.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// GitLab access token (scope api to delete; read_api for dry runs and check --online).
    #[arg(short = 't', long, env = "GITLAB_TOKEN", global = true, hide_env_values = true,
          value_parser = parse_secret)]
    pub token: Option<Secret>,

    /// File holding the token (systemd credentials); a trailing newline is ignored.
    #[arg(long, env = "GITLAB_TOKEN_FILE", global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// GitLab base URL, e.g. https://gitlab.example.com.
    #[arg(short = 'u', long, env = "GITLAB_URL", global = true)]
    pub url: Option<String>,

    /// Path of the JSON config.
    #[arg(
        short = 'c',
        long,
        env = "REPOSITORY_CONFIG_PATH",
        global = true,
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Decide and log, but send no DELETE at all.
    #[arg(short = 'd', long, env = "DRY_RUN", global = true, action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub dry_run: bool,

    /// PEM file of CA certificates to trust in addition to the system roots.
    #[arg(long, env = "SSL_PATH", global = true, value_name = "PATH")]
    pub ssl_path: Option<PathBuf>,

    /// Seconds per HTTP request [default: 20].
    #[arg(long, env = "TIMEOUT", global = true, value_parser = parse_seconds, value_name = "SECONDS")]
    pub timeout: Option<Duration>,

    /// Most HTTP requests in flight at once, whole process [default: 8, or the config's].
    #[arg(long, env = "CONCURRENCY", global = true,
          value_parser = clap::value_parser!(u16).range(1..=crate::config::MAX_CONCURRENCY as i64))]
    pub concurrency: Option<u16>,

    /// Cron expression for `daemon` (overrides the config's `schedule`), evaluated in UTC.
    #[arg(long, env = "SCHEDULE", global = true, value_parser = parse_schedule, value_name = "CRON")]
    pub schedule: Option<Schedule>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = LogFormatArg::Json)]
    pub log_format: LogFormatArg,

    /// error, warn, info, debug or trace; RUST_LOG syntax accepted [default: info, or RUST_LOG].
    #[arg(long, env = "LOG_LEVEL", global = true)]
    pub log_level: Option<String>,

    /// Also write the JSON log to this file, rotated daily (<file>.YYYY-MM-DD).
    #[arg(long, env = "LOG_FILE", global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Do not verify GitLab's TLS certificate (warned at every pass).
    #[arg(long, env = "INSECURE", global = true, action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// Serve Prometheus /metrics and /healthz on this address (daemon), e.g. 127.0.0.1:9184.
    #[arg(long, env = "METRICS_LISTEN", global = true, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// rest, graphql or auto [default: the config's, else auto].
    #[arg(long, env = "GITLAB_API", global = true, value_enum)]
    pub api: Option<ApiArg>,

    /// A pass that runs longer stops starting work, e.g. 30m [default: the config's, else none].
    #[arg(long, env = "PASS_TIMEOUT", global = true, value_parser = parse_pass_timeout, value_name = "DURATION")]
    pub pass_timeout: Option<Duration>,

    /// Client-side ceiling on requests to GitLab a minute, whole process [default: the config's, else none].
    #[arg(long, env = "MAX_REQUESTS_PER_MINUTE", global = true,
          value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_requests_per_minute: Option<u32>,
    /// Print the summary table on stderr after once or apply too [default: when stderr is a terminal].
    #[arg(long, env = "SUMMARY", global = true, num_args = 0..=1, default_missing_value = "true",
          require_equals = true, value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub summary: Option<bool>,

    /// First retry delay in milliseconds, doubled per attempt (for tests and benchmarks).
    #[arg(long, env = "RETRY_BASE_MS", global = true, hide = true)]
    pub retry_base_ms: Option<u64>,
}

/// Where the token came from, for precedence between `--token` and `--token-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The working directory's `.env`.
    DotEnv,
    /// The process environment.
    Environment,
    /// The command line.
    Flag,
}

/// The parsed command line, with where the token options came from.
#[derive(Debug)]
pub struct Parsed {
    /// Command and options.
    pub cli: Cli,
    /// Source of `--token`, if given.
    pub token_source: Option<Source>,
    /// Source of `--token-file`, if given.
    pub token_file_source: Option<Source>,
}

/// Loads `.env` from the working directory (never overriding what is set),
/// then parses the command line. clap's errors exit 2 themselves.
pub fn parse() -> Result<Parsed, String> {
    let from_dotenv = load_dotenv()?;
    let matches = Cli::command().get_matches();
    from_matches(&matches, &from_dotenv).map_err(|err| err.to_string())
}

/// Loads `.env`; returns the names of the variables it set (those the
/// environment did not already have).
fn load_dotenv() -> Result<std::collections::BTreeSet<String>, String> {
    let from_dotenv = read_dotenv()
        .into_keys()
        .filter(|key| std::env::var_os(key).is_none())
        .collect();
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(from_dotenv),
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(from_dotenv),
        Err(err) => Err(format!(".env in the working directory: {err}")),
    }
}

/// The `.env` file's variables as they are now (empty if there is none or it
/// does not parse), for telling on reload which start-only settings changed.
pub fn read_dotenv() -> std::collections::BTreeMap<String, String> {
    dotenvy::from_path_iter(".env")
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn from_matches(matches: &ArgMatches, from_dotenv: &std::collections::BTreeSet<String>) -> Result<Parsed, clap::Error> {
    let cli = Cli::from_arg_matches(matches)?;
    // Global args are recorded on the subcommand's matches when given after it.
    let source = |id: &str, var: &str| {
        let sub = matches.subcommand().map(|(_, m)| m);
        [sub, Some(matches)]
            .into_iter()
            .flatten()
            .filter_map(|m| m.value_source(id))
            .map(|s| match s {
                ValueSource::CommandLine => Source::Flag,
                _ if from_dotenv.contains(var) => Source::DotEnv,
                _ => Source::Environment,
            })
            .max()
    };
    Ok(Parsed {
        token_source: source("token", "GITLAB_TOKEN"),
        token_file_source: source("token_file", "GITLAB_TOKEN_FILE"),
        cli,
    })
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    Ok(Secret::new(text))
}

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    Schedule::parse(text).map_err(|err| err.to_string())
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err("must be more than 0 and at most 3600 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_pass_timeout(text: &str) -> Result<Duration, String> {
    crate::duration::parse_age_str(text).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Parsed, clap::Error> {
        let matches = Cli::command().try_get_matches_from(args)?;
        from_matches(&matches, &Default::default())
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn python_tool_flags_are_accepted() {
        let p = parse_args(&[
            "x",
            "-t",
            "tok",
            "-u",
            "https://g",
            "-c",
            "c.json",
            "-d",
            "--ssl-path",
            "ca.pem",
            "--timeout",
            "20",
        ])
        .unwrap();
        assert!(p.cli.command.is_none());
        assert_eq!(p.cli.options.token.as_ref().map(Secret::expose), Some("tok"));
        assert!(
            !format!("{:?}", p.cli).contains("tok\""),
            "Debug of the options masks the token"
        );
        assert_eq!(p.token_source, Some(Source::Flag));
        assert!(p.cli.options.dry_run);
        assert_eq!(p.cli.options.timeout, Some(Duration::from_secs(20)));
    }

    #[test]
    fn options_after_the_command() {
        let p = parse_args(&["x", "check", "--online", "-c", "c.json"]).unwrap();
        assert!(matches!(
            p.cli.command,
            Some(Command::Check {
                online: true,
                daemon: false
            })
        ));
        assert_eq!(p.cli.options.config, Some(PathBuf::from("c.json")));
        let p = parse_args(&["x", "once", "--token", "a"]).unwrap();
        assert_eq!(p.token_source, Some(Source::Flag));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse_args(&["x", "--timeout", "0"]).is_err());
        assert!(parse_args(&["x", "--timeout", "soon"]).is_err());
        assert!(parse_args(&["x", "--concurrency", "0"]).is_err());
        assert!(parse_args(&["x", "--log-format", "xml"]).is_err());
        assert!(parse_args(&["x", "--api", "soap"]).is_err());
        assert!(parse_args(&["x", "daemon", "--schedule", "61 * * * *"]).is_err());
        assert!(parse_args(&["x", "daemon", "--schedule", "*/5 * * * *"]).is_ok());
        assert!(parse_args(&["x", "frobnicate"]).is_err());
        assert_eq!(parse_args(&["x", "--bogus"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn env_example_names_only_real_variables_and_all_of_them() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/env.example");
        let text = std::fs::read_to_string(&path).unwrap();
        let named: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|line| line.trim_start_matches('#').split_once('='))
            .map(|(key, _)| key.trim().to_owned())
            .filter(|key| !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let known: std::collections::BTreeSet<String> = Cli::command()
            .get_arguments()
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()))
            .collect();
        assert!(!known.is_empty());
        assert_eq!(named, known, "config/env.example and the command line disagree");
        // Uncommented, it parses as an environment file.
        let uncommented: String = text
            .lines()
            .map(|l| {
                if l.starts_with("#") && l.contains('=') && !l.starts_with("# ") {
                    &l[1..]
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for item in dotenvy::from_read_iter(uncommented.as_bytes()) {
            item.unwrap();
        }
    }

    #[test]
    fn fractional_timeouts() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
    }
}
