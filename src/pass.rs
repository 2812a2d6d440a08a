//! One cleanup pass over every enabled entry of a config.
//!
//! For each entry, concurrently: ask the [`Backend`] for its repositories;
//! then per repository for its **complete** tag list, and let
//! [`policy::decide`] judge it; then delete (or, in a dry run, only log)
//! what the policy chose — right after each repository's decisions, or, when
//! the entry has a `max_deletions` fuse, after all of the entry's decisions
//! and the fuse. Which API does the work, and how, is the backend's business;
//! this module decides which repositories, applies the policy and the fuse,
//! and tells: every decision is one event, inside the entry's and the
//! repository's spans (which give each line its `project` and `repository`),
//! and one count in the report and the metrics.
//!
//! Asked for a [`Ledger`], the pass also notes each repository's outcome in
//! it (for `plan` and the summary table); `apply` ([`apply_plan`]) carries
//! out a plan through the same deletion code, without the policy.
//!
//! Concurrency is bounded by the client's request limit, and work is driven
//! by bounded streams, never one spawned task per tag. A failure is logged
//! where it happens and counted; it never stops the rest of the pass, and it
//! never turns into a deletion.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;
use tracing::{Instrument, Span};

use crate::config::{AgeFrom, Config, Entry, EntryRule};
use crate::gitlab::{
    ApiError, Backend, DeleteResult, Digest, EntryApi, Listed, MergeRequestState, Owner, PushDate, RefKind, RefList,
    Repository,
};
use crate::metrics::metrics;
use crate::policy::{self, Decision, DeleteReason, KeepReason, RefState, Ruling, TagDate, TagFacts, TagRef};

mod apply;
mod ledger;

pub(crate) use apply::apply_plan;
pub(crate) use ledger::{Ledger, LedgerRow};

/// How a pass behaves, beyond the config.
#[derive(Debug, Clone)]
pub(crate) struct PassOptions {
    /// Decide and log, but send no DELETE.
    pub dry_run: bool,
    /// How many repositories and tags are worked on at once (the client
    /// bounds requests in flight; this bounds the futures waiting for it).
    pub concurrency: NonZeroUsize,
    /// TLS verification is off: warn.
    pub insecure: bool,
    /// At this age the pass stops starting work (none: it runs to the end).
    pub pass_timeout: Option<std::time::Duration>,
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
    /// Tags kept, by reason as logged (they add up to `kept`).
    pub kept_reasons: BTreeMap<&'static str, u64>,
    /// Failures: entries, repositories or tags that could not be done.
    pub errors: u64,
    /// Entries whose `max_deletions` fuse tripped.
    pub fuses_tripped: u64,
    /// Bytes the deleted tags took, where GitLab said.
    pub bytes_freed: u64,
    /// Shutdown stopped the pass before it was done.
    pub interrupted: bool,
    /// The pass reached its `pass_timeout` and stopped starting work.
    pub timed_out: bool,
    /// Of `deleted`, by the rule that chose them (entries with `rules`
    /// only): how many, and their bytes where GitLab said.
    pub deleted_by_rule: BTreeMap<Arc<str>, (u64, u64)>,
    /// Of `deleted`, those whose branch or merge request is gone
    /// (`delete_when_ref_gone`): how many, and their bytes.
    pub deleted_ref_gone: (u64, u64),
}

impl PassReport {
    /// Everything was done: no failure, no tripped fuse, no stop.
    pub fn is_complete(&self) -> bool {
        self.errors == 0 && self.fuses_tripped == 0 && !self.interrupted && !self.timed_out
    }

    /// `success`, `failed`, `incomplete` (the deadline came) or
    /// `interrupted` (a stop signal), as logged.
    pub fn result(&self) -> &'static str {
        if self.interrupted {
            "interrupted"
        } else if self.errors > 0 || self.fuses_tripped > 0 {
            "failed"
        } else if self.timed_out {
            "incomplete"
        } else {
            "success"
        }
    }

    /// Counts `n` tags kept for `reason`.
    fn keep(&mut self, reason: KeepReason, n: u64) {
        if n > 0 {
            self.kept += n;
            *self.kept_reasons.entry(reason.as_str()).or_default() += n;
        }
    }

    /// Counts one tag deleted (or, in a dry run, that would be) by its
    /// rule, and why, with `bytes` (where GitLab said).
    fn deleted_by(&mut self, doomed: &Doomed, bytes: Option<u64>) {
        let bytes = bytes.unwrap_or(0);
        if let Some(rule) = &doomed.rule {
            let counts = self.deleted_by_rule.entry(Arc::clone(rule)).or_default();
            counts.0 += 1;
            counts.1 = counts.1.saturating_add(bytes);
        }
        if doomed.gone.is_some() {
            self.deleted_ref_gone.0 += 1;
            self.deleted_ref_gone.1 = self.deleted_ref_gone.1.saturating_add(bytes);
        }
    }

    fn add(&mut self, other: &PassReport) {
        self.projects += other.projects;
        self.repositories += other.repositories;
        self.tags_seen += other.tags_seen;
        self.deleted += other.deleted;
        self.kept += other.kept;
        for (reason, n) in &other.kept_reasons {
            *self.kept_reasons.entry(reason).or_default() += n;
        }
        self.errors += other.errors;
        self.fuses_tripped += other.fuses_tripped;
        self.bytes_freed = self.bytes_freed.saturating_add(other.bytes_freed);
        self.interrupted |= other.interrupted;
        self.timed_out |= other.timed_out;
        for (rule, (n, bytes)) in &other.deleted_by_rule {
            let counts = self.deleted_by_rule.entry(Arc::clone(rule)).or_default();
            counts.0 += n;
            counts.1 = counts.1.saturating_add(*bytes);
        }
        self.deleted_ref_gone.0 += other.deleted_ref_gone.0;
        self.deleted_ref_gone.1 = self.deleted_ref_gone.1.saturating_add(other.deleted_ref_gone.1);
    }
}

