use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn now() -> Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> TagDate {
    TagDate::Known(now() - jiff::SignedDuration::from_secs(seconds))
}

fn tag(name: &str, created: TagDate) -> TagFacts {
    TagFacts {
        name: name.to_owned(),
        created,
        protected: false,
        ref_state: None,
    }
}

fn rules(days: u64) -> Rules {
    Rules {
        delete_older_than: Duration::from_secs(days * DAY as u64),
        keep_n: 0,
        keep_n_by: None,
        order_by: OrderBy::Date,
        name_regex_delete: None,
        name_regex_keep: None,
        keep_latest: true,
        delete_when_ref_gone: None,
    }
}

fn decide_one(tag: TagFacts, rules: &Rules) -> Decision {
    decide(&[tag], rules, now())[0]
}

#[test]
fn old_tag_is_deleted_and_young_tag_kept() {
    let r = rules(2);
    assert_eq!(
        decide_one(tag("a", ago(3 * DAY)), &r),
        Decision::Delete(DeleteReason::Age)
    );
    assert_eq!(decide_one(tag("a", ago(DAY)), &r), Decision::Keep(KeepReason::TooNew));
}

#[test]
fn exactly_at_the_limit_is_kept() {
    assert_eq!(
        decide_one(tag("a", ago(2 * DAY)), &rules(2)),
        Decision::Keep(KeepReason::TooNew)
    );
    assert_eq!(
        decide_one(tag("a", ago(2 * DAY + 1)), &rules(2)),
        Decision::Delete(DeleteReason::Age)
    );
}

#[test]
fn latest_is_kept_unless_keep_latest_is_off() {
    let mut r = rules(1);
    assert_eq!(
        decide_one(tag("latest", ago(9 * DAY)), &r),
        Decision::Keep(KeepReason::Latest)
    );
    r.keep_latest = false;
    assert_eq!(
        decide_one(tag("latest", ago(9 * DAY)), &r),
        Decision::Delete(DeleteReason::Age)
    );
}

#[test]
fn delete_regex_must_match_the_whole_name() {
    let mut r = rules(1);
    r.name_regex_delete = Some(whole_match_regex("feature-.*").unwrap());
    assert_eq!(
        decide_one(tag("feature-x", ago(9 * DAY)), &r),
        Decision::Delete(DeleteReason::Age)
    );
    assert_eq!(
        decide_one(tag("my-feature-x", ago(9 * DAY)), &r),
        Decision::Keep(KeepReason::NotMatched)
    );
    r.name_regex_delete = Some(whole_match_regex("v1").unwrap());
    assert_eq!(
        decide_one(tag("v10", ago(9 * DAY)), &r),
        Decision::Keep(KeepReason::NotMatched)
    );
}

#[test]
fn keep_regex_must_match_the_whole_name() {
    let mut r = rules(1);
    r.name_regex_keep = Some(whole_match_regex(r"v\d+\.\d+\.\d+").unwrap());
    assert_eq!(
        decide_one(tag("v1.2.3", ago(9 * DAY)), &r),
        Decision::Keep(KeepReason::NameRegexKeep)
    );
    assert_eq!(
        decide_one(tag("v1.2.3-rc1", ago(9 * DAY)), &r),
        Decision::Delete(DeleteReason::Age)
    );
}

#[test]
fn alternation_is_anchored_as_a_whole() {
    let re = whole_match_regex("a|b").unwrap();
    assert!(re.is_match("a") && re.is_match("b"));
    assert!(!re.is_match("ab") && !re.is_match("xa") && !re.is_match("bx"));
}

#[test]
fn a_pattern_cannot_escape_its_anchors() {
    assert!(whole_match_regex("release-1)|(.*").is_err());
    assert!(whole_match_regex("a)(b").is_err());
    let re = whole_match_regex("(?i)v1").unwrap();
    assert!(re.is_match("V1") && !re.is_match("v1-x"));
}

#[test]
fn rules_apply_in_gitlab_order() {
    // latest beats not_matched, which beats name_regex_keep, which beats no_date.
    let mut r = rules(1);
    r.name_regex_delete = Some(whole_match_regex("x.*").unwrap());
    r.name_regex_keep = Some(whole_match_regex(".*").unwrap());
    assert_eq!(
        decide_one(tag("latest", TagDate::Missing), &r),
        Decision::Keep(KeepReason::Latest)
    );
    assert_eq!(
        decide_one(tag("y", TagDate::Missing), &r),
        Decision::Keep(KeepReason::NotMatched)
    );
    assert_eq!(
        decide_one(tag("x", TagDate::Missing), &r),
        Decision::Keep(KeepReason::NameRegexKeep)
    );
    r.name_regex_keep = None;
    assert_eq!(
        decide_one(tag("x", TagDate::Missing), &r),
        Decision::Keep(KeepReason::NoDate)
    );
}

