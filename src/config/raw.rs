//! Stage 1: the file's shape, as serde structs.
//!
//! Every object is a struct with `deny_unknown_fields`, every value is read
//! on its own by its type's [`Leaf`] impl (wrong type, out of range, a bad
//! regex, duration or cron string), and `null` is "not set". A failure is
//! one [`Problem`] at the JSON path `serde_path_to_error` tracked, with
//! serde's own wording turned into the config's (see [`reword`]).
//! Nothing here knows how fields combine: that is stage 2, `validate.rs`.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::{AgeFrom, ApiMode, MAX_CONCURRENCY, Problem, Target, one_line, problem};
use crate::duration::parse_age;
use crate::policy::{OrderBy, RefGone, whole_match_regex};
use crate::schedule::Schedule;

/// Reads `value` as `T`, naming the JSON path of the first problem.
pub(super) fn read<'de, T: Deserialize<'de>>(value: &'de Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err
            .path()
            .iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => key.clone(),
                // `rules.0.name`, as validation names a rule.
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        problem(&path, reword(&err.into_inner().to_string()))
    })
}

/// The full form's top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFull {
    #[serde(default, deserialize_with = "optional")]
    pub(super) schedule: Option<Schedule>,
    #[serde(default, deserialize_with = "optional")]
    pub(super) run_on_start: Option<bool>,
    #[serde(default, deserialize_with = "concurrency")]
    pub(super) concurrency: Option<usize>,
    #[serde(default, deserialize_with = "optional")]
    pub(super) api: Option<ApiMode>,
    #[serde(default, deserialize_with = "optional")]
    pub(super) pass_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "optional")]
    pub(super) max_requests_per_minute: Option<NonZeroU64>,
    pub(super) defaults: Option<Object<RawFields>>,
    pub(super) projects: Option<Named<RawEntry>>,
    pub(super) groups: Option<Named<RawEntry>>,
}

/// Declares the policy fields once: each becomes an optional field of
/// [`RawFields`] (`defaults`) and of [`RawEntry`] (`id` and the same
/// fields), read by its type's [`Leaf`] impl and inherited from `defaults`
/// by [`RawEntry::inherit`]. A new field is one line here and one where
/// `validate.rs` builds the [`Entry`](super::Entry).
macro_rules! policy_fields {
    ($($field:ident: $ty:ty,)+) => {
        /// `defaults`: the policy fields as written, each optional.
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields, expecting = "an object")]
        pub(super) struct RawFields {
            $(
                #[serde(default, deserialize_with = "optional")]
                pub(super) $field: Option<$ty>,
            )+
        }

        /// A project or group entry as written: `id` and the policy fields.
        #[derive(Debug, Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "an object with at least \"id\" and \"delete_older_than\""
        )]
        pub(super) struct RawEntry {
            #[serde(default, deserialize_with = "optional")]
            id: Option<Target>,
            $(
                #[serde(default, deserialize_with = "optional")]
                $field: Option<$ty>,
            )+
            /// Several named rules (spec §3a); `null` is "not set".
            #[serde(default)]
            pub(super) rules: Option<Vec<Object<RawRule>>>,
        }

        impl RawEntry {
            /// The entry's id, and its fields with `defaults` filling the gaps.
            pub(super) fn inherit(self, defaults: &RawFields) -> (Option<Target>, RawFields) {
                let fields = RawFields {
                    $($field: self.$field.or_else(|| defaults.$field.clone()),)+
                };
                (self.id, fields)
            }

            /// The policy fields the entry itself sets (not inherited).
            pub(super) fn fields_set(&self) -> Vec<&'static str> {
                let mut set = Vec::new();
                $(
                    if self.$field.is_some() {
                        set.push(stringify!($field));
                    }
                )+
                set
            }
        }
    };
}

policy_fields! {
    delete_older_than: Duration,
    keep_n: usize,
    keep_n_by: StreamRegex,
    order_by: OrderBy,
    name_regex_delete: Regex,
    name_regex_keep: Regex,
    keep_latest: bool,
    repository_regex: Regex,
    max_deletions: NonZeroU64,
    enabled: bool,
    age_from: AgeFrom,
    delete_when_ref_gone: RefGoneSetting,
}

