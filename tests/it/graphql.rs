//! The GraphQL path: the same decisions as REST from far fewer requests,
//! batched deletions, `age_from: published`, and `auto` falling back to REST.

use serde_json::{Value, json};

use crate::support::*;
use fake_gitlab::GraphqlSupport;

/// A registry that exercises every rule: more than one page of tags (20 a
/// page in GraphQL), keep_n, both regexes, latest, odd and missing dates, a
/// protected tag, a group and a numeric id.
fn rich_seed() -> Seed {
    let mut web: Vec<Tag> = (0..45).map(|i| old(&format!("build-{i:03}"))).collect();
    web.extend((0..5).map(|i| young(&format!("fresh-{i}"))));
    web.extend([
        old("v1.2.3"),
        Tag::aged("latest", 30 * DAY),
        Tag::new("null-date", None),
        Tag::new("garbage-date", Some("not a date".into())),
        Tag::new("dos-epoch", Some("1980-01-01T00:00:00.000+00:00".into())),
        old("locked").protected(),
    ]);
    let ci: Vec<Tag> = (0..30).map(|i| old(&format!("cache-{i:02}"))).collect();
    Seed {
        groups: vec![Group {
            id: 50,
            path: "sandbox".into(),
        }],
        ..seed(vec![
            project(
                1,
                "platform/web",
                vec![repo(10, "", web), repo(11, "docs", vec![old("d1"), young("d2")])],
            ),
            project(
                2,
                "platform/ci",
                vec![repo(20, "cache", ci), repo(21, "tmp", vec![old("t1")])],
            ),
            project(
                3,
                "sandbox/play",
                vec![repo(30, "", (0..25).map(|i| old(&format!("p{i}"))).collect())],
            ),
        ])
    }
}

fn rich_config() -> Value {
    json!({
        "defaults": {"delete_older_than": "2d", "keep_n": 3},
        "projects": {
            "web": {"id": "platform/web", "name_regex_keep": "v\\d+\\.\\d+\\.\\d+"},
            "ci": {"id": 2, "repository_regex": "platform/ci/cache", "name_regex_delete": "cache-.*", "keep_n": 0}
        },
        "groups": {"sandbox": {"id": 50, "keep_n": 5}}
    })
}

/// What a pass decided, tag by tag, and what the registry holds after it.
fn outcome(r: &Run, fake: &FakeGitlab) -> (Vec<String>, Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let left = [10, 11, 20, 21, 30].iter().map(|id| fake.tag_names(*id)).collect();
    (r.tags("deleted"), r.tags("kept"), r.tags("delete_failed"), left)
}

