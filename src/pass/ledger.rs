//! What a pass decided in each repository, noted for `plan` and the summary
//! table: counts, and — only where asked, in a dry run — the tags it would
//! delete. Never the tags it keeps, so memory grows with what is to go.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;

use super::{Doomed, PassReport};
use crate::gitlab::Repository;
use crate::policy::TagRef;

/// The pass's notes, one row per repository decided. Shared by the
/// repositories worked on at once; each notes itself once, when it is done.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Also note the tags a dry run would delete (for `plan`).
    with_tags: bool,
    rows: Mutex<Vec<LedgerRow>>,
}

/// One repository's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerRow {
    /// The config entry (`project` in the events).
    pub project: String,
    /// Repository id.
    pub repository_id: u64,
    /// The project the repository belongs to.
    pub project_id: u64,
    /// The repository's path.
    pub path: String,
    /// Its location, `registry.example.com/group/project/name`.
    pub location: String,
    /// Tags listed.
    pub tags_seen: u64,
    /// Tags deleted, or in a dry run that would be.
    pub deleted: u64,
    /// Tags kept.
    pub kept: u64,
    /// Tags kept, by reason as logged.
    pub kept_reasons: BTreeMap<&'static str, u64>,
    /// Bytes freed, or in a dry run that would be (where GitLab gave sizes).
    pub bytes: u64,
    /// Failures in this repository.
    pub errors: u64,
    /// Of `deleted`, by the rule that chose them: name, tags, bytes.
    pub by_rule: Vec<(String, u64, u64)>,
    /// Of `deleted`, those whose branch or merge request is gone: tags, bytes.
    pub ref_gone: (u64, u64),
    /// In a dry run of a ledger [`Ledger::with_tags`]: the tags that would go.
    pub tags: Vec<LedgerTag>,
}

/// A tag a dry run would delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerTag {
    /// Its name.
    pub name: String,
    /// The manifest digest, where GitLab gave it.
    pub digest: Option<String>,
    /// The date it was aged by.
    pub date: Option<Timestamp>,
    /// Bytes, where GitLab said.
    pub size: Option<u64>,
    /// The rule that chose it (`None`: an entry without `rules`).
    pub rule: Option<String>,
    /// Chosen because this branch or merge request is gone (`None`: by age).
    pub gone: Option<TagRef>,
}

impl Ledger {
    /// Notes counts only (the summary table after `once`).
    pub(crate) fn counts() -> Ledger {
        Ledger::default()
    }

    /// Notes counts and the tags a dry run would delete (`plan`).
    pub(crate) fn with_tags() -> Ledger {
        Ledger {
            with_tags: true,
            ..Ledger::default()
        }
    }

    /// Notes one repository: its report, and the tags it deleted or would.
    pub(super) fn note(
        &self,
        project: &str,
        repository: &Repository,
        report: &PassReport,
        doomed: &[Doomed],
        dry_run: bool,
    ) {
        let tags = match self.with_tags && dry_run {
            true => doomed
                .iter()
                .map(|d| LedgerTag {
                    name: d.name.clone(),
                    digest: d.digest.as_ref().map(ToString::to_string),
                    date: d.date,
                    size: d.size,
                    rule: d.rule.as_deref().map(str::to_owned),
                    gone: d.gone.clone(),
                })
                .collect(),
            false => Vec::new(),
        };
        let row = LedgerRow {
            project: project.to_owned(),
            repository_id: repository.id,
            project_id: repository.project_id,
            path: repository.path.clone(),
            location: repository.location.clone(),
            tags_seen: report.tags_seen,
            deleted: report.deleted,
            kept: report.kept,
            kept_reasons: report.kept_reasons.clone(),
            // A dry run frees nothing; what it would free is the chosen tags' sizes.
            bytes: match dry_run {
                true => doomed.iter().filter_map(|d| d.size).sum(),
                false => report.bytes_freed,
            },
            errors: report.errors,
            by_rule: report
                .deleted_by_rule
                .iter()
                .map(|(rule, (n, bytes))| (rule.to_string(), *n, *bytes))
                .collect(),
            ref_gone: report.deleted_ref_gone,
            tags,
        };
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(row);
    }

    /// The rows, ordered by entry and repository path (the pass works on
    /// repositories in whatever order they finish).
    pub(crate) fn into_rows(self) -> Vec<LedgerRow> {
        let mut rows = self.rows.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        rows.sort_by(|a, b| (&a.project, &a.path).cmp(&(&b.project, &b.path)));
        rows
    }
}
