//! One cleanup pass over every enabled entry of a config.
//!
//! For each entry, concurrently: list its repositories (through GraphQL or
//! REST, as `api` says; `auto` falls back to REST per entry or repository);
//! then per repository list **all** tags before anything is deleted —
//! GraphQL gives twenty tags with their dates a page; REST gives names, and
//! the candidates' details are fetched while later pages are still coming —
//! and let [`policy::decide`] judge them; then delete (or, in a dry run, only
//! log) — twenty names a GraphQL mutation or one REST DELETE a tag — right
//! after each repository's decisions, or, when the entry has a
//! `max_deletions` fuse, after all of the entry's decisions and the fuse.
//! Concurrency is bounded by the client's request limit, and work is driven
//! by bounded streams, never one spawned task per tag.
//!
//! A failure is logged where it happens and counted; it never stops the rest
//! of the pass, and it never turns into a deletion.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;

use crate::config::{AgeFrom, ApiMode, Config, Entry, Target};
use crate::gitlab::{ApiError, DELETE_BATCH, DeleteOutcome, GitlabClient, GraphqlFailure, Repository, TagNode};
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
    /// REST, GraphQL, or GraphQL with REST as the fallback.
    pub api: ApiMode,
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
        .map(|i| list_repositories(client, entries[i], options.api))
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
    metrics().pass_finished(total.result(), total.is_complete(), started.elapsed());
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

/// An entry's container repositories, through the API `mode` asks for.
/// With `auto`, GraphQL is tried first and REST used when GraphQL is not
/// usable, logged as `api_fallback` (never for `age_from: published`, which
/// REST cannot serve: that entry fails and keeps everything).
pub async fn list_repositories(
    client: &GitlabClient,
    entry: &Entry,
    mode: ApiMode,
) -> Result<Vec<Repository>, ApiError> {
    if mode == ApiMode::Rest {
        return client.repositories(entry.kind, &entry.target).await;
    }
    let listed = async {
        let path = match &entry.target {
            Target::Path(path) => path.clone(),
            Target::Id(id) => client.full_path(entry.kind, *id).await?,
        };
        client.graphql_repositories(entry.kind, &path).await
    }
    .await;
    match listed {
        Err(err) if mode == ApiMode::Auto && err.graphql_unavailable() => {
            if entry.age_from == AgeFrom::Published {
                return Err(no_published_fallback(&err));
            }
            tracing::warn!(
                operation = "api_fallback",
                project = %entry.name,
                reason = %err.explain(),
                "GraphQL is not usable for this entry; using the REST API"
            );
            client.repositories(entry.kind, &entry.target).await
        }
        other => other,
    }
}

