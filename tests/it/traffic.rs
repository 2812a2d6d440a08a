//! The traffic governor against a GitLab that throttles: with `RateLimit-*`
//! on every answer, only on 429s, or bare 429s; a long `Retry-After`; the
//! client's own `--max-requests-per-minute`; a pause that would outlast
//! the pass's deadline.

use std::time::Duration;

use fake_gitlab::{Throttle, ThrottleHeaders};
use serde_json::json;

use crate::support::*;

const OLD: usize = 40;

/// One repository of `OLD` expired and 5 young tags: about 90 REST requests.
fn data() -> FakeGitlab {
    let mut tags: Vec<Tag> = (0..OLD).map(|i| old(&format!("old-{i:02}"))).collect();
    tags.extend((0..5).map(|i| young(&format!("new-{i}"))));
    FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap()
}

fn young_only() -> Vec<String> {
    (0..5).map(|i| format!("new-{i}")).collect()
}

/// `once` through REST with the real retry delays (the governor's first
/// pause after a bare 429 follows them).
fn pass(fake: &FakeGitlab, args: &[&str]) -> Run {
    let work = Workdir::new();
    let path = work.config(&json!({"p": {"id": 1, "delete_older_than": "2d"}}));
    let mut cmd = bin(work.path());
    cmd.args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--log-level", "debug"])
        .args(args);
    run(&mut cmd)
}

fn assert_exact(fake: &FakeGitlab, r: &Run) {
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(fake.tag_names(10), young_only(), "{}", r.all());
    assert_eq!(r.ops("deleted").len(), OLD);
}

/// `RateLimit-*` on every answer: the client spreads the budget over the
/// window and is never throttled.
#[test]
fn with_ratelimit_headers_the_budget_lasts_and_nothing_is_throttled() {
    let fake = data();
    let (limit, window) = (30, Duration::from_secs(2));
    fake.set_throttle(Some(Throttle::new(limit, window)));
    let r = pass(&fake, &[]);
    assert_exact(&fake, &r);
    let stats = fake.stats();
    assert_eq!(stats.throttled(), 0, "{}", r.all());
    // Fixed windows allow one window's budget at the end of a window and the
    // next at the start of the next, no more.
    let most = stats.max_requests_in_any(window);
    assert!(most <= 2 * u64::from(limit), "{most} requests within {window:?}");
    // And it did not dawdle: ~90 requests at 15/s, one window of slack.
    let floor = Duration::from_secs_f64(stats.total as f64 / 15.0);
    assert!(
        r.elapsed < floor + Duration::from_secs(6),
        "{:?} for {} requests",
        r.elapsed,
        stats.total
    );
}

/// `Retry-After` on 429s only: no request starts while it runs, and the
/// throttled requests are sent again without using up their attempts.
#[test]
fn retry_after_holds_back_every_request() {
    let fake = data();
    fake.set_throttle(Some(
        Throttle::new(20, Duration::from_secs(1)).with_headers(ThrottleHeaders::OnlyOnThrottle),
    ));
    let r = pass(&fake, &[]);
    assert_exact(&fake, &r);
    let stats = fake.stats();
    assert!(stats.throttled() > 0, "the client did hit the limit");
    // Retry-After is at least 1 s: nothing is sent for most of it after any
    // 429 (requests sent before the 429 came back may still arrive).
    for q in stats.requests.iter().filter(|q| q.status == 429) {
        let during = stats
            .requests
            .iter()
            .filter(|o| {
                o.started > q.finished + Duration::from_millis(20)
                    && o.started < q.finished + Duration::from_millis(900)
            })
            .count();
        assert_eq!(during, 0, "requests sent during a Retry-After wait\n{}", r.all());
    }
    let events = r.ops("rate_limited");
    assert!(!events.is_empty(), "{}", r.all());
    assert_eq!(events[0]["cause"], "retry_after");
    assert!(events[0]["wait_ms"].as_u64().unwrap() >= 50, "{}", events[0]);
}

/// Bare 429s: the client pauses, probes, lowers its own ceiling, and
/// finishes with few 429s.
#[test]
fn bare_429s_lower_the_ceiling_and_the_pass_finishes() {
    let fake = data();
    fake.set_throttle(Some(
        Throttle::new(15, Duration::from_secs(1)).with_headers(ThrottleHeaders::None),
    ));
    let r = pass(&fake, &[]);
    assert_exact(&fake, &r);
    let stats = fake.stats();
    let throttled = stats.throttled();
    assert!(throttled > 0, "the client did hit the limit");
    assert!(
        throttled * 5 < stats.total,
        "{throttled} of {} requests throttled\n{}",
        stats.total,
        r.all()
    );
    let events = r.ops("rate_limited");
    assert_eq!(events[0]["cause"], "throttled", "{}", r.all());
    assert!(
        events
            .iter()
            .any(|e| e["ceiling_per_minute"].as_f64().is_some_and(|c| c > 0.0)),
        "the client set itself a ceiling\n{}",
        r.all()
    );
}