/// What the backend needs to know of an entry: the push date as the most
/// demanding of its rules needs it.
pub(crate) fn owner(entry: &Entry) -> Owner<'_> {
    let need = |rule: &crate::config::EntryRule| match (rule.age_from, rule.age_from_set) {
        (AgeFrom::Published, true) => PushDate::Required,
        (AgeFrom::Published, false) => PushDate::Preferred,
        (AgeFrom::Created, _) => PushDate::Unused,
    };
    let needs: Vec<PushDate> = entry.rules.iter().map(need).collect();
    Owner {
        kind: entry.kind,
        target: &entry.target,
        push_date: [PushDate::Required, PushDate::Preferred]
            .into_iter()
            .find(|level| needs.contains(level))
            .unwrap_or(PushDate::Unused),
    }
}

/// Whether some rule of the entry asked for the last push in so many words.
fn requires_push_dates(entry: &Entry) -> bool {
    entry
        .rules
        .iter()
        .any(|rule| rule.age_from == AgeFrom::Published && rule.age_from_set)
}

/// The name of the rule that governs a tag, for its events (`None`: an
/// entry without `rules`, or a tag no rule governs).
fn rule_name<'a>(entry: &'a Entry, repository: &Repository, tag: &str) -> Option<&'a str> {
    if !entry.has_named_rules() {
        return None;
    }
    entry.rule_for(&repository.path, tag)?.rule.name.as_deref()
}

/// The branch or merge request a tag names, under its governing rule's
/// `delete_when_ref_gone` (`None`: it names none, or the rule has none).
fn tag_ref(entry: &Entry, repository: &Repository, tag: &str) -> Option<TagRef> {
    rule_tag_ref(entry.rule_for(&repository.path, tag)?, tag)
}

fn rule_tag_ref(rule: &EntryRule, tag: &str) -> Option<TagRef> {
    rule.rule.policy.delete_when_ref_gone.as_ref()?.tag_ref(tag)
}

/// What GitLab said of a project's branches, git tags and merge requests:
/// `None` where it could not say for sure.
struct RefStates {
    branches: Option<Arc<RefList>>,
    git_tags: Option<Arc<RefList>>,
    merge_requests: Option<HashMap<u64, MergeRequestState>>,
}

impl RefStates {
    /// The state of what a tag aged by `date` names.
    fn state(&self, named: &TagRef, date: Option<Timestamp>) -> RefState {
        let branch = named
            .branch
            .as_ref()
            .map(|slug| match (&self.branches, &self.git_tags) {
                (Some(branches), Some(git_tags)) => {
                    if branches.slugs.contains(slug) || git_tags.slugs.contains(slug) {
                        RefState::Present
                    } else if date.is_some_and(|date| date < branches.as_of.min(git_tags.as_of)) {
                        RefState::Gone
                    } else {
                        // Pushed after the lists were read: its branch may be newer than they are.
                        RefState::Present
                    }
                }
                _ => RefState::Unknown,
            });
        let merge_request =
            named.merge_request.map(
                |iid| match self.merge_requests.as_ref().and_then(|states| states.get(&iid)) {
                    Some(MergeRequestState::Open) => RefState::Present,
                    Some(MergeRequestState::Done) => RefState::Gone,
                    Some(MergeRequestState::NotFound | MergeRequestState::Other(_)) | None => RefState::Unknown,
                },
            );
        match (branch, merge_request) {
            (Some(a), Some(b)) => a.and(b),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => RefState::Unknown,
        }
    }
}

