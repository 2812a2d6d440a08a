//! Stage 2: the checked values of stage 1 combined into a [`Config`]:
//! `defaults` inherited by each entry, required fields, the default of each
//! field, and the rules across entries (at least one, no two that overlap).

use std::num::NonZeroU64;
use std::sync::Arc;

use regex::Regex;

use super::raw::{Named, Object, RawEntry, RawFields, RawFull, RawRule, RefGoneSetting};
use super::{AgeFrom, Config, ConfigForm, Entry, EntryKind, EntryRule, Problem, Target, problem};
use crate::duration::format_age;
use crate::policy::{Rule, Rules};

/// The fields an entry with `rules` may have beside them (the fuse counts
/// the whole entry).
const BESIDE_RULES: [&str; 2] = ["enabled", "max_deletions"];

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
fn entry(
    name: String,
    path: String,
    kind: EntryKind,
    mut raw: RawEntry,
    defaults: &RawFields,
) -> Result<Entry, Problem> {
    let raw_rules = raw.rules.take();
    if raw_rules.is_some()
        && let Some(field) = raw.fields_set().into_iter().find(|f| !BESIDE_RULES.contains(f))
    {
        return Err(problem(
            &format!("{path}.{field}"),
            "cannot be set beside \"rules\": set it in each rule (or in defaults), so that nobody wonders which one wins",
        ));
    }
    let (id, fields) = raw.inherit(defaults);
    let target = id.ok_or_else(|| problem(&format!("{path}.id"), "is required (a numeric id or a full path)"))?;
    let rules = match raw_rules {
        None => vec![rule(None, path.clone(), fields.clone())?],
        Some(raw_rules) => named_rules(&path, raw_rules, defaults)?,
    };
    Ok(Entry {
        name,
        kind,
        target,
        rules,
        max_deletions: fields.max_deletions.map(NonZeroU64::get),
        enabled: fields.enabled.unwrap_or(true),
        json_path: path,
    })
}

/// One rule from its fields (an entry's own, or a rule's with defaults).
fn rule(name: Option<Arc<str>>, path: String, fields: RawFields) -> Result<EntryRule, Problem> {
    let delete_older_than = fields
        .delete_older_than
        .ok_or_else(|| problem(&path, "delete_older_than is required (in the entry or in defaults)"))?;
    let delete_when_ref_gone = fields.delete_when_ref_gone.and_then(RefGoneSetting::into_option);
    if let Some(gone) = &delete_when_ref_gone
        && gone.grace >= delete_older_than
    {
        return Err(problem(
            &format!("{path}.delete_when_ref_gone.grace"),
            format!(
                "{} is not shorter than delete_older_than ({}): every tag it could delete goes by age first, \
                 so it would never delete anything",
                format_age(gone.grace),
                format_age(delete_older_than)
            ),
        ));
    }
    Ok(EntryRule {
        rule: Rule {
            name,
            repository_regex: fields.repository_regex,
            policy: Rules {
                delete_older_than,
                keep_n: fields.keep_n.unwrap_or(0),
                keep_n_by: fields.keep_n_by.map(|stream| stream.0),
                order_by: fields.order_by.unwrap_or_default(),
                name_regex_delete: fields.name_regex_delete,
                name_regex_keep: fields.name_regex_keep,
                keep_latest: fields.keep_latest.unwrap_or(true),
                delete_when_ref_gone,
            },
        },
        age_from: fields.age_from.unwrap_or(AgeFrom::Published),
        age_from_set: fields.age_from.is_some(),
        json_path: path,
    })
}

/// An entry's `rules`: each named, uniquely, and each able to govern some
/// tag as far as the config alone can tell.
fn named_rules(path: &str, raw_rules: Vec<Object<RawRule>>, defaults: &RawFields) -> Result<Vec<EntryRule>, Problem> {
    if raw_rules.is_empty() {
        return Err(problem(&format!("{path}.rules"), "must list at least one rule"));
    }
    let mut rules: Vec<EntryRule> = Vec::with_capacity(raw_rules.len());
    for (i, Object(mut raw)) in raw_rules.into_iter().enumerate() {
        let rule_path = format!("{path}.rules.{i}");
        let name = raw.name.take().ok_or_else(|| {
            problem(
                &format!("{rule_path}.name"),
                "is required (the rule's name, logged as rule)",
            )
        })?;
        if let Some(earlier) = rules.iter().find(|r| r.rule.name.as_deref() == Some(name.0.as_str())) {
            return Err(problem(
                &format!("{rule_path}.name"),
                format!(
                    "\"{}\" is already the name of {}: rule names must be unique in an entry",
                    name.0, earlier.json_path
                ),
            ));
        }
        let new = rule(Some(Arc::from(name.0)), rule_path, raw.inherit(defaults))?;
        if let Some(earlier) = rules.iter().find(|earlier| shadows(&earlier.rule, &new.rule)) {
            return Err(problem(
                &new.json_path,
                format!(
                    "can never govern a tag: {} comes first and its repository_regex and name_regex_delete match \
                     every tag this rule's do (each is absent, \".*\" or the same pattern), so remove or reorder one",
                    earlier.json_path
                ),
            ));
        }
        rules.push(new);
    }
    Ok(rules)
}

/// Whether `earlier` governs every tag `later` could, decided offline: for
/// both the repository and the name pattern, the earlier one is absent or
/// `.*` (it matches everything), or has the same source as the later one.
/// Patterns that differ in text but match the same names are not detected.
fn shadows(earlier: &Rule, later: &Rule) -> bool {
    fn source(re: Option<&Regex>) -> Option<&str> {
        re.map(super::unanchor).filter(|s| *s != ".*")
    }
    fn covers(earlier: Option<&Regex>, later: Option<&Regex>) -> bool {
        match (source(earlier), source(later)) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        }
    }
    covers(earlier.repository_regex.as_ref(), later.repository_regex.as_ref())
        && covers(
            earlier.policy.name_regex_delete.as_ref(),
            later.policy.name_regex_delete.as_ref(),
        )
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