/// One rule of an entry's `rules` as written: a name and the tag-selection
/// fields (not `enabled` or `max_deletions`: those are the entry's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with at least \"name\"")]
pub(super) struct RawRule {
    #[serde(default, deserialize_with = "optional")]
    pub(super) name: Option<RuleName>,
    #[serde(default, deserialize_with = "optional")]
    delete_older_than: Option<Duration>,
    #[serde(default, deserialize_with = "optional")]
    keep_n: Option<usize>,
    #[serde(default, deserialize_with = "optional")]
    keep_n_by: Option<StreamRegex>,
    #[serde(default, deserialize_with = "optional")]
    order_by: Option<OrderBy>,
    #[serde(default, deserialize_with = "optional")]
    name_regex_delete: Option<Regex>,
    #[serde(default, deserialize_with = "optional")]
    name_regex_keep: Option<Regex>,
    #[serde(default, deserialize_with = "optional")]
    keep_latest: Option<bool>,
    #[serde(default, deserialize_with = "optional")]
    repository_regex: Option<Regex>,
    #[serde(default, deserialize_with = "optional")]
    age_from: Option<AgeFrom>,
    #[serde(default, deserialize_with = "optional")]
    delete_when_ref_gone: Option<RefGoneSetting>,
}

impl RawRule {
    /// The rule's fields with `defaults` filling the gaps; `enabled` and
    /// `max_deletions` stay the entry's.
    pub(super) fn inherit(self, defaults: &RawFields) -> RawFields {
        RawFields {
            delete_older_than: self.delete_older_than.or(defaults.delete_older_than),
            keep_n: self.keep_n.or(defaults.keep_n),
            keep_n_by: self.keep_n_by.or_else(|| defaults.keep_n_by.clone()),
            order_by: self.order_by.or(defaults.order_by),
            name_regex_delete: self.name_regex_delete.or_else(|| defaults.name_regex_delete.clone()),
            name_regex_keep: self.name_regex_keep.or_else(|| defaults.name_regex_keep.clone()),
            keep_latest: self.keep_latest.or(defaults.keep_latest),
            repository_regex: self.repository_regex.or_else(|| defaults.repository_regex.clone()),
            max_deletions: None,
            enabled: None,
            age_from: self.age_from.or(defaults.age_from),
            delete_when_ref_gone: self
                .delete_when_ref_gone
                .or_else(|| defaults.delete_when_ref_gone.clone()),
        }
    }
}

/// A rule's name: not empty, printable, logged as `rule`.
#[derive(Debug, Clone)]
pub(super) struct RuleName(pub(super) String);

impl Leaf for RuleName {
    fn read(value: &Value) -> Result<Self, String> {
        let name = value.as_str().ok_or("must be a string")?;
        if name.trim().is_empty() || name.chars().any(char::is_control) || name.chars().count() > 100 {
            return Err("must be a non-empty name of at most 100 printable characters".to_owned());
        }
        Ok(RuleName(name.to_owned()))
    }
}

/// `keep_n_by`: a whole-match regex with a named group `stream`.
#[derive(Debug, Clone)]
pub(super) struct StreamRegex(pub(super) Regex);

impl Leaf for StreamRegex {
    fn read(value: &Value) -> Result<Self, String> {
        let re = Regex::read(value)?;
        if re.capture_names().flatten().any(|name| name == "stream") {
            Ok(StreamRegex(re))
        } else {
            Err("must have a named group \"stream\", e.g. \"(?<stream>.+)-\\\\d+\"".to_owned())
        }
    }
}

/// `delete_when_ref_gone` as written: `false` turns off what `defaults` set.
#[derive(Debug, Clone)]
pub(super) enum RefGoneSetting {
    Off,
    On(RefGone),
}

