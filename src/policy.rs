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
//! 6. the rest are ordered newest first and the first `keep_n` are kept;
//! 7. of the rest, those created before `now - delete_older_than` are deleted,
//!    the others kept as too new.
//!
//! There is no I/O here, and no way to reach "delete" but step 7.

use std::cmp::Reverse;
use std::time::Duration;

use jiff::Timestamp;
use regex::Regex;

/// Docker's first release (2013-03-20). A "creation" date before it comes from
/// a reproducible build stamping 1970 or 1980, not from a real build, and so
/// cannot tell the tag's age.
pub(crate) const FIRST_PLAUSIBLE_DATE: Timestamp = Timestamp::constant(1_363_737_600, 0);

/// The deletion rules of one config entry.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Tags created longer ago than this may go.
    pub delete_older_than: Duration,
    /// The n most recent candidates of each repository are kept whatever their age.
    pub keep_n: usize,
    /// Only tags whose whole name matches are candidates (`None`: every tag).
    pub name_regex_delete: Option<Regex>,
    /// Tags whose whole name matches are never deleted.
    pub name_regex_keep: Option<Regex>,
    /// Never delete a tag named `latest`.
    pub keep_latest: bool,
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
            KeepReason::ChangedSincePlan => "changed_since_plan",
            KeepReason::Error => "error",
        }
    }
}

/// What happens to one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Delete it (or, in a dry run, say it would be deleted).
    Delete,
    /// Keep it, for this reason.
    Keep(KeepReason),
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

/// Decides every tag of one repository. `result[i]` is the decision for `tags[i]`.
///
/// Tag names are unique within a repository; among tags with the same date the
/// order for `keep_n` is by name, so the result never depends on input order.
pub(crate) fn decide(tags: &[TagFacts], rules: &Rules, now: Timestamp) -> Vec<Decision> {
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

    let mut candidates: Vec<(Timestamp, &str, usize)> = tags
        .iter()
        .enumerate()
        .filter(|(i, _)| decisions[*i].is_none())
        .filter_map(|(i, tag)| Some((tag.created.usable()?, tag.name.as_str(), i)))
        .collect();
    candidates.sort_unstable_by_key(|&(created, name, _)| (Reverse(created), name));

    // A limit too long to subtract means nothing is old enough.
    let cutoff = jiff::SignedDuration::try_from(rules.delete_older_than)
        .ok()
        .and_then(|age| now.checked_sub(age).ok());
    for (rank, &(created, _, i)) in candidates.iter().enumerate() {
        decisions[i] = Some(if rank < rules.keep_n {
            Decision::Keep(KeepReason::KeepN)
        } else if cutoff.is_some_and(|cutoff| created < cutoff) {
            Decision::Delete
        } else {
            Decision::Keep(KeepReason::TooNew)
        });
    }
    decisions
        .into_iter()
        .map(|d| d.unwrap_or(Decision::Keep(KeepReason::NoDate)))
        .collect()
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
