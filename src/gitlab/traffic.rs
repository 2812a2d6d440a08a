//! The traffic governor: when the next request of the process may start.
//!
//! One [`Traffic`] is shared by every clone of the client, so it sees every
//! request, REST and GraphQL together. Three things hold a request back:
//!
//! 1. `max_requests_per_minute`: a token bucket (the `governor` crate) with
//!    bursts up to the concurrency limit.
//! 2. GitLab's `RateLimit-Remaining` / `RateLimit-Reset`, read from any
//!    answer: the remaining budget (less the requests in flight) is spread
//!    evenly over the time left in the window, so it lasts to the end.
//! 3. 429s. With `Retry-After` (or `RateLimit-Reset`) no request starts
//!    before then. A bare 429 pauses the whole client and sends one probe at
//!    a time (the pause grows ×1.5, capped) until one succeeds; if the first
//!    probe fails too, the window's budget really is gone and the client
//!    lowers its own ceiling (AIMD, see [`Pacer`] and docs/reliability.md).
//!
//! [`Pacer`] holds the arithmetic and takes `now`, so it is tested without
//! sleeping; [`Traffic`] wraps it with the waiting, the events and metrics.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The first pause after a bare 429 (shorter if the retry policy's base
/// delay is: tests run fast).
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between two probes.
const MAX_PROBE_PAUSE: Duration = Duration::from_secs(30);
/// The ceiling after a confirmed bare 429: this share of the rate seen.
const DECREASE: f64 = 0.9;
/// While answers succeed the ceiling climbs by this share of the ceiling set
/// at the last decrease, per second.
const INCREASE_PER_SECOND: f64 = 0.02;
/// A ceiling that climbed back to this multiple of where it was set is lifted.
const LIFT_AT: f64 = 2.0;
/// The lowest ceiling, requests per second (6 a minute).
const MIN_CEILING: f64 = 0.1;
/// Sent this long after `RateLimit-Reset`, for the clocks' disagreement.
const RESET_MARGIN: Duration = Duration::from_millis(50);
/// The longest wait a `RateLimit-Reset` is believed for (GitLab's longest
/// windows are an hour).
const MAX_RESET: Duration = Duration::from_secs(2 * 3600);
/// At most one `rate_limited` event of a kind (cause, and whether there is
/// a ceiling) per this interval; the rest are counted into the next.
const EVENT_INTERVAL: Duration = Duration::from_secs(30);

/// Why requests wait, as the `cause` of a `rate_limited` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Cause {
    /// A 429 with `Retry-After` (or `RateLimit-Reset`).
    RetryAfter,
    /// A 429 without headers: the client paused and lowered its ceiling.
    Throttled,
    /// `RateLimit-Remaining` ran out before `RateLimit-Reset`.
    RemainingLow,
    /// The ceiling climbed back and was lifted.
    Recovered,
}

impl Cause {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Cause::RetryAfter => "retry_after",
            Cause::Throttled => "throttled",
            Cause::RemainingLow => "remaining_low",
            Cause::Recovered => "recovered",
        }
    }
}

/// A change worth a `rate_limited` event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Change {
    pub(super) cause: Cause,
    /// How long requests now wait.
    pub(super) wait: Duration,
    /// The client's own ceiling, requests per minute.
    pub(super) ceiling_per_minute: Option<f64>,
}

/// What an answer says about the rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Signals {
    pub(super) throttled: bool,
    pub(super) retry_after: Option<Duration>,
    pub(super) remaining: Option<u64>,
    /// `RateLimit-Reset`, as a wait from now.
    pub(super) reset_in: Option<Duration>,
}

impl Signals {
    /// Reads the status and headers; `now_unix` turns `RateLimit-Reset`
    /// (Unix seconds) into a wait.
    pub(super) fn read(status: StatusCode, headers: &HeaderMap, now: jiff::Timestamp) -> Signals {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let throttled = status == StatusCode::TOO_MANY_REQUESTS;
        Signals {
            throttled,
            retry_after: if throttled {
                super::retry::retry_after(headers, now)
            } else {
                None
            },
            remaining: number("ratelimit-remaining"),
            reset_in: number("ratelimit-reset").and_then(|reset| reset_wait(reset, now)),
        }
    }
}

