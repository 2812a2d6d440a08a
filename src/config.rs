//! The JSON config file: both forms, every field, validated at load.
//!
//! The file is read into a `serde_json::Value` and walked by hand, so every
//! error names the JSON path of the offending value
//! (`projects.web.delete_older_than: must be > 0`) and unknown keys are refused
//! rather than ignored. The result is a [`Config`] of domain types: compiled
//! regexes, [`Duration`]s, typed targets. Nothing after this module sees JSON.
//!
//! **The legacy form** (the Python tool's): the top level maps free names to
//! projects. **The full form**: the top level has a key `projects` whose value
//! is an object without an `id`, next to `defaults`, `groups` and the daemon
//! settings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

use crate::duration::{format_age, parse_age};
use crate::policy::{Rules, whole_match_regex};
use crate::schedule::Schedule;

/// The most requests in flight a config or flag may ask for.
pub const MAX_CONCURRENCY: usize = 1024;

/// A loaded, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which of the two forms the file used.
    pub form: ConfigForm,
    /// When the daemon runs a pass.
    pub schedule: Option<Schedule>,
    /// Whether the daemon starts a pass at once.
    pub run_on_start: bool,
    /// Most HTTP requests in flight (overridden by `--concurrency`).
    pub concurrency: Option<usize>,
    /// Which GitLab API to use (overridden by `--api`).
    pub api: Option<ApiMode>,
    /// Every entry, enabled or not, projects first, in file order.
    pub entries: Vec<Entry>,
}

/// The two accepted shapes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigForm {
    /// The Python tool's: a map of names to projects.
    Legacy,
    /// `projects`, `groups`, `defaults` and daemon settings.
    Full,
}

/// Which GitLab API a pass talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMode {
    /// REST API v4.
    Rest,
    /// GraphQL.
    Graphql,
    /// GraphQL, falling back to REST for an entry (or repository) where
    /// GraphQL is missing or refuses the query.
    Auto,
}

impl ApiMode {
    /// Reads `rest`, `graphql` or `auto`.
    pub fn parse(text: &str) -> Option<ApiMode> {
        match text {
            "rest" => Some(ApiMode::Rest),
            "graphql" => Some(ApiMode::Graphql),
            "auto" => Some(ApiMode::Auto),
            _ => None,
        }
    }
}

/// Whether an entry names a project or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// `GET /projects/:id/registry/repositories`.
    Project,
    /// `GET /groups/:id/registry/repositories`.
    Group,
}

impl EntryKind {
    /// `project` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Project => "project",
            EntryKind::Group => "group",
        }
    }
}

/// A project or group as the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A numeric id.
    Id(u64),
    /// A full path such as `group/sub/project`.
    Path(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::Path(path) => f.write_str(path),
        }
    }
}

/// Which date ages a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeFrom {
    /// `created_at`: the image's build time on a registry without the metadata database.
    Created,
    /// `publishedAt`, the last push (GraphQL only; needs GitLab's registry
    /// metadata database, else `createdAt` is used).
    Published,
}

/// One project or group entry, with defaults applied.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The config key, used in logs as `project`.
    pub name: String,
    /// Project or group.
    pub kind: EntryKind,
    /// Its id or path.
    pub target: Target,
    /// The deletion rules.
    pub rules: Rules,
    /// Only repositories whose whole path matches are cleaned.
    pub repository_regex: Option<Regex>,
    /// The safety fuse: more deletions than this in one pass means none.
    pub max_deletions: Option<u64>,
    /// `false` skips the entry.
    pub enabled: bool,
    /// Which date ages a tag.
    pub age_from: AgeFrom,
    /// The entry's JSON path (`projects.web`), for messages.
    pub json_path: String,
}

