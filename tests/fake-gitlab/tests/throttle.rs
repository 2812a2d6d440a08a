//! Black-box tests of the fake's rate limit (GitLab's authenticated API
//! throttle) and of the request-rate statistics, over real TCP.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Resp, send};
use fake_gitlab::{
    FakeGitlab, Fault, FaultRule, Faults, Project, Repository, RequestRecord, Route, Seed, Stats, Tag, Throttle,
    ThrottleHeaders,
};
use serde_json::json;

const TOKEN: &str = "s3cr3t";
const RO_TOKEN: &str = "read-only";
const VERSION: &str = "/api/v4/version";
const TAG_A: &str = "/api/v4/projects/10/registry/repositories/1/tags/a";
const LIST_TAGS: &str = "query($id: ContainerRepositoryID!) {
  containerRepository(id: $id) { tags(first: 5) { nodes { name } } }
}";

const RATE_LIMIT_HEADERS: [&str; 7] = [
    "ratelimit-name",
    "ratelimit-limit",
    "ratelimit-observed",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-resettime",
    "retry-after",
];

/// The rate-limit side of an answer.
trait RateLimited {
    /// A header that must be there, as a number.
    fn number(&self, name: &str) -> u64;
    /// The rate-limit headers present, by name.
    fn rate_limit_headers(&self) -> Vec<&'static str>;
}

impl RateLimited for Resp {
    fn number(&self, name: &str) -> u64 {
        let value = self
            .header(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers));
        value.parse().unwrap_or_else(|e| panic!("{name}: {value:?}: {e}"))
    }

    fn rate_limit_headers(&self) -> Vec<&'static str> {
        RATE_LIMIT_HEADERS
            .into_iter()
            .filter(|name| self.header(name).is_some())
            .collect()
    }
}

fn get(fake: &FakeGitlab, path: &str) -> Resp {
    send(fake, "GET", path, Some(TOKEN), "")
}

fn graphql(fake: &FakeGitlab) -> Resp {
    let body = json!({"query": LIST_TAGS, "variables": {"id": "gid://gitlab/ContainerRepository/1"}}).to_string();
    send(fake, "POST", "/api/graphql", Some(TOKEN), &body)
}

fn seed(throttle: Option<Throttle>) -> Seed {
    Seed {
        token: TOKEN.into(),
        read_only_token: Some(RO_TOKEN.into()),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![Project {
            id: 10,
            path: "group/app".into(),
            repositories: vec![Repository {
                id: 1,
                name: String::new(),
                tags: vec![Tag::new("a", None), Tag::new("b", None)],
            }],
        }],
        throttle,
        ..Seed::default()
    }
}

/// Waits for the next window when fewer than `needed` are left of this one,
/// so a test's requests all fall into one window.
fn fresh_window(fake: &FakeGitlab, needed: Duration) {
    let left = fake.throttle_window_remaining().expect("a throttle");
    if left < needed {
        std::thread::sleep(left + Duration::from_millis(20));
    }
}

