//! The commands: each turns resolved settings into work and an exit code.
//!
//! `main` parses, sets up logging and the runtime, then calls [`run`]; every
//! outcome comes back here as an [`ExitCode`] or a [`CommandError`] (whose
//! [`CommandError::exit_code`] is 1 or 2). Nothing below `main` exits the
//! process, so `main`'s log guard flushes `--log-file` on every path.

use std::process::ExitCode;

use crate::cli::{Command, Parsed};
use crate::gitlab::ClientBuildError;
use crate::pass::PassReport;
use crate::settings::SettingsError;

pub mod check;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod once;

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
    }
}

/// 0 when the pass did everything, 1 otherwise.
pub fn exit_for(report: &PassReport) -> ExitCode {
    if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