impl RefGoneSetting {
    pub(super) fn into_option(self) -> Option<RefGone> {
        match self {
            RefGoneSetting::Off => None,
            RefGoneSetting::On(gone) => Some(gone),
        }
    }
}

/// `delete_when_ref_gone`: `{"tag_regex": …, "grace": …}`, both required,
/// or `false`.
impl Leaf for RefGoneSetting {
    fn read(value: &Value) -> Result<Self, String> {
        const KEYS: [&str; 2] = ["tag_regex", "grace"];
        if value == &Value::Bool(false) {
            return Ok(RefGoneSetting::Off);
        }
        let object = value
            .as_object()
            .ok_or("must be an object with \"tag_regex\" and \"grace\", or false")?;
        if let Some(key) = object.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(format!("unknown key \"{key}\" (expected one of: tag_regex, grace)"));
        }
        let field = |key: &str, what: &str| {
            object
                .get(key)
                .filter(|value| !value.is_null())
                .ok_or_else(|| format!("\"{key}\" is required ({what})"))
        };
        let tag_regex = field("tag_regex", "which tags name a branch or merge request")?;
        let tag_regex = Regex::read(tag_regex).map_err(|err| format!("tag_regex {err}"))?;
        if !tag_regex
            .capture_names()
            .flatten()
            .any(|name| name == "ref" || name == "mr")
        {
            return Err(
                "tag_regex must have a named group \"ref\" (a branch's slug) or \"mr\" (a merge \
                        request's iid), e.g. \"mr-(?<mr>\\\\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}\""
                    .to_owned(),
            );
        }
        let grace = field(
            "grace",
            "how old a tag of a gone branch or merge request must be to go, e.g. \"1d\"",
        )?;
        let grace = Duration::read(grace).map_err(|err| format!("grace {err}"))?;
        Ok(RefGoneSetting::On(RefGone { tag_regex, grace }))
    }
}

impl Leaf for OrderBy {
    fn read(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("date") => Ok(OrderBy::Date),
            Some("semver") => Ok(OrderBy::Semver),
            _ => Err("must be \"date\" or \"semver\"".to_owned()),
        }
    }
}

/// One value that is checked on its own.
pub(super) trait Leaf: Sized {
    /// Reads a value that is not `null`. The error completes a sentence
    /// that starts with the value's JSON path.
    fn read(value: &Value) -> Result<Self, String>;
}

/// `null` or absent is `None`; anything else is read by [`Leaf::read`].
fn optional<'de, D: Deserializer<'de>, T: Leaf>(deserializer: D) -> Result<Option<T>, D::Error> {
    checked(deserializer, T::read)
}

fn checked<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    read: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<Option<T>, D::Error> {
    Option::<Value>::deserialize(deserializer)?
        .map(|value| read(&value).map_err(de::Error::custom))
        .transpose()
}

fn concurrency<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    checked(deserializer, |value| {
        value
            .as_u64()
            .filter(|n| (1..=MAX_CONCURRENCY as u64).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| format!("must be an integer from 1 to {MAX_CONCURRENCY}"))
    })
}

impl Leaf for bool {
    fn read(value: &Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| "must be true or false".to_owned())
    }
}

impl Leaf for usize {
    fn read(value: &Value) -> Result<Self, String> {
        value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| "must be an integer >= 0".to_owned())
    }
}

impl Leaf for NonZeroU64 {
    fn read(value: &Value) -> Result<Self, String> {
        value
            .as_u64()
            .and_then(NonZeroU64::new)
            .ok_or_else(|| "must be an integer >= 1".to_owned())
    }
}

/// An age limit in either accepted shape (see [`crate::duration`]).
impl Leaf for Duration {
    fn read(value: &Value) -> Result<Self, String> {
        parse_age(value).map_err(|err| err.to_string())
    }
}

/// A whole-match regex.
impl Leaf for Regex {
    fn read(value: &Value) -> Result<Self, String> {
        let pattern = value.as_str().ok_or("must be a regex string")?;
        whole_match_regex(pattern).map_err(|err| format!("invalid regex: {}", one_line(&err.to_string())))
    }
}