#[test]
fn undated_tags_are_kept_and_do_not_count_for_keep_n() {
    let mut r = rules(1);
    r.keep_n = 1;
    let tags = [
        tag("null", TagDate::Missing),
        tag("garbage", TagDate::parse(Some("yesterday"))),
        tag("epoch", TagDate::parse(Some("1970-01-01T00:00:00Z"))),
        tag("newest", ago(5 * DAY)),
        tag("older", ago(6 * DAY)),
    ];
    let d = decide(&tags, &r, now());
    assert_eq!(d[0], Decision::Keep(KeepReason::NoDate));
    assert_eq!(d[1], Decision::Keep(KeepReason::NoDate));
    assert_eq!(d[2], Decision::Keep(KeepReason::NoDate));
    assert_eq!(d[3], Decision::Keep(KeepReason::KeepN));
    assert_eq!(d[4], Decision::Delete(DeleteReason::Age));
}

#[test]
fn keep_n_keeps_the_newest_candidates_only() {
    let mut r = rules(1);
    r.keep_n = 2;
    r.name_regex_keep = Some(whole_match_regex("release-.*").unwrap());
    let tags = [
        tag("release-1", ago(DAY / 2)), // newest of all, but not a candidate
        tag("a", ago(2 * DAY)),
        tag("b", ago(3 * DAY)),
        tag("c", ago(4 * DAY)),
        tag("d", ago(5 * DAY)),
    ];
    let d = decide(&tags, &r, now());
    assert_eq!(
        d,
        vec![
            Decision::Keep(KeepReason::NameRegexKeep),
            Decision::Keep(KeepReason::KeepN),
            Decision::Keep(KeepReason::KeepN),
            Decision::Delete(DeleteReason::Age),
            Decision::Delete(DeleteReason::Age),
        ]
    );
}

#[test]
fn keep_n_counts_young_tags_too() {
    // GitLab orders candidates newest first and keeps n before looking at age.
    let mut r = rules(2);
    r.keep_n = 1;
    let d = decide(&[tag("young", ago(HOUR)), tag("old", ago(3 * DAY))], &r, now());
    assert_eq!(
        d,
        vec![Decision::Keep(KeepReason::KeepN), Decision::Delete(DeleteReason::Age)]
    );
}

#[test]
fn future_dates_count_as_new() {
    let d = decide_one(tag("tomorrow", ago(-DAY)), &rules(1));
    assert_eq!(d, Decision::Keep(KeepReason::TooNew));
}

#[test]
fn equal_dates_are_ordered_by_name() {
    let mut r = rules(1);
    r.keep_n = 1;
    let same = ago(3 * DAY);
    let forward = decide(&[tag("a", same), tag("b", same)], &r, now());
    let backward = decide(&[tag("b", same), tag("a", same)], &r, now());
    assert_eq!(
        forward,
        vec![Decision::Keep(KeepReason::KeepN), Decision::Delete(DeleteReason::Age)]
    );
    assert_eq!(
        backward,
        vec![Decision::Delete(DeleteReason::Age), Decision::Keep(KeepReason::KeepN)]
    );
}

#[test]
fn dates_are_read_with_their_offsets() {
    let utc: Timestamp = "2019-01-06T16:49:51.272Z".parse().unwrap();
    assert_eq!(
        TagDate::parse(Some("2019-01-06T16:49:51.272+00:00")),
        TagDate::Known(utc)
    );
    assert_eq!(TagDate::parse(Some("2019-01-06T16:49:51.272Z")), TagDate::Known(utc));
    assert_eq!(
        TagDate::parse(Some("2019-01-06T19:49:51.272+03:00")),
        TagDate::Known(utc)
    );
    assert_eq!(
        TagDate::parse(Some("2019-01-06T16:49:51+00:00")),
        TagDate::Known("2019-01-06T16:49:51Z".parse().unwrap())
    );
    assert!(
        TagDate::parse(Some("2019-01-06T16:49:51.123456789Z"))
            .usable()
            .is_some()
    );
}

#[test]
fn unusable_dates() {
    assert_eq!(TagDate::parse(None), TagDate::Missing);
    assert_eq!(TagDate::parse(Some("")), TagDate::Unparsable);
    assert_eq!(
        TagDate::parse(Some("2019-01-06T16:49:51")),
        TagDate::Unparsable,
        "no offset"
    );
    assert_eq!(TagDate::parse(Some("not a date")), TagDate::Unparsable);
    assert!(matches!(
        TagDate::parse(Some("1980-01-01T00:00:00Z")),
        TagDate::Implausible(_)
    ));
    assert!(matches!(
        TagDate::parse(Some("2013-03-19T23:59:59Z")),
        TagDate::Implausible(_)
    ));
    assert!(matches!(
        TagDate::parse(Some("2013-03-20T00:00:00Z")),
        TagDate::Known(_)
    ));
}