#[test]
fn rest_and_graphql_make_the_same_decisions_from_far_fewer_requests() {
    let rest_fake = FakeGitlab::start(rich_seed()).unwrap();
    let rest = once(&rest_fake, &rich_config(), &["--api", "rest"]);
    let graphql_fake = FakeGitlab::start(rich_seed()).unwrap();
    let graphql = once(&graphql_fake, &rich_config(), &["--api", "graphql"]);
    // The protected tag is kept (GraphQL knows before, REST after its DELETE): no error.
    assert_eq!(rest.code, 0, "{}", rest.all());
    assert_eq!(graphql.code, 0, "{}", graphql.all());
    assert_eq!(outcome(&rest, &rest_fake), outcome(&graphql, &graphql_fake));
    // Without the registry's metadata database tags page by offset: the same again.
    let legacy_fake = FakeGitlab::start(Seed {
        metadata_database: false,
        ..rich_seed()
    })
    .unwrap();
    let legacy = once(&legacy_fake, &rich_config(), &["--api", "graphql"]);
    assert_eq!(outcome(&rest, &rest_fake), outcome(&legacy, &legacy_fake));
    assert!(graphql.tags("delete_failed").is_empty());
    let protected: Vec<_> = graphql
        .ops("kept")
        .into_iter()
        .filter(|e| e["reason"] == "protected")
        .collect();
    assert_eq!(protected.len(), 1, "{}", graphql.all());
    assert_eq!(protected[0]["tag_name"], "locked");
    assert_eq!(
        graphql.tags("deleted").len(),
        45 + 30 + 20,
        "{:?}",
        graphql.tags("deleted")
    );
    for key in ["deleted", "kept", "errors", "tags_seen", "repositories", "bytes_freed"] {
        assert_eq!(rest.finished()[key], graphql.finished()[key], "{key}");
    }
    assert_eq!(graphql.finished()["errors"], 0);

    let (rest_stats, graphql_stats) = (rest_fake.stats(), graphql_fake.stats());
    assert_eq!(
        graphql_stats.count(Route::TagDetail) + graphql_stats.count(Route::Tags),
        0
    );
    assert_eq!(graphql_stats.deletes(), 0, "deletions go through the mutation");
    // Numeric ids are resolved to paths once: project 2, group 50.
    assert_eq!(graphql_stats.count(Route::Project), 1);
    assert_eq!(graphql_stats.count(Route::Group), 1);
    // 3 repository listings; 3 + 1 + 2 + 2 tag pages (20 a page); 46, 30 and 20 tags deleted 20 a mutation.
    assert_eq!(graphql_stats.count(Route::Graphql), 3 + 8);
    assert_eq!(graphql_stats.count(Route::GraphqlMutation), 3 + 2 + 1);
    assert!(
        rest_stats.total >= 5 * graphql_stats.total,
        "REST {} vs GraphQL {} requests",
        rest_stats.total,
        graphql_stats.total
    );
    // Every GraphQL request carried the token as a Bearer token, never PRIVATE-TOKEN.
    for record in graphql_stats
        .requests
        .iter()
        .filter(|r| r.path_and_query == "/api/graphql")
    {
        assert_eq!(record.auth.as_deref(), Some(TOKEN));
        assert_eq!(record.status, 200, "{record:?}");
    }
}

#[test]
fn dry_run_through_graphql_sends_no_mutation() {
    let fake = FakeGitlab::start(rich_seed()).unwrap();
    let r = once(&fake, &rich_config(), &["--api", "graphql", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(fake.stats().count(Route::GraphqlMutation), 0);
    assert!(fake.deleted().is_empty());
    // The protected tag is kept as such before any deletion, in a dry run too.
    assert_eq!(r.tags("dry_run").len(), 45 + 30 + 20);
}

#[test]
fn auto_falls_back_to_rest_where_graphql_is_missing() {
    let fake = FakeGitlab::start(Seed {
        graphql: GraphqlSupport::Missing,
        ..rich_seed()
    })
    .unwrap();
    let r = once(&fake, &rich_config(), &["--api", "auto"]);
    assert_eq!(r.code, 0, "the protected tag is kept after its DELETE: {}", r.all());
    let fallbacks = r.ops("api_fallback");
    assert_eq!(fallbacks.len(), 3, "once per entry: {fallbacks:?}");
    assert!(
        fallbacks[0]["reason"].as_str().unwrap().contains("404"),
        "{fallbacks:?}"
    );
    assert_eq!(r.tags("deleted").len(), 45 + 30 + 20);
    assert_eq!(fake.stats().count(Route::Graphql), 3);

    // `graphql` does not fall back: the entries fail, nothing is deleted.
    let fake = FakeGitlab::start(Seed {
        graphql: GraphqlSupport::Missing,
        ..rich_seed()
    })
    .unwrap();
    let r = once(&fake, &rich_config(), &["--api", "graphql"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("project_failed").len(), 3, "{}", r.all());
    assert!(
        r.stdout.contains("GraphQL endpoint"),
        "the hint names the cause: {}",
        r.all()
    );
    assert!(fake.deleted().is_empty());
}

#[test]
fn auto_falls_back_when_gitlab_refuses_the_query() {
    let fake = FakeGitlab::start(rich_seed()).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::Graphql,
            Fault::GraphqlError("Field 'containerRepositories' doesn't exist on type 'Project'".into()),
        )],
        ..Faults::default()
    });
    let r = once(&fake, &rich_config(), &["--api", "auto"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("api_fallback").len(), 3);
    assert_eq!(r.tags("deleted").len(), 45 + 30 + 20);
}

