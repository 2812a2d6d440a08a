//! `apply`: deletes exactly the tags of a plan that are unchanged since its
//! repository was listed again (GitLab's DELETE has no digest condition, so
//! a re-push between that listing and the DELETE is not seen).
//!
//! No policy is evaluated. Each of the plan's repositories with a tag to
//! delete is listed once more, through the same backend and with the same
//! completeness check as a pass (an incomplete listing keeps everything);
//! a planned tag is deleted only if it is still there with the `sha256:`
//! digest the plan recorded. One whose digest changed (re-pushed), or that
//! the plan has no such digest for, is kept (`changed_since_plan`); one that is gone is
//! `deleted` with `already_gone: true`, without a request. The deletions go
//! through the pass's own machinery: batches, verification, protected tags.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use super::{
    Doomed, Ledger, PassOptions, PassReport, RepositoryPlan, Unusable, delete_plan, deleted, entry_span, finish_pass,
    log_kept, log_project_finished, log_unreadable, start_pass, usable_listing,
};
use crate::config::{EntryKind, Target};
use crate::gitlab::{Backend, Digest, EntryApi, Listed, Owner, PushDate, Repository};
use crate::metrics::metrics;
use crate::plan::{Plan, PlanEntry, PlanReason, PlanRepository};
use crate::policy::{KeepReason, TagRef};

/// Carries out a plan. Never fails as a whole: failures are in the report.
pub(crate) async fn apply_plan(
    backend: &Backend,
    plan: &Plan,
    options: &PassOptions,
    ledger: Option<&Ledger>,
) -> PassReport {
    let started = Instant::now();
    let backend = &start_pass(backend, options, plan.entries.len());
    let reports: Vec<PassReport> = stream::iter(&plan.entries)
        .map(|entry| apply_entry(backend, entry, options, ledger).instrument(entry_span(&entry.project)))
        .buffer_unordered(options.concurrency.get())
        .collect()
        .await;
    finish_pass(backend, options, &reports, started)
}

async fn apply_entry(
    backend: &Backend,
    entry: &PlanEntry,
    options: &PassOptions,
    ledger: Option<&Ledger>,
) -> PassReport {
    // The repositories are known by id: the owner is never listed, and no
    // date is read, so it needs no push date.
    let target = Target::Id(entry.repositories.first().map_or(0, |r| r.project_id));
    let api = backend.entry(Owner {
        kind: EntryKind::Project,
        target: &target,
        push_date: PushDate::Unused,
    });
    let api = &api;
    let mut report = PassReport {
        projects: 1,
        ..PassReport::default()
    };
    let project = entry.project.as_str();
    let started = Instant::now();
    let reports: Vec<PassReport> = stream::iter(entry.repositories.iter().filter(|r| !r.delete.is_empty()))
        .map(|planned| async move {
            let repository = api.known_repository(planned.id, planned.project_id, &planned.path, &planned.location);
            let span = tracing::error_span!("repository", repository = %repository.path);
            let (doomed, mut report) = recheck(api, project, &repository, planned, options)
                .instrument(span.clone())
                .await;
            let plan = RepositoryPlan {
                repository,
                span,
                doomed,
            };
            report.add(&delete_plan(api, project, &plan, options).await);
            if let Some(ledger) = ledger {
                ledger.note(project, &plan.repository, &report, &plan.doomed, options.dry_run);
            }
            report
        })
        .buffer_unordered(options.concurrency.get())
        .collect()
        .await;
    reports.iter().for_each(|r| report.add(r));
    log_project_finished(&report, options.dry_run, started);
    report
}

/// What the listing says of a planned tag now.
enum Found {
    /// It is there, with this digest.
    Listed {
        digest: Option<Digest>,
        deletable: Option<bool>,
    },
    /// It is there, but its details could not be read (logged, counted).
    Unreadable,
}