/// `RateLimit-Reset` as a wait: Unix seconds as GitLab sends it, or, if the
/// value is too small to be a date, seconds from now (the IETF draft's form).
/// `None` past [`MAX_RESET`].
fn reset_wait(reset: u64, now: jiff::Timestamp) -> Option<Duration> {
    const A_DATE: u64 = 1_000_000_000;
    let wait = if reset >= A_DATE {
        let at = jiff::Timestamp::from_second(i64::try_from(reset).ok()?).ok()?;
        Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
    } else {
        Duration::from_secs(reset)
    };
    (wait <= MAX_RESET).then_some(wait)
}

/// May a request start now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// Yes; `probe` if it is the one request sent to see whether a bare
    /// 429's pause is over.
    Go { probe: bool },
    /// Not before this instant.
    Until(Instant),
    /// Not before the probe in flight is answered.
    AfterProbe,
}

/// The pause after a bare 429 and its probes.
#[derive(Debug, Clone, Copy)]
struct Probing {
    /// When the first 429 of the episode came.
    since: Instant,
    /// The pause after the next failed probe.
    pause: Duration,
    probe_in_flight: bool,
    /// Whether this episode lowered the ceiling already.
    lowered: bool,
}

/// The client's own ceiling, requests per second.
#[derive(Debug, Clone, Copy)]
struct Ceiling {
    per_second: f64,
    /// Where the last decrease set it.
    set_at: f64,
    last_increase: Instant,
}

/// The governor's arithmetic, without clocks: every method takes `now`.
#[derive(Debug)]
pub(super) struct Pacer {
    first_probe_pause: Duration,
    in_flight: u64,
    /// The earliest start of the next request under the paced interval.
    next_slot: Instant,
    /// From `RateLimit-*`: one request per interval until the window's end.
    window_pace: Option<(Duration, Instant)>,
    /// No request starts before this instant.
    paused_until: Option<Instant>,
    probing: Option<Probing>,
    ceiling: Option<Ceiling>,
    /// Successes since `mark`, for the rate seen before a bare 429.
    successes: u64,
    mark: Option<Instant>,
}

impl Pacer {
    pub(super) fn new(now: Instant, first_probe_pause: Duration) -> Pacer {
        Pacer {
            first_probe_pause: first_probe_pause.clamp(Duration::from_millis(1), FIRST_PROBE_PAUSE),
            in_flight: 0,
            next_slot: now,
            window_pace: None,
            paused_until: None,
            probing: None,
            ceiling: None,
            successes: 0,
            mark: None,
        }
    }

    /// The ceiling, requests per minute.
    pub(super) fn ceiling_per_minute(&self) -> Option<f64> {
        self.ceiling.map(|c| (c.per_second * 60.0 * 10.0).round() / 10.0)
    }

    /// Whether a request may start at `now`; `Go` counts it in flight.
    pub(super) fn turn(&mut self, now: Instant) -> Turn {
        if let Some(until) = self.paused_until {
            if now < until {
                return Turn::Until(until);
            }
            self.paused_until = None;
        }
        if let Some(probing) = &mut self.probing {
            if probing.probe_in_flight {
                return Turn::AfterProbe;
            }
            probing.probe_in_flight = true;
            self.start(now);
            return Turn::Go { probe: true };
        }
        if let Some((_, until)) = self.window_pace
            && now >= until
        {
            self.window_pace = None;
        }
        let interval = self.interval();
        if !interval.is_zero() {
            if self.next_slot > now {
                return Turn::Until(self.next_slot);
            }
            self.next_slot = self.next_slot.max(now) + interval;
        }
        self.start(now);
        Turn::Go { probe: false }
    }

    fn start(&mut self, now: Instant) {
        self.in_flight += 1;
        self.mark.get_or_insert(now);
    }

    /// The paced interval: the slower of the ceiling and the window's pace.
    fn interval(&self) -> Duration {
        let by_ceiling = self
            .ceiling
            .map_or(Duration::ZERO, |c| Duration::from_secs_f64(1.0 / c.per_second));
        let by_window = self.window_pace.map_or(Duration::ZERO, |(interval, _)| interval);
        by_ceiling.max(by_window)
    }

    /// Whether a request let through at some earlier moment may still be
    /// sent at `now`: not if a pause began meanwhile (unless it is the probe).
    pub(super) fn still_open(&self, now: Instant, probe: bool) -> bool {
        let paused = self.paused_until.is_some_and(|until| now < until);
        probe || !(paused || self.probing.is_some())
    }

