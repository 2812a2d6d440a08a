//! `once`: one cleanup pass, then exit (0 if it did everything, else 1).
//!
//! SIGTERM or SIGINT cancels the pass (requests in flight finish, no new
//! one is sent); a second signal returns at once with exit 1.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::{CommandError, exit_for};
use crate::cli::Parsed;
use crate::gitlab::GitlabClient;
use crate::pass;
use crate::settings::Settings;
use crate::signals::Signals;

/// Runs one pass.
pub async fn run(parsed: &Parsed) -> Result<ExitCode, CommandError> {
    let settings = Settings::resolve(parsed)?;
    let cancel = CancellationToken::new();
    let backend = settings
        .config
        .backend(GitlabClient::new(&settings.client, cancel.clone())?);
    let mut signals = Signals::register().map_err(CommandError::Signals)?;
    let config = &settings.config.config;
    let pass = pass::run_pass(&backend, config, &settings.pass);
    tokio::pin!(pass);
    let report = tokio::select! {
        report = &mut pass => report,
        () = signals.next_stop() => {
            tracing::warn!(
                operation = "interrupted",
                "interrupted: finishing requests in flight, sending no new ones (a second signal exits at once)"
            );
            cancel.cancel();
            tokio::select! {
                report = &mut pass => report,
                () = signals.next_stop() => {
                    tracing::warn!(operation = "shutdown", "second signal: exiting at once");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    Ok(exit_for(&report))
}