/// Waits until the current window is over.
fn next_window(fake: &FakeGitlab) {
    let left = fake.throttle_window_remaining().expect("a throttle");
    std::thread::sleep(left + Duration::from_millis(20));
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn assert_throttled(resp: &Resp) {
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(resp.body, "Retry later\n");
}

#[test]
fn a_per_second_window_throttles_the_request_over_the_limit_until_the_next_window() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(3, Duration::from_secs(1))))).unwrap();
    next_window(&fake);

    let answers: Vec<Resp> = (0..5).map(|_| get(&fake, VERSION)).collect();
    let reset = answers[0].number("ratelimit-reset");
    for (i, resp) in answers.iter().enumerate() {
        let observed = i as u64 + 1;
        assert_eq!(resp.header("ratelimit-name"), Some("throttle_authenticated_api"));
        // 3 a second is 180 a minute.
        assert_eq!(resp.number("ratelimit-limit"), 180);
        assert_eq!(resp.number("ratelimit-observed"), observed, "answer {i}");
        assert_eq!(
            resp.number("ratelimit-remaining"),
            3u64.saturating_sub(observed),
            "answer {i}"
        );
        assert_eq!(resp.number("ratelimit-reset"), reset, "all in one window");
    }
    for resp in &answers[..3] {
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.header("retry-after"), None);
        assert_eq!(resp.header("ratelimit-resettime"), None);
    }
    for resp in &answers[3..] {
        assert_throttled(resp);
        assert_eq!(resp.number("retry-after"), 1);
        let reset_time = jiff::fmt::rfc2822::parse(resp.header("ratelimit-resettime").unwrap()).unwrap();
        assert_eq!(reset_time.timestamp().as_second() as u64, reset);
        assert!(resp.header("ratelimit-resettime").unwrap().ends_with(" GMT"));
    }
    assert!(
        reset > unix_now().saturating_sub(1) && reset <= unix_now() + 1,
        "reset {reset}"
    );

    next_window(&fake);
    let resp = get(&fake, VERSION);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.number("ratelimit-observed"), 1);
    assert_eq!(resp.number("ratelimit-remaining"), 2);
    assert!(resp.number("ratelimit-reset") > reset);

    let stats = fake.stats();
    assert_eq!(stats.throttled(), 2);
    assert_eq!(stats.total, 6);
    let statuses: Vec<u16> = stats.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 200]);
}

#[test]
fn only_on_throttle_puts_the_headers_on_429s_alone() {
    let throttle = Throttle::new(2, Duration::from_secs(60)).with_headers(ThrottleHeaders::OnlyOnThrottle);
    let fake = FakeGitlab::start(seed(Some(throttle))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));

    for _ in 0..2 {
        let resp = get(&fake, VERSION);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
    }
    let resp = get(&fake, VERSION);
    assert_throttled(&resp);
    assert_eq!(resp.rate_limit_headers(), RATE_LIMIT_HEADERS);
    assert_eq!(resp.number("ratelimit-limit"), 2);
    assert_eq!(resp.number("ratelimit-observed"), 3);
    assert_eq!(resp.number("ratelimit-remaining"), 0);
    let retry_after = resp.number("retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

#[test]
fn without_headers_a_429_is_bare() {
    let throttle = Throttle::new(1, Duration::from_secs(60)).with_headers(ThrottleHeaders::None);
    let fake = FakeGitlab::start(seed(Some(throttle))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));

    let resp = get(&fake, VERSION);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
    let resp = get(&fake, VERSION);
    assert_throttled(&resp);
    assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
}

/// An hour's window is aligned to Unix time like Rack::Attack's, so
/// `Retry-After` is what is left of the clock hour: no need to wait an hour.
#[test]
fn a_per_hour_window_says_how_long_is_left_of_the_hour() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(7200, Duration::from_secs(3600))))).unwrap();
    fake.set_throttle(Some(Throttle::new(2, Duration::from_secs(3600))));
    fresh_window(&fake, Duration::from_secs(5));
    let left = fake.throttle_window_remaining().unwrap();

    let before = unix_now();
    let answers: Vec<Resp> = (0..3).map(|_| get(&fake, VERSION)).collect();
    let after = unix_now();
    let hour_end = before / 3600 * 3600 + 3600;
    assert_eq!(
        after / 3600 * 3600 + 3600,
        hour_end,
        "fresh_window keeps us in one hour"
    );
    // ceil(2 * 60 / 3600)
    assert_eq!(answers[0].number("ratelimit-limit"), 1);
    assert_eq!(answers[0].number("ratelimit-remaining"), 1);
    assert_eq!(answers[0].number("ratelimit-reset"), hour_end);
    assert_eq!(answers[1].status, 200);

    let resp = &answers[2];
    assert_throttled(resp);
    assert_eq!(resp.number("ratelimit-reset"), hour_end);
    let retry_after = resp.number("retry-after");
    assert!(
        (hour_end - after..=hour_end - before).contains(&retry_after),
        "Retry-After {retry_after}, the hour ends at {hour_end}, now {before}..{after}"
    );
    assert!(retry_after.abs_diff(left.as_secs()) <= 2, "{retry_after} vs {left:?}");
    let reset_time = jiff::Timestamp::from_second(hour_end as i64).unwrap();
    assert_eq!(
        resp.header("ratelimit-resettime").unwrap(),
        reset_time.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
    );
}