    /// A request that went (`Go`) ended without an answer.
    pub(super) fn abandoned(&mut self, probe: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if probe && let Some(probing) = &mut self.probing {
            probing.probe_in_flight = false;
        }
    }

    /// A request sent at `sent` was answered at `now`; returns what changed,
    /// if it is worth an event.
    pub(super) fn answered(&mut self, now: Instant, sent: Instant, probe: bool, signals: Signals) -> Option<Change> {
        self.abandoned(probe);
        let paused_before = self.paused_until.filter(|until| *until > now);
        let mut change = self.read_window(now, &signals);
        if signals.throttled {
            if let Some(wait) = signals.retry_after.or(signals.reset_in) {
                // GitLab says when: wait for it, whatever the ceiling.
                // At most MAX_RESET: GitLab's longest windows are an hour, and
                // a proxy's `Retry-After: 86400` must not pause a daemon a day.
                let until = now + wait.clamp(Duration::from_millis(50), MAX_RESET);
                self.probing = None;
                let extended = paused_before.is_none_or(|p| until > p + Duration::from_secs(1));
                self.pause_until(until);
                return extended.then(|| self.change(Cause::RetryAfter, now));
            }
            return self.bare_throttle(now, sent, probe);
        }
        self.successes += 1;
        if probe {
            // The pause is over: back to the ceiling's pace.
            self.probing = None;
            self.next_slot = now;
        }
        if self.probing.is_none()
            && let Some(ceiling) = &mut self.ceiling
        {
            let elapsed = now
                .saturating_duration_since(ceiling.last_increase)
                .min(Duration::from_secs(1));
            ceiling.per_second += ceiling.set_at * INCREASE_PER_SECOND * elapsed.as_secs_f64();
            ceiling.last_increase = now;
            if ceiling.per_second >= ceiling.set_at * LIFT_AT {
                self.ceiling = None;
                change = change.or(Some(self.change(Cause::Recovered, now)));
            }
        }
        change
    }

    /// `RateLimit-Remaining` and `-Reset`: pace the rest of the window.
    fn read_window(&mut self, now: Instant, signals: &Signals) -> Option<Change> {
        let (Some(remaining), Some(reset_in)) = (signals.remaining, signals.reset_in) else {
            return None;
        };
        let end = now + reset_in + RESET_MARGIN;
        // The requests in flight were not counted in this answer's figure
        // (or were, if sent before it: counting them again is the safe side).
        let budget = remaining.saturating_sub(self.in_flight);
        if budget == 0 {
            self.window_pace = None;
            let extended = self.paused_until.is_none_or(|p| end > p);
            self.pause_until(end);
            return (extended && !signals.throttled).then(|| self.change(Cause::RemainingLow, now));
        }
        let interval = (end - now).div_f64(budget as f64);
        self.window_pace = Some((interval, end));
        None
    }

    fn bare_throttle(&mut self, now: Instant, sent: Instant, probe: bool) -> Option<Change> {
        match &mut self.probing {
            Some(probing) if probe => {
                // The first request after a pause failed too: the budget is
                // gone, not a passing refusal. Lower the ceiling once.
                let lower = !probing.lowered;
                probing.lowered = true;
                let pause = probing.pause;
                probing.pause = pause.mul_f64(1.5).min(MAX_PROBE_PAUSE);
                self.pause_until(now + pause);
                if lower {
                    self.lower_ceiling(now);
                    return Some(self.change(Cause::Throttled, now));
                }
                None
            }
            // Sent before this episode began: it says nothing new.
            Some(probing) if sent <= probing.since => None,
            Some(_) => None,
            None => {
                let pause = self.first_probe_pause;
                self.probing = Some(Probing {
                    since: now,
                    pause: pause.mul_f64(1.5),
                    probe_in_flight: false,
                    lowered: false,
                });
                self.pause_until(now + pause);
                Some(self.change(Cause::Throttled, now))
            }
        }
    }