impl Leaf for AgeFrom {
    fn read(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("created") => Ok(AgeFrom::Created),
            Some("published") => Ok(AgeFrom::Published),
            _ => Err("must be \"created\" or \"published\"".to_owned()),
        }
    }
}

impl Leaf for ApiMode {
    fn read(value: &Value) -> Result<Self, String> {
        value
            .as_str()
            .and_then(ApiMode::parse)
            .ok_or_else(|| "must be \"rest\", \"graphql\" or \"auto\"".to_owned())
    }
}

impl Leaf for Schedule {
    fn read(value: &Value) -> Result<Self, String> {
        let text = value.as_str().ok_or("must be a cron expression string")?;
        Schedule::parse(text).map_err(|err| err.to_string())
    }
}

/// A numeric id (also as a string of digits) or a project or group path.
impl Leaf for Target {
    fn read(value: &Value) -> Result<Self, String> {
        const NOT_AN_ID: &str = "must be a positive integer or a path string";
        let text = match value {
            Value::Number(n) => return n.as_u64().filter(|id| *id >= 1).map(Target::Id).ok_or(NOT_AN_ID.into()),
            Value::String(text) => text.trim(),
            _ => return Err(NOT_AN_ID.into()),
        };
        if let Ok(id) = text.parse::<u64>() {
            return if id >= 1 {
                Ok(Target::Id(id))
            } else {
                Err(NOT_AN_ID.into())
            };
        }
        let valid = !text.is_empty()
            && !text.starts_with('/')
            && !text.ends_with('/')
            && !text.contains("//")
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Target::Path(text.to_owned()))
        } else {
            Err(format!(
                "\"{text}\" is not a project or group path such as \"group/project\""
            ))
        }
    }
}

/// An object read as the struct `T`. serde reads a struct from an array
/// too, field by field in order; a config entry written as `[5, "1d"]` is a
/// mistake, not an entry.
#[derive(Debug)]
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Object)
    }
}

/// A deserializer that hands its visitor a map or an error.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// An object mapping free names to entries, in file order (strict_json has
/// refused duplicate names already).
#[derive(Debug)]
pub(super) struct Named<T>(pub(super) Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NamedVisitor(PhantomData))
    }
}

struct NamedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NamedVisitor<T> {
    type Value = Named<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping names to entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<T>, A::Error> {
        let mut entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let Object(entry) = map.next_value()?;
            entries.push((name, entry));
        }
        Ok(Named(entries))
    }
}

/// serde's messages in the config's words. The path already names the key,
/// so an unknown key lists the known ones and a wrong type says what is
/// expected, without echoing the value. These are serde's default formats
/// for `unknown_field`, `invalid_type` and `invalid_value`; our own
/// messages pass unchanged.
fn reword(message: &str) -> String {
    // The expected part is last and made of our own names, so the last
    // ", expected " is serde's even if the echoed value contains one.
    let expected = message.rsplit_once(", expected ").map(|(_, expected)| expected);
    if message.starts_with("unknown field `") {
        return match expected {
            Some(names) => format!(
                "unknown key (expected one of: {})",
                names.strip_prefix("one of ").unwrap_or(names).replace('`', "")
            ),
            None => "unknown key".to_owned(),
        };
    }
    match expected {
        Some(what) if message.starts_with("invalid type: ") || message.starts_with("invalid value: ") => {
            format!("must be {what}")
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_reworded() {
        assert_eq!(
            reword("unknown field `colour`, expected one of `id`, `keep_n`"),
            "unknown key (expected one of: id, keep_n)"
        );
        assert_eq!(
            reword("unknown field `a, expected b`, expected `id`"),
            "unknown key (expected one of: id)"
        );
        assert_eq!(reword("unknown field `x`, there are no fields"), "unknown key");
        assert_eq!(
            reword("invalid type: string \"a, expected x\", expected an object"),
            "must be an object"
        );
        assert_eq!(reword("must be > 0"), "must be > 0");
    }
}