/// More 429s in a row than the retry attempts: each `Retry-After` is waited
/// out, no attempt is used up, the tag list is read.
#[test]
fn more_retry_afters_than_attempts_are_waited_out() {
    let fake = data();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::Tags, Fault::too_many_requests(Some("1")), 6)],
        ..Faults::default()
    });
    let r = pass(&fake, &[]);
    assert_exact(&fake, &r);
    assert_eq!(fake.stats().by_status.get(&429), Some(&6));
    assert!(r.elapsed >= Duration::from_secs(6), "{:?}", r.elapsed);
    assert!(
        !r.stdout.contains("\"message\":\"retrying\""),
        "a 429 is not a failed attempt\n{}",
        r.all()
    );
}

/// `--max-requests-per-minute` alone (GitLab does not throttle): the rate
/// the fake saw stays within the cap plus the burst.
#[test]
fn max_requests_per_minute_caps_the_rate() {
    let fake = data();
    let r = pass(&fake, &["--max-requests-per-minute", "600", "--concurrency", "4"]);
    assert_exact(&fake, &r);
    let stats = fake.stats();
    // 10 a second, bursts of 4.
    let most = stats.max_requests_in_any(Duration::from_secs(1));
    assert!(most <= 10 + 4, "{most} requests within a second");
    let least = Duration::from_secs_f64((stats.total - 4) as f64 / 10.0);
    assert!(
        r.elapsed >= least.mul_f64(0.9),
        "{:?} for {} requests",
        r.elapsed,
        stats.total
    );
    // The config's value, overridden by the flag.
    let work = Workdir::new();
    let path =
        work.config(&json!({"max_requests_per_minute": 90, "projects": {"p": {"id": 1, "delete_older_than": "2d"}}}));
    let check = run(bin(work.path()).args(["check", "--config"]).arg(&path));
    assert!(check.stdout.contains("at most 90 requests a minute"), "{}", check.all());
    let check = run(bin(work.path())
        .args(["check", "--max-requests-per-minute", "45", "--config"])
        .arg(&path));
    assert!(check.stdout.contains("at most 45 requests a minute"), "{}", check.all());
    let check = run(bin(work.path())
        .args(["check", "--max-requests-per-minute", "0", "--config"])
        .arg(&path));
    assert_eq!(check.code, 2, "{}", check.all());
}

/// A `Retry-After` that would outlast the pass's deadline: the requests
/// fail as not sent, the pass ends incomplete, nothing is deleted wrongly.
#[test]
fn a_retry_after_past_the_deadline_ends_the_pass_incomplete() {
    let fake = data();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::DeleteTag,
            Fault::too_many_requests(Some("30")),
        )],
        ..Faults::default()
    });
    let r = pass(&fake, &["--pass-timeout", "3s"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.finished()["result"], "incomplete", "{}", r.all());
    assert!(fake.deleted().is_empty());
    assert_eq!(fake.tag_names(10).len(), OLD + 5);
    assert!(r.elapsed < Duration::from_secs(20), "{:?}", r.elapsed);
}

/// SIGTERM while a DELETE waits out its 429: GitLab performed nothing, so
/// the tag is "not sent" (the pass is interrupted), never `delete_failed`
/// with the 429 as if GitLab had refused it.
#[test]
fn a_stop_during_a_429_wait_is_not_a_failed_delete() {
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", vec![old("a")])])])).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::DeleteTag,
            Fault::too_many_requests(Some("60")),
        )],
        ..Faults::default()
    });
    let work = Workdir::new();
    let path = work.config(&json!({"p": {"id": 1, "delete_older_than": "2d"}}));
    let started = std::time::Instant::now();
    let child = bin(work.path())
        .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--api", "rest", "--log-level", "debug"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while fake.stats().deletes() == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "no DELETE was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let killed = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let r = Run::from(child.wait_with_output().unwrap(), started.elapsed());
    assert!(
        r.elapsed < Duration::from_secs(30),
        "the 60 s wait was not cut: {}",
        r.all()
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.ops("delete_failed").is_empty(), "{}", r.all());
    assert_eq!(r.finished()["result"], "interrupted", "{}", r.all());
    assert!(fake.deleted().is_empty());
}