    /// The ceiling drops to [`DECREASE`] × the lower of itself and the rate
    /// of successes since the last decrease (or the first request).
    fn lower_ceiling(&mut self, now: Instant) {
        let since = self.mark.unwrap_or(now);
        let span = now.saturating_duration_since(since).max(Duration::from_secs(1));
        let seen = self.successes as f64 / span.as_secs_f64();
        let current = self.ceiling.map_or(f64::INFINITY, |c| c.per_second);
        let per_second = (current.min(seen) * DECREASE).max(MIN_CEILING);
        self.ceiling = Some(Ceiling {
            per_second,
            set_at: per_second,
            last_increase: now,
        });
        self.successes = 0;
        self.mark = Some(now);
    }

    fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    fn change(&self, cause: Cause, now: Instant) -> Change {
        Change {
            cause,
            wait: self
                .paused_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now)),
            ceiling_per_minute: self.ceiling_per_minute(),
        }
    }
}

/// The request may not start: the pass's deadline would pass first, or
/// shutdown was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Deadline,
    Cancelled,
}

/// A request's place in the traffic: taken before it is sent, given back
/// with its answer (or, dropped, without one).
pub(super) struct Ticket<'a> {
    traffic: &'a Traffic,
    probe: bool,
    sent: Instant,
    done: bool,
}

impl Ticket<'_> {
    /// Whether the request may still be sent: a pause that began while it
    /// waited for its permit holds it back too.
    pub(super) fn still_open(&self) -> bool {
        lock(&self.traffic.pacer).still_open(Instant::now(), self.probe)
    }

    /// The answer came: read its rate-limit signals.
    pub(super) fn answered(mut self, status: StatusCode, headers: &HeaderMap) {
        self.done = true;
        let signals = Signals::read(status, headers, jiff::Timestamp::now());
        if signals.throttled {
            crate::metrics::metrics().rate_limited();
        }
        let change = lock(&self.traffic.pacer).answered(Instant::now(), self.sent, self.probe, signals);
        self.traffic.changed.notify_waiters();
        if let Some(change) = change {
            self.traffic.report(change);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.traffic.pacer).abandoned(self.probe);
            self.traffic.changed.notify_waiters();
        }
    }
}

/// The governor of the whole process (see the module docs).
pub(super) struct Traffic {
    bucket: Option<DefaultDirectRateLimiter>,
    pacer: Mutex<Pacer>,
    /// Woken when a probe is answered.
    changed: Notify,
    events: Mutex<std::collections::HashMap<(Cause, bool), EventGate>>,
}

/// When an event of one kind was last logged, and how many were left out since.
#[derive(Debug, Default)]
struct EventGate {
    last: Option<Instant>,
    suppressed: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Traffic {
    /// `max_per_minute` requests a minute at most (bursts up to `burst`).
    pub(super) fn new(max_per_minute: Option<NonZeroU32>, burst: NonZeroU32, first_probe_pause: Duration) -> Traffic {
        Traffic {
            bucket: max_per_minute
                .map(|rate| RateLimiter::direct(Quota::per_minute(rate).allow_burst(burst.min(rate)))),
            pacer: Mutex::new(Pacer::new(Instant::now(), first_probe_pause)),
            changed: Notify::new(),
            events: Mutex::default(),
        }
    }

    /// Waits until a request may start. A wait that would end past
    /// `deadline` is refused at once; cancellation ends any wait.
    pub(super) async fn ticket(
        &self,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<Ticket<'_>, Refused> {
        let started = Instant::now();
        let result = self.wait_turn(deadline, cancel).await;
        let waited = started.elapsed();
        if waited >= Duration::from_millis(1) {
            crate::metrics::metrics().rate_limit_wait(waited);
        }
        result
    }

    async fn wait_turn(&self, deadline: Option<Instant>, cancel: &CancellationToken) -> Result<Ticket<'_>, Refused> {
        // The bucket first: a token spent on a request that then waits for
        // a pause is lost, which only makes the client slower, never faster.
        if let Some(bucket) = &self.bucket {
            while let Err(not_until) = bucket.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait_until(Instant::now() + wait, deadline, cancel).await?;
            }
        }
        loop {
            let changed = self.changed.notified();
            let now = Instant::now();
            let turn = lock(&self.pacer).turn(now);
            match turn {
                Turn::Go { probe } => {
                    return Ok(Ticket {
                        traffic: self,
                        probe,
                        sent: now,
                        done: false,
                    });
                }
                Turn::Until(until) => wait_until(until, deadline, cancel).await?,
                Turn::AfterProbe => {
                    tokio::select! {
                        () = changed => {}
                        // A probe can hang up to --timeout; look again now and then.
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = cancel.cancelled() => return Err(Refused::Cancelled),
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Refused::Deadline);
                    }
                }
            }
        }
    }

    /// Logs a change, at most once per [`EVENT_INTERVAL`] for each kind: a
    /// new kind (a first ceiling, say) is always told.
    fn report(&self, change: Change) {
        let now = Instant::now();
        let suppressed = {
            let mut gates = lock(&self.events);
            let gate = gates
                .entry((change.cause, change.ceiling_per_minute.is_some()))
                .or_default();
            if gate.last.is_some_and(|last| now.duration_since(last) < EVENT_INTERVAL) {
                gate.suppressed += 1;
                return;
            }
            gate.last = Some(now);
            std::mem::take(&mut gate.suppressed)
        };
        let wait_ms = change.wait.as_millis() as u64;
        let cause = change.cause.as_str();
        let ceiling = change.ceiling_per_minute;
        match change.cause {
            Cause::Throttled | Cause::RetryAfter => tracing::warn!(
                operation = "rate_limited",
                cause,
                wait_ms,
                ceiling_per_minute = ceiling,
                suppressed,
                "GitLab throttles: requests wait"
            ),
            Cause::RemainingLow | Cause::Recovered => tracing::info!(
                operation = "rate_limited",
                cause,
                wait_ms,
                ceiling_per_minute = ceiling,
                suppressed,
                "pacing requests within GitLab's rate limit"
            ),
        }
    }
}

