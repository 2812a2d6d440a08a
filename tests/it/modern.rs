//! Today's GitLab (17–18, registry metadata database, as on GitLab.com):
//! which date is a tag's age, listings GitLab cuts short without an error,
//! protected and immutable tags, 403 for a tag already gone, repositories
//! being deleted. See docs/gitlab-api.md.

use fake_gitlab::{AccessLevel, RepositoryStatus, TagFields, TagProtectionRule};
use serde_json::{Value, json};

use crate::support::*;

fn kept_for(r: &Run, reason: &str) -> Vec<String> {
    let mut names: Vec<String> = r
        .ops("kept")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| e["tag_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn one_repo(tags: Vec<Tag>) -> Seed {
    seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])
}

/// A mutable tag first pushed 60 days ago and pushed again now is young by
/// its last push: the default keeps it, as GitLab's own cleanup does;
/// `age_from: "created"` (the Python tool's basis) would delete it.
#[test]
fn a_re_pushed_tag_is_aged_by_its_last_push_by_default() {
    let fake = FakeGitlab::start(one_repo(vec![
        tag_aged("staging", 60 * DAY),
        tag_aged("stale", 60 * DAY),
    ]))
    .unwrap();
    let before = fake.tag_digest(10, "staging").unwrap();
    fake.push_tag(
        10,
        "staging",
        "sha256:0000000000000000000000000000000000000000000000000000000000000001",
    );
    assert_ne!(fake.tag_digest(10, "staging").unwrap(), before);
    let config = json!({"p": {"id": "g/p", "delete_older_than": "30d"}});
    let created = json!({"p": {"id": "g/p", "delete_older_than": "30d", "age_from": "created"}});

    let r = once(&fake, &created, &["--api", "graphql", "--dry-run"]);
    assert_eq!(r.tags("dry_run"), ["g/p/img:staging", "g/p/img:stale"], "{}", r.all());
    // Pushing the same digest again changes nothing.
    fake.push_tag(10, "stale", &fake.tag_digest(10, "stale").unwrap());
    let r = run(bin_default_api(Workdir::new().path())
        .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(Workdir::new().config(&config)));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("deleted"), ["g/p/img:stale"]);
    assert_eq!(fake.tag_names(10), ["staging"]);
}

/// GitLab turns a registry error into a short last page with no error. The
/// listing is compared with GitLab's own count: short of it, every tag of
/// the repository is kept and the pass fails; through both APIs.
#[test]
fn a_listing_gitlab_cut_short_keeps_every_tag_of_the_repository() {
    // REST: 150 tags are two pages of 100; GraphQL: eight pages of 20.
    for (api, route, after) in [("rest", Route::Tags, 1), ("graphql", Route::Graphql, 2)] {
        let tags = (0..150).map(|i| old(&format!("t{i:03}"))).collect();
        let fake = FakeGitlab::start(one_repo(tags)).unwrap();
        fake.set_faults(Faults {
            rules: vec![FaultRule::always(route, Fault::RegistryCut).after(after)],
            ..Faults::default()
        });
        let config = json!({"p": {"id": "g/p", "delete_older_than": "1d", "max_deletions": 100}});
        let r = once(&fake, &config, &["--api", api]);
        assert_eq!(r.code, 1, "{api}: {}", r.all());
        assert!(fake.deleted().is_empty(), "{api}: nothing is deleted");
        let cut = r.ops("listing_incomplete");
        assert_eq!(cut.len(), 1, "{api}: {}", r.all());
        let listed = if api == "rest" { 100 } else { 20 };
        assert_eq!(cut[0]["listed"], listed, "{api}: {}", cut[0]);
        assert_eq!(
            (cut[0]["count_before"].as_u64(), cut[0]["count_after"].as_u64()),
            (Some(150), Some(150))
        );
        assert_eq!(cut[0]["repository"], "g/p/img");
        assert!(cut[0]["error"].as_str().unwrap().contains("150"), "{}", cut[0]);
        assert_eq!(kept_for(&r, "listing_incomplete").len(), listed as usize, "{api}");
        assert!(
            r.ops("max_deletions_exceeded").is_empty(),
            "{api}: no slice reaches the fuse"
        );
        assert_eq!(r.finished()["errors"], 1);

        // The next pass, with the registry healthy, does the work.
        fake.clear_faults();
        let r = once(
            &fake,
            &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
            &["--api", api],
        );
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(r.ops("deleted").len(), 150);
    }
}