impl Entry {
    /// One line describing the entry's policy, for `check`.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("{} {}", self.kind.as_str(), self.target),
            format!("delete older than {}", format_age(self.rules.delete_older_than)),
        ];
        if self.rules.keep_n > 0 {
            parts.push(format!("keep {} newest", self.rules.keep_n));
        }
        if let Some(re) = &self.rules.name_regex_delete {
            parts.push(format!("only tags {}", unanchor(re)));
        }
        if let Some(re) = &self.rules.name_regex_keep {
            parts.push(format!("never tags {}", unanchor(re)));
        }
        if !self.rules.keep_latest {
            parts.push("latest not protected".to_owned());
        }
        if let Some(re) = &self.repository_regex {
            parts.push(format!("repositories {}", unanchor(re)));
        }
        if let Some(max) = self.max_deletions {
            parts.push(format!("at most {max} deletions"));
        }
        if !self.enabled {
            parts.push("DISABLED".to_owned());
        }
        parts.join(", ")
    }
}

fn unanchor(re: &Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix(r"\A(?:")
        .and_then(|s| s.strip_suffix(r")\z"))
        .unwrap_or(s)
}

/// A config that cannot be used. The message names the file and, for a bad
/// value, its JSON path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// The content is not a valid config.
    #[error("config file {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        problem: Problem,
    },
}

/// What is wrong with a config's content, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Not UTF-8, not JSON, or empty.
    #[error("{0}")]
    Syntax(String),
    /// A value is wrong; `path` is its JSON path (empty for the top level).
    #[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Value {
        /// JSON path, e.g. `projects.web.keep_n`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem::Value {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|err| ConfigError::Read {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
        Config::from_bytes(&bytes).map_err(|problem| ConfigError::Invalid {
            path: path.to_owned(),
            problem,
        })
    }

    /// Validates a config from the file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Config, Problem> {
        let text = std::str::from_utf8(bytes)
            .map_err(|err| Problem::Syntax(format!("not UTF-8 text (invalid byte at offset {})", err.valid_up_to())))?;
        if text.trim().is_empty() {
            return Err(Problem::Syntax("the file is empty".to_owned()));
        }
        let value = strict_json::from_str(text).map_err(|err| Problem::Syntax(format!("not valid JSON: {err}")))?;
        Config::from_value(&value)
    }

    /// Validates a config from parsed JSON.
    pub fn from_value(value: &Value) -> Result<Config, Problem> {
        let Value::Object(top) = value else {
            return Err(problem("", "the top level must be a JSON object"));
        };
        let config = if is_full_form(top) {
            parse_full(top)?
        } else {
            parse_legacy(top)?
        };
        if config.entries.is_empty() {
            return Err(problem("", "names no project and no group to clean"));
        }
        check_overlaps(&config.entries)?;
        Ok(config)
    }

    /// The entries a pass works on.
    pub fn enabled_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|entry| entry.enabled)
    }
}

/// The full form's rule: a key `projects` whose value is an object without `id`.
fn is_full_form(top: &Map<String, Value>) -> bool {
    matches!(top.get("projects"), Some(Value::Object(projects)) if !projects.contains_key("id"))
}

const TOP_KEYS: [&str; 7] = [
    "schedule",
    "run_on_start",
    "concurrency",
    "api",
    "defaults",
    "projects",
    "groups",
];
const ENTRY_KEYS: [&str; 10] = [
    "id",
    "delete_older_than",
    "keep_n",
    "name_regex_delete",
    "name_regex_keep",
    "keep_latest",
    "repository_regex",
    "max_deletions",
    "enabled",
    "age_from",
];

fn parse_legacy(top: &Map<String, Value>) -> Result<Config, Problem> {
    let defaults = Fields::default();
    let entries = top
        .iter()
        .map(|(name, value)| parse_entry(name, name, EntryKind::Project, value, &defaults))
        .collect::<Result<_, _>>()?;
    Ok(Config {
        form: ConfigForm::Legacy,
        schedule: None,
        run_on_start: false,
        concurrency: None,
        api: None,
        entries,
    })
}

