//! One cleanup pass over every enabled entry of a config.
//!
//! For each entry, concurrently: list its repositories; then per repository
//! list **all** tag names before anything is deleted (asking for the details
//! of the candidates the names leave while later pages are still coming),
//! and let [`policy::decide`] judge them; then delete (or, in a dry run, only
//! log) — right after each repository's decisions, or, when the entry has a
//! `max_deletions` fuse, after all of the entry's decisions and the fuse. Concurrency is bounded by the client's request limit,
//! and work is driven by bounded streams, never one spawned task per tag.
//!
//! A failure is logged where it happens and counted; it never stops the rest
//! of the pass, and it never turns into a deletion.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;

use crate::config::{Config, Entry};
use crate::gitlab::{ApiError, DeleteOutcome, GitlabClient, Repository};
use crate::metrics::metrics;
use crate::policy::{self, Decision, KeepReason, TagDate, TagFacts};

/// How a pass behaves, beyond the config.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Decide and log, but send no DELETE.
    pub dry_run: bool,
    /// How many repositories and tags are worked on at once (the client
    /// bounds requests in flight; this bounds the futures waiting for it).
    pub concurrency: usize,
    /// TLS verification is off: warn.
    pub insecure: bool,
}

/// What a pass did. Also what one entry did, summed into the pass's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Entries worked on.
    pub projects: u64,
    /// Repositories whose tags were looked at.
    pub repositories: u64,
    /// Tags listed.
    pub tags_seen: u64,
    /// Tags deleted (or, in a dry run, that would have been).
    pub deleted: u64,
    /// Tags kept.
    pub kept: u64,
    /// Failures: entries, repositories or tags that could not be done.
    pub errors: u64,
    /// Entries whose `max_deletions` fuse tripped.
    pub fuses_tripped: u64,
    /// Bytes the deleted tags took, where GitLab said.
    pub bytes_freed: u64,
    /// Shutdown stopped the pass before it was done.
    pub interrupted: bool,
}

impl PassReport {
    /// Everything was done: no failure and no tripped fuse.
    pub fn is_complete(&self) -> bool {
        self.errors == 0 && self.fuses_tripped == 0 && !self.interrupted
    }

    /// `success`, `failed` or `interrupted`, as logged.
    pub fn result(&self) -> &'static str {
        match (self.interrupted, self.is_complete()) {
            (true, _) => "interrupted",
            (false, true) => "success",
            (false, false) => "failed",
        }
    }

    fn add(&mut self, other: &PassReport) {
        self.projects += other.projects;
        self.repositories += other.repositories;
        self.tags_seen += other.tags_seen;
        self.deleted += other.deleted;
        self.kept += other.kept;
        self.errors += other.errors;
        self.fuses_tripped += other.fuses_tripped;
        self.bytes_freed = self.bytes_freed.saturating_add(other.bytes_freed);
        self.interrupted |= other.interrupted;
    }
}

/// A tag the policy chose, waiting for the fuse and the delete.
struct Doomed {
    name: String,
    total_size: Option<u64>,
}

/// One repository after its decisions, before its deletions.
struct RepositoryPlan {
    repository: Repository,
    doomed: Vec<Doomed>,
}

