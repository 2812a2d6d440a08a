//! `delete_when_ref_gone` (spec §3b): which branch or merge request a tag
//! was built for, read from its name, and GitLab's `CI_COMMIT_REF_SLUG`.
//!
//! The policy only needs to know, for each such tag, whether its branch or
//! merge request is there ([`RefState`]); finding out is the pass's job.

use std::time::Duration;

use regex::Regex;

/// GitLab cuts `CI_COMMIT_REF_SLUG` to this many bytes.
pub(crate) const MAX_SLUG_BYTES: usize = 63;

/// `delete_when_ref_gone`: a tag built for a branch or merge request that is
/// gone may go once older than `grace`, whatever `delete_older_than` says.
#[derive(Debug, Clone)]
pub struct RefGone {
    /// A whole-match regex with a named group `ref` (a branch's slug) or
    /// `mr` (a merge request's iid), or both (checked at load).
    pub tag_regex: Regex,
    /// How old a tag of a gone branch or merge request must be to go.
    pub grace: Duration,
}

/// What a tag's name says it was built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TagRef {
    /// The branch, as its slug (`ref` capture, slugged again).
    pub branch: Option<String>,
    /// The merge request's iid (`mr` capture).
    pub merge_request: Option<u64>,
}

impl RefGone {
    /// The branch and merge request a tag name names, if any. A capture
    /// that names nothing usable (empty, or not an iid) makes the name no
    /// reference at all, even beside a usable one: the tag is not judged by
    /// this rule.
    pub(crate) fn tag_ref(&self, name: &str) -> Option<TagRef> {
        let captures = self.tag_regex.captures(name)?;
        let branch = match captures.name("ref") {
            Some(m) => Some(Some(slug(m.as_str())).filter(|slug| !slug.is_empty())?),
            None => None,
        };
        let merge_request = match captures.name("mr") {
            Some(m) => Some(m.as_str().parse::<u64>().ok()?),
            None => None,
        };
        (branch.is_some() || merge_request.is_some()).then_some(TagRef { branch, merge_request })
    }
}

/// Whether the branch or merge request a tag names is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefState {
    /// Not known: not looked up, or GitLab could not say for sure. Never
    /// deletes.
    Unknown,
    /// The branch exists, or the merge request is open (or being merged).
    Present,
    /// The branch is not among the project's, or the merge request is
    /// merged or closed.
    Gone,
}

impl RefState {
    /// The state of a tag that names both a branch and a merge request:
    /// gone only when both are, present when either is.
    pub(crate) fn and(self, other: RefState) -> RefState {
        match (self, other) {
            (RefState::Gone, RefState::Gone) => RefState::Gone,
            (RefState::Present, _) | (_, RefState::Present) => RefState::Present,
            _ => RefState::Unknown,
        }
    }
}

