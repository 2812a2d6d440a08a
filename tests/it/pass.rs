//! Whole passes: which tags go, which stay, and what was sent.

use serde_json::json;

use crate::support::*;

#[test]
fn article_scenario_with_the_legacy_config() {
    let fake = FakeGitlab::start(fake_gitlab::demo_seed()).unwrap();
    let work = Workdir::new();
    let path = work.config(&fake_gitlab::demo_config());
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "-t", "demo-token", "-c"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.all());
    let deleted = r.tags("deleted");
    assert!(
        deleted
            .iter()
            .all(|t| t.starts_with("root/repo_2/") || t.starts_with("root/repo_3/")),
        "{deleted:?}"
    );
    assert_eq!(
        deleted
            .iter()
            .filter(|t| t.starts_with("root/repo_3/test_image_repo_3:"))
            .count(),
        11
    );
    assert!(
        !deleted.iter().any(|t| t.starts_with("root/repo_2/test_image_repo_2:")),
        "5-minute-old tags stay"
    );
    assert_eq!(deleted.len() as u64, fake.stats().deletes());
    assert_eq!(r.finished()["deleted"], deleted.len());
    assert_eq!(fake.deleted().len(), deleted.len());
    // Every deletion event carries the seed's Kibana fields.
    for event in r.ops("deleted") {
        let expected = format!("registry.demo.local:5005/{}", event["repository"].as_str().unwrap());
        assert_eq!(event["tag_location"], expected.as_str(), "location without :tag");
        assert!(event["project"].is_string() && event["timestamp"].is_string());
    }
}

