//! When the daemon runs a pass: cron expressions evaluated in UTC.
//!
//! Accepted: standard 5-field cron (minute precision), 6 fields with
//! seconds first, and the aliases `@hourly`, `@daily`, `@weekly` (also
//! `@monthly`, `@yearly`). Parsing is croner's; this module adds the UTC
//! evaluation and the error message that names the expression.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed cron schedule.
#[derive(Clone)]
pub struct Schedule {
    cron: croner::Cron,
    text: String,
}

/// A cron expression that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid cron expression \"{text}\": {reason} (use 5 fields \"m h dom mon dow\", 6 with seconds first, or @hourly/@daily/@weekly)"
)]
pub struct ScheduleError {
    text: String,
    reason: String,
}

impl Schedule {
    /// Parses a cron expression.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let fail = |reason: String| ScheduleError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(fail("empty".to_owned()));
        }
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(fail(format!("{fields} fields")));
        }
        let cron = croner::parser::CronParser::new()
            .parse(trimmed)
            .map_err(|err| fail(err.to_string()))?;
        let schedule = Schedule {
            cron,
            text: trimmed.to_owned(),
        };
        // A valid pattern that never fires (31 February) is as useless as an invalid one.
        if schedule.next_after(Timestamp::now()).is_none() {
            return Err(fail("it never fires".to_owned()));
        }
        Ok(schedule)
    }

    /// The first firing strictly after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let zoned = now.to_zoned(TimeZone::UTC);
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(expr: &str, now: &str) -> String {
        Schedule::parse(expr).unwrap().next_after(at(now)).unwrap().to_string()
    }

    #[test]
    fn five_fields_minute_precision() {
        assert_eq!(next("0 3 * * *", "2026-11-27T12:00:00Z"), "2026-11-28T03:00:00Z");
        assert_eq!(next("*/5 * * * *", "2026-11-27T12:01:30Z"), "2026-11-27T12:05:00Z");
        assert_eq!(next("0 3 * * *", "2026-11-27T02:59:59Z"), "2026-11-27T03:00:00Z");
    }

    #[test]
    fn strictly_after_now() {
        assert_eq!(next("0 3 * * *", "2026-11-27T03:00:00Z"), "2026-11-28T03:00:00Z");
    }

    #[test]
    fn six_fields_with_seconds() {
        assert_eq!(next("*/10 * * * * *", "2026-11-27T12:00:01Z"), "2026-11-27T12:00:10Z");
        assert_eq!(next("* * * * * *", "2026-11-27T12:00:01.5Z"), "2026-11-27T12:00:02Z");
    }

    #[test]
    fn aliases() {
        assert_eq!(next("@hourly", "2026-11-27T12:10:00Z"), "2026-11-27T13:00:00Z");
        assert_eq!(next("@daily", "2026-11-27T12:10:00Z"), "2026-11-28T00:00:00Z");
        assert_eq!(next("@weekly", "2026-11-27T12:10:00Z"), "2026-11-29T00:00:00Z");
    }

    #[test]
    fn evaluated_in_utc_whatever_tz_says() {
        // Schedule::next_after works on UTC timestamps only; nothing reads TZ.
        assert_eq!(next("30 1 * * *", "2026-03-29T00:00:00Z"), "2026-03-29T01:30:00Z");
    }

    #[test]
    fn invalid_expressions_are_named() {
        for bad in [
            "",
            "61 * * * *",
            "* * *",
            "every day",
            "0 3 * * * * * *",
            "0 0 31 2 *",
            "@sometimes",
        ] {
            let err = Schedule::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("\"{}\"", bad.trim())), "{err}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_result_not_a_panic(text in "[0-9*/,@a-zA-Z #?LW-]{0,30}") {
            if let Ok(schedule) = Schedule::parse(&text) {
                let now = Timestamp::now();
                prop_assert!(schedule.next_after(now).is_some_and(|t| t > now));
            }
        }
    }
}
