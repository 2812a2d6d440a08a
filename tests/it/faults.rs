//! GitLab misbehaving: retries, lost answers, bad bodies, bad tokens, no GitLab.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn twenty_tags() -> FakeGitlab {
    let mut tags: Vec<Tag> = (0..20).map(|i| old(&format!("old-{i:02}"))).collect();
    tags.extend((0..5).map(|i| young(&format!("new-{i}"))));
    FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap()
}

fn config() -> serde_json::Value {
    json!({"p": {"id": 1, "delete_older_than": "2d"}})
}

fn assert_exactly_old_deleted(fake: &FakeGitlab) {
    assert_eq!(
        fake.tag_names(10),
        sorted(&["new-0", "new-1", "new-2", "new-3", "new-4"])
    );
}

#[test]
fn server_errors_are_retried_to_an_exact_result() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        seed: 42,
        rules: vec![
            FaultRule::sometimes(Route::Any, Fault::status(500), 0.15),
            FaultRule::sometimes(Route::Any, Fault::html_502(), 0.1),
            FaultRule::sometimes(Route::Any, Fault::status(503), 0.05),
        ],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_exactly_old_deleted(&fake);
    assert!(fake.stats().by_status.keys().any(|s| *s >= 500), "faults were injected");
    assert!(r.stdout.contains("\"message\":\"retrying\""));
}

#[test]
fn rate_limits_with_and_without_retry_after() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::Tags, Fault::too_many_requests(Some("1")), 1),
            FaultRule::times(Route::TagDetail, Fault::too_many_requests(None), 6),
            FaultRule::times(Route::DeleteTag, Fault::too_many_requests(Some("0")), 3),
        ],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_exactly_old_deleted(&fake);
    assert_eq!(fake.stats().by_status.get(&429), Some(&10));
    // Retry-After: 1 was honoured: the retry of the tag list came a second later.
    let lists: Vec<_> = fake
        .stats()
        .requests
        .into_iter()
        .filter(|q| q.route == Route::Tags)
        .collect();
    assert_eq!(lists.len(), 2);
    let gap = lists[1].started.duration_since(lists[0].finished);
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[test]
fn a_delete_whose_answer_was_lost_counts_as_deleted() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::DeleteTag, Fault::DeleteThen502, 5)],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_exactly_old_deleted(&fake);
    assert_eq!(r.ops("deleted").len(), 20);
    assert_eq!(r.ops("delete_failed").len(), 0);
    assert_eq!(r.finished()["deleted"], 20);
}

#[test]
fn malformed_details_keep_the_tag_and_a_clean_rerun_finishes() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::TagDetail, Fault::MalformedJson, 2),
            FaultRule::times(Route::TagDetail, Fault::WrongShapeJson, 1),
        ],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let errors: Vec<_> = r.ops("kept").into_iter().filter(|e| e["reason"] == "error").collect();
    assert_eq!(errors.len(), 3, "{}", r.all());
    let old_failed = errors
        .iter()
        .filter(|e| e["tag_name"].as_str().unwrap().starts_with("old-"))
        .count();
    assert_eq!(
        fake.tag_names(10).len(),
        5 + old_failed,
        "only the tags that failed stay"
    );
    assert_eq!(r.ops("deleted").len(), 20 - old_failed);
    fake.clear_faults();
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_exactly_old_deleted(&fake);
}

#[test]
fn a_broken_listing_deletes_nothing_in_that_repository() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Tags, Fault::MalformedJson)],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(fake.stats().deletes(), 0);
    assert_eq!(r.ops("repository_failed").len(), 1);
}

#[test]
fn dropped_connections_and_slow_answers_are_retried() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::TagDetail, Fault::Drop, 3),
            FaultRule::times(Route::TagDetail, Fault::Delay(Duration::from_secs(3)), 2),
        ],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &["--timeout", "1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_exactly_old_deleted(&fake);
}