/// Sleeps until `until`, unless that passes `deadline` or shutdown comes.
async fn wait_until(until: Instant, deadline: Option<Instant>, cancel: &CancellationToken) -> Result<(), Refused> {
    if deadline.is_some_and(|d| until > d) {
        return Err(Refused::Deadline);
    }
    tokio::select! {
        () = tokio::time::sleep_until(until) => Ok(()),
        () = cancel.cancelled() => Err(Refused::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const MS: Duration = Duration::from_millis(1);

    fn bare() -> Signals {
        Signals {
            throttled: true,
            ..Signals::default()
        }
    }

    fn ok() -> Signals {
        Signals::default()
    }

    fn go(pacer: &mut Pacer, now: Instant) -> bool {
        match pacer.turn(now) {
            Turn::Go { probe } => probe,
            other => panic!("expected to go at once, got {other:?}"),
        }
    }

    #[test]
    fn headers_are_read_from_any_answer() {
        let now: jiff::Timestamp = "2021-01-05T10:59:30Z".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-remaining", HeaderValue::from_static("42"));
        headers.insert("ratelimit-reset", HeaderValue::from_static("1609844400"));
        let signals = Signals::read(StatusCode::OK, &headers, now);
        assert_eq!(signals.remaining, Some(42));
        assert_eq!(signals.reset_in, Some(Duration::from_secs(30)));
        assert!(!signals.throttled && signals.retry_after.is_none());
        headers.insert("retry-after", HeaderValue::from_static("30"));
        let signals = Signals::read(StatusCode::TOO_MANY_REQUESTS, &headers, now);
        assert!(signals.throttled);
        assert_eq!(signals.retry_after, Some(Duration::from_secs(30)));
        // A delta in seconds, a reset in the past, nonsense, one far away.
        assert_eq!(reset_wait(7, now), Some(Duration::from_secs(7)));
        assert_eq!(reset_wait(1_609_844_000, now), Some(Duration::ZERO));
        assert_eq!(reset_wait(1_609_844_370 + 3 * 3600, now), None);
        headers.insert("ratelimit-reset", HeaderValue::from_static("soon"));
        assert_eq!(Signals::read(StatusCode::OK, &headers, now).reset_in, None);
        assert_eq!(
            Signals::read(StatusCode::OK, &HeaderMap::new(), now),
            Signals::default()
        );
    }

    #[test]
    fn without_signals_nothing_waits() {
        let now = Instant::now();
        let mut pacer = Pacer::new(now, FIRST_PROBE_PAUSE);
        for _ in 0..100 {
            assert!(!go(&mut pacer, now));
        }
        assert_eq!(pacer.in_flight, 100);
        assert_eq!(pacer.answered(now, now, false, ok()), None);
        assert_eq!(pacer.in_flight, 99);
    }

    #[test]
    fn the_remaining_budget_is_spread_to_the_windows_end() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, FIRST_PROBE_PAUSE);
        go(&mut pacer, t0);
        go(&mut pacer, t0);
        // 11 left for 10 s, one other request in flight: one per second.
        let window = Signals {
            remaining: Some(11),
            reset_in: Some(Duration::from_secs(10) - RESET_MARGIN),
            ..ok()
        };
        assert_eq!(pacer.answered(t0, t0, false, window), None);
        go(&mut pacer, t0);
        assert_eq!(pacer.turn(t0 + 500 * MS), Turn::Until(t0 + Duration::from_secs(1)));
        go(&mut pacer, t0 + Duration::from_secs(1));
        // Past the window's end the pace is forgotten until the next answer.
        let after = t0 + Duration::from_secs(11);
        for _ in 0..5 {
            go(&mut pacer, after);
        }
    }

    #[test]
    fn an_exhausted_budget_waits_for_the_reset() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, FIRST_PROBE_PAUSE);
        go(&mut pacer, t0);
        go(&mut pacer, t0);
        let change = pacer.answered(
            t0,
            t0,
            false,
            Signals {
                remaining: Some(1),
                reset_in: Some(Duration::from_secs(3)),
                ..ok()
            },
        );
        let end = t0 + Duration::from_secs(3) + RESET_MARGIN;
        assert_eq!(change.map(|c| (c.cause, c.wait)), Some((Cause::RemainingLow, end - t0)));
        assert_eq!(pacer.turn(t0 + Duration::from_secs(1)), Turn::Until(end));
        go(&mut pacer, end);
    }

    #[test]
    fn retry_after_pauses_everyone_up_to_two_hours() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, FIRST_PROBE_PAUSE);
        go(&mut pacer, t0);
        let hour = Duration::from_secs(3600);
        let change = pacer
            .answered(
                t0,
                t0,
                false,
                Signals {
                    retry_after: Some(hour),
                    ..bare()
                },
            )
            .unwrap();
        assert_eq!(
            (change.cause, change.wait, change.ceiling_per_minute),
            (Cause::RetryAfter, hour, None)
        );
        assert_eq!(pacer.turn(t0 + hour / 2), Turn::Until(t0 + hour));
        go(&mut pacer, t0 + hour);
        // Not capped at the retry budget, but at MAX_RESET: a proxy's day-long
        // (or absurd) `Retry-After` neither pauses a daemon for a day nor
        // overflows the clock.
        let later = t0 + hour;
        for absurd in [Duration::from_secs(86_400), Duration::from_secs(u64::MAX)] {
            let change = pacer.answered(
                later,
                later,
                false,
                Signals {
                    retry_after: Some(absurd),
                    ..bare()
                },
            );
            assert_eq!(pacer.turn(later), Turn::Until(later + MAX_RESET), "{change:?}");
        }
    }

    /// A bare 429: one pause, then one probe at a time; the ceiling drops
    /// only when the first probe fails too, to 0.9 × the rate seen.
    #[test]
    fn a_bare_429_pauses_probes_and_lowers_the_ceiling() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, FIRST_PROBE_PAUSE);
        // 50 successes in 2 s, then the budget is gone.
        for i in 0..50 {
            let at = t0 + 40 * MS * i;
            go(&mut pacer, at);
            pacer.answered(at, at, false, ok());
        }
        let t1 = t0 + Duration::from_secs(2);
        go(&mut pacer, t1);
        go(&mut pacer, t1);
        let change = pacer.answered(t1, t1, false, bare()).unwrap();
        assert_eq!(
            (change.cause, change.wait, change.ceiling_per_minute),
            (Cause::Throttled, FIRST_PROBE_PAUSE, None)
        );
        // The other request in flight, sent before: nothing new.
        assert_eq!(pacer.answered(t1, t1 - MS, false, bare()), None);
        assert_eq!(pacer.turn(t1 + MS), Turn::Until(t1 + FIRST_PROBE_PAUSE));
        let t2 = t1 + FIRST_PROBE_PAUSE;
        assert!(go(&mut pacer, t2), "one probe");
        assert_eq!(pacer.turn(t2), Turn::AfterProbe, "and only one");
        let change = pacer.answered(t2, t2, true, bare()).unwrap();
        // 50 successes over 2.25 s: 22.2/s, × 0.9 = 20/s = 1200/min.
        assert_eq!(change.ceiling_per_minute, Some(1200.0));
        assert_eq!(change.wait, FIRST_PROBE_PAUSE.mul_f64(1.5));
        // A second failed probe waits longer and does not lower again.
        let t3 = t2 + change.wait;
        assert!(go(&mut pacer, t3));
        let change = pacer.answered(t3, t3, true, bare());
        assert_eq!(change, None);
        assert_eq!(pacer.turn(t3), Turn::Until(t3 + FIRST_PROBE_PAUSE.mul_f64(2.25)));
        // A probe that succeeds ends the pause: the ceiling paces (50 ms,
        // a little less as it climbs with each success).
        let t4 = t3 + Duration::from_secs(1);
        assert!(go(&mut pacer, t4));
        pacer.answered(t4, t4, true, ok());
        assert!(!go(&mut pacer, t4));
        let Turn::Until(next) = pacer.turn(t4 + MS) else {
            panic!("paced")
        };
        assert!((45 * MS..=50 * MS).contains(&(next - t4)), "{:?}", next - t4);
    }

    #[test]
    fn a_429_that_the_first_probe_contradicts_leaves_the_ceiling() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, 10 * MS);
        go(&mut pacer, t0);
        pacer.answered(t0, t0, false, bare());
        let t1 = t0 + 10 * MS;
        assert!(go(&mut pacer, t1));
        assert_eq!(pacer.answered(t1, t1, true, ok()), None);
        assert_eq!(pacer.ceiling_per_minute(), None);
        for _ in 0..10 {
            assert!(!go(&mut pacer, t1));
        }
    }

    #[test]
    fn the_ceiling_climbs_while_answers_succeed_and_is_lifted() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, FIRST_PROBE_PAUSE);
        go(&mut pacer, t0);
        pacer.answered(t0, t0, false, ok());
        go(&mut pacer, t0);
        pacer.answered(t0, t0, false, bare());
        let t1 = t0 + FIRST_PROBE_PAUSE;
        go(&mut pacer, t1);
        pacer.answered(t1, t1, true, bare());
        // 1 success in 1 s (at least): 0.9/s.
        assert_eq!(pacer.ceiling_per_minute(), Some(54.0));
        let mut now = t1 + Duration::from_secs(1);
        go(&mut pacer, now);
        pacer.answered(now, now, true, ok());
        // +2 % of 0.9/s per second of success: doubled after 50 successes a
        // second or more apart, then lifted.
        let mut lifted = None;
        for second in 1..=60 {
            now += Duration::from_secs(2);
            go(&mut pacer, now);
            if let Some(change) = pacer.answered(now, now, false, ok()) {
                lifted = Some((second, change));
                break;
            }
        }
        let (second, change) = lifted.expect("lifted");
        assert_eq!(change.cause, Cause::Recovered);
        assert_eq!(change.ceiling_per_minute, None);
        assert!((49..=51).contains(&second), "{second}");
    }

    #[test]
    fn a_probe_without_an_answer_lets_the_next_one_go() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, 10 * MS);
        go(&mut pacer, t0);
        pacer.answered(t0, t0, false, bare());
        let t1 = t0 + 10 * MS;
        assert!(go(&mut pacer, t1));
        pacer.abandoned(true);
        assert!(go(&mut pacer, t1));
        assert_eq!(pacer.in_flight, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_keeps_the_rate_and_a_wait_past_the_deadline_is_refused() {
        let traffic = Traffic::new(NonZeroU32::new(60), NonZeroU32::new(2).unwrap(), FIRST_PROBE_PAUSE);
        let cancel = CancellationToken::new();
        // A burst of 2, then one a second: the third is a second away.
        for _ in 0..2 {
            traffic
                .ticket(None, &cancel)
                .await
                .unwrap()
                .answered(StatusCode::OK, &HeaderMap::new());
        }
        let soon = Some(Instant::now() + Duration::from_millis(500));
        assert!(matches!(traffic.ticket(soon, &cancel).await, Err(Refused::Deadline)));
        cancel.cancel();
        assert!(matches!(traffic.ticket(None, &cancel).await, Err(Refused::Cancelled)));
    }
}