/// Runs one pass. Never fails as a whole: failures are in the report.
pub async fn run_pass(client: &GitlabClient, config: &Config, options: &PassOptions) -> PassReport {
    let started = Instant::now();
    let entries: Vec<&Entry> = config.enabled_entries().collect();
    tracing::info!(
        operation = "pass_started",
        dry_run = options.dry_run,
        projects = entries.len(),
        concurrency = options.concurrency,
        "pass started"
    );
    if options.insecure {
        tracing::warn!(
            operation = "insecure",
            "TLS certificate verification is OFF (--insecure): GitLab's identity and the token are not protected"
        );
    }

    // Listing every entry's repositories first lets a repository that two
    // entries reach (a numeric id and a path naming one project) be caught
    // before either entry deletes anything in it.
    // Streams over indices, not references: a closure taking a reference
    // makes the pass future fail the `Send` check when it is spawned.
    let listings: Vec<Result<Vec<Repository>, ApiError>> = stream::iter(0..entries.len())
        .map(|i| client.repositories(entries[i].kind, &entries[i].target))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut claims: HashMap<u64, Vec<&str>> = HashMap::new();
    for (entry, listing) in entries.iter().zip(&listings) {
        for repository in listing.iter().flatten() {
            let claimants = claims.entry(repository.id).or_default();
            if !claimants.contains(&entry.json_path.as_str()) {
                claimants.push(&entry.json_path);
            }
        }
    }

    let reports: Vec<PassReport> = stream::iter(listings.into_iter().enumerate())
        .map(|(i, listing)| run_entry(client, entries[i], listing, &claims, options))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut total = PassReport::default();
    for report in &reports {
        total.add(report);
    }
    total.interrupted |= client.is_cancelled();
    metrics().pass_finished(&total, started.elapsed());
    let duration_ms = started.elapsed().as_millis() as u64;
    let result = total.result();
    macro_rules! finished {
        ($level:ident, $count:ident) => {
            tracing::$level!(
                operation = "pass_finished",
                result,
                dry_run = options.dry_run,
                projects = total.projects,
                repositories = total.repositories,
                tags_seen = total.tags_seen,
                $count = total.deleted,
                kept = total.kept,
                errors = total.errors,
                fuses_tripped = total.fuses_tripped,
                bytes_freed = total.bytes_freed,
                duration_ms,
                "pass finished"
            )
        };
    }
    match (options.dry_run, total.is_complete()) {
        (true, true) => finished!(info, would_delete),
        (true, false) => finished!(warn, would_delete),
        (false, true) => finished!(info, deleted),
        (false, false) => finished!(warn, deleted),
    }
    total
}