/// Asks GitLab about what the tags of one repository name: the project's
/// branches and git tags if any tag names a branch, the merge requests
/// named (unless the project is a fork). A failure is logged and counted
/// once per project and pass; what it leaves unknown is kept.
async fn look_up_refs(
    api: &EntryApi<'_>,
    project_id: u64,
    refs: &[&TagRef],
    listed_at: Option<tokio::time::Instant>,
    report: &mut PassReport,
) -> RefStates {
    let mut failed = |what: &'static str, err: ApiError| match err {
        ApiError::Cancelled => report.interrupted = true,
        ApiError::Deadline => report.timed_out = true,
        err => {
            if api.first_report(project_id, what) {
                report.errors += 1;
                tracing::error!(
                    operation = "ref_lookup_failed",
                    project_id,
                    what,
                    error = %err.explain(),
                    "cannot tell which branches or merge requests are gone; keeping their tags (ref_unknown)"
                );
            }
        }
    };
    let mut states = RefStates {
        branches: None,
        git_tags: None,
        merge_requests: None,
    };
    if refs.iter().any(|named| named.branch.is_some()) {
        for kind in [RefKind::Branches, RefKind::Tags] {
            match api.refs_of(project_id, kind, listed_at).await {
                Ok(list) => match kind {
                    RefKind::Branches => states.branches = Some(list),
                    RefKind::Tags => states.git_tags = Some(list),
                },
                Err(err) => {
                    failed(kind.plural(), err);
                    break;
                }
            }
        }
    }
    let iids: BTreeSet<u64> = refs.iter().filter_map(|named| named.merge_request).collect();
    if iids.is_empty() {
        return states;
    }
    match api.is_fork(project_id).await {
        Err(err) => failed("project", err),
        Ok(true) => {
            if api.first_report(project_id, "fork") {
                tracing::warn!(
                    operation = "merge_requests_of_a_fork",
                    project_id,
                    "this project is a fork: its pipelines for the upstream's merge requests carry the upstream's \
                     iids, so tags naming merge requests are not judged by them; keeping them (ref_unknown)"
                );
            }
        }
        Ok(false) => match api.merge_requests(project_id, &iids).await {
            Ok(found) => states.merge_requests = Some(found),
            Err(err) => failed("merge requests", err),
        },
    }
    if let Some(found) = &states.merge_requests {
        let not_found: Vec<u64> = found
            .iter()
            .filter(|(_, state)| **state == MergeRequestState::NotFound)
            .map(|(iid, _)| *iid)
            .collect();
        if !not_found.is_empty() {
            tracing::warn!(
                operation = "merge_request_not_found",
                project_id,
                iids = ?not_found,
                "tags name merge requests this project does not have (deleted, or built by another project's pipelines?); keeping them (ref_unknown)"
            );
        }
    }
    states
}

/// A tag the policy chose, waiting for the fuse and the delete.
struct Doomed {
    name: String,
    size: Option<u64>,
    /// The rule that chose it (`None`: an entry without `rules`).
    rule: Option<Arc<str>>,
    /// Logged with every decision about it, and recorded by `plan`.
    digest: Option<Digest>,
    /// The date the policy aged it by.
    date: Option<Timestamp>,
    /// Chosen because this branch or merge request is gone
    /// (`delete_when_ref_gone`); `None`: chosen by age.
    gone: Option<TagRef>,
}

impl Doomed {
    /// The event fields of a tag chosen because its branch or merge
    /// request is gone: `reason`, `ref`, `mr`.
    fn gone_fields(&self) -> (Option<&'static str>, Option<&str>, Option<u64>) {
        match &self.gone {
            Some(named) => (Some("ref_gone"), named.branch.as_deref(), named.merge_request),
            None => (None, None, None),
        }
    }
}

/// One repository after its decisions, before its deletions.
struct RepositoryPlan {
    repository: Repository,
    /// The repository's span: its events, also those logged later, go in it.
    span: Span,
    doomed: Vec<Doomed>,
}

/// The span every event of an entry is logged in. ERROR level, so that it
/// is on whenever any event is: its fields must be on every line.
fn entry_span(project: &str) -> Span {
    tracing::error_span!("entry", project = %project)
}

/// Runs one pass. Never fails as a whole: failures are in the report.
pub(crate) async fn run_pass(backend: &Backend, config: &Config, options: &PassOptions) -> PassReport {
    run_pass_into(backend, config, options, None).await
}

