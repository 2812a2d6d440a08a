//! Which tags go: the deletion policy as a pure function.
//!
//! [`decide`] takes a repository's tags with their dates, the entry's [`Rules`]
//! and the current time, and returns one [`Decision`] per tag, in GitLab's
//! documented order (spec §3 step 4):
//!
//! 1. `latest` is kept (if `keep_latest`);
//! 2. tags whose whole name does not match `name_regex_delete` are kept;
//! 3. tags whose whole name matches `name_regex_keep` are kept;
//! 4. tags GitLab says the token may not delete (protected, immutable) are kept;
//! 5. tags with no usable date are kept;
//! 6. the rest are ranked (newest first, or highest version first with
//!    [`OrderBy::Semver`]), per stream when `keep_n_by` is set, and the first
//!    `keep_n` of each stream are kept;
//! 7. of the rest, those created before `now - delete_older_than` are deleted;
//!    so are those past `delete_when_ref_gone.grace` whose branch or merge
//!    request is gone ([`RefState::Gone`]); the others are kept as too new
//!    (or `ref_unknown`, when only the unknown state of their branch or
//!    merge request keeps them).
//!
//! An entry with several [`Rule`]s (spec §3a) is decided by [`decide_rules`]:
//! each tag goes through these steps under the first rule that governs it
//! alone, and a tag no rule governs is kept (`not_matched`).
//!
//! There is no I/O here, and no way to reach "delete" but step 7. Whether a
//! branch or merge request is gone is found out by the pass: a first
//! decision with every [`RefState::Unknown`] names the tags whose fate
//! hangs on it (kept `ref_unknown`), and only those are looked up.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use regex::Regex;

mod refs;

pub(crate) use refs::{RefGone, RefState, TagRef, slug};

/// Docker's first release (2013-03-20). A "creation" date before it comes from
/// a reproducible build stamping 1970 or 1980, not from a real build, and so
/// cannot tell the tag's age.
pub(crate) const FIRST_PLAUSIBLE_DATE: Timestamp = Timestamp::constant(1_363_737_600, 0);

/// The deletion rules of one config entry, or of one of its named rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Tags created longer ago than this may go.
    pub delete_older_than: Duration,
    /// The n first-ranked candidates of each repository (of each stream,
    /// with `keep_n_by`) are kept whatever their age.
    pub keep_n: usize,
    /// Groups candidates into streams by the named group `stream` (checked
    /// at load); candidates it does not match form one stream together.
    pub keep_n_by: Option<Regex>,
    /// How `keep_n` ranks candidates.
    pub order_by: OrderBy,
    /// Only tags whose whole name matches are candidates (`None`: every tag).
    pub name_regex_delete: Option<Regex>,
    /// Tags whose whole name matches are never deleted.
    pub name_regex_keep: Option<Regex>,
    /// Never delete a tag named `latest`.
    pub keep_latest: bool,
    /// Tags of gone branches and merge requests go after a grace period.
    pub delete_when_ref_gone: Option<RefGone>,
}

/// How `keep_n` ranks the candidates of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    /// Newest first; equal dates by name.
    #[default]
    Date,
    /// Highest SemVer 2.0 precedence first (see [`parse_version`]); equal
    /// precedence by date, then name; names that are not versions after
    /// every version, newest first.
    Semver,
}

/// One rule of an entry: which tags it governs, and how it decides them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name. `None` for an entry without `rules`: its one rule
    /// governs every tag of the repositories it selects, and
    /// `name_regex_delete` only makes a tag `not_matched` within it (after
    /// `latest`, in GitLab's order, as it always did).
    pub name: Option<Arc<str>>,
    /// Only tags of repositories whose whole path matches are governed.
    pub repository_regex: Option<Regex>,
    /// How the tags it governs are decided.
    pub policy: Rules,
}

impl Rule {
    /// Whether the rule may govern tags of this repository.
    pub(crate) fn selects_repository(&self, repository: &str) -> bool {
        self.repository_regex.as_ref().is_none_or(|re| re.is_match(repository))
    }

    /// Whether the rule governs this tag, if no earlier rule does.
    pub(crate) fn governs(&self, repository: &str, tag: &str) -> bool {
        self.selects_repository(repository)
            && (self.name.is_none() || self.policy.name_regex_delete.as_ref().is_none_or(|re| re.is_match(tag)))
    }
}

