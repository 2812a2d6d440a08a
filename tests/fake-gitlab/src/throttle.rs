//! GitLab's authenticated API throttle (Rack::Attack): fixed windows, one
//! counter per token, and the `RateLimit-*` headers GitLab computes from it
//! (`lib/gitlab/rack_attack/request_throttle_data.rb`).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Throttle, ThrottleHeaders};

/// The throttle's name in `RateLimit-Name`: the one REST and GraphQL
/// requests with a token both count against.
pub(crate) const THROTTLE_NAME: &str = "throttle_authenticated_api";

/// GitLab's default `rate_limiting_response_text`.
pub(crate) const THROTTLED_BODY: &str = "Retry later\n";

/// A throttle configuration with its running counters.
pub(crate) struct ThrottleState {
    config: Throttle,
    /// Where sub-second windows are counted from.
    origin: Instant,
    /// `origin` on the wall clock, for `RateLimit-Reset` of those windows.
    origin_wall: SystemTime,
    /// By token: the window index and how many requests it has seen.
    counters: HashMap<String, (u128, u32)>,
}

/// What the throttle says about one request.
pub(crate) enum Verdict {
    /// Let through; these headers go on the answer (maybe none).
    Pass(Vec<(&'static str, String)>),
    /// Answer 429 with these headers (maybe none); do not perform it.
    Throttled(Vec<(&'static str, String)>),
}

/// Where a request falls: its window and how far that window's end is.
struct Window {
    index: u128,
    /// Whole seconds to the window's end, at least 1 (GitLab's `retry_after`).
    retry_after: u64,
    /// The window's end in Unix seconds.
    reset: u64,
}

impl ThrottleState {
    /// A fresh state, or why the configuration is invalid.
    pub fn checked(config: Throttle) -> Result<ThrottleState, String> {
        if config.window.is_zero() {
            return Err("a throttle's window cannot be zero".to_owned());
        }
        Ok(ThrottleState::new(config))
    }

    fn new(config: Throttle) -> ThrottleState {
        ThrottleState {
            config,
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
            counters: HashMap::new(),
        }
    }

    /// Counts a request of `token` now (throttled ones too, as Rack::Attack
    /// does) and says whether it passes.
    pub fn check(&mut self, token: &str) -> Verdict {
        let window = self.window_at(Instant::now(), SystemTime::now());
        let counter = self.counters.entry(token.to_owned()).or_insert((window.index, 0));
        if counter.0 != window.index {
            *counter = (window.index, 0);
        }
        counter.1 = counter.1.saturating_add(1);
        let observed = counter.1;
        let throttled = observed > self.config.limit;
        let headers = match (self.config.headers, throttled) {
            (ThrottleHeaders::None, _) | (ThrottleHeaders::OnlyOnThrottle, false) => Vec::new(),
            (ThrottleHeaders::Full, false) => self.common_headers(observed, &window),
            (_, true) => {
                let mut headers = self.common_headers(observed, &window);
                headers.push(("ratelimit-resettime", http_date(window.reset)));
                headers.push(("retry-after", window.retry_after.to_string()));
                headers
            }
        };
        if throttled {
            Verdict::Throttled(headers)
        } else {
            Verdict::Pass(headers)
        }
    }

    /// How long until the current window ends.
    pub fn window_remaining(&self) -> Duration {
        if let Some(period) = self.whole_seconds() {
            let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let into_window =
                Duration::from_nanos((since_epoch.as_nanos() % (u128::from(period) * 1_000_000_000)) as u64);
            Duration::from_secs(period) - into_window
        } else {
            let window = self.config.window.as_nanos();
            let elapsed = self.origin.elapsed().as_nanos();
            Duration::from_nanos((window - elapsed % window) as u64)
        }
    }

    /// The window length in whole seconds, if it is one: such windows are
    /// aligned to Unix time like Rack::Attack's (`epoch_time / period`).
    fn whole_seconds(&self) -> Option<u64> {
        let window = self.config.window;
        (window.subsec_nanos() == 0 && window.as_secs() > 0).then_some(window.as_secs())
    }

    fn window_at(&self, now: Instant, now_wall: SystemTime) -> Window {
        if let Some(period) = self.whole_seconds() {
            // Rack::Attack counts in whole Unix seconds.
            let epoch = now_wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let retry_after = period - epoch % period;
            return Window {
                index: u128::from(epoch / period),
                retry_after,
                reset: epoch + retry_after,
            };
        }
        // Shorter or fractional windows count from when the throttle was set.
        let window = self.config.window.as_nanos();
        let elapsed = now.duration_since(self.origin).as_nanos();
        let index = elapsed / window;
        let end = Duration::from_nanos(((index + 1) * window) as u64);
        let remaining = end.saturating_sub(Duration::from_nanos(elapsed as u64));
        let reset = (self.origin_wall + end)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            .ceil() as u64;
        Window {
            index,
            retry_after: remaining.as_secs_f64().ceil().max(1.0) as u64,
            reset,
        }
    }

    /// The headers GitLab puts on every answer the throttle saw.
    fn common_headers(&self, observed: u32, window: &Window) -> Vec<(&'static str, String)> {
        let limit = self.config.limit;
        vec![
            ("ratelimit-name", THROTTLE_NAME.to_owned()),
            ("ratelimit-limit", per_minute(limit, self.config.window).to_string()),
            ("ratelimit-observed", observed.to_string()),
            ("ratelimit-remaining", limit.saturating_sub(observed).to_string()),
            ("ratelimit-reset", window.reset.to_string()),
        ]
    }
}

/// `limit` per `window`, normalised to a minute and rounded up, as GitLab's
/// `rounded_limit` does (for clients and proxies that assume 60 s windows).
pub(crate) fn per_minute(limit: u32, window: Duration) -> u64 {
    (f64::from(limit) * 60.0 / window.as_secs_f64()).ceil() as u64
}

/// Ruby's `Time#httpdate`: `Tue, 05 Jan 2021 11:00:00 GMT`.
fn http_date(unix_seconds: u64) -> String {
    let ts =
        jiff::Timestamp::from_second(i64::try_from(unix_seconds).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_per_minute_rounded_up() {
        assert_eq!(per_minute(2000, Duration::from_secs(60)), 2000);
        assert_eq!(per_minute(7200, Duration::from_secs(3600)), 120);
        assert_eq!(per_minute(100, Duration::from_secs(120)), 50);
        assert_eq!(per_minute(1, Duration::from_secs(7)), 9);
        assert_eq!(per_minute(5, Duration::from_secs(1)), 300);
        assert_eq!(per_minute(5, Duration::from_millis(100)), 3000);
    }

    #[test]
    fn http_dates_look_like_rubys() {
        assert_eq!(http_date(1_609_844_400), "Tue, 05 Jan 2021 11:00:00 GMT");
    }

    #[test]
    fn whole_second_windows_are_aligned_to_unix_time() {
        let state = ThrottleState::new(Throttle::new(10, Duration::from_secs(3600)));
        let at = UNIX_EPOCH + Duration::from_millis(1_609_844_400_000 + 100_500);
        let window = state.window_at(Instant::now(), at);
        assert_eq!(window.index, 1_609_844_400 / 3600);
        assert_eq!(window.retry_after, 3500);
        assert_eq!(window.reset, 1_609_848_000);
    }

    #[test]
    fn sub_second_windows_count_from_the_start() {
        let state = ThrottleState::new(Throttle::new(10, Duration::from_millis(250)));
        let window = state.window_at(state.origin + Duration::from_millis(600), SystemTime::now());
        assert_eq!(window.index, 2);
        assert_eq!(window.retry_after, 1);
    }
}