#[test]
fn huge_limit_deletes_nothing() {
    let mut r = rules(1);
    r.delete_older_than = Duration::from_secs(u64::MAX / 4);
    let far_past = TagDate::Known("2014-01-01T00:00:00Z".parse().unwrap());
    assert_eq!(decide_one(tag("a", far_past), &r), Decision::Keep(KeepReason::TooNew));
}

#[test]
fn reasons_are_spelled_as_logged() {
    let all = [
        (KeepReason::Latest, "latest"),
        (KeepReason::NotMatched, "not_matched"),
        (KeepReason::NameRegexKeep, "name_regex_keep"),
        (KeepReason::NoDate, "no_date"),
        (KeepReason::KeepN, "keep_n"),
        (KeepReason::TooNew, "too_new"),
        (KeepReason::MaxDeletions, "max_deletions"),
    ];
    for (reason, text) in all {
        assert_eq!(reason.as_str(), text);
    }
}

/// Compiled once per pattern: compiling in every generated case would
/// make the properties slow in a debug build.
fn cached(pattern: &str) -> Regex {
    static CACHE: std::sync::Mutex<BTreeMap<String, Regex>> = std::sync::Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap();
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| whole_match_regex(pattern).unwrap())
        .clone()
}

fn named(name: &str, repositories: Option<&str>, delete: Option<&str>, policy: Rules) -> Rule {
    Rule {
        name: Some(Arc::from(name)),
        repository_regex: repositories.map(cached),
        policy: Rules {
            name_regex_delete: delete.map(cached),
            ..policy
        },
    }
}

fn kept(reason: KeepReason) -> Decision {
    Decision::Keep(reason)
}

#[test]
fn keep_n_by_keeps_n_of_each_stream_and_one_stream_of_the_rest() {
    let mut r = rules(1);
    r.keep_n = 1;
    r.keep_n_by = Some(whole_match_regex(r"(?<stream>[a-z-]+)-\d+").unwrap());
    let tags = [
        tag("main-3", ago(2 * DAY)),
        tag("main-2", ago(3 * DAY)),
        tag("feature-x-9", ago(4 * DAY)),
        tag("feature-x-8", ago(5 * DAY)),
        tag("odd", ago(6 * DAY)),
        tag("odder", ago(7 * DAY)),
    ];
    assert_eq!(
        decide(&tags, &r, now()),
        vec![
            kept(KeepReason::KeepN),
            Decision::Delete(DeleteReason::Age),
            kept(KeepReason::KeepN),
            Decision::Delete(DeleteReason::Age),
            kept(KeepReason::KeepN), // the newest of the names the regex does not match
            Decision::Delete(DeleteReason::Age),
        ]
    );
}

#[test]
fn semver_keeps_the_highest_versions_not_the_newest_tags() {
    let mut r = rules(1);
    r.keep_n = 2;
    r.order_by = OrderBy::Semver;
    let tags = [
        tag("v1.10.0", ago(9 * DAY)),
        tag("v1.9.0", ago(2 * DAY)), // a backport: newest, but lower
        tag("v1.10.1-rc.1", ago(3 * DAY)),
        tag("v1.2", ago(4 * DAY)),
        tag("nightly", ago(DAY + HOUR)),
    ];
    assert_eq!(
        decide(&tags, &r, now()),
        vec![
            kept(KeepReason::KeepN),
            Decision::Delete(DeleteReason::Age),
            kept(KeepReason::KeepN), // 1.10.1-rc.1 ranks above 1.10.0
            Decision::Delete(DeleteReason::Age),
            Decision::Delete(DeleteReason::Age), // not a version: after every version
        ]
    );
}

#[test]
fn semver_ranks_prereleases_below_their_release_and_ignores_build_metadata() {
    let mut r = rules(1);
    r.keep_n = 1;
    r.order_by = OrderBy::Semver;
    let pre = decide(
        &[tag("2.0.0-rc.2", ago(2 * DAY)), tag("2.0.0", ago(5 * DAY))],
        &r,
        now(),
    );
    assert_eq!(pre, vec![Decision::Delete(DeleteReason::Age), kept(KeepReason::KeepN)]);
    // Equal precedence: the newer wins, whatever the build metadata says.
    let build = decide(
        &[tag("2.0.0+b1", ago(2 * DAY)), tag("2.0.0+b9", ago(5 * DAY))],
        &r,
        now(),
    );
    assert_eq!(
        build,
        vec![kept(KeepReason::KeepN), Decision::Delete(DeleteReason::Age)]
    );
    // Non-versions among themselves: newest first.
    let names = decide(&[tag("abc", ago(5 * DAY)), tag("xyz", ago(2 * DAY))], &r, now());
    assert_eq!(
        names,
        vec![Decision::Delete(DeleteReason::Age), kept(KeepReason::KeepN)]
    );
}