/// Lists the repository again; returns the planned tags still there with
/// their planned digest. Every other planned tag is logged and counted here.
async fn recheck(
    api: &EntryApi<'_>,
    project: &str,
    repository: &Repository,
    planned: &PlanRepository,
    options: &PassOptions,
) -> (Vec<Doomed>, PassReport) {
    let mut report = PassReport {
        repositories: 1,
        ..PassReport::default()
    };
    let index: HashMap<&str, usize> = planned
        .delete
        .iter()
        .enumerate()
        .map(|(i, tag)| (tag.name.as_str(), i))
        .collect();
    let mut found: Vec<Option<Found>> = planned.delete.iter().map(|_| None).collect();
    let mut unreadable = 0u64;
    let mut wanted = |name: &str| index.contains_key(name);
    let mut take = |listed: Listed| match listed {
        Listed::Record(record) => {
            if let Some(&i) = index.get(record.name.as_str()) {
                found[i] = Some(Found::Listed {
                    digest: record.digest,
                    deletable: record.deletable,
                });
            }
        }
        Listed::Unreadable(name, err) => {
            unreadable += 1;
            log_unreadable(project, repository, &name, None, &err);
            if let Some(&i) = index.get(name.as_str()) {
                found[i] = Some(Found::Unreadable);
            }
        }
        Listed::Restart => found.iter_mut().for_each(|f| *f = None),
    };
    let listing = api.tags(repository, &mut wanted, &mut take).await;
    report.tags_seen += listing.seen;
    report.keep(KeepReason::Error, unreadable);
    report.errors += unreadable;
    let planned_digests: Vec<Option<Digest>> = planned
        .delete
        .iter()
        .map(|tag| tag.digest.as_deref().map(Digest::parse))
        .collect();
    if let Err(unusable) = usable_listing(listing.complete, &mut report) {
        if let Unusable::KeepAll(reason) = unusable {
            let tags = planned.delete.iter().zip(&planned_digests);
            let tags = tags.map(|(tag, digest)| (tag.name.as_str(), tag.rule.as_deref(), digest.as_ref()));
            super::keep_all(project, repository, tags, reason, &mut report);
        }
        return (Vec::new(), report);
    }

    let mut doomed = Vec::new();
    for ((tag, planned_digest), found) in planned.delete.iter().zip(planned_digests).zip(found) {
        let candidate = Doomed {
            name: tag.name.clone(),
            size: tag.size,
            rule: tag.rule.as_deref().map(Into::into),
            digest: planned_digest,
            date: tag.date.as_deref().and_then(|d| d.parse().ok()),
            gone: tag.reason.map(|PlanReason::RefGone| TagRef {
                branch: tag.git_ref.clone(),
                merge_request: tag.mr,
            }),
        };
        let (digest, deletable) = match found {
            // Gone: deleted by someone else, or by an earlier apply.
            None => {
                report.add(&gone(project, repository, candidate, options.dry_run));
                continue;
            }
            // Neither gone nor shown unchanged: kept, logged and counted above.
            Some(Found::Unreadable) => continue,
            Some(Found::Listed { digest, deletable }) => (digest, deletable),
        };
        if deletable == Some(false) {
            report.keep(KeepReason::Protected, 1);
            log_kept(
                project,
                repository,
                &tag.name,
                tag.rule.as_deref(),
                digest.as_ref(),
                KeepReason::Protected,
            );
        } else if matches!(candidate.digest, Some(Digest::Sha256(_))) && digest == candidate.digest {
            // Only a real manifest digest proves it is the planned image.
            doomed.push(candidate);
        } else {
            // Re-pushed since the plan, or the plan cannot show it unchanged.
            report.keep(KeepReason::ChangedSincePlan, 1);
            metrics().tag_kept(project, KeepReason::ChangedSincePlan.as_str());
            tracing::info!(
                operation = "kept",
                reason = KeepReason::ChangedSincePlan.as_str(),
                rule = tag.rule.as_deref(),
                tag_name = %tag.name,
                tag_location = %repository.location,
                digest = digest.as_ref().map(tracing::field::display),
                planned_digest = tag.digest.as_deref(),
                "the tag's digest is not the one in the plan (re-pushed?); keeping it"
            );
        }
    }
    (doomed, report)
}

/// A planned tag that is not there any more: `deleted` with `already_gone`
/// (in a dry run, `dry_run` with `already_gone`); no request is sent, and
/// the bytes are not counted as freed: someone else freed them.
fn gone(project: &str, repository: &Repository, tag: Doomed, dry_run: bool) -> PassReport {
    if !dry_run {
        return deleted(project, repository, &Doomed { size: None, ..tag }, true);
    }
    let (reason, git_ref, mr) = tag.gone_fields();
    tracing::info!(
        operation = "dry_run",
        rule = tag.rule.as_deref(),
        reason,
        "ref" = git_ref,
        mr,
        tag_name = %tag.name,
        tag_location = %repository.location,
        digest = tag.digest.as_ref().map(tracing::field::display),
        already_gone = true,
        "the planned tag is gone already"
    );
    let mut report = PassReport {
        deleted: 1,
        ..PassReport::default()
    };
    report.deleted_by(&tag, None);
    report
}
