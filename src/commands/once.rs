//! `once`: one cleanup pass, then exit (0 if it did everything, else 1).
//!
//! SIGTERM or SIGINT cancels the pass (requests in flight finish, no new
//! one is sent); a second signal returns at once with exit 1. With
//! `--summary` (or stderr a terminal) the summary table follows on stderr.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::{CommandError, exit_for, print_summary, until_done, wants_summary};
use crate::cli::Parsed;
use crate::gitlab::GitlabClient;
use crate::pass::{self, Ledger};
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
    let summary = wants_summary(&parsed.cli.options);
    let ledger = summary.then(Ledger::counts);
    let pass = pass::run_pass_into(&backend, config, &settings.pass, ledger.as_ref());
    let Some(report) = until_done(pass, &cancel, &mut signals).await else {
        return Ok(ExitCode::from(1));
    };
    if let Some(ledger) = ledger {
        print_summary(&ledger.into_rows(), settings.pass.dry_run);
    }
    Ok(exit_for(&report))
}