fn parse_full(top: &Map<String, Value>) -> Result<Config, Problem> {
    reject_unknown_keys("", top, &TOP_KEYS)?;
    let schedule = match top.get("schedule") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(Schedule::parse(text).map_err(|err| problem("schedule", err.to_string()))?),
        Some(_) => return Err(problem("schedule", "must be a cron expression string")),
    };
    let run_on_start = optional_bool(top, "run_on_start", "run_on_start")?.unwrap_or(false);
    let concurrency = match top.get("concurrency") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|n| (1..=MAX_CONCURRENCY as u64).contains(n))
                .ok_or_else(|| problem("concurrency", format!("must be an integer from 1 to {MAX_CONCURRENCY}")))?
                as usize,
        ),
    };
    let api = match top.get("api") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_str()
                .and_then(ApiMode::parse)
                .ok_or_else(|| problem("api", "must be \"rest\", \"graphql\" or \"auto\""))?,
        ),
    };
    let defaults = match top.get("defaults") {
        None | Some(Value::Null) => Fields::default(),
        Some(Value::Object(map)) => {
            let keys: Vec<&str> = ENTRY_KEYS.iter().copied().filter(|k| *k != "id").collect();
            reject_unknown_keys("defaults", map, &keys)?;
            Fields::parse("defaults", map)?
        }
        Some(_) => return Err(problem("defaults", "must be an object")),
    };
    let mut entries = Vec::new();
    for (section, kind) in [("projects", EntryKind::Project), ("groups", EntryKind::Group)] {
        match top.get(section) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let path = format!("{section}.{name}");
                    entries.push(parse_entry(name, &path, kind, value, &defaults)?);
                }
            }
            Some(_) => return Err(problem(section, "must be an object mapping names to entries")),
        }
    }
    Ok(Config {
        form: ConfigForm::Full,
        schedule,
        run_on_start,
        concurrency,
        api,
        entries,
    })
}

fn reject_unknown_keys(path: &str, map: &Map<String, Value>, known: &[&str]) -> Result<(), Problem> {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            return Err(problem(
                &at,
                format!("unknown key (expected one of: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// An entry's or `defaults`' fields as written, each optional.
#[derive(Debug, Default, Clone)]
struct Fields {
    delete_older_than: Option<Duration>,
    keep_n: Option<usize>,
    name_regex_delete: Option<Regex>,
    name_regex_keep: Option<Regex>,
    keep_latest: Option<bool>,
    repository_regex: Option<Regex>,
    max_deletions: Option<u64>,
    enabled: Option<bool>,
    age_from: Option<AgeFrom>,
}

impl Fields {
    fn parse(path: &str, map: &Map<String, Value>) -> Result<Fields, Problem> {
        let at = |key: &str| format!("{path}.{key}");
        let present = |key: &str| map.get(key).filter(|v| !v.is_null());
        Ok(Fields {
            delete_older_than: present("delete_older_than")
                .map(|v| parse_age(v).map_err(|err| problem(&at("delete_older_than"), err.to_string())))
                .transpose()?,
            keep_n: present("keep_n")
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| problem(&at("keep_n"), "must be an integer >= 0"))
                })
                .transpose()?,
            name_regex_delete: optional_regex(map, "name_regex_delete", &at("name_regex_delete"))?,
            name_regex_keep: optional_regex(map, "name_regex_keep", &at("name_regex_keep"))?,
            keep_latest: optional_bool(map, "keep_latest", &at("keep_latest"))?,
            repository_regex: optional_regex(map, "repository_regex", &at("repository_regex"))?,
            max_deletions: present("max_deletions")
                .map(|v| {
                    v.as_u64()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| problem(&at("max_deletions"), "must be an integer >= 1"))
                })
                .transpose()?,
            enabled: optional_bool(map, "enabled", &at("enabled"))?,
            age_from: present("age_from")
                .map(|v| match v.as_str() {
                    Some("created") => Ok(AgeFrom::Created),
                    Some("published") => Ok(AgeFrom::Published),
                    _ => Err(problem(&at("age_from"), "must be \"created\" or \"published\"")),
                })
                .transpose()?,
        })
    }
}

fn optional_bool(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, Problem> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(problem(path, "must be true or false")),
    }
}