/// Runs one pass, and notes what it decided in each repository in `ledger`
/// (for `plan` and the summary table).
pub(crate) async fn run_pass_into(
    backend: &Backend,
    config: &Config,
    options: &PassOptions,
    ledger: Option<&Ledger>,
) -> PassReport {
    let started = Instant::now();
    let entries: Vec<&Entry> = config.enabled_entries().collect();
    let concurrency = options.concurrency.get();
    let backend = &start_pass(backend, options, entries.len());
    let apis: Vec<EntryApi<'_>> = entries.iter().map(|entry| backend.entry(owner(entry))).collect();
    let spans: Vec<Span> = entries.iter().map(|entry| entry_span(&entry.name)).collect();

    // Listing every entry's repositories first lets a repository that two
    // entries reach (a numeric id and a path naming one project) be caught
    // before either entry deletes anything in it.
    // Streams over indices, not references: a closure taking a reference
    // makes the pass future fail the `Send` check when it is spawned.
    let listings: Vec<Result<Vec<Repository>, ApiError>> = stream::iter(0..entries.len())
        .map(|i| apis[i].repositories().instrument(spans[i].clone()))
        .buffered(concurrency)
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
        .map(|(i, listing)| {
            run_entry(&apis[i], entries[i], listing, &claims, options, ledger).instrument(spans[i].clone())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    finish_pass(backend, options, &reports, started)
}

/// Logs `pass_started` (and the TLS warning); the backend for the pass.
fn start_pass(backend: &Backend, options: &PassOptions, projects: usize) -> Backend {
    tracing::info!(
        operation = "pass_started",
        dry_run = options.dry_run,
        projects,
        concurrency = options.concurrency.get(),
        "pass started"
    );
    if options.insecure {
        tracing::warn!(
            operation = "insecure",
            "TLS certificate verification is OFF (--insecure): GitLab's identity and the token are not protected"
        );
    }
    let deadline = options
        .pass_timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
    backend.for_pass(deadline)
}

/// Sums the entries' reports, logs `pass_finished` and feeds the metrics.
fn finish_pass(backend: &Backend, options: &PassOptions, reports: &[PassReport], started: Instant) -> PassReport {
    let mut total = PassReport::default();
    for report in reports {
        total.add(report);
    }
    total.interrupted |= backend.is_cancelled();
    if total.timed_out
        && let Some(timeout) = options.pass_timeout
    {
        tracing::warn!(
            operation = "pass_timeout",
            pass_timeout = %crate::duration::format_age(timeout),
            "the pass reached its pass_timeout: it started no new request; what it did not decide keeps its tags"
        );
    }
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

async fn run_entry(
    api: &EntryApi<'_>,
    entry: &Entry,
    listing: Result<Vec<Repository>, ApiError>,
    claims: &HashMap<u64, Vec<&str>>,
    options: &PassOptions,
    ledger: Option<&Ledger>,
) -> PassReport {
    let started = Instant::now();
    let mut report = PassReport {
        projects: 1,
        ..PassReport::default()
    };
    match listing {
        Err(ApiError::Cancelled) => report.interrupted = true,
        Err(ApiError::Deadline) => report.timed_out = true,
        Err(err) => {
            report.errors += 1;
            tracing::error!(
                operation = "project_failed",
                target = %entry.target,
                error = %err.explain(),
                "cannot list the container repositories"
            );
        }
        Ok(repositories) => clean_entry(api, entry, repositories, claims, options, ledger, &mut report).await,
    }
    log_project_finished(&report, options.dry_run, started);
    report
}

/// The `project_finished` event (`would_delete` in a dry run, else `deleted`).
fn log_project_finished(report: &PassReport, dry_run: bool, started: Instant) {
    let duration_ms = started.elapsed().as_millis() as u64;
    macro_rules! finished {
        ($count:ident) => {
            tracing::info!(
                operation = "project_finished",
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
    if dry_run {
        finished!(would_delete);
    } else {
        finished!(deleted);
    }
}

async fn clean_entry(
    api: &EntryApi<'_>,
    entry: &Entry,
    repositories: Vec<Repository>,
    claims: &HashMap<u64, Vec<&str>>,
    options: &PassOptions,
    ledger: Option<&Ledger>,
    report: &mut PassReport,
) {
    let mut selected = Vec::new();
    for repository in repositories {
        if !entry.selects_repository(&repository.path) {
            tracing::debug!(repository = %repository.path, "repository not matched by repository_regex");
            continue;
        }
        if let Some(status @ ("delete_scheduled" | "delete_ongoing")) = repository.status.as_deref() {
            tracing::info!(
                operation = "repository_skipped",
                repository = %repository.path,
                status,
                "GitLab is deleting this repository; nothing to clean"
            );
            continue;
        }
        let claimants = claims.get(&repository.id).map_or(&[][..], Vec::as_slice);
        if claimants.len() > 1 {
            report.errors += 1;
            tracing::error!(
                operation = "repository_failed",
                repository = %repository.path,
                error = %format!("reached by several config entries ({}); none of them cleans it", claimants.join(", ")),
                "ambiguous policy"
            );
            continue;
        }
        selected.push(repository);
    }

    let concurrency = options.concurrency.get();
    let project = entry.name.as_str();
    let note = |plan: &RepositoryPlan, report: &PassReport, doomed: &[Doomed]| {
        if let Some(ledger) = ledger {
            ledger.note(project, &plan.repository, report, doomed, options.dry_run);
        }
    };
    if entry.max_deletions.is_none() {
        // No fuse to wait for: each repository's deletions follow its own
        // decisions at once, which keeps the time between reading a tag's
        // date and deleting it short (GitLab has no conditional DELETE).
        let reports: Vec<PassReport> = stream::iter(selected)
            .map(|repository| async move {
                let (plan, mut report) = plan_repository(api, entry, repository).await;
                report.add(&delete_plan(api, project, &plan, options).await);
                note(&plan, &report, &plan.doomed);
                report
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        reports.iter().for_each(|r| report.add(r));
        return;
    }

    let mut plans: Vec<(RepositoryPlan, PassReport)> = stream::iter(selected)
        .map(|repository| plan_repository(api, entry, repository))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let would_delete: u64 = plans.iter().map(|(plan, _)| plan.doomed.len() as u64).sum();

    if let Some(max) = entry.max_deletions
        && would_delete > max
    {
        report.fuses_tripped += 1;
        tracing::error!(
            operation = "max_deletions_exceeded",
            would_delete,
            max_deletions = max,
            "this pass would delete more tags than max_deletions allows; deleting none in this project"
        );
        for (plan, plan_report) in &mut plans {
            let _in_repository = plan.span.enter();
            for doomed in &plan.doomed {
                log_kept(
                    project,
                    &plan.repository,
                    &doomed.name,
                    doomed.rule.as_deref(),
                    doomed.digest.as_ref(),
                    KeepReason::MaxDeletions,
                );
            }
            plan_report.keep(KeepReason::MaxDeletions, plan.doomed.len() as u64);
            note(plan, plan_report, &[]);
            report.add(plan_report);
        }
        return;
    }

    let plans = &plans;
    let reports: Vec<PassReport> = stream::iter(0..plans.len())
        .map(|p| async move {
            let (plan, plan_report) = &plans[p];
            let mut report = plan_report.clone();
            report.add(&delete_plan(api, project, plan, options).await);
            note(plan, &report, &plan.doomed);
            report
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    reports.iter().for_each(|r| report.add(r));
}

/// Lists a repository's tags with their dates, and decides.
async fn plan_repository(api: &EntryApi<'_>, entry: &Entry, repository: Repository) -> (RepositoryPlan, PassReport) {
    let span = tracing::error_span!("repository", repository = %repository.path);
    let mut report = PassReport {
        repositories: 1,
        ..PassReport::default()
    };
    let doomed = decide_repository(api, entry, &repository, &mut report)
        .instrument(span.clone())
        .await;
    let plan = RepositoryPlan {
        repository,
        span,
        doomed,
    };
    (plan, report)
}

/// The tags of one repository that the policy chose; every other tag is
/// logged as kept and counted in `report`.
async fn decide_repository(
    api: &EntryApi<'_>,
    entry: &Entry,
    repository: &Repository,
    report: &mut PassReport,
) -> Vec<Doomed> {
    let project = entry.name.as_str();
    // The name rules first: a tag they keep needs no date, so the backend
    // need not read it.
    let mut kept_by_name = PassReport::default();
    let mut wanted = |name: &str| match policy::keep_by_rules(&entry.rules, &repository.path, name) {
        (Some(reason), rule) => {
            kept_by_name.keep(reason, 1);
            log_kept(project, repository, name, rule.as_deref(), None, reason);
            false
        }
        (None, _) => true,
    };
    let mut candidates = Candidates::default();
    let mut take = |listed: Listed| candidates.take(entry, repository, listed);
    let listing = api.tags(repository, &mut wanted, &mut take).await;
    // Every tag listed was pushed by now: a branch list asked for later has
    // the branch of each, unless it is gone. Where every date is a push
    // date (GitLab's publishedAt came with each), the dates tell that instead.
    let listed_at = (!listing.push_dates || candidates.without_push_date > 0).then(tokio::time::Instant::now);
    report.tags_seen += listing.seen;
    report.add(&kept_by_name);
    report.keep(KeepReason::Error, candidates.unreadable);
    report.errors += candidates.unreadable;
    if let Err(unusable) = usable_listing(listing.complete, report) {
        if let Unusable::KeepAll(reason) = unusable {
            keep_all(
                project,
                repository,
                candidates.listed(entry, repository),
                reason,
                report,
            );
        }
        return Vec::new();
    }
    // An entry that asked for the last push must never be aged by the first:
    // whatever path led here, a listing without push dates decides nothing.
    if requires_push_dates(entry) && !listing.push_dates {
        report.errors += 1;
        keep_all(project, repository, candidates.listed(entry, repository), None, report);
        tracing::error!(
            operation = "repository_failed",
            error = "age_from \"published\" needs GraphQL's push dates, and these tags were listed through REST; nothing is deleted",
            "cannot age the tags by their last push; keeping them all"
        );
        return Vec::new();
    }
    // Through REST (an `auto` fallback) no tag has one, and `api_fallback` said so.
    if candidates.unpublished > 0 && listing.push_dates {
        tracing::warn!(
            operation = "published_at_missing",
            tags = candidates.unpublished,
            "age_from is \"published\" but GitLab gives no publishedAt for these tags (no registry metadata database?); their createdAt is used"
        );
    }

    let now = Timestamp::now();
    let mut rulings = policy::decide_rules(&candidates.facts, &entry.rules, &repository.path, now);
    // Only the tags whose fate hangs on their branch or merge request send
    // anyone to GitLab to ask.
    let pending: Vec<(usize, TagRef)> = rulings
        .iter()
        .enumerate()
        .filter(|(_, ruling)| ruling.decision == Decision::Keep(KeepReason::RefUnknown))
        .filter_map(|(i, _)| Some((i, tag_ref(entry, repository, &candidates.facts[i].name)?)))
        .collect();
    if !pending.is_empty() {
        let refs: Vec<&TagRef> = pending.iter().map(|(_, named)| named).collect();
        let states = look_up_refs(api, repository.project_id, &refs, listed_at, report).await;
        for (i, named) in &pending {
            let tag = &mut candidates.facts[*i];
            tag.ref_state = Some(states.state(named, tag.created.usable()));
        }
        rulings = policy::decide_rules(&candidates.facts, &entry.rules, &repository.path, now);
    }
    // The deadline came before GitLab could be asked: those tags are the
    // pass's to finish, not GitLab's to explain.
    let lookup_cut_short = report.timed_out;
    let mut doomed = Vec::new();
    let tags = candidates
        .facts
        .into_iter()
        .zip(candidates.sizes)
        .zip(candidates.digests);
    for (((tag, size), digest), Ruling { decision, rule }) in tags.zip(rulings) {
        match decision {
            Decision::Keep(reason) => {
                let reason = match reason {
                    KeepReason::RefUnknown if lookup_cut_short => KeepReason::PassTimeout,
                    reason => reason,
                };
                report.keep(reason, 1);
                log_kept(project, repository, &tag.name, rule.as_deref(), digest.as_ref(), reason);
            }
            Decision::Delete(reason) => doomed.push(Doomed {
                date: match tag.created {
                    TagDate::Known(date) => Some(date),
                    _ => None,
                },
                gone: match reason {
                    DeleteReason::RefGone => tag_ref(entry, repository, &tag.name),
                    DeleteReason::Age => None,
                },
                name: tag.name,
                size,
                rule,
                digest,
            }),
        }
    }
    doomed
}

/// Why a listing cannot be decided on.
enum Unusable {
    /// Shutdown: no DELETE can be sent any more, so there is nothing to decide.
    Interrupted,
    /// Keep every tag listed, logged with this reason where it is the tags'
    /// own (an error for the whole repository is logged once already).
    KeepAll(Option<KeepReason>),
}

/// Whether a listing is complete; if not, logs and counts why.
fn usable_listing(complete: Result<(), ApiError>, report: &mut PassReport) -> Result<(), Unusable> {
    match complete {
        Ok(()) => Ok(()),
        Err(ApiError::Cancelled) => {
            report.interrupted = true;
            Err(Unusable::Interrupted)
        }
        Err(ApiError::Deadline) => {
            // The deadline came before the listing was whole: nothing is decided.
            report.timed_out = true;
            Err(Unusable::KeepAll(Some(KeepReason::PassTimeout)))
        }
        Err(err @ ApiError::ListingIncomplete { listed, before, after }) => {
            report.errors += 1;
            tracing::error!(
                operation = "listing_incomplete",
                listed,
                count_before = before,
                count_after = after,
                error = %err.explain(),
                "GitLab cut the tag listing short; keeping every tag of the repository"
            );
            Err(Unusable::KeepAll(Some(KeepReason::ListingIncomplete)))
        }
        Err(err) => {
            report.errors += 1;
            tracing::error!(
                operation = "repository_failed",
                error = %err.explain(),
                "cannot list all the tags; keeping them all"
            );
            Err(Unusable::KeepAll(None))
        }
    }
}

/// Keeps every listed candidate of a repository that cannot be decided,
/// each logged as `kept` with `reason` where the reason is the tag's own
/// (an error for the whole repository is logged once by the caller).
fn keep_all<'t>(
    project: &str,
    repository: &Repository,
    tags: impl ExactSizeIterator<Item = (&'t str, Option<&'t str>, Option<&'t Digest>)>,
    reason: Option<KeepReason>,
    report: &mut PassReport,
) {
    report.keep(reason.unwrap_or(KeepReason::Error), tags.len() as u64);
    if let Some(reason) = reason {
        for (name, rule, digest) in tags {
            log_kept(project, repository, name, rule, digest, reason);
        }
    }
}

/// What the pass keeps of a repository's listing: the policy's view of each
/// wanted tag — its age by the entry's `age_from` — its size and its digest;
/// nothing more, so memory grows with the tags only by what the policy and
/// the events need.
#[derive(Default)]
struct Candidates {
    facts: Vec<TagFacts>,
    sizes: Vec<Option<u64>>,
    digests: Vec<Option<Digest>>,
    /// With `age_from: published`, tags without a push date (aged by
    /// `created`; one `published_at_missing` warning says how many).
    unpublished: u64,
    /// Tags whose details could not be read: kept, each an error.
    unreadable: u64,
    /// Tags without a push date (`publishedAt`): their dates may be build
    /// times, older than the branch they were pushed for.
    without_push_date: u64,
}

impl Candidates {
    /// Every listed candidate: name, governing rule, digest.
    fn listed<'c>(
        &'c self,
        entry: &'c Entry,
        repository: &'c Repository,
    ) -> impl ExactSizeIterator<Item = (&'c str, Option<&'c str>, Option<&'c Digest>)> {
        let tags = self.facts.iter().zip(&self.digests);
        tags.map(move |(t, d)| (t.name.as_str(), rule_name(entry, repository, &t.name), d.as_ref()))
    }

    fn take(&mut self, entry: &Entry, repository: &Repository, listed: Listed) {
        match listed {
            Listed::Record(record) => {
                self.without_push_date += u64::from(record.published.is_none());
                let rule = entry.rule_for(&repository.path, &record.name);
                // The date is the governing rule's `age_from` (a tag no rule
                // governs is not wanted, so the first rule's is only a fallback).
                let age_from = rule
                    .or(entry.rules.first())
                    .map_or(AgeFrom::Published, |rule| rule.age_from);
                let created = match (age_from, record.published) {
                    (AgeFrom::Published, Some(published)) => published,
                    (AgeFrom::Published, None) => {
                        self.unpublished += 1;
                        record.created
                    }
                    (AgeFrom::Created, _) => record.created,
                };
                // Unknown until asked, and only asked where it decides.
                let ref_state = rule
                    .and_then(|rule| rule_tag_ref(rule, &record.name))
                    .map(|_| RefState::Unknown);
                self.facts.push(TagFacts {
                    name: record.name,
                    created,
                    protected: record.deletable == Some(false),
                    ref_state,
                });
                self.sizes.push(record.size);
                self.digests.push(record.digest);
            }
            Listed::Unreadable(name, err) => {
                self.unreadable += 1;
                log_unreadable(
                    &entry.name,
                    repository,
                    &name,
                    rule_name(entry, repository, &name),
                    &err,
                );
            }
            Listed::Restart => {
                self.facts.clear();
                self.sizes.clear();
                self.digests.clear();
                self.unpublished = 0;
                self.without_push_date = 0;
            }
        }
    }
}

/// The event of a tag whose details could not be read: it is kept.
fn log_unreadable(project: &str, repository: &Repository, name: &str, rule: Option<&str>, err: &ApiError) {
    metrics().tag_kept(project, KeepReason::Error.as_str());
    tracing::error!(
        operation = "kept",
        reason = KeepReason::Error.as_str(),
        rule,
        tag_name = %name,
        tag_location = %repository.location,
        error = %err.explain(),
        "cannot read the tag's details; keeping it"
    );
}

/// Deletes (or, in a dry run, logs) the tags a repository's plan chose.
async fn delete_plan(api: &EntryApi<'_>, project: &str, plan: &RepositoryPlan, options: &PassOptions) -> PassReport {
    let mut report = PassReport::default();
    let repository = &plan.repository;
    if options.dry_run {
        let _in_repository = plan.span.enter();
        for doomed in &plan.doomed {
            // Nothing is freed in a dry run; `deleted` counts what would go.
            let (reason, git_ref, mr) = doomed.gone_fields();
            tracing::info!(
                operation = "dry_run",
                rule = doomed.rule.as_deref(),
                reason,
                "ref" = git_ref,
                mr,
                tag_name = %doomed.name,
                tag_location = %repository.location,
                digest = doomed.digest.as_ref().map(tracing::field::display),
                "would delete tag"
            );
            report.deleted += 1;
            report.deleted_by(doomed, doomed.size);
        }
        return report;
    }
    let names: Vec<&str> = plan.doomed.iter().map(|d| d.name.as_str()).collect();
    let mut done = |i: usize, result: DeleteResult| {
        let doomed = &plan.doomed[i];
        match result {
            DeleteResult::Deleted => report.add(&deleted(project, repository, doomed, false)),
            DeleteResult::AlreadyGone => report.add(&deleted(project, repository, doomed, true)),
            DeleteResult::Protected(detail) => {
                report.keep(KeepReason::Protected, 1);
                metrics().tag_kept(project, KeepReason::Protected.as_str());
                tracing::debug!(
                    operation = "kept",
                    reason = KeepReason::Protected.as_str(),
                    rule = doomed.rule.as_deref(),
                    tag_name = %doomed.name,
                    tag_location = %repository.location,
                    digest = doomed.digest.as_ref().map(tracing::field::display),
                    detail,
                    "GitLab refused to delete a protected tag; keeping it"
                );
            }
            DeleteResult::Failed(error) => report.add(&delete_failed(project, repository, doomed, &error)),
            DeleteResult::NotSent => report.interrupted = true,
            DeleteResult::TimedOut => {
                report.timed_out = true;
                report.keep(KeepReason::PassTimeout, 1);
                log_kept(
                    project,
                    repository,
                    &doomed.name,
                    doomed.rule.as_deref(),
                    doomed.digest.as_ref(),
                    KeepReason::PassTimeout,
                );
            }
        }
    };
    api.delete(repository, &names, &mut done)
        .instrument(plan.span.clone())
        .await;
    report
}

/// The `deleted` event and its counts.
fn deleted(project: &str, repository: &Repository, doomed: &Doomed, already_gone: bool) -> PassReport {
    metrics().tag_deleted(project, doomed.size);
    let (reason, git_ref, mr) = doomed.gone_fields();
    tracing::info!(
        operation = "deleted",
        rule = doomed.rule.as_deref(),
        reason,
        "ref" = git_ref,
        mr,
        tag_name = %doomed.name,
        tag_location = %repository.location,
        digest = doomed.digest.as_ref().map(tracing::field::display),
        already_gone,
        "deleted tag"
    );
    let mut report = PassReport {
        deleted: 1,
        bytes_freed: doomed.size.unwrap_or(0),
        ..PassReport::default()
    };
    report.deleted_by(doomed, doomed.size);
    report
}

/// The `delete_failed` event and its counts: the tag is kept.
fn delete_failed(project: &str, repository: &Repository, doomed: &Doomed, error: &str) -> PassReport {
    metrics().delete_error(project);
    let (reason, git_ref, mr) = doomed.gone_fields();
    tracing::error!(
        operation = "delete_failed",
        rule = doomed.rule.as_deref(),
        reason,
        "ref" = git_ref,
        mr,
        tag_name = %doomed.name,
        tag_location = %repository.location,
        digest = doomed.digest.as_ref().map(tracing::field::display),
        error,
        "cannot delete tag"
    );
    let mut report = PassReport {
        errors: 1,
        ..PassReport::default()
    };
    report.keep(KeepReason::Error, 1);
    report
}

fn log_kept(
    project: &str,
    repository: &Repository,
    tag_name: &str,
    rule: Option<&str>,
    digest: Option<&Digest>,
    reason: KeepReason,
) {
    metrics().tag_kept(project, reason.as_str());
    tracing::debug!(
        operation = "kept",
        reason = reason.as_str(),
        rule,
        tag_name,
        tag_location = %repository.location,
        digest = digest.map(tracing::field::display),
        "kept tag"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(slugs: &[&str], as_of: Timestamp) -> Option<Arc<RefList>> {
        Some(Arc::new(RefList {
            slugs: slugs.iter().map(|s| (*s).to_owned()).collect(),
            as_of,
            requested: tokio::time::Instant::now(),
        }))
    }

    fn branch(slug: &str) -> TagRef {
        TagRef {
            branch: Some(slug.to_owned()),
            merge_request: None,
        }
    }

    #[test]
    fn a_branch_is_gone_only_if_neither_list_has_it_and_the_tag_is_older_than_both() {
        let read: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let before = Some(read - jiff::SignedDuration::from_secs(1));
        let after = Some(read + jiff::SignedDuration::from_secs(1));
        let states = RefStates {
            branches: list(&["main", "feature-login"], read),
            git_tags: list(&["v1-2-3"], read + jiff::SignedDuration::from_secs(60)),
            merge_requests: None,
        };
        assert_eq!(states.state(&branch("main"), before), RefState::Present);
        assert_eq!(
            states.state(&branch("v1-2-3"), before),
            RefState::Present,
            "a tag pipeline's ref"
        );
        assert_eq!(states.state(&branch("feature-gone"), before), RefState::Gone);
        // Pushed after a list was read: its branch may be newer than the list.
        assert_eq!(states.state(&branch("feature-gone"), after), RefState::Present);
        assert_eq!(states.state(&branch("feature-gone"), None), RefState::Present);
        // Either list missing: unknown.
        for (branches, git_tags) in [(None, list(&[], read)), (list(&["main"], read), None)] {
            let states = RefStates {
                branches,
                git_tags,
                merge_requests: None,
            };
            assert_eq!(states.state(&branch("feature-gone"), before), RefState::Unknown);
        }
    }

    #[test]
    fn a_merge_request_is_gone_only_when_gitlab_says_merged_or_closed() {
        let states = RefStates {
            branches: None,
            git_tags: None,
            merge_requests: Some(HashMap::from([
                (1, MergeRequestState::Open),
                (2, MergeRequestState::Done),
                (3, MergeRequestState::NotFound),
                (4, MergeRequestState::Other("new".to_owned())),
            ])),
        };
        let mr = |iid| TagRef {
            branch: None,
            merge_request: Some(iid),
        };
        assert_eq!(states.state(&mr(1), None), RefState::Present);
        assert_eq!(states.state(&mr(2), None), RefState::Gone);
        assert_eq!(states.state(&mr(3), None), RefState::Unknown);
        assert_eq!(states.state(&mr(4), None), RefState::Unknown);
        assert_eq!(states.state(&mr(5), None), RefState::Unknown, "not asked");
        // Both named: the unknown branch list keeps it.
        let both = TagRef {
            branch: Some("x".to_owned()),
            merge_request: Some(2),
        };
        assert_eq!(states.state(&both, None), RefState::Unknown);
    }
}