#[test]
fn versions_are_read_leniently_but_not_loosely() {
    let v = |s: &str| parse_version(s).map(|v| v.to_string());
    assert_eq!(v("1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(v("v1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(v("1.2").as_deref(), Some("1.2.0"));
    assert_eq!(v("v3.11-rc1").as_deref(), Some("3.11.0-rc1"));
    assert_eq!(v("1.2.3-beta.2+build.7").as_deref(), Some("1.2.3-beta.2+build.7"));
    for not_a_version in [
        "1",
        "v",
        "latest",
        "01.2.3",
        "1.2.3.4",
        "V1.2.3",
        "vv1.2.3",
        "1..2",
        "main-1.2.3",
        "",
    ] {
        assert_eq!(v(not_a_version), None, "{not_a_version}");
    }
}

#[test]
fn the_first_rule_that_matches_governs_alone() {
    let rules_ = [
        named(
            "releases",
            None,
            Some(r"v\d+\.\d+\.\d+"),
            Rules { keep_n: 1, ..rules(1) },
        ),
        named("everything", None, None, rules(10)),
    ];
    let tags = [
        tag("v1.0.0", ago(30 * DAY)),
        tag("v0.9.0", ago(31 * DAY)),
        tag("build-1", ago(5 * DAY)),
        tag("build-0", ago(11 * DAY)),
    ];
    let rulings = decide_rules(&tags, &rules_, "group/app", now());
    let decisions: Vec<(Decision, Option<&str>)> = rulings.iter().map(|r| (r.decision, r.rule.as_deref())).collect();
    assert_eq!(
        decisions,
        vec![
            (kept(KeepReason::KeepN), Some("releases")),
            (Decision::Delete(DeleteReason::Age), Some("releases")),
            // keep_n of the releases rule does not count build tags.
            (kept(KeepReason::TooNew), Some("everything")),
            (Decision::Delete(DeleteReason::Age), Some("everything")),
        ]
    );
}

#[test]
fn a_tag_no_rule_governs_is_kept_not_matched_without_a_rule() {
    let rules_ = [
        named("scratch", None, Some("tmp-.*"), rules(1)),
        named("ci", Some("group/ci/.*"), None, rules(1)),
    ];
    let tags = [
        tag("tmp-1", ago(9 * DAY)),
        tag("latest", ago(9 * DAY)),
        tag("v1", ago(9 * DAY)),
    ];
    let app = decide_rules(&tags, &rules_, "group/app", now());
    assert_eq!(app[0].decision, Decision::Delete(DeleteReason::Age));
    for ruling in &app[1..] {
        assert_eq!(
            (ruling.decision, ruling.rule.as_deref()),
            (kept(KeepReason::NotMatched), None)
        );
    }
    let ci = decide_rules(&tags, &rules_, "group/ci/cache", now());
    assert_eq!(
        ci[1].decision,
        kept(KeepReason::Latest),
        "governed by ci, which keeps latest"
    );
    assert_eq!(
        (ci[2].decision, ci[2].rule.as_deref()),
        (Decision::Delete(DeleteReason::Age), Some("ci"))
    );
    assert_eq!(
        keep_by_rules(&rules_, "group/app", "v1"),
        (Some(KeepReason::NotMatched), None)
    );
}

#[test]
fn an_unnamed_rule_decides_exactly_like_the_single_policy() {
    let mut r = rules(1);
    r.name_regex_delete = Some(whole_match_regex("x.*").unwrap());
    let single = [Rule {
        name: None,
        repository_regex: None,
        policy: r.clone(),
    }];
    let tags = [
        tag("latest", ago(9 * DAY)),
        tag("y", ago(9 * DAY)),
        tag("x", ago(9 * DAY)),
    ];
    let rulings = decide_rules(&tags, &single, "any/repo", now());
    let decisions: Vec<Decision> = rulings.iter().map(|r| r.decision).collect();
    assert_eq!(decisions, decide(&tags, &r, now()));
    assert_eq!(
        decisions[0],
        kept(KeepReason::Latest),
        "latest before not_matched, as before"
    );
    assert!(rulings.iter().all(|r| r.rule.is_none()));
}

// ---- properties ----

fn arb_date() -> impl Strategy<Value = TagDate> {
    prop_oneof![
        1 => Just(TagDate::Missing),
        1 => Just(TagDate::Unparsable),
        1 => (0i64..1_363_737_599).prop_map(|s| TagDate::Implausible(Timestamp::from_second(s).unwrap())),
        8 => (-30 * DAY..400 * DAY).prop_map(ago),
    ]
}

fn arb_tags() -> impl Strategy<Value = Vec<TagFacts>> {
    proptest::collection::btree_map(
        "(latest|v[0-9]{1,2}|rel-[a-c]{1,3}|[a-z]{1,4})",
        (arb_date(), proptest::bool::weighted(0.15)),
        0..40,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(name, (created, protected))| TagFacts {
                name,
                created,
                protected,
                ref_state: None,
            })
            .collect()
    })
}

