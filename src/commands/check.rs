//! `check`: validates the config (and with `--daemon`, that there is a
//! schedule); with `--online`, also reaches GitLab and lists each enabled
//! entry's container repositories. Deletes nothing, lists no tag.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::cli::Parsed;
use crate::config::ConfigForm;
use crate::gitlab::GitlabClient;
use crate::pass;
use crate::settings::{ConfigSettings, Settings, SettingsError};

/// Runs the check; prints its findings to stdout.
pub async fn run(parsed: &Parsed, online: bool, for_daemon: bool) -> Result<ExitCode, CommandError> {
    let resolved = ConfigSettings::resolve(&parsed.cli.options)?;
    let config = &resolved.config;
    let enabled = config.enabled_entries().count();
    println!(
        "config {}: OK ({} form, {} entries, {} enabled)",
        resolved.path.display(),
        match config.form {
            ConfigForm::Legacy => "legacy",
            ConfigForm::Full => "full",
        },
        config.entries.len(),
        enabled
    );
    for warning in &resolved.warnings {
        println!("  warning: {warning}");
    }
    match &resolved.schedule {
        Some(schedule) => {
            let next = schedule
                .next_after(jiff::Timestamp::now())
                .map(|t| t.to_string())
                .unwrap_or_default();
            println!("  schedule \"{}\" (UTC), next run {next}", schedule.as_str());
        }
        None if for_daemon => return Err(SettingsError::NoSchedule.into()),
        None => {}
    }
    if let Some(rate) = resolved.max_requests_per_minute(&parsed.cli.options) {
        println!("  at most {rate} requests a minute to GitLab");
    }
    for entry in &config.entries {
        println!("  {}: {}", entry.name, entry.summary());
    }
    if !online {
        return Ok(ExitCode::SUCCESS);
    }

    let settings = Settings::with_config(parsed, resolved)?;
    let base = settings.client.base_url.clone();
    let backend = settings
        .config
        .backend(GitlabClient::new(&settings.client, CancellationToken::new())?);
    match backend.version().await {
        Ok(version) => println!("GitLab {base}: reachable, version {}", version.version),
        Err(err) => {
            println!("GitLab {base}: FAILED: {}", err.explain());
            return Err(CommandError::Failed(
                "GitLab is not usable with these settings".to_owned(),
            ));
        }
    }
    let config = &settings.config.config;
    let mut failures = 0;
    for entry in config.enabled_entries() {
        let api = backend.entry(pass::owner(entry));
        match api.repositories().await {
            Ok(repositories) => {
                let matched = repositories
                    .iter()
                    .filter(|r| entry.repository_regex.as_ref().is_none_or(|re| re.is_match(&r.path)))
                    .count();
                let through = repositories
                    .first()
                    .map_or(String::new(), |r| format!(", through {}", api.through(r)));
                println!(
                    "  {}: OK, {} container repositories ({matched} to clean){through}",
                    entry.name,
                    repositories.len(),
                );
            }
            Err(err) => {
                failures += 1;
                println!("  {}: FAILED: {}", entry.name, err.explain());
            }
        }
    }
    if failures > 0 {
        return Err(CommandError::Failed(format!(
            "{failures} of {enabled} entries cannot be read"
        )));
    }
    Ok(ExitCode::SUCCESS)
}