#[test]
fn a_refused_tag_query_makes_the_entry_use_rest_and_says_so_once() {
    let repos = (0..3)
        .map(|r| repo(10 + r, &format!("img{r}"), vec![old("a"), old("b"), young("c")]))
        .collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", repos)])).unwrap();
    // The repository list passes; every tag query is refused.
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::always(Route::Graphql, Fault::GraphqlError("Field 'tags' doesn't exist".into())).after(1),
        ],
        ..Faults::default()
    });
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let r = once(&fake, &config, &["--api", "auto", "--concurrency", "1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("api_fallback").len(), 1, "once per entry: {}", r.all());
    assert_eq!(r.tags("deleted").len(), 6);
    let stats = fake.stats();
    assert_eq!(
        stats.count(Route::Graphql),
        3,
        "one list, one refused tag query asked again without the permission fields (an older schema?), then REST"
    );
    assert_eq!(stats.count(Route::GraphqlMutation), 0);
    assert_eq!(stats.deletes(), 6);
}

#[test]
fn an_error_mid_listing_keeps_every_tag_of_the_repository() {
    let fake = old_tags_repo(50, std::time::Duration::ZERO);
    // The repository listing and the first tag page pass; the second page fails.
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Graphql, Fault::status(500)).after(2)],
        ..Faults::default()
    });
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("repository_failed").len(), 1, "{}", r.all());
    assert_eq!(fake.tag_names(10).len(), 50, "nothing deleted");
    assert_eq!(fake.stats().count(Route::GraphqlMutation), 0);
    // In `auto` a failing GraphQL is no reason to fall back: it keeps everything too.
    let r = once(&fake, &config, &["--api", "auto"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.ops("api_fallback").is_empty());
    assert_eq!(fake.tag_names(10).len(), 50);
}

#[test]
fn partial_mutation_results_are_delete_failed_events_and_the_next_pass_finishes() {
    let fake = old_tags_repo(45, std::time::Duration::ZERO);
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::GraphqlMutation, Fault::PartialDelete, 1)],
        ..Faults::default()
    });
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let r = once(&fake, &config, &["--api", "graphql", "--concurrency", "1"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r.ops("delete_failed");
    assert_eq!(failed.len(), 10, "half of the first batch of 20: {}", r.all());
    assert!(
        failed.iter().all(|e| e["error"] == "error while deleting tags"),
        "{failed:?}"
    );
    assert_eq!(r.tags("deleted").len(), 35);
    assert_eq!(fake.tag_names(10).len(), 10);
    assert_eq!(fake.stats().count(Route::GraphqlMutation), 3, "20 + 20 + 5");

    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("deleted").len(), 10);
    assert!(fake.tag_names(10).is_empty());
}

#[test]
fn a_502_after_the_mutation_ran_is_retried_harmlessly() {
    let fake = old_tags_repo(25, std::time::Duration::ZERO);
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::GraphqlMutation, Fault::DeleteThen502, 1),
            FaultRule::times(Route::Graphql, Fault::too_many_requests(Some("0")), 1),
        ],
        ..Faults::default()
    });
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("deleted").len(), 25);
    assert!(fake.tag_names(10).is_empty());
    assert_eq!(fake.deleted().len(), 25, "each tag deleted once");
    assert!(r.stdout.contains("retrying"), "{}", r.all());
}

#[test]
fn a_mutation_whose_every_answer_is_lost_is_checked_by_listing() {
    let fake = old_tags_repo(25, std::time::Duration::ZERO);
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::GraphqlMutation, Fault::DeleteThen502)],
        ..Faults::default()
    });
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 0, "the tags are gone: {}", r.all());
    let deleted = r.ops("deleted");
    assert_eq!(deleted.len(), 25);
    assert!(deleted.iter().all(|e| e["already_gone"] == true), "{deleted:?}");
    assert!(fake.tag_names(10).is_empty());

    // GitLab's GraphQL timeout can strike while its delete service goes on:
    // an error in place of the payload is checked the same way.
    let fake = old_tags_repo(5, std::time::Duration::ZERO);
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::GraphqlMutation,
            Fault::RunThenGraphqlError("Timeout on DestroyContainerRepositoryTagsPayload.deletedTagNames".into()),
        )],
        ..Faults::default()
    });
    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 0, "the tags are gone: {}", r.all());
    assert_eq!(r.ops("deleted").len(), 5);
    assert_eq!(fake.stats().count(Route::TagDetail), 5, "each name checked exactly");

    // A mutation whose answer is lost before GitLab acts is a failure, after the same check.
    let fake = old_tags_repo(5, std::time::Duration::ZERO);
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::GraphqlMutation, Fault::status(503))],
        ..Faults::default()
    });
    let r = once(&fake, &config, &["--api", "graphql"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("delete_failed").len(), 5);
    assert_eq!(fake.tag_names(10).len(), 5);
}

