use super::*;
use proptest::prelude::*;

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
    }
}

fn decide_one(tag: TagFacts, rules: &Rules) -> Decision {
    decide(&[tag], rules, now())[0]
}

#[test]
fn old_tag_is_deleted_and_young_tag_kept() {
    let r = rules(2);
    assert_eq!(decide_one(tag("a", ago(3 * DAY)), &r), Decision::Delete);
    assert_eq!(decide_one(tag("a", ago(DAY)), &r), Decision::Keep(KeepReason::TooNew));
}

#[test]
fn exactly_at_the_limit_is_kept() {
    assert_eq!(
        decide_one(tag("a", ago(2 * DAY)), &rules(2)),
        Decision::Keep(KeepReason::TooNew)
    );
    assert_eq!(decide_one(tag("a", ago(2 * DAY + 1)), &rules(2)), Decision::Delete);
}

#[test]
fn latest_is_kept_unless_keep_latest_is_off() {
    let mut r = rules(1);
    assert_eq!(
        decide_one(tag("latest", ago(9 * DAY)), &r),
        Decision::Keep(KeepReason::Latest)
    );
    r.keep_latest = false;
    assert_eq!(decide_one(tag("latest", ago(9 * DAY)), &r), Decision::Delete);
}

#[test]
fn delete_regex_must_match_the_whole_name() {
    let mut r = rules(1);
    r.name_regex_delete = Some(whole_match_regex("feature-.*").unwrap());
    assert_eq!(decide_one(tag("feature-x", ago(9 * DAY)), &r), Decision::Delete);
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
    assert_eq!(decide_one(tag("v1.2.3-rc1", ago(9 * DAY)), &r), Decision::Delete);
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
    assert_eq!(d[4], Decision::Delete);
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
            Decision::Delete,
            Decision::Delete,
        ]
    );
}

#[test]
fn keep_n_counts_young_tags_too() {
    // GitLab orders candidates newest first and keeps n before looking at age.
    let mut r = rules(2);
    r.keep_n = 1;
    let d = decide(&[tag("young", ago(HOUR)), tag("old", ago(3 * DAY))], &r, now());
    assert_eq!(d, vec![Decision::Keep(KeepReason::KeepN), Decision::Delete]);
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
    assert_eq!(forward, vec![Decision::Keep(KeepReason::KeepN), Decision::Delete]);
    assert_eq!(backward, vec![Decision::Delete, Decision::Keep(KeepReason::KeepN)]);
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
            name_regex_delete: delete.map(|p| whole_match_regex(p).unwrap()),
            name_regex_keep: keep.map(|p| whole_match_regex(p).unwrap()),
            keep_latest,
        })
}

proptest! {
    #[test]
    fn only_old_dated_unprotected_candidates_beyond_keep_n_are_deleted(tags in arb_tags(), r in arb_rules()) {
        let decisions = decide(&tags, &r, now());
        prop_assert_eq!(decisions.len(), tags.len());
        let cutoff = now() - jiff::SignedDuration::try_from(r.delete_older_than).unwrap();
        for (tag, decision) in tags.iter().zip(&decisions) {
            if *decision != Decision::Delete {
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
            prop_assert!(!(*l == Decision::Delete && *s != Decision::Delete));
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