/// A count that proves nothing raises no alarm: GitLab's count call failed
/// (0), or tags others push and delete move the count while the listing runs.
#[test]
fn counts_that_prove_nothing_and_tags_changing_meanwhile_are_no_alarm() {
    for api in ["rest", "graphql"] {
        let fake = FakeGitlab::start(one_repo((0..30).map(|i| old(&format!("t{i:02}"))).collect())).unwrap();
        fake.set_faults(Faults {
            rules: vec![FaultRule::always(Route::Any, Fault::TagsCountFails)],
            ..Faults::default()
        });
        let r = once(
            &fake,
            &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
            &["--api", api],
        );
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(r.ops("deleted").len(), 30, "{api}");
    }

    // Others delete 20 tags and push 5 while the pages are read (slowly):
    // the listing is complete for what is there, and no alarm is raised.
    for api in ["rest", "graphql"] {
        let fake = FakeGitlab::start(one_repo((0..150).map(|i| young(&format!("t{i:03}"))).collect())).unwrap();
        fake.set_faults(Faults {
            latency: std::time::Duration::from_millis(30),
            ..Faults::default()
        });
        let work = Workdir::new();
        let path = work.config(&json!({"p": {"id": "g/p", "delete_older_than": "1d"}}));
        let child = bin(work.path())
            .args(["--api", api, "--url", &fake.url(), "--token", TOKEN, "--config"])
            .arg(&path)
            .args(["--concurrency", "2"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150));
        for i in 0..5 {
            fake.add_tag(10, young(&format!("z-new-{i}")));
        }
        for i in 100..120 {
            let url = format!("{}/api/v4/projects/1/registry/repositories/10/tags/t{i:03}", fake.url());
            let status = http_delete(&url);
            assert!(matches!(status, 200 | 403), "{status}");
        }
        let output = child.wait_with_output().unwrap();
        let r = Run::from(output, std::time::Duration::ZERO);
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert!(r.ops("listing_incomplete").is_empty(), "{api}: {}", r.all());
    }
}

/// A minimal DELETE with the test token, for "someone else" changing the registry.
fn http_delete(url: &str) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A project with a tag protection rule above the token's role: GitLab says
/// which tags the user may not delete (kept, `protected`, before any
/// deletion), and refuses the batch mutation for the whole repository — the
/// other tags are deleted one by one through REST. No error, exit 0.
#[test]
fn tag_protection_rules_keep_their_tags_and_the_rest_still_goes() {
    let tags = [
        old("v1.0.0"),
        old("v1.1.0"),
        old("build-1"),
        old("build-2"),
        young("build-3"),
    ];
    let maintainers = || TagProtectionRule::at_least("v.*", AccessLevel::Maintainer);
    let (fake, r) = pass_under_rule(&tags, maintainers(), AccessLevel::Developer, "graphql");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(kept_for(&r, "protected"), ["v1.0.0", "v1.1.0"]);
    assert_eq!(r.tags("deleted"), ["g/p/img:build-1", "g/p/img:build-2"]);
    assert_eq!(r.ops("batch_refused").len(), 1, "{}", r.all());
    assert!(r.ops("delete_failed").is_empty());
    let stats = fake.stats();
    assert_eq!(stats.count(Route::GraphqlMutation), 1, "one refused mutation");
    assert_eq!(
        stats.deletes(),
        2,
        "then a DELETE for each unprotected tag, none for the protected"
    );
    assert_eq!(fake.tag_names(10), ["build-3", "v1.0.0", "v1.1.0"]);

    // A Maintainer may delete them: nothing is protected, the batch goes through.
    let (fake, r) = pass_under_rule(&tags, maintainers(), AccessLevel::Maintainer, "graphql");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("deleted").len(), 4);
    assert_eq!(fake.stats().deletes(), 0, "all through the mutation");

    // An immutable rule binds everyone, the owner too.
    let (fake, r) = pass_under_rule(
        &tags,
        TagProtectionRule::immutable("v.*"),
        AccessLevel::Owner,
        "graphql",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(kept_for(&r, "protected"), ["v1.0.0", "v1.1.0"]);
    assert_eq!(fake.tag_names(10), ["build-3", "v1.0.0", "v1.1.0"]);

    // Through REST, GitLab tells at the DELETE (403, then a GET finds the tag): kept, no error.
    let (_, r) = pass_under_rule(&tags, maintainers(), AccessLevel::Developer, "rest");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(kept_for(&r, "protected"), ["v1.0.0", "v1.1.0"]);
    assert_eq!(r.tags("deleted"), ["g/p/img:build-1", "g/p/img:build-2"]);
}

