//! `once`: one cleanup pass, then exit (0 if it did everything, else 1).
//!
//! SIGTERM or SIGINT cancels the pass (requests in flight finish, no new
//! one is sent); a second signal returns at once with exit 1. With
//! `--summary` (or stderr a terminal) the summary table follows on stderr.

use std::process::ExitCode;

use super::{CommandError, exit_for, print_summary, run_stoppable, wants_summary};
use crate::cli::Parsed;
use crate::gitlab::Backend;
use crate::pass::{self, Ledger};
use crate::settings::Settings;

/// Runs one pass.
pub async fn run(parsed: &Parsed) -> Result<ExitCode, CommandError> {
    let settings = Settings::resolve(parsed)?;
    let config = &settings.config.config;
    let summary = wants_summary(&parsed.cli.options);
    let ledger = summary.then(Ledger::counts);
    let pass = async |backend: &Backend| pass::run_pass_into(backend, config, &settings.pass, ledger.as_ref()).await;
    let Some(report) = run_stoppable(&settings, pass).await? else {
        return Ok(ExitCode::from(1));
    };
    if let Some(ledger) = ledger {
        print_summary(&ledger.into_rows(), settings.pass.dry_run);
    }
    Ok(exit_for(&report))
}