/// A branch name as GitLab slugs it for `CI_COMMIT_REF_SLUG`: lower-cased,
/// every character outside `[a-z0-9]` replaced by `-`, cut to 63 bytes,
/// then no leading or trailing `-` (GitLab's `Gitlab::Utils.slugify`).
pub(crate) fn slug(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(MAX_SLUG_BYTES)
        .collect();
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::whole_match_regex;
    use proptest::prelude::*;

    fn rule(pattern: &str) -> RefGone {
        RefGone {
            tag_regex: whole_match_regex(pattern).unwrap(),
            grace: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn slugs_like_gitlab() {
        for (name, expected) in [
            ("main", "main"),
            ("feature/login", "feature-login"),
            ("Feature/Login_Page", "feature-login-page"),
            ("release/1.2.3", "release-1-2-3"),
            ("-lead", "lead"),
            ("trail/", "trail"),
            ("/both/", "both"),
            ("a//b", "a--b"),
            ("Ärger", "rger"),
            ("über-cool", "ber-cool"),
            // The Kelvin sign lower-cases to an ASCII k, as in Ruby.
            ("\u{212A}elvin", "kelvin"),
            // A dotted capital I lower-cases to i and a combining dot.
            ("\u{130}d", "i-d"),
            ("日本", ""),
            ("", ""),
        ] {
            assert_eq!(slug(name), expected, "{name:?}");
        }
    }

    #[test]
    fn cuts_at_63_bytes_then_trims() {
        let long = "a".repeat(70);
        assert_eq!(slug(&long), "a".repeat(63));
        // A `-` that lands at the cut is trimmed after cutting.
        let name = format!("{}/rest-of-the-name", "b".repeat(62));
        assert_eq!(slug(&name), "b".repeat(62));
        // Multi-byte characters count once: each became one `-`.
        let name = format!("{}é{}", "c".repeat(61), "d".repeat(10));
        assert_eq!(slug(&name), format!("{}-d", "c".repeat(61)));
    }

    #[test]
    fn reads_branches_and_merge_requests_from_names() {
        let gone = rule(r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}");
        let branch = |s: &str| TagRef {
            branch: Some(s.to_owned()),
            merge_request: None,
        };
        assert_eq!(gone.tag_ref("feature-login-0123abcd"), Some(branch("feature-login")));
        assert_eq!(
            gone.tag_ref("mr-12-0123abcd"),
            Some(TagRef {
                branch: None,
                merge_request: Some(12),
            })
        );
        // Whole match only, and a name the regex does not match names nothing.
        assert_eq!(gone.tag_ref("v1.2.3"), None);
        assert_eq!(gone.tag_ref("x-feature-0123abcd-extra"), None);
        // A capture that is no slug or no iid names nothing.
        assert_eq!(rule(r"(?<ref>-*)-[0-9a-f]{8}").tag_ref("---0123abcd"), None);
        assert_eq!(rule(r"mr-(?<mr>\d+)").tag_ref("mr-99999999999999999999999"), None);
        // A ref written otherwise than CI writes it is slugged before it is compared.
        assert_eq!(
            rule(r"(?<ref>.+)@[0-9a-f]{8}").tag_ref("Feature_X@0123abcd"),
            Some(branch("feature-x"))
        );
        // Both groups may take part; one that names nothing spoils the other.
        assert_eq!(rule(r"(?<ref>[a-z-]*)-mr(?<mr>\d+)").tag_ref("-mr7"), None);
        assert_eq!(
            rule(r"(?<ref>[a-z-]+)-mr(?<mr>\d+)").tag_ref("fix-mr99999999999999999999999"),
            None
        );
        assert_eq!(
            rule(r"(?<ref>[a-z-]+)-mr(?<mr>\d+)").tag_ref("fix-mr7"),
            Some(TagRef {
                branch: Some("fix".to_owned()),
                merge_request: Some(7),
            })
        );
    }

    #[test]
    fn both_must_be_gone() {
        use RefState::*;
        assert_eq!(Gone.and(Gone), Gone);
        assert_eq!(Gone.and(Present), Present);
        assert_eq!(Unknown.and(Present), Present);
        assert_eq!(Gone.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Unknown), Unknown);
    }

    /// GitLab's rule written the way its Ruby reads, regex by regex.
    fn reference_slug(name: &str) -> String {
        let lower = name.to_lowercase();
        let replaced = regex::Regex::new("[^a-z0-9]").unwrap().replace_all(&lower, "-");
        let cut: String = replaced.chars().take(63).collect();
        regex::Regex::new(r"(\A-+|-+\z)")
            .unwrap()
            .replace_all(&cut, "")
            .into_owned()
    }

    proptest! {
        #[test]
        fn slug_is_gitlabs_rule(name in "\\PC{0,100}") {
            let s = slug(&name);
            prop_assert_eq!(&s, &reference_slug(&name));
            prop_assert!(s.len() <= MAX_SLUG_BYTES);
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            prop_assert!(!s.starts_with('-') && !s.ends_with('-'));
            // A slug is its own slug: a tag's captured slug meets its branch's.
            prop_assert_eq!(slug(&s), s.clone());
        }

        #[test]
        fn branch_names_of_ascii_letters_keep_their_letters(name in "[a-zA-Z0-9][a-zA-Z0-9/_.-]{0,80}") {
            let s = slug(&name);
            let kept: String = name.to_lowercase().chars().take(63).filter(char::is_ascii_alphanumeric).collect();
            prop_assert_eq!(s.replace('-', ""), kept);
        }

        #[test]
        fn a_tag_of_any_branch_names_that_branch(branch in "[a-zA-Z0-9][a-zA-Z0-9/_.-]{0,80}", sha in "[0-9a-f]{8}") {
            prop_assume!(!slug(&branch).is_empty());
            let gone = rule(r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}");
            let tag = format!("{}-{sha}", slug(&branch));
            let named = gone.tag_ref(&tag).unwrap();
            // `mr-12-…` style slugs are read as merge requests, first alternative first.
            if named.merge_request.is_none() {
                prop_assert_eq!(named.branch, Some(slug(&branch)));
            }
        }
    }
}