fn arb_rules() -> impl Strategy<Value = Rules> {
    (
        1u64..200 * DAY as u64,
        0usize..8,
        proptest::option::of(prop_oneof![Just("v.*"), Just("rel-.*|[a-z]+"), Just("latest")]),
        proptest::option::of(prop_oneof![Just("rel-a+"), Just("v1.*"), Just("[ab].*")]),
        any::<bool>(),
    )
        .prop_map(|(secs, keep_n, delete, keep, keep_latest)| Rules {
            delete_older_than: Duration::from_secs(secs),
            keep_n,
            keep_n_by: None,
            order_by: OrderBy::Date,
            name_regex_delete: delete.map(cached),
            name_regex_keep: keep.map(cached),
            keep_latest,
            delete_when_ref_gone: None,
        })
}

proptest! {
    #[test]
    fn only_old_dated_unprotected_candidates_beyond_keep_n_are_deleted(tags in arb_tags(), r in arb_rules()) {
        let decisions = decide(&tags, &r, now());
        prop_assert_eq!(decisions.len(), tags.len());
        let cutoff = now() - jiff::SignedDuration::try_from(r.delete_older_than).unwrap();
        for (tag, decision) in tags.iter().zip(&decisions) {
            if *decision != Decision::Delete(DeleteReason::Age) {
                continue;
            }
            prop_assert!(!(r.keep_latest && tag.name == "latest"));
            prop_assert!(r.name_regex_delete.as_ref().is_none_or(|re| re.is_match(&tag.name)));
            prop_assert!(r.name_regex_keep.as_ref().is_none_or(|re| !re.is_match(&tag.name)));
            prop_assert!(!tag.protected, "deleted a protected tag");
            let created = tag.created.usable();
            prop_assert!(created.is_some(), "deleted a tag with no usable date");
            prop_assert!(created.unwrap() < cutoff, "deleted a tag younger than the limit");
            prop_assert!(created.unwrap() <= now(), "deleted a tag from the future");
        }
    }

    #[test]
    fn exactly_keep_n_candidates_are_kept_and_they_are_the_newest(tags in arb_tags(), r in arb_rules()) {
        let decisions = decide(&tags, &r, now());
        let candidates: Vec<usize> = (0..tags.len())
            .filter(|&i| {
                keep_by_name(&tags[i].name, &r).is_none() && !tags[i].protected && tags[i].created.usable().is_some()
            })
            .collect();
        let kept_n: Vec<usize> = (0..tags.len()).filter(|&i| decisions[i] == Decision::Keep(KeepReason::KeepN)).collect();
        prop_assert_eq!(kept_n.len(), r.keep_n.min(candidates.len()));
        // Every kept-by-keep_n candidate is at least as new as every other candidate.
        for &k in &kept_n {
            for &c in &candidates {
                if decisions[c] != Decision::Keep(KeepReason::KeepN) {
                    prop_assert!(tags[k].created.usable() >= tags[c].created.usable());
                }
            }
        }
    }

    #[test]
    fn input_order_does_not_matter(tags in arb_tags(), r in arb_rules(), seed in any::<u64>()) {
        let decisions = decide(&tags, &r, now());
        let mut shuffled: Vec<(TagFacts, Decision)> = tags.iter().cloned().zip(decisions).collect();
        fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
        let (tags2, expected): (Vec<TagFacts>, Vec<Decision>) = shuffled.into_iter().unzip();
        prop_assert_eq!(decide(&tags2, &r, now()), expected);
    }

    #[test]
    fn longer_limit_never_deletes_more(tags in arb_tags(), r in arb_rules(), extra in 0u64..100 * DAY as u64) {
        let mut longer = r.clone();
        longer.delete_older_than += Duration::from_secs(extra);
        let short = decide(&tags, &r, now());
        let long = decide(&tags, &longer, now());
        for (s, l) in short.iter().zip(&long) {
            prop_assert!(!(*l == Decision::Delete(DeleteReason::Age) && *s != Decision::Delete(DeleteReason::Age)));
        }
    }

    #[test]
    fn protected_tags_are_kept_as_protected_unless_a_name_rule_keeps_them(tags in arb_tags(), r in arb_rules()) {
        for (tag, decision) in tags.iter().zip(decide(&tags, &r, now())) {
            if tag.protected {
                let expected = keep_by_name(&tag.name, &r).unwrap_or(KeepReason::Protected);
                prop_assert_eq!(decision, Decision::Keep(expected));
            }
        }
    }

    #[test]
    fn any_date_string_parses_without_panic(text in ".{0,40}") {
        let _ = TagDate::parse(Some(&text));
    }
}

