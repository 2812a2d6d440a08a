//! The `delete_older_than` age limit: the seed's unit objects and duration strings.
//!
//! Two spellings are accepted, both as the Python tool's users wrote them and as
//! humantime writes durations:
//!
//! * an object of units that add up: `{"days": 2}`, `{"hours": 5, "minutes": 30}`;
//! * a string: `"2d 5h"`, `"90m"`, `"1w"` (parsed by `humantime`).
//!
//! The result must be greater than zero and at most [`MAX_AGE`], so that
//! `now - age` can never overflow into "everything is old".

use std::time::Duration;

use serde_json::Value;

/// The longest age limit accepted: 100 years. Anything longer is a typo, and an
/// overflowing limit is how `acr purge --ago 999999d` deleted everything.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Units of the object form and their length in seconds.
const UNITS: [(&str, f64); 5] = [
    ("weeks", 7.0 * 86_400.0),
    ("days", 86_400.0),
    ("hours", 3_600.0),
    ("minutes", 60.0),
    ("seconds", 1.0),
];

/// Why an age limit was refused. The messages complete a sentence that starts
/// with the JSON path of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AgeError {
    /// Neither an object nor a string.
    #[error("must be an object such as {{\"days\": 2}} or a duration string such as \"2d 5h\"")]
    WrongType,
    /// An object key that is not a unit.
    #[error("unknown unit \"{0}\" (expected weeks, days, hours, minutes or seconds)")]
    UnknownUnit(String),
    /// A unit whose value is not a non-negative number.
    #[error("\"{0}\" must be a number >= 0")]
    BadAmount(String),
    /// A string humantime cannot read.
    #[error("\"{text}\" is not a duration ({reason}); write e.g. \"2d 5h\", \"90m\" or \"1w\"")]
    Unparsable {
        /// The string as written.
        text: String,
        /// What humantime said.
        reason: String,
    },
    /// Zero, or an empty object.
    #[error("must be > 0")]
    Zero,
    /// Longer than [`MAX_AGE`].
    #[error("must be at most 100 years")]
    TooLong,
}

/// Reads an age limit from its JSON value.
pub(crate) fn parse_age(value: &Value) -> Result<Duration, AgeError> {
    let age = match value {
        Value::Object(units) => {
            let mut seconds = 0.0_f64;
            for (unit, amount) in units {
                let Some((_, unit_seconds)) = UNITS.iter().find(|(name, _)| name == unit) else {
                    return Err(AgeError::UnknownUnit(unit.clone()));
                };
                let amount = amount
                    .as_f64()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| AgeError::BadAmount(unit.clone()))?;
                seconds += amount * unit_seconds;
            }
            if !seconds.is_finite() || seconds > MAX_AGE.as_secs_f64() {
                return Err(AgeError::TooLong);
            }
            Duration::from_secs_f64(seconds)
        }
        Value::String(text) => parse_age_str(text)?,
        _ => return Err(AgeError::WrongType),
    };
    if age.is_zero() {
        return Err(AgeError::Zero);
    }
    if age > MAX_AGE {
        return Err(AgeError::TooLong);
    }
    Ok(age)
}