#[test]
fn persistent_errors_give_up_after_five_attempts() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::ProjectRepositories, Fault::status(502))],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(fake.stats().count(Route::ProjectRepositories), 5);
    assert_eq!(fake.stats().deletes(), 0);
    let failed = r.ops("project_failed");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("HTTP 502"),
        "{}",
        failed[0]
    );
}

#[test]
fn other_client_errors_are_not_retried() {
    let fake = twenty_tags();
    let r = once(&fake, &json!({"p": {"id": 999, "delete_older_than": "2d"}}), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(fake.stats().total, 1);
    let error = r.ops("project_failed")[0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("404 Project Not Found"), "{error}");
}

#[test]
fn wrong_token_fails_fast_and_deletes_nothing() {
    let fake = twenty_tags();
    let work = Workdir::new();
    let path = work.config(&config());
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "-t", "wrong", "-c"])
        .arg(&path));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
    assert_eq!(fake.stats().total, 1, "401 is not retried");
    assert_eq!(fake.stats().deletes(), 0);
    assert!(
        r.stdout.contains("401 Unauthorized") && r.stdout.contains("token is invalid"),
        "{}",
        r.all()
    );
}

#[test]
fn read_only_token_cannot_delete_but_can_dry_run() {
    let fake = twenty_tags();
    let work = Workdir::new();
    let path = work.config(&config());
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "-t", "glpat-read-only", "--dry-run", "-c"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "-t", "glpat-read-only", "-c"])
        .arg(&path));
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("delete_failed").len(), 20);
    assert!(r.stdout.contains("lacks scope api"), "{}", r.all());
    assert_eq!(fake.tag_names(10).len(), 25);
}

#[test]
fn unreachable_gitlab_fails_in_bounded_time() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let work = Workdir::new();
    let path = work.config(&config());
    let url = format!("http://127.0.0.1:{port}");
    let r = run(bin(work.path())
        .args(["-u", &url, "-t", TOKEN, "--retry-base-ms", "50", "-c"])
        .arg(&path));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    let failed = r.ops("project_failed");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("onnection refused"),
        "{}",
        failed[0]
    );
}

#[test]
fn the_token_never_appears_in_any_output() {
    let fake = twenty_tags();
    fake.set_faults(Faults {
        seed: 7,
        rules: vec![
            FaultRule::sometimes(Route::Any, Fault::status(502), 0.2),
            FaultRule::times(Route::DeleteTag, Fault::status(403), 2),
            FaultRule::times(Route::TagDetail, Fault::MalformedJson, 1),
        ],
        ..Faults::default()
    });
    let work = Workdir::new();
    let path = work.config(&config());
    for (api, level) in [
        ("rest", "trace"),
        ("rest", "debug,reqwest=trace,hyper=trace,hyper_util=trace"),
        ("graphql", "trace"),
        ("graphql", "debug,reqwest=trace,hyper=trace,hyper_util=trace"),
    ] {
        let r = run(bin(work.path())
            .args([
                "-u",
                &fake.url(),
                "-t",
                TOKEN,
                "--retry-base-ms",
                "5",
                "--log-level",
                level,
                "--api",
                api,
                "-c",
            ])
            .arg(&path));
        assert!(r.stdout.lines().count() > 10, "trace output expected\n{}", r.all());
        assert!(
            !r.stdout.contains(TOKEN) && !r.stderr.contains(TOKEN),
            "token leaked at {level} through {api}"
        );
        assert!(
            !r.stdout.contains("5ecret"),
            "token fragment leaked at {level} through {api}"
        );
    }
    // And with a wrong token, whose failure messages quote the request.
    let r = run(bin(work.path())
        .args([
            "-u",
            &fake.url(),
            "-t",
            "glpat-wrong-5ecret",
            "--log-level",
            "trace",
            "-c",
        ])
        .arg(&path));
    assert_eq!(r.code, 1);
    assert!(
        !r.stdout.contains("glpat-wrong") && !r.stderr.contains("glpat-wrong"),
        "{}",
        r.all()
    );
}