fn optional_regex(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Regex>, Problem> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(pattern)) => whole_match_regex(pattern)
            .map(Some)
            .map_err(|err| problem(path, format!("invalid regex: {}", one_line(&err.to_string())))),
        Some(_) => Err(problem(path, "must be a regex string")),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_entry(name: &str, path: &str, kind: EntryKind, value: &Value, defaults: &Fields) -> Result<Entry, Problem> {
    let Value::Object(map) = value else {
        return Err(problem(
            path,
            "must be an object with at least \"id\" and \"delete_older_than\"",
        ));
    };
    reject_unknown_keys(path, map, &ENTRY_KEYS)?;
    let target = parse_target(map.get("id"), &format!("{path}.id"))?;
    let own = Fields::parse(path, map)?;
    let delete_older_than = own
        .delete_older_than
        .or(defaults.delete_older_than)
        .ok_or_else(|| problem(path, "delete_older_than is required (in the entry or in defaults)"))?;
    let age_from = own.age_from.or(defaults.age_from).unwrap_or(AgeFrom::Created);
    Ok(Entry {
        name: name.to_owned(),
        kind,
        target,
        rules: Rules {
            delete_older_than,
            keep_n: own.keep_n.or(defaults.keep_n).unwrap_or(0),
            name_regex_delete: own.name_regex_delete.or_else(|| defaults.name_regex_delete.clone()),
            name_regex_keep: own.name_regex_keep.or_else(|| defaults.name_regex_keep.clone()),
            keep_latest: own.keep_latest.or(defaults.keep_latest).unwrap_or(true),
        },
        repository_regex: own.repository_regex.or_else(|| defaults.repository_regex.clone()),
        max_deletions: own.max_deletions.or(defaults.max_deletions),
        enabled: own.enabled.or(defaults.enabled).unwrap_or(true),
        age_from,
        json_path: path.to_owned(),
    })
}

fn parse_target(value: Option<&Value>, path: &str) -> Result<Target, Problem> {
    match value {
        None | Some(Value::Null) => Err(problem(path, "is required (a numeric id or a full path)")),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|id| *id >= 1)
            .map(Target::Id)
            .ok_or_else(|| problem(path, "must be a positive integer or a path string")),
        Some(Value::String(s)) => {
            let s = s.trim();
            if let Ok(id) = s.parse::<u64>() {
                return if id >= 1 {
                    Ok(Target::Id(id))
                } else {
                    Err(problem(path, "must be a positive integer or a path string"))
                };
            }
            let valid = !s.is_empty()
                && !s.starts_with('/')
                && !s.ends_with('/')
                && !s.contains("//")
                && !s.chars().any(|c| c.is_whitespace() || c.is_control());
            if valid {
                Ok(Target::Path(s.to_owned()))
            } else {
                Err(problem(
                    path,
                    format!("\"{s}\" is not a project or group path such as \"group/project\""),
                ))
            }
        }
        Some(_) => Err(problem(path, "must be a positive integer or a path string")),
    }
}

/// Refuses two enabled entries that can reach the same repository: the same
/// project twice, or a project (or group) inside a group entry.
fn check_overlaps(entries: &[Entry]) -> Result<(), Problem> {
    let enabled: Vec<&Entry> = entries.iter().filter(|e| e.enabled).collect();
    for (i, later) in enabled.iter().enumerate() {
        for earlier in &enabled[..i] {
            if covers(earlier, later) || covers(later, earlier) {
                return Err(problem(
                    &format!("{}.id", later.json_path),
                    format!(
                        "covers the same repositories as {}: two policies for one repository are \
                         ambiguous, so merge them into one entry",
                        earlier.json_path
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether every repository of `inner` is also reached by `outer`, as far as
/// the config alone can tell (a numeric id and a path cannot be compared
/// offline; the pass catches those).
fn covers(outer: &Entry, inner: &Entry) -> bool {
    match (&outer.target, &inner.target) {
        (Target::Id(a), Target::Id(b)) => a == b && outer.kind == inner.kind,
        (Target::Path(a), Target::Path(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match outer.kind {
                EntryKind::Group => b == a || b.starts_with(&format!("{a}/")),
                EntryKind::Project => inner.kind == EntryKind::Project && a == b,
            }
        }
        _ => false,
    }
}

mod strict_json;

#[cfg(test)]
mod tests;