impl AsRef<Rule> for Rule {
    fn as_ref(&self) -> &Rule {
        self
    }
}

/// A tag's creation date as far as it can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TagDate {
    /// GitLab gave no date (`null`: multi-arch images, configs without `created`).
    Missing,
    /// GitLab gave a string that is not an RFC 3339 timestamp with offset.
    Unparsable,
    /// A date before [`FIRST_PLAUSIBLE_DATE`].
    Implausible(Timestamp),
    /// A usable date (a date in the future is usable: it makes the tag new).
    Known(Timestamp),
}

impl TagDate {
    /// Reads GitLab's `created_at` (`2019-01-06T16:49:51.272+00:00`, `…Z`, any offset).
    pub(crate) fn parse(created_at: Option<&str>) -> TagDate {
        let Some(text) = created_at else {
            return TagDate::Missing;
        };
        match text.trim().parse::<Timestamp>() {
            Ok(ts) if ts < FIRST_PLAUSIBLE_DATE => TagDate::Implausible(ts),
            Ok(ts) => TagDate::Known(ts),
            Err(_) => TagDate::Unparsable,
        }
    }

    /// The date, if it can be used to age the tag.
    pub(crate) fn usable(self) -> Option<Timestamp> {
        match self {
            TagDate::Known(ts) => Some(ts),
            _ => None,
        }
    }
}

/// Why a tag is kept. The names are the `reason` field of `kept` log events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum KeepReason {
    /// Named `latest` and `keep_latest` is on.
    Latest,
    /// Does not match `name_regex_delete`.
    NotMatched,
    /// Matches `name_regex_keep`.
    NameRegexKeep,
    /// GitLab says the token's user may not delete it (a tag protection
    /// rule above the user's role, or an immutable tag).
    Protected,
    /// No usable creation date.
    NoDate,
    /// Among the `keep_n` newest candidates.
    KeepN,
    /// Younger than the age limit.
    TooNew,
    /// The project's `max_deletions` fuse tripped (decided by the pass, not here).
    MaxDeletions,
    /// GitLab cut the repository's listing short (decided by the pass, not here).
    ListingIncomplete,
    /// The pass reached its `pass_timeout` before the tag was decided or
    /// deleted (decided by the pass, not here).
    PassTimeout,
    /// Past `delete_when_ref_gone.grace` but not `delete_older_than`, and
    /// whether its branch or merge request is gone is not known.
    RefUnknown,
    /// `apply`: the tag's digest is not the one the plan recorded (decided by
    /// the pass, not here).
    ChangedSincePlan,
    /// Its details could not be read, or its deletion failed (decided by the
    /// pass, not here; an error is logged with it).
    Error,
}

impl KeepReason {
    /// The reason as logged.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeepReason::Latest => "latest",
            KeepReason::NotMatched => "not_matched",
            KeepReason::NameRegexKeep => "name_regex_keep",
            KeepReason::Protected => "protected",
            KeepReason::NoDate => "no_date",
            KeepReason::KeepN => "keep_n",
            KeepReason::TooNew => "too_new",
            KeepReason::MaxDeletions => "max_deletions",
            KeepReason::ListingIncomplete => "listing_incomplete",
            KeepReason::PassTimeout => "pass_timeout",
            KeepReason::RefUnknown => "ref_unknown",
            KeepReason::ChangedSincePlan => "changed_since_plan",
            KeepReason::Error => "error",
        }
    }
}

/// Why a tag goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeleteReason {
    /// Older than `delete_older_than`.
    Age,
    /// Older than `delete_when_ref_gone.grace`, and its branch or merge
    /// request is gone.
    RefGone,
}

/// What happens to one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Delete it (or, in a dry run, say it would be deleted).
    Delete(DeleteReason),
    /// Keep it, for this reason.
    Keep(KeepReason),
}

/// A decision and the rule that made it (`None`: an entry without `rules`,
/// or a tag no rule governs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ruling {
    /// What happens to the tag.
    pub decision: Decision,
    /// The name of the rule that governs it.
    pub rule: Option<Arc<str>>,
}