/// Windows shorter than a second count from when the throttle was set.
#[test]
fn a_sub_second_window_passes_again_once_it_is_over() {
    let fake = FakeGitlab::start(seed(None)).unwrap();
    fake.set_throttle(Some(Throttle::new(2, Duration::from_millis(300))));
    next_window(&fake);

    let statuses: Vec<u16> = (0..3).map(|_| get(&fake, VERSION).status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    next_window(&fake);
    let resp = get(&fake, VERSION);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.number("ratelimit-observed"), 1);
    // 2 per 0.3 s is 400 a minute.
    assert_eq!(resp.number("ratelimit-limit"), 400);
}

#[test]
fn rest_and_graphql_count_against_one_limit() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(3, Duration::from_secs(60))))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));

    let answers = [get(&fake, VERSION), graphql(&fake), get(&fake, TAG_A), graphql(&fake)];
    let remaining: Vec<u64> = answers[..3].iter().map(|r| r.number("ratelimit-remaining")).collect();
    assert_eq!(remaining, [2, 1, 0]);
    assert!(answers[1].body.contains(r#""name":"a""#), "{}", answers[1].body);
    assert_eq!(answers[2].status, 200);
    assert_throttled(&answers[3]);
    assert_eq!(answers[3].number("ratelimit-observed"), 4);
    assert_eq!(fake.stats().count(Route::Graphql), 2);
}

#[test]
fn a_throttled_delete_deletes_nothing() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(1, Duration::from_secs(60))))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));

    assert_eq!(get(&fake, VERSION).status, 200);
    let resp = send(&fake, "DELETE", TAG_A, Some(TOKEN), "");
    assert_throttled(&resp);
    assert_eq!(fake.tag_names(1), ["a", "b"]);
    assert!(fake.deleted().is_empty());

    let stats = fake.stats();
    assert_eq!(stats.throttled(), 1);
    assert_eq!(stats.deletes(), 1);
    let delete: &RequestRecord = stats.requests.iter().find(|r| r.route == Route::DeleteTag).unwrap();
    assert_eq!(delete.status, 429);
}

#[test]
fn each_token_has_its_own_count_and_bad_tokens_none() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(1, Duration::from_secs(60))))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));

    for _ in 0..3 {
        let resp = send(&fake, "GET", VERSION, Some("wrong"), "");
        assert_eq!(resp.status, 401);
        assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
        assert_eq!(send(&fake, "GET", VERSION, None, "").status, 401);
    }
    assert_eq!(get(&fake, VERSION).number("ratelimit-observed"), 1);
    let read_only = send(&fake, "GET", VERSION, Some(RO_TOKEN), "");
    assert_eq!(read_only.status, 200);
    assert_eq!(read_only.number("ratelimit-observed"), 1);
    assert_throttled(&get(&fake, VERSION));
}

/// A fault that answers in GitLab's place (a proxy) keeps the request from
/// GitLab's throttle; a fault behind it does not.
#[test]
fn only_requests_that_reach_gitlab_are_counted() {
    let fake = FakeGitlab::start(seed(Some(Throttle::new(5, Duration::from_secs(60))))).unwrap();
    fresh_window(&fake, Duration::from_secs(5));
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::Version, Fault::status(503), 2),
            FaultRule::times(Route::Tags, Fault::MalformedJson, 1),
        ],
        ..Faults::default()
    });

    for _ in 0..2 {
        let resp = get(&fake, VERSION);
        assert_eq!(resp.status, 503);
        assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
    }
    let mangled = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags");
    assert_eq!(mangled.status, 200);
    assert_eq!(mangled.number("ratelimit-observed"), 1);
    assert_eq!(get(&fake, VERSION).number("ratelimit-observed"), 2);
}