fn arb_names() -> impl Strategy<Value = Vec<TagFacts>> {
    proptest::collection::btree_map(
        r"(latest|v?[0-9]\.[0-9]{1,2}(\.[0-9])?(-rc\.[0-9])?|(main|dev|rel-[ab])-[0-9]{1,3}|tmp-[a-z]{1,3}|[a-z]{1,4})",
        (arb_date(), proptest::bool::weighted(0.15)),
        0..40,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(name, (created, protected))| TagFacts {
                name,
                created,
                protected,
                ref_state: None,
            })
            .collect()
    })
}

/// Rules with every ranking knob: streams and semver order too.
fn arb_full_rules() -> impl Strategy<Value = Rules> {
    (
        arb_rules(),
        proptest::option::of(prop_oneof![
            Just(r"(?<stream>[a-z-]+)-\d+"),
            Just(r"(?<stream>v?\d)\..*")
        ]),
        any::<bool>(),
    )
        .prop_map(|(r, keep_n_by, semver)| Rules {
            keep_n_by: keep_n_by.map(cached),
            order_by: if semver { OrderBy::Semver } else { OrderBy::Date },
            ..r
        })
}

fn arb_rule_list() -> impl Strategy<Value = Vec<Rule>> {
    proptest::collection::vec(
        (
            proptest::option::of(prop_oneof![Just("group/app"), Just("group/.*")]),
            proptest::option::of(prop_oneof![
                Just(r"v?\d.*"),
                Just(r"(main|dev|rel-[ab])-\d+"),
                Just("tmp-.*"),
                Just("[a-z]{1,4}"),
            ]),
            arb_full_rules(),
        ),
        1..5,
    )
    .prop_map(|list| {
        list.into_iter()
            .enumerate()
            .map(|(i, (repositories, delete, policy))| named(&format!("r{i}"), repositories, delete, policy))
            .collect()
    })
}

fn arb_repository() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("group/app"), Just("group/ci"), Just("other/app")]
}