#[test]
fn dry_run_sends_no_delete_and_names_exactly_the_expired_tags() {
    let fake = FakeGitlab::start(seed(vec![project(
        7,
        "team/app",
        vec![repo(
            70,
            "",
            vec![old("a"), old("b"), young("c"), Tag::aged("latest", 30 * DAY)],
        )],
    )]))
    .unwrap();
    let r = once(
        &fake,
        &json!({"app": {"id": 7, "delete_older_than": "2d"}}),
        &["--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("dry_run"), sorted(&["team/app:a", "team/app:b"]));
    assert_eq!(fake.stats().deletes(), 0);
    assert_eq!(fake.tag_names(70).len(), 4);
    assert_eq!(r.finished()["would_delete"], 2);
    assert!(r.finished().get("deleted").is_none());
    let kept = r.ops("kept");
    let reason = |tag: &str| kept.iter().find(|e| e["tag_name"] == tag).map(|e| e["reason"].clone());
    assert_eq!(reason("c"), Some(json!("too_new")));
    assert_eq!(reason("latest"), Some(json!("latest")));
    // The root image's location is the project's.
    assert_eq!(
        r.ops("dry_run")[0]["tag_location"],
        "registry.example.com:5005/team/app"
    );
}

#[test]
fn expired_tags_spanning_three_pages_all_go_in_one_pass() {
    let mut tags: Vec<Tag> = (0..250).map(|i| old(&format!("build-{i:03}"))).collect();
    tags.extend((0..5).map(|i| young(&format!("fresh-{i}"))));
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap();
    let r = once(&fake, &json!({"p": {"id": 1, "delete_older_than": {"days": 2}}}), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("deleted").len(), 250);
    assert_eq!(
        fake.tag_names(10),
        sorted(&["fresh-0", "fresh-1", "fresh-2", "fresh-3", "fresh-4"])
    );
    let stats = fake.stats();
    assert_eq!(stats.count(Route::Tags), 3, "255 tags at 100 per page");
    assert_eq!(stats.count(Route::TagDetail), 255);
    assert_eq!(stats.count(Route::DeleteTag), 250);
    // All pages were read before the first delete.
    let last_list = stats
        .requests
        .iter()
        .filter(|r| r.route == Route::Tags)
        .map(|r| r.finished)
        .max()
        .unwrap();
    let first_delete = stats
        .requests
        .iter()
        .filter(|r| r.route == Route::DeleteTag)
        .map(|r| r.started)
        .min()
        .unwrap();
    assert!(last_list <= first_delete);
    assert!(
        stats
            .requests
            .iter()
            .filter(|r| r.route == Route::Tags)
            .all(|r| r.path_and_query.contains("per_page=100"))
    );
}

#[test]
fn odd_and_missing_dates_are_kept() {
    let dated = |name: &str, created: Option<&str>| Tag::new(name, created.map(str::to_owned));
    let tags = vec![
        dated("null", None),
        dated("garbage", Some("yesterday")),
        dated("no-offset", Some("2020-01-06T16:49:51.272")),
        dated("epoch", Some("1970-01-01T00:00:00.000+00:00")),
        dated("dos-epoch", Some("1980-01-01T00:00:00Z")),
        dated("future", Some("2999-01-01T00:00:00.000+00:00")),
        dated("old-z", Some("2020-01-06T16:49:51Z")),
        dated("old-offset", Some("2020-01-06T19:49:51.272+03:00")),
        dated("old-gitlab", Some("2019-01-06T16:49:51.272+00:00")),
    ];
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap();
    let r = once(&fake, &json!({"p": {"id": 1, "delete_older_than": "30d"}}), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.tags("deleted"),
        sorted(&["g/p/img:old-gitlab", "g/p/img:old-offset", "g/p/img:old-z"])
    );
    let no_date: Vec<String> = r
        .ops("kept")
        .iter()
        .filter(|e| e["reason"] == "no_date")
        .map(|e| e["tag_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(no_date.len(), 5, "{no_date:?}");
    assert_eq!(
        fake.tag_names(10),
        sorted(&["dos-epoch", "epoch", "future", "garbage", "no-offset", "null"])
    );
}

#[test]
fn full_form_policy() {
    let fake = FakeGitlab::start(Seed {
        groups: vec![Group {
            id: 50,
            path: "sandbox".into(),
        }],
        ..seed(vec![
            project(
                1,
                "platform/web",
                vec![repo(
                    10,
                    "",
                    vec![
                        old("v1.2.3"),
                        old("v1.2.4"),
                        Tag::aged("mr-1", 5 * DAY),
                        Tag::aged("mr-2", 6 * DAY),
                        Tag::aged("mr-3", 7 * DAY),
                        Tag::aged("mr-4", 8 * DAY),
                        Tag::aged("latest", 99 * DAY),
                    ],
                )],
            ),
            project(
                2,
                "group/ci",
                vec![
                    repo(20, "cache-linux", vec![old("a"), old("b")]),
                    repo(21, "release", vec![old("a"), old("b")]),
                ],
            ),
            project(3, "sandbox/play", vec![repo(30, "x", vec![old("t1"), young("t2")])]),
            project(4, "other/thing", vec![repo(40, "y", vec![old("keepme")])]),
        ])
    })
    .unwrap();
    let config = json!({
        "defaults": {"delete_older_than": "3d"},
        "projects": {
            "web": {"id": "Platform/Web", "keep_n": 2, "name_regex_keep": "v\\d+\\.\\d+\\.\\d+"},
            "ci": {"id": 2, "delete_older_than": {"days": 7}, "repository_regex": "group/ci/cache-.*"}
        },
        "groups": {"sandbox": {"id": "sandbox", "delete_older_than": "2d"}}
    });
    let r = once(&fake, &config, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.tags("deleted"),
        sorted(&[
            "platform/web:mr-3",
            "platform/web:mr-4",
            "group/ci/cache-linux:a",
            "group/ci/cache-linux:b",
            "sandbox/play/x:t1"
        ])
    );
    assert_eq!(
        fake.tag_names(10),
        sorted(&["latest", "mr-1", "mr-2", "v1.2.3", "v1.2.4"])
    );
    assert_eq!(fake.tag_names(21).len(), 2, "repository_regex left release alone");
    assert_eq!(fake.tag_names(40).len(), 1, "not configured");
    let reasons: Vec<(String, String)> = r
        .ops("kept")
        .iter()
        .filter(|e| e["project"] == "web")
        .map(|e| {
            (
                e["tag_name"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("latest", "latest"),
        ("v1.2.3", "name_regex_keep"),
        ("mr-1", "keep_n"),
        ("mr-2", "keep_n"),
    ] {
        assert!(
            reasons.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {reasons:?}"
        );
    }
    // The path id went out URL-encoded, as one segment.
    assert!(fake.stats().requests.iter().any(|q| {
        q.path_and_query
            .starts_with("/api/v4/projects/Platform%2FWeb/registry/repositories")
    }));
    assert!(fake.stats().requests.iter().any(|q| {
        q.path_and_query
            .starts_with("/api/v4/groups/sandbox/registry/repositories")
    }));
}

#[test]
fn max_deletions_fuse_keeps_the_whole_project() {
    let fake = FakeGitlab::start(seed(vec![
        project(
            1,
            "g/big",
            vec![repo(10, "a", vec![old("1"), old("2")]), repo(11, "b", vec![old("3")])],
        ),
        project(2, "g/small", vec![repo(20, "c", vec![old("4")])]),
    ]))
    .unwrap();
    let config = json!({"projects": {
        "big": {"id": 1, "delete_older_than": "1d", "max_deletions": 2},
        "small": {"id": 2, "delete_older_than": "1d", "max_deletions": 2}
    }});
    let r = once(&fake, &config, &[]);
    assert_eq!(r.code, 1, "a tripped fuse fails the pass\n{}", r.all());
    assert_eq!(r.tags("deleted"), sorted(&["g/small/c:4"]));
    assert_eq!(fake.tag_names(10).len() + fake.tag_names(11).len(), 3);
    let fuse = r.ops("max_deletions_exceeded");
    assert_eq!(fuse.len(), 1);
    assert_eq!(fuse[0]["project"], "big");
    assert_eq!(fuse[0]["would_delete"], 3);
    assert_eq!(fuse[0]["level"], "ERROR");
    assert_eq!(
        r.ops("kept").iter().filter(|e| e["reason"] == "max_deletions").count(),
        3
    );
}

#[test]
fn a_protected_tag_is_kept_alone_and_is_no_error() {
    // REST learns it from the DELETE's 403 and one GET; GraphQL before deleting anything.
    for api in ["rest", "graphql"] {
        let fake = FakeGitlab::start(seed(vec![project(
            1,
            "g/p",
            vec![repo(10, "img", vec![old("a"), old("guarded").protected(), old("b")])],
        )]))
        .unwrap();
        let r = once(
            &fake,
            &json!({"p": {"id": 1, "delete_older_than": "1d"}}),
            &["--api", api],
        );
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(r.tags("deleted"), sorted(&["g/p/img:a", "g/p/img:b"]), "{api}");
        assert!(r.ops("delete_failed").is_empty(), "{api}: {}", r.all());
        let kept: Vec<_> = r
            .ops("kept")
            .into_iter()
            .filter(|e| e["reason"] == "protected")
            .collect();
        assert_eq!(kept.len(), 1, "{api}: {}", r.all());
        assert_eq!(kept[0]["tag_name"], "guarded");
        assert_eq!(fake.tag_names(10), vec!["guarded"]);
        assert_eq!(r.finished()["errors"], 0);
        let deletes = fake.stats().deletes();
        assert_eq!(deletes, if api == "rest" { 3 } else { 0 }, "{api}");
    }
}

#[test]
fn concurrency_bound_is_observed_at_the_server() {
    let tags: Vec<Tag> = (0..60).map(|i| old(&format!("t{i:02}"))).collect();
    let fake = FakeGitlab::start(seed(vec![
        project(1, "g/a", vec![repo(10, "x", tags.clone()), repo(11, "y", tags.clone())]),
        project(2, "g/b", vec![repo(20, "z", tags)]),
    ]))
    .unwrap();
    fake.set_faults(Faults {
        latency: std::time::Duration::from_millis(15),
        ..Faults::default()
    });
    let config = json!({"a": {"id": 1, "delete_older_than": "1d"}, "b": {"id": 2, "delete_older_than": "1d"}});
    let r = once(&fake, &config, &["--concurrency", "3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let stats = fake.stats();
    assert_eq!(stats.max_in_flight, 3, "the bound is used and never exceeded");
    assert_eq!(r.ops("deleted").len(), 180);
    // No request repeated: one list page per repository list and tag list, one detail and one delete per tag.
    assert_eq!(stats.count(Route::ProjectRepositories), 2);
    assert_eq!(stats.count(Route::Tags), 3);
    assert_eq!(stats.count(Route::TagDetail), 180);
    assert_eq!(stats.count(Route::DeleteTag), 180);
}

#[test]
fn config_concurrency_applies_and_the_flag_overrides_it() {
    let fake = old_tags_repo(40, std::time::Duration::from_millis(15));
    let config = json!({"concurrency": 2, "projects": {"a": {"id": 1, "delete_older_than": "1d"}}});
    let r = once(&fake, &config, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(fake.stats().max_in_flight, 2);
    fake.reset_stats();
    let r = once(&fake, &config, &["--dry-run", "--concurrency", "5"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(fake.stats().max_in_flight, 5);
}

#[test]
fn user_agent_and_token_header() {
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", vec![old("a")])])])).unwrap();
    let r = once(
        &fake,
        &json!({"p": {"id": 1, "delete_older_than": "1d"}}),
        &["--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for request in fake.stats().requests {
        assert_eq!(request.auth.as_deref(), Some(TOKEN));
        assert!(
            request
                .user_agent
                .as_deref()
                .unwrap()
                .starts_with("gitlab-registry-cleaner/")
        );
    }
}

/// The log shape of spec §4, pinned: every tag event has `operation`,
/// `tag_name`, `tag_location`, `project` and `repository` at the top level,
/// once each (the last two come from the entry's and repository's spans),
/// through both APIs, in a dry run and in a real pass with a failure.
#[test]
fn every_tag_event_has_the_kibana_fields_once() {
    for (api, dry_run) in [("rest", true), ("rest", false), ("graphql", true), ("graphql", false)] {
        let fake = FakeGitlab::start(seed(vec![project(
            1,
            "g/p",
            vec![repo(
                10,
                "img",
                vec![
                    old("a"),
                    old("c"),
                    old("guarded").protected(),
                    young("b"),
                    Tag::new("undated", None),
                    Tag::aged("latest", 30 * DAY),
                ],
            )],
        )]))
        .unwrap();
        fake.set_faults(Faults {
            // One deletion fails outright, one goes.
            rules: vec![
                FaultRule::times(Route::DeleteTag, Fault::status(400), 1),
                FaultRule::always(Route::GraphqlMutation, Fault::PartialDelete),
            ],
            ..Faults::default()
        });
        let mut args = vec!["--api", api];
        if dry_run {
            args.push("--dry-run");
        }
        let r = once(&fake, &json!({"p": {"id": 1, "delete_older_than": "1d"}}), &args);
        let mut operations = std::collections::BTreeSet::new();
        for line in r.stdout.lines().filter(|l| l.contains("\"tag_name\"")) {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let operation = event["operation"]
                .as_str()
                .unwrap_or_else(|| panic!("no operation: {line}"));
            operations.insert(operation.to_owned());
            for key in ["operation", "tag_name", "tag_location", "project", "repository"] {
                assert!(event[key].is_string(), "{api}: {key} missing in {line}");
                assert_eq!(
                    line.matches(&format!("\"{key}\":")).count(),
                    1,
                    "{api}: {key} twice in {line}"
                );
            }
            assert_eq!(event["project"], "p", "{line}");
            assert_eq!(event["repository"], "g/p/img", "{line}");
            assert_eq!(event["tag_location"], "registry.example.com:5005/g/p/img", "{line}");
            // Every delete decision carries the digest, so a log joins a plan;
            // a `kept` one wherever the tag's details were read.
            let name = event["tag_name"].as_str().unwrap();
            let with_details = !matches!(name, "latest");
            if operation != "kept" || (with_details && event["reason"] != "not_matched") {
                assert_eq!(
                    event["digest"].as_str(),
                    Some(fake_gitlab::default_digest(name).as_str()),
                    "{api}: {line}"
                );
                assert_eq!(line.matches("\"digest\":").count(), 1, "{line}");
            }
        }
        let expected: &[&str] = if dry_run {
            &["dry_run", "kept"]
        } else {
            &["delete_failed", "deleted", "kept"]
        };
        assert_eq!(
            operations.iter().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "{api}\n{}",
            r.all()
        );
    }
}

/// `pass_timeout`: at the deadline no new request starts; what was listed
/// but not decided keeps its tags (`kept`, reason `pass_timeout`), the pass
/// ends `incomplete` and exits 1. A deletion already sent is seen through.
#[test]
fn a_pass_timeout_stops_starting_work_and_keeps_the_rest() {
    let repos = (0..4)
        .map(|r| {
            repo(
                10 + r,
                &format!("img{r}"),
                (0..30).map(|i| old(&format!("t{i:02}"))).collect(),
            )
        })
        .collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", repos)])).unwrap();
    fake.set_faults(Faults {
        latency: std::time::Duration::from_millis(20),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let r = once(
        &fake,
        &json!({"p": {"id": 1, "delete_older_than": "1d"}}),
        &["--api", "rest", "--concurrency", "1", "--pass-timeout", "1s"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let finished = r.finished();
    assert_eq!(finished["result"], "incomplete", "{finished}");
    assert_eq!(finished["errors"], 0);
    assert_eq!(r.ops("pass_timeout").len(), 1, "{}", r.all());
    assert_eq!(r.ops("pass_timeout")[0]["pass_timeout"], "1 second");
    let deleted = r.ops("deleted").len();
    assert!(deleted > 0 && deleted < 120, "some work was done, not all: {deleted}");
    let timed_out: Vec<_> = r
        .ops("kept")
        .into_iter()
        .filter(|e| e["reason"] == "pass_timeout")
        .collect();
    assert!(
        !timed_out.is_empty(),
        "listed tags left undecided are kept as such: {}",
        r.all()
    );
    assert_eq!(
        fake.deleted().len(),
        deleted,
        "the registry lost exactly what was reported"
    );
    // No request started after the deadline (1 s after the pass began; the
    // process starts within the slack).
    let stats = fake.stats();
    let late = stats
        .requests
        .iter()
        .filter(|q| q.started > started + std::time::Duration::from_millis(1_500))
        .count();
    assert_eq!(late, 0, "requests after the deadline");

    // The config's pass_timeout, and a DELETE sent before the deadline whose
    // answer comes after it: seen through, reported deleted.
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", vec![old("a")])])])).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::DeleteTag,
            Fault::Delay(std::time::Duration::from_millis(1_500)),
        )],
        ..Faults::default()
    });
    let r = once(
        &fake,
        &json!({"pass_timeout": "1s", "projects": {"p": {"id": 1, "delete_older_than": "1d"}}}),
        &["--api", "rest"],
    );
    assert_eq!(r.code, 0, "everything was done: {}", r.all());
    assert_eq!(r.finished()["result"], "success");
    assert_eq!(r.tags("deleted"), ["g/p/img:a"]);
}
