//! Stage 2: the checked values of stage 1 combined into a [`Config`]:
//! `defaults` inherited by each entry, required fields, the default of each
//! field, and the rules across entries (at least one, no two that overlap).

use std::num::NonZeroU64;

use super::raw::{Named, Object, RawEntry, RawFields, RawFull};
use super::{AgeFrom, Config, ConfigForm, Entry, EntryKind, Problem, Target, problem};
use crate::policy::Rules;

/// The legacy form: a map of names to projects, no defaults, no daemon settings.
pub(super) fn legacy(Named(entries): Named<RawEntry>) -> Result<Config, Problem> {
    let defaults = RawFields::default();
    let entries = entries
        .into_iter()
        .map(|(name, raw)| {
            let path = name.clone();
            entry(name, path, EntryKind::Project, raw, &defaults)
        })
        .collect::<Result<_, _>>()?;
    finish(Config {
        form: ConfigForm::Legacy,
        schedule: None,
        run_on_start: false,
        concurrency: None,
        pass_timeout: None,
        max_requests_per_minute: None,
        api: None,
        entries,
    })
}

/// The full form: projects first, then groups, each in file order.
pub(super) fn full(raw: RawFull) -> Result<Config, Problem> {
    let defaults = raw.defaults.map(|Object(defaults)| defaults).unwrap_or_default();
    let mut entries = Vec::new();
    for (section, kind, named) in [
        ("projects", EntryKind::Project, raw.projects),
        ("groups", EntryKind::Group, raw.groups),
    ] {
        for (name, entry_raw) in named.map(|Named(entries)| entries).unwrap_or_default() {
            let path = format!("{section}.{name}");
            entries.push(entry(name, path, kind, entry_raw, &defaults)?);
        }
    }
    finish(Config {
        form: ConfigForm::Full,
        schedule: raw.schedule,
        run_on_start: raw.run_on_start.unwrap_or(false),
        concurrency: raw.concurrency,
        pass_timeout: raw.pass_timeout,
        max_requests_per_minute: raw.max_requests_per_minute,
        api: raw.api,
        entries,
    })
}

/// One entry, with `defaults` filling its gaps and each field's default the rest.
fn entry(name: String, path: String, kind: EntryKind, raw: RawEntry, defaults: &RawFields) -> Result<Entry, Problem> {
    let (id, fields) = raw.inherit(defaults);
    let target = id.ok_or_else(|| problem(&format!("{path}.id"), "is required (a numeric id or a full path)"))?;
    let delete_older_than = fields
        .delete_older_than
        .ok_or_else(|| problem(&path, "delete_older_than is required (in the entry or in defaults)"))?;
    Ok(Entry {
        name,
        kind,
        target,
        rules: Rules {
            delete_older_than,
            keep_n: fields.keep_n.unwrap_or(0),
            name_regex_delete: fields.name_regex_delete,
            name_regex_keep: fields.name_regex_keep,
            keep_latest: fields.keep_latest.unwrap_or(true),
        },
        repository_regex: fields.repository_regex,
        max_deletions: fields.max_deletions.map(NonZeroU64::get),
        enabled: fields.enabled.unwrap_or(true),
        age_from: fields.age_from.unwrap_or(AgeFrom::Published),
        age_from_set: fields.age_from.is_some(),
        json_path: path,
    })
}

/// The rules across entries.
fn finish(config: Config) -> Result<Config, Problem> {
    if config.entries.is_empty() {
        return Err(problem("", "names no project and no group to clean"));
    }
    check_overlaps(&config.entries)?;
    Ok(config)
}

/// Refuses two enabled entries that can reach the same repository: the same
/// project twice, or a project (or group) inside a group entry.
fn check_overlaps(entries: &[Entry]) -> Result<(), Problem> {
    let enabled: Vec<&Entry> = entries.iter().filter(|e| e.enabled).collect();
    for (i, later) in enabled.iter().enumerate() {
        for earlier in &enabled[..i] {
            if covers(earlier, later) || covers(later, earlier) {
                return Err(problem(
                    &format!("{}.id", later.json_path),
                    format!(
                        "covers the same repositories as {}: two policies for one repository are \
                         ambiguous, so merge them into one entry",
                        earlier.json_path
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether every repository of `inner` is also reached by `outer`, as far as
/// the config alone can tell (a numeric id and a path cannot be compared
/// offline; the pass catches those).
fn covers(outer: &Entry, inner: &Entry) -> bool {
    match (&outer.target, &inner.target) {
        (Target::Id(a), Target::Id(b)) => a == b && outer.kind == inner.kind,
        (Target::Path(a), Target::Path(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match outer.kind {
                EntryKind::Group => b == a || b.starts_with(&format!("{a}/")),
                EntryKind::Project => inner.kind == EntryKind::Project && a == b,
            }
        }
        _ => false,
    }
}