fn no_published_fallback(err: &ApiError) -> ApiError {
    ApiError::Graphql {
        operation: "age_from",
        kind: GraphqlFailure::Field,
        message: format!(
            "\"published\" needs GraphQL, which is not usable ({err}); REST has no publishedAt, so nothing is deleted"
        ),
    }
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
    let refused = &GraphqlRefused::default();
    if entry.max_deletions.is_none() {
        // No fuse to wait for: each repository's deletions follow its own
        // decisions at once, which keeps the time between reading a tag's
        // date and deleting it short (GitLab has no conditional DELETE).
        let reports: Vec<PassReport> = stream::iter(selected)
            .map(|repository| async move {
                let (plan, mut report) = plan_repository(client, entry, repository, options, refused).await;
                report.add(&delete_plan(client, entry, &plan, options, refused).await);
                report
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        reports.iter().for_each(|r| report.add(r));
        return;
    }

    let plans: Vec<(RepositoryPlan, PassReport)> = stream::iter(selected)
        .map(|repository| plan_repository(client, entry, repository, options, refused))
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
        .map(|p| delete_plan(client, entry, &plans[p].0, options, refused))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    reports.iter().for_each(|r| report.add(r));
}

/// Deletes (or, in a dry run, logs) the tags a repository's plan chose:
/// twenty per mutation through GraphQL, one DELETE each through REST.
async fn delete_plan(
    client: &GitlabClient,
    entry: &Entry,
    plan: &RepositoryPlan,
    options: &PassOptions,
    refused: &GraphqlRefused,
) -> PassReport {
    let concurrency = options.concurrency.max(1);
    // Indices, not references, in the closures: see `run_pass`.
    let outcomes: Vec<PassReport> = match &plan.repository.graphql_id {
        Some(gid) if !options.dry_run => {
            let batches = plan.doomed.len().div_ceil(DELETE_BATCH);
            stream::iter(0..batches)
                .map(|b| {
                    let batch = &plan.doomed[b * DELETE_BATCH..((b + 1) * DELETE_BATCH).min(plan.doomed.len())];
                    delete_batch(client, entry, &plan.repository, gid, batch, options, refused)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await
        }
        _ => {
            stream::iter(0..plan.doomed.len())
                .map(|d| delete_one(client, entry, &plan.repository, &plan.doomed[d], options.dry_run))
                .buffer_unordered(concurrency)
                .collect()
                .await
        }
    };
    let mut report = PassReport::default();
    outcomes.iter().for_each(|o| report.add(o));
    report
}

/// Set when `api: auto` found GraphQL refusing an entry's tag queries or
/// deletions after its repositories were listed: the rest of the entry goes
/// through REST, and the fallback is logged once.
#[derive(Default)]
struct GraphqlRefused(std::sync::atomic::AtomicBool);

impl GraphqlRefused {
    fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records the fallback; the first caller logs it.
    fn set(&self, entry: &Entry, err: &ApiError, message: &'static str) {
        if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(operation = "api_fallback", project = %entry.name, reason = %err.explain(), "{message}");
        }
    }
}

/// Lists a repository's tags with their dates, and decides.
async fn plan_repository(
    client: &GitlabClient,
    entry: &Entry,
    repository: Repository,
    options: &PassOptions,
    refused: &GraphqlRefused,
) -> (RepositoryPlan, PassReport) {
    let mut plan = RepositoryPlan {
        repository,
        doomed: Vec::new(),
    };
    if refused.is_set() {
        plan.repository.graphql_id = None;
    }
    let collected = match plan.repository.graphql_id.clone() {
        Some(gid) => {
            let collected = collect_graphql(client, entry, &plan.repository, &gid).await;
            match &collected.listed {
                Err(err) if options.api == ApiMode::Auto && err.graphql_unavailable() => {
                    if entry.age_from == AgeFrom::Published {
                        Collected {
                            listed: Err(no_published_fallback(err)),
                            ..collected
                        }
                    } else {
                        refused.set(entry, err, "GraphQL cannot list this entry's tags; using the REST API");
                        plan.repository.graphql_id = None;
                        collect_rest(client, entry, &plan.repository, options).await
                    }
                }
                _ => collected,
            }
        }
        None => collect_rest(client, entry, &plan.repository, options).await,
    };
    let repository = &plan.repository;
    let mut report = PassReport {
        repositories: 1,
        tags_seen: collected.seen,
        kept: collected.kept_by_name + collected.failed_details,
        errors: collected.failed_details,
        interrupted: collected.interrupted,
        ..PassReport::default()
    };
    match collected.listed {
        Ok(()) => {}
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(err) => {
            report.errors += 1;
            report.kept += collected.candidates.len() as u64;
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
    let (facts, sizes): (Vec<TagFacts>, Vec<Option<u64>>) = collected.candidates.into_iter().unzip();
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

/// A repository's tags as listed, before the policy's date rules: the
/// candidates (names the name rules left, with their dates) and the counts.
struct Collected {
    candidates: Vec<(TagFacts, Option<u64>)>,
    seen: u64,
    kept_by_name: u64,
    failed_details: u64,
    interrupted: bool,
    /// `Ok` only if every page was read.
    listed: Result<(), ApiError>,
}

/// Remembers which names were listed: a tag pushed between two page reads
/// shifts offset pages, so a name can come twice; it is one tag. Hashes, not
/// names, are kept; a collision would only leave a tag out of this pass,
/// never delete one.
struct SeenNames {
    hashes: HashSet<u64>,
    state: std::hash::RandomState,
}

impl SeenNames {
    fn new() -> SeenNames {
        SeenNames {
            hashes: HashSet::new(),
            state: std::hash::RandomState::new(),
        }
    }

    /// `true` the first time a name comes.
    fn first_time(&mut self, name: &str) -> bool {
        self.hashes.insert(self.state.hash_one(name))
    }
}

/// The name rules, and the `kept` event for a tag they keep.
fn kept_by_name(entry: &Entry, repository: &Repository, name: &str) -> bool {
    match policy::keep_by_name(name, &entry.rules) {
        Some(reason) => {
            log_kept(entry, repository, name, reason);
            true
        }
        None => false,
    }
}

/// A date field as sent; anything but a string or null is warned about and
/// counts as no date.
fn tag_date(
    entry: &Entry,
    repository: &Repository,
    name: &str,
    field: &str,
    value: Option<&serde_json::Value>,
) -> TagDate {
    match value {
        Some(serde_json::Value::String(text)) => TagDate::parse(Some(text)),
        None | Some(serde_json::Value::Null) => TagDate::parse(None),
        Some(odd) => {
            tracing::warn!(project = %entry.name, repository = %repository.path, tag_name = %name,
                field, value = %odd, "the tag's date is not a string; the tag is kept as undated");
            TagDate::parse(None)
        }
    }
}

/// GraphQL: the tags come with their dates, twenty a page.
async fn collect_graphql(client: &GitlabClient, entry: &Entry, repository: &Repository, gid: &str) -> Collected {
    let mut seen_names = SeenNames::new();
    let (mut candidates, mut seen, mut kept, mut unpublished) = (Vec::new(), 0u64, 0u64, 0u64);
    let listed = client
        .for_each_graphql_tag(gid, |node: TagNode| {
            if !seen_names.first_time(&node.name) {
                return;
            }
            seen += 1;
            if kept_by_name(entry, repository, &node.name) {
                kept += 1;
                return;
            }
            let (field, value) = match entry.age_from {
                // Only a missing date falls back; an odd one is no date (kept).
                AgeFrom::Published if !matches!(node.published_at, None | Some(serde_json::Value::Null)) => {
                    ("publishedAt", node.published_at.as_ref())
                }
                AgeFrom::Published => {
                    unpublished += 1;
                    tracing::debug!(project = %entry.name, repository = %repository.path, tag_name = %node.name,
                        "publishedAt is null; the tag's createdAt is its age");
                    ("createdAt", node.created_at.as_ref())
                }
                AgeFrom::Created => ("createdAt", node.created_at.as_ref()),
            };
            let created = tag_date(entry, repository, &node.name, field, value);
            let size = node.size();
            candidates.push((
                TagFacts {
                    name: node.name,
                    created,
                },
                size,
            ));
        })
        .await;
    if unpublished > 0 {
        tracing::warn!(
            operation = "published_at_missing",
            project = %entry.name,
            repository = %repository.path,
            tags = unpublished,
            "age_from is \"published\" but GitLab gives no publishedAt for these tags (no registry metadata database?); their createdAt is used"
        );
    }
    Collected {
        candidates,
        seen,
        kept_by_name: kept,
        failed_details: 0,
        interrupted: matches!(listed, Err(ApiError::Cancelled)),
        listed,
    }
}

/// REST: every tag name, then each candidate's details for its date. The
/// details are fetched while later pages are still being listed (on a real
/// GitLab a page takes long); nothing is decided, let alone deleted, before
/// the listing is complete.
async fn collect_rest(
    client: &GitlabClient,
    entry: &Entry,
    repository: &Repository,
    options: &PassOptions,
) -> Collected {
    let (names_tx, names_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let listing = async move {
        client
            .for_each_tag_name(repository.project_id, repository.id, |name| {
                let _ = names_tx.send(name);
            })
            .await
    };
    let (mut seen, mut kept, mut failed_details, mut interrupted) = (0u64, 0u64, 0u64, false);
    let mut seen_names = SeenNames::new();
    let names = stream::unfold(names_rx, |mut rx| async move { rx.recv().await.map(|name| (name, rx)) });
    let fetching = names
        .filter(|name| std::future::ready(seen_names.first_time(name)))
        .filter(|name| {
            seen += 1;
            let keep = kept_by_name(entry, repository, name);
            kept += u64::from(keep);
            std::future::ready(!keep)
        })
        .map(|name| async move {
            match client.tag_details(repository.project_id, repository.id, &name).await {
                Ok(Some(details)) => {
                    let created = tag_date(entry, repository, &name, "created_at", details.created_at.as_ref());
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
    let (listed, candidates) = tokio::join!(listing, fetching);
    Collected {
        candidates,
        seen,
        kept_by_name: kept,
        failed_details,
        interrupted,
        listed,
    }
}

/// Deletes up to twenty tags with one GraphQL mutation. GitLab's answer
/// names what it deleted; every other name is a `delete_failed`.
async fn delete_batch(
    client: &GitlabClient,
    entry: &Entry,
    repository: &Repository,
    gid: &str,
    batch: &[Doomed],
    options: &PassOptions,
    refused: &GraphqlRefused,
) -> PassReport {
    let mut report = PassReport::default();
    if refused.is_set() {
        for doomed in batch {
            report.add(&delete_one(client, entry, repository, doomed, false).await);
        }
        return report;
    }
    let names: Vec<&str> = batch.iter().map(|d| d.name.as_str()).collect();
    match client.destroy_tags(gid, &names).await {
        Ok(outcome) => {
            let deleted: HashSet<&str> = outcome.deleted_tag_names.iter().map(String::as_str).collect();
            let why = if outcome.errors.is_empty() {
                "GitLab did not delete it and gave no reason".to_owned()
            } else {
                outcome.errors.join("; ")
            };
            for doomed in batch {
                if deleted.contains(doomed.name.as_str()) {
                    report.add(&deleted_report(entry, repository, doomed, DeleteOutcome::Deleted));
                } else {
                    report.add(&delete_failed_report(entry, repository, doomed, &why));
                }
            }
        }
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(err) if options.api == ApiMode::Auto && err.graphql_unavailable() => {
            refused.set(
                entry,
                &err,
                "GraphQL cannot delete this entry's tags; using the REST API",
            );
            for doomed in batch {
                report.add(&delete_one(client, entry, repository, doomed, false).await);
            }
        }
        Err(err) => {
            let gone = match is_ambiguous(&err) {
                true => gone_names(client, repository, batch, options).await,
                false => HashSet::new(),
            };
            for doomed in batch {
                if gone.contains(doomed.name.as_str()) {
                    tracing::debug!(project = %entry.name, tag_name = %doomed.name, error = %err,
                        "the deletion failed, but the tag is gone");
                    report.add(&deleted_report(entry, repository, doomed, DeleteOutcome::AlreadyGone));
                } else {
                    report.add(&delete_failed_report(entry, repository, doomed, &err.explain()));
                }
            }
        }
    }
    report
}

/// Whether GitLab may have deleted the tags although the mutation failed:
/// no answer, a 5xx, a 200 whose body is broken, or a GraphQL error in place
/// of the payload (GitLab's 30 s GraphQL timeout can strike while its delete
/// service goes on). A permission error is no such case.
fn is_ambiguous(err: &ApiError) -> bool {
    match err {
        ApiError::Decode { .. } => true,
        ApiError::Graphql {
            kind: GraphqlFailure::Field,
            message,
            ..
        } => !message.contains("permission"),
        other => other.may_have_acted(),
    }
}

/// Which of the batch's names GitLab no longer has, each asked for exactly
/// (REST `GET …/tags/:name`, 404 = gone); a name whose check fails is not gone.
async fn gone_names<'b>(
    client: &GitlabClient,
    repository: &Repository,
    batch: &'b [Doomed],
    options: &PassOptions,
) -> HashSet<&'b str> {
    // Indices, not references, in the closure: see `run_pass`.
    let gone: Vec<Option<usize>> = stream::iter(0..batch.len())
        .map(|i| async move { is_gone(client, repository, &batch[i].name).await.then_some(i) })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    gone.into_iter().flatten().map(|i| batch[i].name.as_str()).collect()
}

/// Whether GitLab says the tag is not there (`GET …/tags/:name` is a 404);
/// a failed check is "not known to be gone".
async fn is_gone(client: &GitlabClient, repository: &Repository, name: &str) -> bool {
    matches!(
        client.tag_details(repository.project_id, repository.id, name).await,
        Ok(None)
    )
}

async fn delete_one(
    client: &GitlabClient,
    entry: &Entry,
    repository: &Repository,
    doomed: &Doomed,
    dry_run: bool,
) -> PassReport {
    if dry_run {
        // Nothing is freed in a dry run; `deleted` counts what would go.
        tracing::info!(
            operation = "dry_run",
            project = %entry.name,
            repository = %repository.path,
            tag_name = %doomed.name,
            tag_location = %repository.location,
            "would delete tag"
        );
        return PassReport {
            deleted: 1,
            ..PassReport::default()
        };
    }
    let mut outcome = client
        .delete_tag(repository.project_id, repository.id, &doomed.name)
        .await;
    if let Err(err) = &outcome
        && err.may_have_acted()
    {
        // Out of retries on an ambiguous failure: ask whether the tag is still there.
        if is_gone(client, repository, &doomed.name).await {
            tracing::debug!(project = %entry.name, tag_name = %doomed.name, error = %err, "the DELETE failed, but the tag is gone");
            outcome = Ok(DeleteOutcome::AlreadyGone);
        }
    }
    match outcome {
        Ok(outcome) => deleted_report(entry, repository, doomed, outcome),
        Err(ApiError::Cancelled) => PassReport {
            interrupted: true,
            ..PassReport::default()
        },
        Err(err) => delete_failed_report(entry, repository, doomed, &err.explain()),
    }
}

/// The `deleted` event and its counts.
fn deleted_report(entry: &Entry, repository: &Repository, doomed: &Doomed, outcome: DeleteOutcome) -> PassReport {
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
    PassReport {
        deleted: 1,
        bytes_freed: doomed.total_size.unwrap_or(0),
        ..PassReport::default()
    }
}

/// The `delete_failed` event and its counts: the tag is kept.
fn delete_failed_report(entry: &Entry, repository: &Repository, doomed: &Doomed, error: &str) -> PassReport {
    metrics().delete_error(&entry.name);
    tracing::error!(
        operation = "delete_failed",
        project = %entry.name,
        repository = %repository.path,
        tag_name = %doomed.name,
        tag_location = %repository.location,
        error,
        "cannot delete tag"
    );
    PassReport {
        errors: 1,
        kept: 1,
        ..PassReport::default()
    }
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
