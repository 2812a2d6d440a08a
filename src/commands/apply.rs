//! `apply FILE`: deletes exactly the plan's tags that are unchanged since
//! the plan. The plan is read and checked before anything is sent (exit 2
//! naming the problem); then it is the pass's [`pass::apply_plan`]: events,
//! metrics and exit codes as `once`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;

use super::{CommandError, exit_for, print_summary, run_stoppable, wants_summary};
use crate::cli::Parsed;
use crate::gitlab::Backend;
use crate::pass::{self, Ledger};
use crate::plan::{self, Plan};
use crate::settings::Settings;

/// Applies the plan in `file`, if it is for this GitLab and at most `max_age` old.
pub async fn run(parsed: &Parsed, file: &Path, max_age: Duration) -> Result<ExitCode, CommandError> {
    let settings = Settings::resolve(parsed)?;
    let plan = Plan::read(file)?;
    plan.check(&settings.client.base_url, max_age, Timestamp::now())?;
    // The plan, not the config, says what goes; a changed config is only worth a word.
    if let Ok(bytes) = std::fs::read(&settings.config.path)
        && plan::sha256_hex(&bytes) != plan.config_sha256
    {
        tracing::warn!(
            operation = "config_changed_since_plan",
            "the config file changed since the plan was made; applying the plan as it is (no policy is evaluated)"
        );
    }
    let ledger = wants_summary(&parsed.cli.options).then(Ledger::counts);
    let applied = async |backend: &Backend| pass::apply_plan(backend, &plan, &settings.pass, ledger.as_ref()).await;
    let Some(report) = run_stoppable(&settings, applied).await? else {
        return Ok(ExitCode::from(1));
    };
    if let Some(ledger) = ledger {
        print_summary(&ledger.into_rows(), settings.pass.dry_run);
    }
    Ok(exit_for(&report))
}
