//! `check`: validates the config (and with `--daemon`, that there is a
//! schedule); with `--online`, also reaches GitLab and lists each enabled
//! entry's container repositories, and for an entry with `rules` how many
//! tags of each repository each rule governs (listing names only). Deletes
//! nothing.

use std::collections::BTreeSet;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::cli::Parsed;
use crate::config::{ConfigForm, Entry};
use crate::gitlab::GitlabClient;
use crate::gitlab::{EntryApi, RefKind, Repository};
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
                let selected: Vec<&Repository> = repositories
                    .iter()
                    .filter(|r| entry.selects_repository(&r.path))
                    .collect();
                let matched = selected.len();
                let through = repositories
                    .first()
                    .map_or(String::new(), |r| format!(", through {}", api.through(r)));
                println!(
                    "  {}: OK, {} container repositories ({matched} to clean){through}",
                    entry.name,
                    repositories.len(),
                );
                if entry.has_named_rules() {
                    for repository in &selected {
                        if !print_governed(&api, entry, repository).await {
                            failures += 1;
                        }
                    }
                }
                let projects: BTreeSet<u64> = selected.iter().map(|r| r.project_id).collect();
                for project_id in projects {
                    if !print_refs(&api, entry, project_id).await {
                        failures += 1;
                    }
                }
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

/// For an entry with `delete_when_ref_gone`: whether the token can read
/// the project's branches and merge requests, as a pass would need them.
/// `false` if it cannot.
async fn print_refs(api: &EntryApi<'_>, entry: &Entry, project_id: u64) -> bool {
    let groups: BTreeSet<&str> = entry
        .rules
        .iter()
        .filter_map(|rule| rule.rule.policy.delete_when_ref_gone.as_ref())
        .flat_map(|gone| gone.tag_regex.capture_names().flatten())
        .collect();
    let mut ok = true;
    if groups.contains("ref") {
        for kind in [RefKind::Branches, RefKind::Tags] {
            match api.refs_of(project_id, kind, None).await {
                Ok(list) => println!(
                    "    project {project_id}: {} {} readable",
                    list.slugs.len(),
                    kind.plural()
                ),
                Err(err) => {
                    ok = false;
                    println!(
                        "    project {project_id}: FAILED to read the {}: {}",
                        kind.plural(),
                        err.explain()
                    );
                }
            }
        }
    }
    if groups.contains("mr") {
        // Any iid will do: the answer says whether merge requests can be read.
        match api.merge_requests(project_id, &BTreeSet::from([1])).await {
            Ok(_) => println!("    project {project_id}: merge requests readable"),
            Err(err) => {
                ok = false;
                println!(
                    "    project {project_id}: FAILED to read the merge requests: {}",
                    err.explain()
                );
            }
        }
    }
    ok
}

/// Prints how many tags of a repository each rule of the entry governs,
/// every rule named (a rule that governs nothing shows 0). Lists names
/// only: no tag's details are read. `false` if the listing failed.
async fn print_governed(api: &EntryApi<'_>, entry: &Entry, repository: &Repository) -> bool {
    let mut governed = vec![0u64; entry.rules.len()];
    let mut not_governed = 0u64;
    let mut count = |name: &str| {
        match crate::policy::governing_rule(&entry.rules, &repository.path, name) {
            Some(i) => governed[i] += 1,
            None => not_governed += 1,
        }
        false
    };
    let listing = api.tags(repository, &mut count, &mut |_| {}).await;
    if let Err(err) = listing.complete {
        println!("    {}: FAILED to list the tags: {}", repository.path, err.explain());
        return false;
    }
    let rules: Vec<String> = entry
        .rules
        .iter()
        .zip(&governed)
        .map(|(rule, n)| format!("\"{}\" {n}", rule.rule.name.as_deref().unwrap_or_default()))
        .collect();
    println!(
        "    {}: {} tags; governed by {}; by no rule {not_governed}",
        repository.path,
        listing.seen,
        rules.join(", ")
    );
    true
}