async fn run_entry(
    client: &GitlabClient,
    entry: &Entry,
    listing: Result<Vec<Repository>, ApiError>,
    claims: &HashMap<u64, Vec<&str>>,
    options: &PassOptions,
) -> PassReport {
    let started = Instant::now();
    let mut report = PassReport {
        projects: 1,
        ..PassReport::default()
    };
    match listing {
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(err) => {
            report.errors += 1;
            tracing::error!(
                operation = "project_failed",
                project = %entry.name,
                target = %entry.target,
                error = %err.explain(),
                "cannot list the container repositories"
            );
        }
        Ok(repositories) => clean_entry(client, entry, repositories, claims, options, &mut report).await,
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    macro_rules! finished {
        ($count:ident) => {
            tracing::info!(
                operation = "project_finished",
                project = %entry.name,
                repositories = report.repositories,
                tags_seen = report.tags_seen,
                $count = report.deleted,
                kept = report.kept,
                errors = report.errors,
                duration_ms,
                "project finished"
            )
        };
    }
    if options.dry_run {
        finished!(would_delete);
    } else {
        finished!(deleted);
    }
    report
}

async fn clean_entry(
    client: &GitlabClient,
    entry: &Entry,
    repositories: Vec<Repository>,
    claims: &HashMap<u64, Vec<&str>>,
    options: &PassOptions,
    report: &mut PassReport,
) {
    let mut selected = Vec::new();
    for repository in repositories {
        if let Some(re) = &entry.repository_regex
            && !re.is_match(&repository.path)
        {
            tracing::debug!(project = %entry.name, repository = %repository.path, "repository not matched by repository_regex");
            continue;
        }
        let claimants = claims.get(&repository.id).map_or(&[][..], Vec::as_slice);
        if claimants.len() > 1 {
            report.errors += 1;
            tracing::error!(
                operation = "repository_failed",
                project = %entry.name,
                repository = %repository.path,
                error = %format!("reached by several config entries ({}); none of them cleans it", claimants.join(", ")),
                "ambiguous policy"
            );
            continue;
        }
        selected.push(repository);
    }

    let concurrency = options.concurrency.max(1);
    if entry.max_deletions.is_none() {
        // No fuse to wait for: each repository's deletions follow its own
        // decisions at once, which keeps the time between reading a tag's
        // date and deleting it short (GitLab has no conditional DELETE).
        let reports: Vec<PassReport> = stream::iter(selected)
            .map(|repository| async move {
                let (plan, mut report) = plan_repository(client, entry, repository, options).await;
                report.add(&delete_plan(client, entry, &plan, options).await);
                report
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        reports.iter().for_each(|r| report.add(r));
        return;
    }

    let plans: Vec<(RepositoryPlan, PassReport)> = stream::iter(selected)
        .map(|repository| plan_repository(client, entry, repository, options))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut would_delete = 0u64;
    for (plan, plan_report) in &plans {
        report.add(plan_report);
        would_delete += plan.doomed.len() as u64;
    }

    if let Some(max) = entry.max_deletions
        && would_delete > max
    {
        report.fuses_tripped += 1;
        tracing::error!(
            operation = "max_deletions_exceeded",
            project = %entry.name,
            would_delete,
            max_deletions = max,
            "this pass would delete more tags than max_deletions allows; deleting none in this project"
        );
        for (plan, _) in &plans {
            for doomed in &plan.doomed {
                log_kept(entry, &plan.repository, &doomed.name, KeepReason::MaxDeletions);
            }
        }
        report.kept += would_delete;
        return;
    }

    let reports: Vec<PassReport> = stream::iter(0..plans.len())
        .map(|p| delete_plan(client, entry, &plans[p].0, options))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    reports.iter().for_each(|r| report.add(r));
}

/// Deletes (or, in a dry run, logs) the tags a repository's plan chose.
async fn delete_plan(client: &GitlabClient, entry: &Entry, plan: &RepositoryPlan, options: &PassOptions) -> PassReport {
    // Indices, not references, in the closure: see `run_pass`.
    let outcomes: Vec<PassReport> = stream::iter(0..plan.doomed.len())
        .map(|d| delete_one(client, entry, &plan.repository, &plan.doomed[d], options.dry_run))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut report = PassReport::default();
    outcomes.iter().for_each(|o| report.add(o));
    report
}

/// Lists a repository's tags, gets the candidates' dates and decides.
async fn plan_repository(
    client: &GitlabClient,
    entry: &Entry,
    repository: Repository,
    options: &PassOptions,
) -> (RepositoryPlan, PassReport) {
    let mut report = PassReport {
        repositories: 1,
        ..PassReport::default()
    };
    let mut plan = RepositoryPlan {
        repository,
        doomed: Vec::new(),
    };
    let repository = &plan.repository;

    // Details are fetched while later pages are still being listed (on a real
    // GitLab a page takes long); nothing is decided, let alone deleted, before
    // the listing is complete.
    let (names_tx, names_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let listing = async move {
        client
            .for_each_tag_name(repository.project_id, repository.id, |name| {
                let _ = names_tx.send(name);
            })
            .await
    };
    let (mut seen, mut kept_by_name, mut failed_details, mut interrupted) = (0u64, 0u64, 0u64, false);
    // A tag pushed between two page reads shifts the offsets, so a name can
    // come twice: it is one tag. Hashes, not names, are remembered; a hash
    // collision would only leave a tag out of this pass, never delete one.
    let mut listed_hashes: HashSet<u64> = HashSet::new();
    let hash_state = std::hash::RandomState::new();
    let names = stream::unfold(names_rx, |mut rx| async move { rx.recv().await.map(|name| (name, rx)) });
    let fetching = names
        .filter(|name| std::future::ready(listed_hashes.insert(hash_state.hash_one(name.as_str()))))
        .filter(|name| {
            seen += 1;
            let reason = policy::keep_by_name(name, &entry.rules);
            if let Some(reason) = reason {
                kept_by_name += 1;
                log_kept(entry, repository, name, reason);
            }
            std::future::ready(reason.is_none())
        })
        .map(|name| async move {
            match client.tag_details(repository.project_id, repository.id, &name).await {
                Ok(Some(details)) => {
                    if details.created_at_is_odd() {
                        tracing::warn!(project = %entry.name, repository = %repository.path, tag_name = %name,
                            created_at = %details.created_at.as_ref().map(ToString::to_string).unwrap_or_default(),
                            "created_at is not a string; the tag is kept as undated");
                    }
                    let created = TagDate::parse(details.created_at_str());
                    Some(Ok((TagFacts { name, created }, details.total_size)))
                }
                Ok(None) => {
                    tracing::debug!(project = %entry.name, repository = %repository.path, tag_name = %name,
                        "tag disappeared between listing and details");
                    None
                }
                Err(err) => Some(Err((name, err))),
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .filter_map(|outcome| {
            let found = match outcome {
                Some(Ok(found)) => Some(found),
                Some(Err((_, ApiError::Cancelled))) => {
                    interrupted = true;
                    None
                }
                Some(Err((name, err))) => {
                    failed_details += 1;
                    metrics().tag_kept(&entry.name, "error");
                    tracing::error!(
                        operation = "kept",
                        reason = "error",
                        project = %entry.name,
                        repository = %repository.path,
                        tag_name = %name,
                        tag_location = %repository.location,
                        error = %err.explain(),
                        "cannot read the tag's details; keeping it"
                    );
                    None
                }
                None => None,
            };
            std::future::ready(found)
        })
        .collect::<Vec<(TagFacts, Option<u64>)>>();
    let (listed, details) = tokio::join!(listing, fetching);
    report.tags_seen = seen;
    report.kept = kept_by_name + failed_details;
    report.errors = failed_details;
    report.interrupted = interrupted;
    match listed {
        Ok(()) => {}
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(err) => {
            report.errors += 1;
            report.kept += details.len() as u64;
            tracing::error!(
                operation = "repository_failed",
                project = %entry.name,
                repository = %repository.path,
                error = %err.explain(),
                "cannot list all the tags; keeping them all"
            );
            return (plan, report);
        }
    }
    if report.interrupted {
        // Shutdown: no DELETE can be sent any more, so there is nothing to decide.
        return (plan, report);
    }
    drop(listed_hashes);
    let (facts, sizes): (Vec<TagFacts>, Vec<Option<u64>>) = details.into_iter().unzip();

    let decisions = policy::decide(&facts, &entry.rules, Timestamp::now());
    for ((tag, total_size), decision) in facts.into_iter().zip(sizes).zip(decisions) {
        match decision {
            Decision::Keep(reason) => {
                report.kept += 1;
                log_kept(entry, repository, &tag.name, reason);
            }
            Decision::Delete => plan.doomed.push(Doomed {
                name: tag.name,
                total_size,
            }),
        }
    }
    (plan, report)
}

async fn delete_one(
    client: &GitlabClient,
    entry: &Entry,
    repository: &Repository,
    doomed: &Doomed,
    dry_run: bool,
) -> PassReport {
    let mut report = PassReport::default();
    if dry_run {
        // Nothing is freed in a dry run; `deleted` counts what would go.
        report.deleted = 1;
        tracing::info!(
            operation = "dry_run",
            project = %entry.name,
            repository = %repository.path,
            tag_name = %doomed.name,
            tag_location = %repository.location,
            "would delete tag"
        );
        return report;
    }
    let mut outcome = client
        .delete_tag(repository.project_id, repository.id, &doomed.name)
        .await;
    if let Err(err) = &outcome
        && err.may_have_acted()
    {
        // Out of retries on an ambiguous failure: ask whether the tag is still there.
        if let Ok(None) = client
            .tag_details(repository.project_id, repository.id, &doomed.name)
            .await
        {
            tracing::debug!(project = %entry.name, tag_name = %doomed.name, error = %err, "the DELETE failed, but the tag is gone");
            outcome = Ok(DeleteOutcome::AlreadyGone);
        }
    }
    match outcome {
        Ok(outcome) => {
            report.deleted = 1;
            report.bytes_freed = doomed.total_size.unwrap_or(0);
            metrics().tag_deleted(&entry.name, doomed.total_size);
            tracing::info!(
                operation = "deleted",
                project = %entry.name,
                repository = %repository.path,
                tag_name = %doomed.name,
                tag_location = %repository.location,
                already_gone = outcome == DeleteOutcome::AlreadyGone,
                "deleted tag"
            );
        }
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(err) => {
            report.errors += 1;
            report.kept = 1;
            metrics().delete_error(&entry.name);
            tracing::error!(
                operation = "delete_failed",
                project = %entry.name,
                repository = %repository.path,
                tag_name = %doomed.name,
                tag_location = %repository.location,
                error = %err.explain(),
                "cannot delete tag"
            );
        }
    }
    report
}

fn log_kept(entry: &Entry, repository: &Repository, tag_name: &str, reason: KeepReason) {
    metrics().tag_kept(&entry.name, reason.as_str());
    tracing::debug!(
        operation = "kept",
        reason = reason.as_str(),
        project = %entry.name,
        repository = %repository.path,
        tag_name,
        tag_location = %repository.location,
        "kept tag"
    );
}