#[test]
fn published_dates_age_re_pushed_tags_from_their_last_push() {
    let tags = vec![
        // Created long ago, pushed again an hour ago: young by its push.
        old("re-pushed").published(HOUR),
        old("stale"),
        young("new"),
    ];
    let fake = FakeGitlab::start(Seed {
        metadata_database: true,
        ..seed(vec![project(1, "g/p", vec![repo(10, "img", tags.clone())])])
    })
    .unwrap();
    let published = json!({"projects": {"p": {"id": "g/p", "delete_older_than": "2d", "age_from": "published"}}});
    let r = once(&fake, &published, &["--api", "auto", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("dry_run"), ["g/p/img:stale"]);
    let created = json!({"projects": {"p": {"id": "g/p", "delete_older_than": "2d", "age_from": "created"}}});
    let r = once(&fake, &created, &["--api", "graphql", "--dry-run"]);
    assert_eq!(r.tags("dry_run"), ["g/p/img:re-pushed", "g/p/img:stale"]);
    // The default is the last push.
    let default = json!({"projects": {"p": {"id": "g/p", "delete_older_than": "2d"}}});
    let r = once(&fake, &default, &["--api", "graphql", "--dry-run"]);
    assert_eq!(r.tags("dry_run"), ["g/p/img:stale"]);

    // Without the metadata database publishedAt is null: createdAt is used, and said so.
    let fake = FakeGitlab::start(Seed {
        metadata_database: false,
        ..seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])
    })
    .unwrap();
    let r = once(&fake, &published, &["--api", "graphql", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("dry_run"), ["g/p/img:re-pushed", "g/p/img:stale"]);
    let missing = r.ops("published_at_missing");
    assert_eq!(missing.len(), 1, "{}", r.all());
    assert_eq!(missing[0]["tags"], 3);

    // REST has no publishedAt: refused at start, and never a fallback.
    let r = once(&fake, &published, &["--api", "rest"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("p.age_from") || r.stderr.contains("projects.p.age_from"),
        "{}",
        r.all()
    );
    let fake = FakeGitlab::start(Seed {
        graphql: GraphqlSupport::Missing,
        ..seed(vec![project(1, "g/p", vec![repo(10, "img", vec![old("stale")])])])
    })
    .unwrap();
    let r = once(&fake, &published, &["--api", "auto"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.ops("api_fallback").is_empty());
    assert!(r.stdout.contains("REST has no publishedAt"), "{}", r.all());
    assert_eq!(fake.tag_names(10), ["stale"]);
}

/// The default basis is the last push; where only REST can serve an entry,
/// it ages by `created_at` instead, and says so: at load (and in `check`) with
/// `api: rest`, in the `api_fallback` event under `auto`.
#[test]
fn the_default_basis_falls_back_to_created_where_only_rest_serves() {
    let tags = vec![old("re-pushed").published(HOUR), old("stale"), young("new")];
    let default = json!({"projects": {"p": {"id": "g/p", "delete_older_than": "2d"}}});

    // api rest: one warning at load, and the pass ages by created_at.
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags.clone())])])).unwrap();
    let r = once(&fake, &default, &["--api", "rest", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("dry_run"), ["g/p/img:re-pushed", "g/p/img:stale"]);
    let warnings = r.ops("config_warning");
    assert_eq!(warnings.len(), 1, "{}", r.all());
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.contains("projects.p") && message.contains("created_at"),
        "{message}"
    );
    assert!(r.ops("published_at_missing").is_empty(), "{}", r.all());
    let work = Workdir::new();
    let path = work.config(&default);
    let check = run(bin(work.path()).args(["check", "--api", "rest", "--config"]).arg(&path));
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(check.stdout.contains("warning: api is \"rest\""), "{}", check.all());
    assert!(check.stdout.contains("(age_from created)"), "{}", check.all());
    let check = run(bin(work.path()).args(["check", "--api", "auto", "--config"]).arg(&path));
    assert!(!check.stdout.contains("warning"), "{}", check.all());

    // api auto, GraphQL missing: the entry goes on through REST, aged by created_at.
    let fake = FakeGitlab::start(Seed {
        graphql: GraphqlSupport::Missing,
        metadata_database: true,
        ..seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])
    })
    .unwrap();
    let r = once(&fake, &default, &["--api", "auto"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let fallbacks = r.ops("api_fallback");
    assert_eq!(fallbacks.len(), 1, "{}", r.all());
    assert_eq!(fallbacks[0]["age_from"], "created", "{}", r.all());
    assert!(
        fallbacks[0]["message"].as_str().unwrap().contains("created_at"),
        "{}",
        r.all()
    );
    assert!(r.ops("published_at_missing").is_empty(), "{}", r.all());
    assert_eq!(fake.tag_names(10), ["new"]);
}

#[test]
fn check_online_says_which_api_it_used() {
    let fake = FakeGitlab::start(rich_seed()).unwrap();
    let work = Workdir::new();
    let path = work.config(&rich_config());
    let r = run(bin(work.path())
        .args([
            "check",
            "--online",
            "--api",
            "auto",
            "--url",
            &fake.url(),
            "--token",
            TOKEN,
            "--config",
        ])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("web: OK, 2 container repositories (2 to clean), through GraphQL"),
        "{}",
        r.all()
    );
}

#[test]
fn the_default_is_auto_graphql_first() {
    let fake = FakeGitlab::start(rich_seed()).unwrap();
    let work = Workdir::new();
    let path = work.config(&rich_config());
    let r = run(bin_default_api(work.path())
        .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path));
    assert_eq!(r.code, 0, "the protected tag is kept: {}", r.all());
    assert_eq!(r.tags("deleted").len(), 45 + 30 + 20);
    assert!(r.ops("api_fallback").is_empty());
    let stats = fake.stats();
    assert_eq!(
        stats.count(Route::TagDetail) + stats.deletes(),
        0,
        "{:?}",
        stats.by_route
    );
    assert_eq!(stats.count(Route::GraphqlMutation), 6);
}

