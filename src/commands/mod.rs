//! The commands: each turns resolved settings into work and an exit code.
//!
//! `main` parses, sets up logging and the runtime, then calls [`run`]; every
//! outcome comes back here as an [`ExitCode`] or a [`CommandError`] (whose
//! [`CommandError::exit_code`] is 1 or 2). Nothing below `main` exits the
//! process, so `main`'s log guard flushes `--log-file` on every path.

use std::io::IsTerminal;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::{Command, Options, Parsed};
use crate::gitlab::{Backend, ClientBuildError, GitlabClient};
use crate::pass::{LedgerRow, PassReport};
use crate::plan::PlanError;
use crate::settings::{Settings, SettingsError};
use crate::signals::Signals;
use crate::summary::{self, SummaryRow, Tense};

pub mod apply;
pub mod check;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod once;
pub mod plan;

/// Why a command stopped before it could report an outcome.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad command line, environment or config: exit 2.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The HTTP client refuses the settings (e.g. `--ssl-path`): exit 2.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// `--metrics-listen` cannot be bound: exit 2.
    #[error("--metrics-listen {address}: cannot listen: {source}")]
    MetricsListen {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why it cannot be bound.
        source: std::io::Error,
    },
    /// This binary was built without the `demo` feature: exit 2.
    #[error(
        "the demo is not in this build: it was built without the \"demo\" cargo feature (as the .deb is); \
         to try it, build from source with default features: cargo install --path . (in a checkout), \
         or cargo run --release -- demo"
    )]
    DemoNotBuilt,
    /// A plan that cannot be read or used: exit 2; or written: exit 1.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The signal handlers cannot be installed: exit 1.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The work was attempted and something failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// 2 for what the user has to fix before running again, 1 for failed work.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CommandError::Settings(err) => err.exit_code(),
            CommandError::Client(_) | CommandError::MetricsListen { .. } | CommandError::DemoNotBuilt => {
                ExitCode::from(2)
            }
            CommandError::Plan(PlanError::Write { .. }) => ExitCode::from(1),
            CommandError::Plan(_) => ExitCode::from(2),
            CommandError::Signals(_) | CommandError::Failed(_) => ExitCode::from(1),
        }
    }
}

/// Runs the parsed command (`once` when none is given).
pub async fn run(parsed: &Parsed) -> Result<ExitCode, CommandError> {
    match parsed.cli.command.clone().unwrap_or(Command::Once) {
        Command::Once => once::run(parsed).await,
        Command::Daemon => daemon::run(parsed).await,
        Command::Check { online, daemon } => check::run(parsed, online, daemon).await,
        #[cfg(feature = "demo")]
        Command::Demo => demo::run(&parsed.cli.options).await,
        #[cfg(not(feature = "demo"))]
        Command::Demo => Err(CommandError::DemoNotBuilt),
        Command::Plan { output } => plan::run(parsed, &output).await,
        Command::Apply { plan, max_plan_age } => apply::run(parsed, &plan, max_plan_age).await,
    }
}

/// Drives a pass to its end. The first SIGTERM or SIGINT cancels it
/// (requests in flight finish, no new one is sent); a second gives up on
/// it: `None`.
/// Builds the backend of `settings` and runs `work` on it until it is done
/// or stopped (see [`until_done`]): what `once`, `plan` and `apply` share.
async fn run_stoppable(
    settings: &Settings,
    work: impl AsyncFnOnce(&Backend) -> PassReport,
) -> Result<Option<PassReport>, CommandError> {
    let cancel = CancellationToken::new();
    let backend = settings
        .config
        .backend(GitlabClient::new(&settings.client, cancel.clone())?);
    let mut signals = Signals::register().map_err(CommandError::Signals)?;
    Ok(until_done(work(&backend), &cancel, &mut signals).await)
}

async fn until_done(
    pass: impl Future<Output = PassReport>,
    cancel: &CancellationToken,
    signals: &mut Signals,
) -> Option<PassReport> {
    tokio::pin!(pass);
    tokio::select! {
        report = &mut pass => Some(report),
        () = signals.next_stop() => {
            tracing::warn!(
                operation = "interrupted",
                "interrupted: finishing requests in flight, sending no new ones (a second signal exits at once)"
            );
            cancel.cancel();
            tokio::select! {
                report = &mut pass => Some(report),
                () = signals.next_stop() => {
                    tracing::warn!(operation = "shutdown", "second signal: exiting at once");
                    None
                }
            }
        }
    }
}

/// Whether `once` and `apply` print the summary table: `--summary`, else
/// when stderr is a terminal (a person is watching).
fn wants_summary(options: &Options) -> bool {
    options.summary.unwrap_or_else(|| std::io::stderr().is_terminal())
}

/// Prints the summary table of a pass's ledger on stderr, never on stdout
/// (the JSON log's).
fn print_summary(rows: &[LedgerRow], dry_run: bool) {
    let rows: Vec<SummaryRow> = rows
        .iter()
        .map(|row| SummaryRow {
            entry: row.project.clone(),
            repository: row.path.clone(),
            tags_seen: row.tags_seen,
            delete: row.deleted,
            kept: row.kept,
            bytes: row.bytes,
            by_rule: row.by_rule.clone(),
            ref_gone: row.ref_gone,
        })
        .collect();
    let tense = if dry_run { Tense::Planned } else { Tense::Done };
    eprint!("{}", summary::render(&rows, tense));
}

/// 0 when the pass did everything, 1 otherwise.
pub fn exit_for(report: &PassReport) -> ExitCode {
    if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