/// Reads a duration string such as `"2d 5h"`.
pub(crate) fn parse_age_str(text: &str) -> Result<Duration, AgeError> {
    humantime::parse_duration(text.trim()).map_err(|err| match err {
        humantime::DurationError::NumberOverflow => AgeError::TooLong,
        other => AgeError::Unparsable {
            text: text.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Writes an age limit in words (`"2 days 5 hours"`), so that `check` shows
/// what a terse string meant: in humantime `"6m"` is six *minutes* and
/// `"6M"` six months. humantime reads the words back.
pub(crate) fn format_age(age: Duration) -> String {
    let mut seconds = age.as_secs();
    let mut parts = Vec::new();
    for (unit, length) in [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)] {
        let n = seconds / length;
        seconds %= length;
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        "0 seconds".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const DAY: u64 = 86_400;

    #[test]
    fn seed_objects() {
        assert_eq!(parse_age(&json!({"days": 2})), Ok(Duration::from_secs(2 * DAY)));
        assert_eq!(parse_age(&json!({"hours": 5})), Ok(Duration::from_secs(5 * 3600)));
        assert_eq!(parse_age(&json!({"minutes": 60})), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn units_add_up() {
        let age = parse_age(&json!({"days": 1, "hours": 2, "minutes": 3, "seconds": 4, "weeks": 1}));
        assert_eq!(age, Ok(Duration::from_secs(8 * DAY + 2 * 3600 + 3 * 60 + 4)));
    }

    #[test]
    fn fractional_units_like_timedelta() {
        assert_eq!(parse_age(&json!({"days": 1.5})), Ok(Duration::from_secs(36 * 3600)));
    }

    #[test]
    fn strings() {
        assert_eq!(parse_age(&json!("2d 5h")), Ok(Duration::from_secs(2 * DAY + 5 * 3600)));
        assert_eq!(parse_age(&json!("90m")), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_age(&json!("1w")), Ok(Duration::from_secs(7 * DAY)));
        assert_eq!(parse_age(&json!(" 30d ")), Ok(Duration::from_secs(30 * DAY)));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_age(&json!({"days": 0})), Err(AgeError::Zero));
        assert_eq!(parse_age(&json!({})), Err(AgeError::Zero));
        assert_eq!(parse_age(&json!("0s")), Err(AgeError::Zero));
        assert_eq!(
            parse_age(&json!({"fortnights": 1})),
            Err(AgeError::UnknownUnit("fortnights".into()))
        );
        assert_eq!(parse_age(&json!({"days": -1})), Err(AgeError::BadAmount("days".into())));
        assert_eq!(
            parse_age(&json!({"days": "2"})),
            Err(AgeError::BadAmount("days".into()))
        );
        assert_eq!(parse_age(&json!(2)), Err(AgeError::WrongType));
        assert_eq!(parse_age(&json!(null)), Err(AgeError::WrongType));
        assert!(matches!(parse_age(&json!("30")), Err(AgeError::Unparsable { .. })));
        assert!(matches!(
            parse_age(&json!("2 fortnights")),
            Err(AgeError::Unparsable { .. })
        ));
        assert_eq!(parse_age(&json!({"days": 1e300})), Err(AgeError::TooLong));
        assert_eq!(parse_age(&json!({"days": 36500 + 100})), Err(AgeError::TooLong));
        assert_eq!(parse_age(&json!("200y")), Err(AgeError::TooLong));
        assert_eq!(parse_age(&json!("99999999999999999999999d")), Err(AgeError::TooLong));
    }

    #[test]
    fn format_round_trips() {
        let age = Duration::from_secs(2 * DAY + 5 * 3600);
        assert_eq!(format_age(age), "2 days 5 hours");
        assert_eq!(parse_age_str(&format_age(age)), Ok(age));
        assert_eq!(format_age(parse_age_str("6m").unwrap()), "6 minutes");
        assert_eq!(format_age(Duration::from_secs(DAY + 61)), "1 day 1 minute 1 second");
    }

    proptest! {
        #[test]
        fn any_string_is_a_result_not_a_panic(text in ".{0,40}") {
            if let Ok(age) = parse_age(&Value::String(text)) {
                prop_assert!(!age.is_zero() && age <= MAX_AGE);
            }
        }

        #[test]
        fn any_object_is_a_result_not_a_panic(
            units in proptest::collection::btree_map("[a-z]{1,8}", proptest::num::f64::ANY, 0..4)
        ) {
            let value = Value::Object(units.into_iter()
                .map(|(k, v)| (k, serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
                .collect());
            if let Ok(age) = parse_age(&value) {
                prop_assert!(!age.is_zero() && age <= MAX_AGE);
            }
        }

        #[test]
        fn whole_days_are_exact(days in 1u64..36_000) {
            prop_assert_eq!(parse_age(&serde_json::json!({"days": days})), Ok(Duration::from_secs(days * DAY)));
            prop_assert_eq!(parse_age(&Value::String(format!("{days}d"))), Ok(Duration::from_secs(days * DAY)));
        }
    }
}