#[test]
fn a_throttle_can_be_set_and_lifted_while_running() {
    let fake = FakeGitlab::start(seed(None)).unwrap();
    assert_eq!(fake.throttle_window_remaining(), None);
    assert_eq!(get(&fake, VERSION).rate_limit_headers(), Vec::<&str>::new());

    fake.set_throttle(Some(Throttle::new(1, Duration::from_secs(60))));
    fresh_window(&fake, Duration::from_secs(5));
    assert_eq!(get(&fake, VERSION).number("ratelimit-remaining"), 0);
    assert_throttled(&get(&fake, VERSION));
    // Setting it again starts the counts afresh.
    fake.set_throttle(Some(Throttle::new(1, Duration::from_secs(60))));
    assert_eq!(get(&fake, VERSION).status, 200);

    fake.set_throttle(None);
    for _ in 0..3 {
        let resp = get(&fake, VERSION);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.rate_limit_headers(), Vec::<&str>::new());
    }
}

#[test]
fn a_zero_window_is_refused_at_start() {
    let err = FakeGitlab::start(seed(Some(Throttle::new(1, Duration::ZERO)))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
#[should_panic(expected = "window cannot be zero")]
fn a_zero_window_is_refused_while_running() {
    let fake = FakeGitlab::start(seed(None)).unwrap();
    fake.set_throttle(Some(Throttle::new(1, Duration::ZERO)));
}

#[test]
fn gitlab_com_allows_2000_a_minute() {
    let throttle = Throttle::gitlab_com();
    assert_eq!((throttle.limit, throttle.window), (2000, Duration::from_secs(60)));
    assert_eq!(throttle.headers, ThrottleHeaders::Full);
    assert_eq!(throttle.limit_per_minute(), 2000);
    assert_eq!(Throttle::new(7200, Duration::from_secs(3600)).limit_per_minute(), 120);
}

// ---------------------------------------------------------------- rate

fn record_at(started: Instant, status: u16) -> RequestRecord {
    RequestRecord {
        method: "GET".into(),
        path_and_query: VERSION.into(),
        body: String::new(),
        route: Route::Version,
        status,
        auth: None,
        user_agent: None,
        started,
        finished: started,
    }
}

#[test]
fn max_requests_in_any_window_counts_arrivals_in_a_sliding_window() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // Out of order, as records are kept in the order requests finished.
    let offsets = [0, 900, 100, 1000, 1050, 1950, 3000];
    let requests: Vec<RequestRecord> = offsets.iter().map(|&o| record_at(t0 + ms(o), 200)).collect();
    let stats = Stats {
        requests,
        ..Stats::default()
    };
    // [100, 1100) holds 100, 900, 1000 and 1050; no second holds five.
    assert_eq!(stats.max_requests_in_any(ms(1000)), 4);
    assert_eq!(stats.max_requests_in_any(ms(2000)), 6);
    // 900, 1000 and 1050 lie within 151 ms, not within 150 (half-open).
    assert_eq!(stats.max_requests_in_any(ms(151)), 3);
    assert_eq!(stats.max_requests_in_any(ms(150)), 2);
    assert_eq!(stats.max_requests_in_any(ms(100)), 2);
    assert_eq!(stats.max_requests_in_any(ms(1)), 1);
    assert_eq!(stats.max_requests_in_any(Duration::from_secs(10)), 7);
    assert_eq!(stats.max_requests_in_any(Duration::ZERO), 0);
    assert_eq!(Stats::default().max_requests_in_any(ms(1000)), 0);
    assert_eq!(stats.arrivals()[..3], [t0, t0 + ms(100), t0 + ms(900)]);
}

#[test]
fn the_rate_a_client_kept_shows_in_the_stats() {
    let fake = FakeGitlab::start(seed(None)).unwrap();
    let pace = Duration::from_millis(50);
    let start = Instant::now();
    for i in 0..6u32 {
        // Paced against the start, so a slow request does not shift the rest.
        if let Some(wait) = (start + pace * i).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        assert_eq!(get(&fake, VERSION).status, 200);
    }
    let stats = fake.stats();
    assert_eq!(stats.max_requests_in_any(Duration::from_secs(60)), 6);
    assert_eq!(stats.max_requests_in_any(Duration::from_nanos(1)), 1);
    let arrivals = stats.arrivals();
    // The sixth left 250 ms after the first; arrival times vary by a little.
    assert!(arrivals[5].duration_since(arrivals[0]) >= pace * 4);
    assert_eq!(stats.throttled(), 0);
}