#[test]
fn graphql_settings_from_config_and_environment() {
    let fake = FakeGitlab::start(rich_seed()).unwrap();
    let mut config = rich_config();
    config["api"] = json!("graphql");
    let work = Workdir::new();
    let path = work.config(&config);
    let r = run(bin_default_api(work.path())
        .args(["--dry-run", "--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(fake.stats().count(Route::Graphql) > 0);
    assert_eq!(fake.stats().count(Route::Tags), 0);
    fake.reset_stats();
    let r = run(bin_default_api(work.path())
        .env("GITLAB_API", "rest")
        .args(["--dry-run", "--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        fake.stats().count(Route::Graphql),
        0,
        "the environment overrides the config"
    );
}

/// Random registries and policies: both APIs delete, keep and fail exactly
/// the same tags, and leave the same registry behind.
#[test]
fn random_registries_get_the_same_decisions_from_both_apis() {
    let (mut deleted, mut protected) = (0, 0);
    for case in 0..8u64 {
        let mut rng = fastrand::Rng::with_seed(case);
        let keep_n = if case % 2 == 0 { 0 } else { rng.u8(1..5) };
        let ages = [HOUR, DAY, 3 * DAY, 10 * DAY, 40 * DAY];
        let mut repos = Vec::new();
        for r in 0..rng.u64(1..4) {
            let mut tags: Vec<Tag> = Vec::new();
            for i in 0..rng.usize(0..70) {
                let name = match rng.u8(0..4) {
                    0 => format!("v1.{}.{i}", rng.u8(0..3)),
                    1 => format!("build-{i}"),
                    2 => format!("feat-{}-{i}", rng.alphabetic().to_ascii_lowercase()),
                    _ => "latest".to_owned(),
                };
                let mut tag = match rng.u8(0..8) {
                    0 => Tag::new(&name, None),
                    1 => Tag::new(&name, Some("garbage".into())),
                    2 => Tag::new(&name, Some("1980-01-01T00:00:00.000+00:00".into())),
                    _ => tag_aged(&name, ages[rng.usize(0..ages.len())]),
                };
                // GraphQL knows a protected tag before ranking, REST only when
                // its DELETE is refused: among keep_n's newest they differ.
                if keep_n == 0 && rng.u8(0..10) == 0 {
                    tag = tag.protected();
                }
                tags.push(tag);
            }
            repos.push(repo(100 + r, &format!("img{r}"), tags));
        }
        let seed = seed(vec![project(1, "g/p", repos)]);
        let limit = ["12h", "2d", "7d"][rng.usize(0..3)];
        let mut entry = json!({"id": "g/p", "delete_older_than": limit, "keep_n": keep_n});
        if rng.bool() {
            entry["name_regex_keep"] = json!("v1\\.0\\..*");
        }
        if rng.bool() {
            entry["name_regex_delete"] = json!("(build|feat)-.*");
        }
        let config = json!({"projects": {"p": entry}});
        let ids: Vec<u64> = (100..104).collect();
        let left = |fake: &FakeGitlab| ids.iter().map(|id| fake.tag_names(*id)).collect::<Vec<_>>();
        let rest_fake = FakeGitlab::start(seed.clone()).unwrap();
        let rest = once(&rest_fake, &config, &["--api", "rest"]);
        let graphql_fake = FakeGitlab::start(seed).unwrap();
        let graphql = once(&graphql_fake, &config, &["--api", "graphql"]);
        assert_eq!(
            rest.code,
            graphql.code,
            "case {case}: {}\n{}",
            rest.all(),
            graphql.all()
        );
        for operation in ["deleted", "kept", "delete_failed"] {
            assert_eq!(
                rest.tags(operation),
                graphql.tags(operation),
                "case {case}: {operation}, config {config}"
            );
        }
        assert_eq!(left(&rest_fake), left(&graphql_fake), "case {case}");
        deleted += graphql.tags("deleted").len();
        protected += graphql
            .ops("kept")
            .iter()
            .filter(|e| e["reason"] == "protected")
            .count();
        assert!(
            graphql.tags("delete_failed").is_empty(),
            "case {case}: {}",
            graphql.all()
        );
    }
    assert!(
        deleted > 50 && protected > 0,
        "the cases delete and keep protected tags: {deleted}, {protected}"
    );
}

#[test]
fn graphql_errors_name_the_problem() {
    let fake = old_tags_repo(3, std::time::Duration::ZERO);
    // A path GitLab does not know: the entry fails with the usual hint.
    let r = once(
        &fake,
        &json!({"p": {"id": "no/such", "delete_older_than": "2d"}}),
        &["--api", "graphql"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r.ops("project_failed");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("no such project"),
        "{failed:?}"
    );

    // A read_api token lists (a dry run works) but cannot delete: every tag is a delete_failed.
    let config = json!({"p": {"id": "g/p", "delete_older_than": "2d"}});
    let work = Workdir::new();
    let path = work.config(&config);
    let run_with = |extra: &[&str]| {
        run(bin(work.path())
            .args([
                "--api",
                "graphql",
                "--url",
                &fake.url(),
                "--token",
                "glpat-read-only",
                "--config",
            ])
            .arg(&path)
            .args(extra))
    };
    let r = run_with(&["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("dry_run").len(), 3);
    let r = run_with(&[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r.ops("delete_failed");
    assert_eq!(failed.len(), 3, "{}", r.all());
    // GitLab refuses the mutation; tag by tag, REST names the token's scope.
    assert!(
        failed
            .iter()
            .all(|f| f["error"].as_str().unwrap().contains("scope api")),
        "{failed:?}"
    );
    assert_eq!(fake.tag_names(10).len(), 3);
}