/// One pass over `tags` in a project with `rule`, the token's user having `role`.
fn pass_under_rule(tags: &[Tag], rule: TagProtectionRule, role: AccessLevel, api: &str) -> (FakeGitlab, Run) {
    let fake = FakeGitlab::start(Seed {
        tag_protection_rules: [(1, vec![rule])].into(),
        role,
        ..one_repo(tags.to_vec())
    })
    .unwrap();
    let r = once(
        &fake,
        &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
        &["--api", api],
    );
    (fake, r)
}

/// A GitLab whose schema lacks the tag permission fields refuses the query
/// that asks for them: the query is asked again without them, once for the
/// process, and protected tags are found by their DELETE.
#[test]
fn an_older_gitlab_without_permission_fields_costs_one_query() {
    let repos = (0..3)
        .map(|i| repo(10 + i, &format!("img{i}"), vec![old("a"), old("locked").protected()]))
        .collect();
    let fake = FakeGitlab::start(Seed {
        tag_fields: TagFields::Neither,
        ..seed(vec![project(1, "g/p", repos)])
    })
    .unwrap();
    let r = once(
        &fake,
        &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
        &["--api", "graphql", "--concurrency", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("graphql_without_tag_permissions").len(), 1, "{}", r.all());
    assert!(r.ops("api_fallback").is_empty());
    assert_eq!(r.ops("deleted").len(), 3);
    assert_eq!(kept_for(&r, "protected"), ["locked", "locked", "locked"]);
    // 1 repository list + 1 refused tag query + 3 tag queries (1 page each).
    assert_eq!(fake.stats().count(Route::Graphql), 5);
}

/// With the metadata database GitLab answers 403 to a DELETE of a tag that
/// is gone: after a 502 that came after GitLab deleted, the retry's 403 is
/// checked with a GET, and the tag counts as deleted, not failed.
#[test]
fn a_retried_delete_answered_403_for_a_gone_tag_is_deleted() {
    let fake = FakeGitlab::start(one_repo(vec![old("a"), old("b"), old("c")])).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::DeleteTag, Fault::DeleteThen502, 3)],
        ..Faults::default()
    });
    let r = once(
        &fake,
        &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
        &["--api", "rest"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let deleted = r.ops("deleted");
    assert_eq!(deleted.len(), 3);
    assert!(deleted.iter().all(|e| e["already_gone"] == true), "{deleted:?}");
    assert!(r.ops("delete_failed").is_empty());
    let forbidden = fake
        .stats()
        .requests
        .iter()
        .filter(|q| q.method == "DELETE" && q.status == 403)
        .count();
    assert_eq!(forbidden, 3, "each retry met GitLab's 403 for a gone tag");
}

/// Repositories GitLab is deleting are skipped (one event each); a group
/// is looked up without its project list.
#[test]
fn repositories_being_deleted_are_skipped_and_groups_are_read_without_projects() {
    let fake = FakeGitlab::start(Seed {
        repository_status: [
            (11, RepositoryStatus::DeleteScheduled),
            (12, RepositoryStatus::DeleteOngoing),
        ]
        .into(),
        groups: vec![Group {
            id: 5,
            path: "g".into(),
        }],
        ..seed(vec![project(
            1,
            "g/p",
            vec![
                repo(10, "live", vec![old("a")]),
                repo(11, "going", vec![old("b")]),
                repo(12, "gone", vec![old("c")]),
            ],
        )])
    })
    .unwrap();
    for api in ["graphql", "rest"] {
        fake.reset_stats();
        let r = once(
            &fake,
            &json!({"groups": {"g": {"id": 5, "delete_older_than": "1d", "enabled": true}}, "projects": {}}),
            &["--api", api, "--dry-run"],
        );
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(r.tags("dry_run"), ["g/p/live:a"], "{api}");
        let skipped: Vec<Value> = r.ops("repository_skipped");
        assert_eq!(skipped.len(), 2, "{api}: {}", r.all());
        assert!(skipped.iter().any(|e| e["status"] == "delete_scheduled"));
        let stats = fake.stats();
        let tag_reads = stats.count(Route::Tags) + stats.count(Route::TagDetail);
        assert!(
            api == "graphql" || tag_reads == 2,
            "{api}: only the live repository's tags are read"
        );
        if api == "graphql" {
            let lookup = stats.requests.iter().find(|q| q.path() == "/api/v4/groups/5").unwrap();
            assert_eq!(lookup.query_param("with_projects"), Some("false"));
        }
    }
}

fn repushed_repos(n: u64) -> Vec<Repository> {
    (0..n)
        .map(|i| {
            repo(
                10 + i,
                &format!("img{i}"),
                vec![tag_aged("staging", 60 * DAY), tag_aged("stale", 60 * DAY)],
            )
        })
        .collect()
}

fn repush_all(fake: &FakeGitlab, n: u64) {
    for i in 0..n {
        fake.push_tag(
            10 + i,
            "staging",
            "sha256:0000000000000000000000000000000000000000000000000000000000000001",
        );
    }
}

/// Several first tag queries refused at once by a GitLab without the
/// permission fields: each is asked again without them, so no entry falls
/// back to REST, and re-pushed tags stay aged by their last push.
#[test]
fn refused_permission_fields_in_parallel_never_change_the_age_basis() {
    for api in ["auto", "graphql"] {
        let fake = FakeGitlab::start(Seed {
            tag_fields: TagFields::Neither,
            ..seed(vec![project(1, "g/p", repushed_repos(6))])
        })
        .unwrap();
        repush_all(&fake, 6);
        let r = once(
            &fake,
            &json!({"p": {"id": "g/p", "delete_older_than": "30d"}}),
            &["--api", api, "--concurrency", "8", "--dry-run"],
        );
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert!(r.ops("api_fallback").is_empty(), "{api}: {}", r.all());
        assert_eq!(r.ops("graphql_without_tag_permissions").len(), 1, "{api}: {}", r.all());
        let doomed = r.tags("dry_run");
        assert_eq!(doomed.len(), 6, "{api}: {doomed:?}");
        assert!(doomed.iter().all(|t| t.ends_with(":stale")), "{api}: {doomed:?}");
    }
}

/// An explicit `age_from: "published"` is never served by REST's first-push
/// dates, also not after GitLab refused a deletion mutation (which sends
/// only the entry's deletions through REST).
#[test]
fn a_refused_mutation_never_changes_how_tags_are_aged() {
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", repushed_repos(3))])).unwrap();
    repush_all(&fake, 3);
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(
            Route::GraphqlMutation,
            Fault::GraphqlError("Field 'destroyContainerRepositoryTags' doesn't accept argument 'input'".into()),
            1,
        )],
        ..Faults::default()
    });
    let r = once(
        &fake,
        &json!({"p": {"id": "g/p", "delete_older_than": "30d", "age_from": "published"}}),
        &["--api", "auto", "--concurrency", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.tags("deleted"),
        ["g/p/img0:stale", "g/p/img1:stale", "g/p/img2:stale"],
        "{}",
        r.all()
    );
    for i in 0..3 {
        assert_eq!(fake.tag_names(10 + i), ["staging"]);
    }
}

/// Only GitLab's "404 Tag Not Found" says a tag is gone: a DELETE refused
/// and a GET answered with the project's 404 (access lost) is a failure,
/// never a deletion reported for a tag that is still there.
#[test]
fn only_tag_not_found_means_gone() {
    let fake = FakeGitlab::start(one_repo(vec![old("a"), old("b")])).unwrap();
    let json_error = |status: u16, message: &str| Fault::Status {
        status,
        retry_after: None,
        body: format!("{{\"message\":\"{message}\"}}"),
        content_type: "application/json",
    };
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::always(Route::DeleteTag, json_error(403, "403 Forbidden")),
            FaultRule::always(Route::TagDetail, json_error(404, "404 Project Not Found")).after(2),
        ],
        ..Faults::default()
    });
    let r = once(
        &fake,
        &json!({"p": {"id": "g/p", "delete_older_than": "1d"}}),
        &["--api", "rest"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.ops("deleted").is_empty(), "{}", r.all());
    assert_eq!(r.ops("delete_failed").len(), 2);
    assert_eq!(fake.tag_names(10), ["a", "b"]);
}