proptest! {
    #[test]
    fn a_rule_deletes_only_what_it_governs_and_decides_it_alone(
        tags in arb_names(), rules_ in arb_rule_list(), repository in arb_repository(),
    ) {
        let rulings = decide_rules(&tags, &rules_, repository, now());
        prop_assert_eq!(rulings.len(), tags.len());
        for (r, rule) in rules_.iter().enumerate() {
            let governed: Vec<usize> = (0..tags.len())
                .filter(|&i| governing_rule(&rules_, repository, &tags[i].name) == Some(r))
                .collect();
            let part: Vec<&TagFacts> = governed.iter().map(|&i| &tags[i]).collect();
            let alone = decide(&part, &rule.policy, now());
            for (&i, decision) in governed.iter().zip(alone) {
                prop_assert_eq!(&rulings[i], &Ruling { decision, rule: rule.name.clone() });
            }
        }
        for (tag, ruling) in tags.iter().zip(&rulings) {
            if governing_rule(&rules_, repository, &tag.name).is_none() {
                prop_assert_eq!(ruling, &Ruling { decision: Decision::Keep(KeepReason::NotMatched), rule: None });
            }
        }
    }

    #[test]
    fn rulings_do_not_depend_on_input_order(
        tags in arb_names(), rules_ in arb_rule_list(), repository in arb_repository(), seed in any::<u64>(),
    ) {
        let rulings = decide_rules(&tags, &rules_, repository, now());
        let mut shuffled: Vec<(TagFacts, Ruling)> = tags.iter().cloned().zip(rulings).collect();
        fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
        let (tags2, expected): (Vec<TagFacts>, Vec<Ruling>) = shuffled.into_iter().unzip();
        prop_assert_eq!(decide_rules(&tags2, &rules_, repository, now()), expected);
    }

    #[test]
    fn a_rule_added_after_the_others_changes_only_tags_they_did_not_govern(
        tags in arb_names(), rules_ in arb_rule_list(), extra in arb_rule_list(), repository in arb_repository(),
    ) {
        let before = decide_rules(&tags, &rules_, repository, now());
        let mut more = rules_.clone();
        more.push(Rule { name: Some(Arc::from("added")), ..extra[0].clone() });
        let after = decide_rules(&tags, &more, repository, now());
        for (b, a) in before.iter().zip(&after) {
            if b.rule.is_some() {
                prop_assert_eq!(b, a, "the added rule changed a tag an earlier rule governs");
            } else {
                prop_assert_eq!(b.decision, Decision::Keep(KeepReason::NotMatched));
            }
        }
    }

    #[test]
    fn streams_and_semver_never_delete_what_the_safety_rules_keep(tags in arb_names(), r in arb_full_rules()) {
        let cutoff = now() - jiff::SignedDuration::try_from(r.delete_older_than).unwrap();
        for (tag, decision) in tags.iter().zip(decide(&tags, &r, now())) {
            if decision == Decision::Delete(DeleteReason::Age) {
                prop_assert!(keep_by_name(&tag.name, &r).is_none() && !tag.protected);
                prop_assert!(tag.created.usable().is_some_and(|created| created < cutoff));
            }
        }
    }

    #[test]
    fn keep_n_keeps_exactly_n_of_each_stream_and_the_first_ranked(tags in arb_names(), r in arb_full_rules()) {
        let decisions = decide(&tags, &r, now());
        let stream = |name: &str| {
            r.keep_n_by.as_ref().and_then(|re| re.captures(name)).and_then(|c| c.name("stream")).map(|m| m.as_str().to_owned())
        };
        let mut streams: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
        for (i, tag) in tags.iter().enumerate() {
            if keep_by_name(&tag.name, &r).is_none() && !tag.protected && tag.created.usable().is_some() {
                streams.entry(stream(&tag.name)).or_default().push(i);
            }
        }
        let mut in_streams = 0;
        for members in streams.values() {
            let kept: Vec<usize> = members.iter().copied().filter(|&i| decisions[i] == Decision::Keep(KeepReason::KeepN)).collect();
            prop_assert_eq!(kept.len(), r.keep_n.min(members.len()));
            in_streams += kept.len();
            // Each kept one ranks before each other member of its stream.
            let candidate = |i: usize| Candidate {
                created: tags[i].created.usable().unwrap(),
                name: &tags[i].name,
                version: if r.order_by == OrderBy::Semver { parse_version(&tags[i].name) } else { None },
                index: i,
            };
            for &k in &kept {
                for &m in members.iter().filter(|m| !kept.contains(m)) {
                    prop_assert_eq!(rank(&candidate(k), &candidate(m)), Ordering::Less);
                }
            }
        }
        let all_kept_n = decisions.iter().filter(|d| **d == Decision::Keep(KeepReason::KeepN)).count();
        prop_assert_eq!(all_kept_n, in_streams, "keep_n outside any stream");
    }

    #[test]
    fn semver_ranking_is_a_total_order_consistent_with_the_semver_crate(
        versions in proptest::collection::btree_set(
            (0u64..3, 0u64..3, 0u64..3, proptest::option::of("(alpha|beta|rc)(\\.[0-9])?"), proptest::option::of("b[0-9]")),
            1..25,
        ),
        days in proptest::collection::vec(0i64..5, 25),
        with_v in any::<bool>(),
    ) {
        let names: Vec<String> = versions
            .iter()
            .map(|(major, minor, patch, pre, build)| {
                let mut name = format!("{}{major}.{minor}.{patch}", if with_v { "v" } else { "" });
                if let Some(pre) = pre { name += &format!("-{pre}"); }
                if let Some(build) = build { name += &format!("+{build}"); }
                name
            })
            .chain(["latest".to_owned(), "nightly".to_owned()])
            .collect();
        let mut candidates: Vec<Candidate<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Candidate {
                created: now() - jiff::SignedDuration::from_secs(days[i % days.len()] * DAY),
                name,
                version: parse_version(name),
                index: i,
            })
            .collect();
        candidates.sort_by(rank);
        for (i, a) in candidates.iter().enumerate() {
            prop_assert_eq!(rank(a, a), Ordering::Equal);
            for b in &candidates[i + 1..] {
                // Sorted, and strictly: a total order on unique names.
                prop_assert_eq!(rank(a, b), Ordering::Less);
                prop_assert_eq!(rank(b, a), Ordering::Greater);
                match (&a.version, &b.version) {
                    (Some(va), Some(vb)) if va.cmp_precedence(vb) != Ordering::Equal => {
                        prop_assert_eq!(vb.cmp(va), Ordering::Less, "{} before {}", a.name, b.name);
                    }
                    (Some(va), Some(vb)) => prop_assert!(a.created >= b.created || va.build != vb.build),
                    (None, Some(_)) => prop_assert!(false, "a non-version before a version"),
                    _ => {}
                }
            }
        }
    }
}

// delete_when_ref_gone (spec §3b)

fn gone_rules(days: u64, grace_days: u64) -> Rules {
    Rules {
        delete_when_ref_gone: Some(RefGone {
            tag_regex: cached(r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}"),
            grace: Duration::from_secs(grace_days * DAY as u64),
        }),
        ..rules(days)
    }
}

fn with_ref(name: &str, created: TagDate, state: Option<RefState>) -> TagFacts {
    TagFacts {
        ref_state: state,
        ..tag(name, created)
    }
}