/// A tag as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagFacts {
    /// The tag's name.
    pub name: String,
    /// The date that ages it (`age_from`).
    pub created: TagDate,
    /// GitLab says it may not be deleted by this token.
    pub protected: bool,
    /// Whether the branch or merge request the name names is there
    /// (`None`: it names none, or its rule has no `delete_when_ref_gone`).
    pub ref_state: Option<RefState>,
}

/// Steps 1–3: what the name alone decides. `None` means the tag is a candidate,
/// and its date is needed (so the pass asks GitLab for details only then).
pub(crate) fn keep_by_name(name: &str, rules: &Rules) -> Option<KeepReason> {
    if rules.keep_latest && name == "latest" {
        return Some(KeepReason::Latest);
    }
    if let Some(delete) = &rules.name_regex_delete
        && !delete.is_match(name)
    {
        return Some(KeepReason::NotMatched);
    }
    if let Some(keep) = &rules.name_regex_keep
        && keep.is_match(name)
    {
        return Some(KeepReason::NameRegexKeep);
    }
    None
}

/// The index of the first rule that governs a tag of a repository
/// (spec §3a: first match, like a firewall), if any.
pub(crate) fn governing_rule<R: AsRef<Rule>>(rules: &[R], repository: &str, tag: &str) -> Option<usize> {
    rules.iter().position(|rule| rule.as_ref().governs(repository, tag))
}

/// Steps 1–3 under the governing rule: what the name alone decides, and
/// which rule decided it. A `None` decision means the tag is a candidate of
/// that rule and its date is needed.
pub(crate) fn keep_by_rules<R: AsRef<Rule>>(
    rules: &[R],
    repository: &str,
    tag: &str,
) -> (Option<KeepReason>, Option<Arc<str>>) {
    match governing_rule(rules, repository, tag) {
        Some(i) => {
            let rule = rules[i].as_ref();
            (keep_by_name(tag, &rule.policy), rule.name.clone())
        }
        None => (Some(KeepReason::NotMatched), None),
    }
}

/// Decides every tag of one repository under an entry's rules:
/// `result[i]` is the ruling for `tags[i]`. Each rule decides the tags it
/// governs as [`decide`] does, `keep_n` counting only those; a tag no rule
/// governs is kept (`not_matched`).
pub(crate) fn decide_rules<R: AsRef<Rule>>(
    tags: &[TagFacts],
    rules: &[R],
    repository: &str,
    now: Timestamp,
) -> Vec<Ruling> {
    let mut governed: Vec<Vec<usize>> = vec![Vec::new(); rules.len()];
    let mut rulings: Vec<Ruling> = tags
        .iter()
        .enumerate()
        .map(|(i, tag)| {
            if let Some(r) = governing_rule(rules, repository, &tag.name) {
                governed[r].push(i);
            }
            Ruling {
                decision: Decision::Keep(KeepReason::NotMatched),
                rule: None,
            }
        })
        .collect();
    for (rule, indices) in rules.iter().map(AsRef::as_ref).zip(governed) {
        let part: Vec<&TagFacts> = indices.iter().map(|&i| &tags[i]).collect();
        for (i, decision) in indices.into_iter().zip(decide(&part, &rule.policy, now)) {
            rulings[i] = Ruling {
                decision,
                rule: rule.name.clone(),
            };
        }
    }
    rulings
}

/// A candidate for `keep_n`: a tag with a usable date that nothing else keeps.
struct Candidate<'a> {
    created: Timestamp,
    name: &'a str,
    version: Option<semver::Version>,
    index: usize,
}

