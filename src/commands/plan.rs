//! `plan`: a dry run whose decisions are written to a plan file for review
//! and `apply`, with the summary table on stderr.
//!
//! It decides exactly as `once --dry-run` (the same pass, the same events);
//! the pass's [`Ledger`] hands over what the plan needs, never the log. A
//! pass stopped by a signal writes no plan; one with failures writes what it
//! decided (a repository that failed has nothing in it to delete) and exits 1.

use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;

use super::{CommandError, exit_for, print_summary, run_stoppable};
use crate::cli::Parsed;
use crate::gitlab::Backend;
use crate::pass::{self, Ledger, LedgerRow};
use crate::plan::{self, Plan, PlanEntry, PlanError, PlanReason, PlanRepository, PlanTag, PlanTotals};
use crate::settings::Settings;

/// Plans one pass and writes the plan to `output` (`-`: stdout).
pub async fn run(parsed: &Parsed, output: &Path) -> Result<ExitCode, CommandError> {
    let mut settings = Settings::resolve(parsed)?;
    settings.pass.dry_run = true;
    let config_bytes = std::fs::read(&settings.config.path).map_err(|source| {
        CommandError::Failed(format!(
            "{}: cannot read the config again for its hash: {source}",
            settings.config.path.display()
        ))
    })?;
    // Fail before a long pass, not after it.
    if output != Path::new("-")
        && let Some(directory) = output.parent().filter(|p| !p.as_os_str().is_empty())
        && !directory.is_dir()
    {
        return Err(PlanError::NoDirectory {
            path: output.to_owned(),
        }
        .into());
    }
    // The plan's age counts from before the first listing.
    let now = Timestamp::now();
    let created_at = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let config = &settings.config.config;
    let ledger = Ledger::with_tags();
    let pass = async |backend: &Backend| pass::run_pass_into(backend, config, &settings.pass, Some(&ledger)).await;
    let Some(report) = run_stoppable(&settings, pass).await? else {
        return Ok(ExitCode::from(1));
    };
    if report.interrupted {
        tracing::warn!(
            operation = "plan_not_written",
            "the pass was interrupted: no plan is written"
        );
        return Ok(exit_for(&report));
    }
    let rows = ledger.into_rows();
    let entry_order: Vec<&str> = config.enabled_entries().map(|e| e.name.as_str()).collect();
    let document = document(
        &rows,
        &entry_order,
        settings.client.base_url.as_str().trim_end_matches('/'),
        created_at,
        &plan::sha256_hex(&config_bytes),
    );
    let to_stdout = output == Path::new("-");
    if !to_stdout {
        document.write(output)?;
    }
    tracing::info!(
        operation = "plan_written",
        path = %output.display(),
        repositories = document.totals.repositories,
        would_delete = document.totals.delete,
        bytes = document.totals.bytes,
        "plan written"
    );
    // On stdout the plan is the last line, after the log's.
    if to_stdout {
        document.write(output)?;
    }
    print_summary(&rows, true);
    if !to_stdout {
        eprintln!(
            "plan written to {}; review it, then: gitlab-registry-cleaner apply {}",
            output.display(),
            output.display()
        );
    }
    Ok(exit_for(&report))
}

/// The plan document of a dry run's ledger; entries in the config's order.
fn document(
    rows: &[LedgerRow],
    entry_order: &[&str],
    gitlab_url: &str,
    created_at: Timestamp,
    config_sha256: &str,
) -> Plan {
    let mut totals = PlanTotals::default();
    let entries = entry_order
        .iter()
        .map(|&project| PlanEntry {
            project: project.to_owned(),
            repositories: rows
                .iter()
                .filter(|row| row.project == project)
                .map(|row| {
                    totals.repositories += 1;
                    totals.tags_seen += row.tags_seen;
                    totals.delete += row.tags.len() as u64;
                    totals.kept += row.kept;
                    totals.bytes += row.bytes;
                    PlanRepository {
                        id: row.repository_id,
                        project_id: row.project_id,
                        path: row.path.clone(),
                        location: row.location.clone(),
                        tags_seen: row.tags_seen,
                        delete: row
                            .tags
                            .iter()
                            .map(|tag| PlanTag {
                                name: tag.name.clone(),
                                digest: tag.digest.clone(),
                                date: tag.date.map(|d| d.to_string()),
                                size: tag.size,
                                rule: tag.rule.clone(),
                                reason: tag.gone.as_ref().map(|_| PlanReason::RefGone),
                                git_ref: tag.gone.as_ref().and_then(|gone| gone.branch.clone()),
                                mr: tag.gone.as_ref().and_then(|gone| gone.merge_request),
                            })
                            .collect(),
                        kept: row.kept_reasons.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                    }
                })
                .collect(),
        })
        .filter(|entry| !entry.repositories.is_empty())
        .collect();
    Plan {
        format: plan::FORMAT.to_owned(),
        version: plan::VERSION,
        gitlab_url: gitlab_url.to_owned(),
        created_at: created_at.to_string(),
        config_sha256: config_sha256.to_owned(),
        entries,
        totals,
    }
}