#[test]
fn a_gone_branch_deletes_after_the_grace_and_nothing_else_does() {
    use RefState::*;
    let r = gone_rules(30, 1);
    for (created, state, expected) in [
        (ago(2 * DAY), Some(Gone), Decision::Delete(DeleteReason::RefGone)),
        (ago(DAY), Some(Gone), kept(KeepReason::TooNew)),
        (ago(DAY + 1), Some(Gone), Decision::Delete(DeleteReason::RefGone)),
        (ago(2 * DAY), Some(Present), kept(KeepReason::TooNew)),
        (ago(2 * DAY), Some(Unknown), kept(KeepReason::RefUnknown)),
        (ago(2 * DAY), None, kept(KeepReason::TooNew)),
        // Past the age limit the age decides, whatever is known of the ref.
        (ago(31 * DAY), Some(Unknown), Decision::Delete(DeleteReason::Age)),
        (ago(31 * DAY), Some(Present), Decision::Delete(DeleteReason::Age)),
        (ago(31 * DAY), Some(Gone), Decision::Delete(DeleteReason::Age)),
        // No usable date: kept before any of it.
        (TagDate::Missing, Some(Gone), kept(KeepReason::NoDate)),
        (
            TagDate::Implausible(Timestamp::UNIX_EPOCH),
            Some(Gone),
            kept(KeepReason::NoDate),
        ),
    ] {
        assert_eq!(
            decide_one(with_ref("feature-x-0123abcd", created, state), &r),
            expected,
            "{created:?} {state:?}"
        );
    }
    // Without delete_when_ref_gone a state means nothing.
    assert_eq!(
        decide_one(with_ref("feature-x-0123abcd", ago(2 * DAY), Some(Gone)), &rules(30)),
        kept(KeepReason::TooNew)
    );
}

#[test]
fn the_steps_before_still_keep_tags_of_gone_refs() {
    let gone = Some(RefState::Gone);
    let mut r = gone_rules(30, 1);
    r.keep_n = 1;
    r.name_regex_keep = Some(cached("keep-.*"));
    let tags = [
        with_ref("a-0123abcd", ago(2 * DAY), gone),
        with_ref("b-0123abcd", ago(3 * DAY), gone),
        with_ref("keep-0123abcd", ago(3 * DAY), gone),
        TagFacts {
            protected: true,
            ..with_ref("c-0123abcd", ago(3 * DAY), gone)
        },
        with_ref("latest", ago(3 * DAY), gone),
    ];
    assert_eq!(
        decide(&tags, &r, now()),
        [
            kept(KeepReason::KeepN),
            Decision::Delete(DeleteReason::RefGone),
            kept(KeepReason::NameRegexKeep),
            kept(KeepReason::Protected),
            kept(KeepReason::Latest),
        ]
    );
}

fn arb_ref_state() -> impl Strategy<Value = Option<RefState>> {
    prop_oneof![
        Just(None),
        Just(Some(RefState::Unknown)),
        Just(Some(RefState::Present)),
        Just(Some(RefState::Gone)),
    ]
}

proptest! {
    /// What the pass relies on: a first decision with every ref unknown
    /// differs from the final one only in tags it kept `ref_unknown`, and
    /// those are exactly the tags whose state matters; knowing more never
    /// deletes a tag the age alone keeps but for a gone ref past the grace.
    #[test]
    fn only_tags_kept_ref_unknown_wait_for_their_ref(
        tags in arb_names(),
        states in proptest::collection::vec(arb_ref_state(), 40),
        base in arb_full_rules(),
        grace_days in 0u64..40,
    ) {
        let mut rules = base;
        rules.delete_when_ref_gone = Some(RefGone {
            tag_regex: cached(".*"),
            grace: Duration::from_secs(grace_days * DAY as u64),
        });
        let known: Vec<TagFacts> = tags
            .iter()
            .zip(&states)
            .map(|(t, s)| TagFacts { ref_state: *s, ..t.clone() })
            .collect();
        let unknown: Vec<TagFacts> = known
            .iter()
            .map(|t| TagFacts { ref_state: t.ref_state.map(|_| RefState::Unknown), ..t.clone() })
            .collect();
        let age_only: Vec<TagFacts> = known.iter().map(|t| TagFacts { ref_state: None, ..t.clone() }).collect();
        let first = decide(&unknown, &rules, now());
        let last = decide(&known, &rules, now());
        let by_age = decide(&age_only, &rules, now());
        for i in 0..known.len() {
            if first[i] != kept(KeepReason::RefUnknown) {
                prop_assert_eq!(first[i], last[i], "{}", known[i].name);
            } else {
                prop_assert_eq!(by_age[i], kept(KeepReason::TooNew));
            }
            match last[i] {
                Decision::Delete(DeleteReason::RefGone) => {
                    prop_assert_eq!(known[i].ref_state, Some(RefState::Gone));
                    prop_assert_eq!(by_age[i], kept(KeepReason::TooNew));
                    let created = known[i].created.usable().unwrap();
                    prop_assert!(created < now() - jiff::SignedDuration::from_secs(grace_days as i64 * DAY));
                }
                other => {
                    // Any other deletion is the age's own.
                    prop_assert_eq!(other == Decision::Delete(DeleteReason::Age), by_age[i] == Decision::Delete(DeleteReason::Age));
                }
            }
        }
    }
}