/// Decides every tag of one repository. `result[i]` is the decision for `tags[i]`.
///
/// Tag names are unique within a repository; among tags that rank equal the
/// order for `keep_n` is by name, so the result never depends on input order.
pub(crate) fn decide<T: Borrow<TagFacts>>(tags: &[T], rules: &Rules, now: Timestamp) -> Vec<Decision> {
    let tags: Vec<&TagFacts> = tags.iter().map(Borrow::borrow).collect();
    let mut decisions: Vec<Option<Decision>> = tags
        .iter()
        .map(|tag| match keep_by_name(&tag.name, rules) {
            Some(reason) => Some(Decision::Keep(reason)),
            // A protected tag is not a candidate: it neither goes nor takes a keep_n place.
            None if tag.protected => Some(Decision::Keep(KeepReason::Protected)),
            None if tag.created.usable().is_none() => Some(Decision::Keep(KeepReason::NoDate)),
            None => None,
        })
        .collect();

    // Streams by their captured name; `None` is the stream of the names
    // keep_n_by does not match (and the only one without keep_n_by).
    let mut streams: BTreeMap<Option<&str>, Vec<Candidate<'_>>> = BTreeMap::new();
    for (index, tag) in tags.iter().enumerate() {
        let (None, Some(created)) = (decisions[index], tag.created.usable()) else {
            continue;
        };
        let name = tag.name.as_str();
        let stream = rules
            .keep_n_by
            .as_ref()
            .and_then(|re| re.captures(name))
            .and_then(|caps| caps.name("stream"))
            .map(|m| m.as_str());
        let version = match rules.order_by {
            OrderBy::Date => None,
            OrderBy::Semver => parse_version(name),
        };
        streams.entry(stream).or_default().push(Candidate {
            created,
            name,
            version,
            index,
        });
    }

    let age_cutoff = cutoff(now, rules.delete_older_than);
    let grace_cutoff = rules
        .delete_when_ref_gone
        .as_ref()
        .and_then(|gone| cutoff(now, gone.grace));
    for candidates in streams.values_mut() {
        candidates.sort_unstable_by(|a, b| rank(a, b));
        for (rank, candidate) in candidates.iter().enumerate() {
            let older_than = |cutoff: Option<Timestamp>| cutoff.is_some_and(|cutoff| candidate.created < cutoff);
            decisions[candidate.index] = Some(if rank < rules.keep_n {
                Decision::Keep(KeepReason::KeepN)
            } else if older_than(age_cutoff) {
                Decision::Delete(DeleteReason::Age)
            } else if older_than(grace_cutoff)
                && let Some(state) = tags[candidate.index].ref_state
            {
                match state {
                    RefState::Gone => Decision::Delete(DeleteReason::RefGone),
                    RefState::Unknown => Decision::Keep(KeepReason::RefUnknown),
                    RefState::Present => Decision::Keep(KeepReason::TooNew),
                }
            } else {
                Decision::Keep(KeepReason::TooNew)
            });
        }
    }
    decisions
        .into_iter()
        .map(|d| d.unwrap_or(Decision::Keep(KeepReason::NoDate)))
        .collect()
}

/// The time before which a tag is older than `age`. A limit too long to
/// subtract means nothing is old enough.
fn cutoff(now: Timestamp, age: Duration) -> Option<Timestamp> {
    jiff::SignedDuration::try_from(age)
        .ok()
        .and_then(|age| now.checked_sub(age).ok())
}

/// The `keep_n` ranking, first kept first: versions by precedence (only
/// with `order_by: semver` do candidates carry one), then newest, then by
/// name. Names are unique in a repository, so this is a total order.
fn rank(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    let by_version = match (&a.version, &b.version) {
        (Some(va), Some(vb)) => vb.cmp_precedence(va),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_version
        .then_with(|| b.created.cmp(&a.created))
        .then_with(|| a.name.cmp(b.name))
}

/// Reads a tag name as a SemVer 2.0 version, leniently: one leading `v` is
/// allowed (`v1.2.3`), and a two-part `MAJOR.MINOR` (`1.2`, `v3.11-rc1`)
/// reads as `MAJOR.MINOR.0`. Anything else the `semver` crate refuses
/// (`1`, `01.2.3`, `latest`) is not a version.
pub(crate) fn parse_version(name: &str) -> Option<semver::Version> {
    let text = name.strip_prefix('v').unwrap_or(name);
    if let Ok(version) = semver::Version::parse(text) {
        return Some(version);
    }
    let (core, suffix) = text.split_at(text.find(['-', '+']).unwrap_or(text.len()));
    if core.matches('.').count() == 1 {
        semver::Version::parse(&format!("{core}.0{suffix}")).ok()
    } else {
        None
    }
}

/// Compiles a config regex so that it must match the whole string, like
/// GitLab's cleanup policy (`\A(?:…)\z`).
pub(crate) fn whole_match_regex(pattern: &str) -> Result<Regex, regex::Error> {
    // The pattern must be a regex on its own: pasted into the anchors, an
    // unbalanced `a)|(.*` would otherwise escape them and match everything.
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build()?;
    regex::RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
        .size_limit(1 << 20)
        .build()
}

#[cfg(test)]
mod tests;
