//! The JSON config file: both forms, every field, validated at load.
//!
//! Three steps, each refusing rather than guessing:
//!
//! 0. `strict_json` parses the text, refusing duplicate keys at any depth.
//! 1. **The file's shape** (`raw.rs`): serde structs with
//!    `deny_unknown_fields`; each value is checked on its own (types,
//!    ranges, regexes, durations, cron strings, ids) and `null` is "not set".
//!    `serde_path_to_error` names the JSON path of the first problem
//!    (`projects.web.keep_n: must be an integer >= 0`).
//! 2. **Validation into domain types** (`validate.rs`): `defaults` fill each
//!    entry's gaps, required fields and each field's default are applied, and
//!    the rules across entries are checked. Nothing after this module sees JSON.
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

use crate::duration::format_age;
use crate::policy::{OrderBy, Rule, Rules};
use crate::schedule::Schedule;

/// The most requests in flight a config or flag may ask for.
pub(crate) const MAX_CONCURRENCY: usize = 1024;

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
    /// How long a pass may run before it stops starting work (overridden
    /// by `--pass-timeout`); none by default.
    pub pass_timeout: Option<Duration>,
    /// Client-side ceiling on requests a minute, whole process (overridden
    /// by `--max-requests-per-minute`); none by default.
    pub max_requests_per_minute: Option<std::num::NonZeroU64>,
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

/// Which date ages a tag (docs/config.md, "Which date is a tag's age").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeFrom {
    /// `createdAt`/`created_at`: with GitLab's registry metadata database the
    /// tag's first push; without it, the image's build time.
    Created,
    /// `publishedAt`, the last push (GraphQL only; needs the metadata
    /// database, else a tag has none and `createdAt` is used). The default.
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
    /// Its rules, first match first: the file's `rules`, or for an entry
    /// without them one unnamed rule made of the entry's own fields.
    pub rules: Vec<EntryRule>,
    /// The safety fuse: more deletions than this in one pass means none.
    pub max_deletions: Option<u64>,
    /// `false` skips the entry.
    pub enabled: bool,
    /// The entry's JSON path (`projects.web`), for messages.
    pub json_path: String,
}

/// One rule of an entry, with what the pass needs beside the policy.
#[derive(Debug, Clone)]
pub struct EntryRule {
    /// Its name, its repositories, and how it decides.
    pub rule: Rule,
    /// Which date ages a tag it governs.
    pub age_from: AgeFrom,
    /// Whether the file set `age_from` (else it is the default, which a
    /// REST-only setup may replace by `created`).
    pub age_from_set: bool,
    /// The rule's JSON path (`projects.web`, or `projects.web.rules.0`).
    pub json_path: String,
}

impl AsRef<Rule> for EntryRule {
    fn as_ref(&self) -> &Rule {
        &self.rule
    }
}

impl Entry {
    /// Whether the file gave the entry `rules` (rather than its own fields).
    pub fn has_named_rules(&self) -> bool {
        self.rules.iter().any(|r| r.rule.name.is_some())
    }

    /// Whether some rule may govern tags of this repository: the others
    /// are not listed at all.
    pub fn selects_repository(&self, path: &str) -> bool {
        self.rules.iter().any(|r| r.rule.selects_repository(path))
    }

    /// The rule that governs a tag (first match), if any.
    pub fn rule_for(&self, repository: &str, tag: &str) -> Option<&EntryRule> {
        crate::policy::governing_rule(&self.rules, repository, tag).map(|i| &self.rules[i])
    }

    /// One line describing the entry's policy, for `check`; with `rules`,
    /// one more line per rule, in order. It names every field: the
    /// daemon's reload compares summaries to tell which entries changed.
    pub fn summary(&self) -> String {
        let mut head = vec![format!("{} {}", self.kind.as_str(), self.target)];
        let mut lines = Vec::new();
        if self.has_named_rules() {
            head.push(format!("{} rules, first match governs a tag", self.rules.len()));
            for (i, rule) in self.rules.iter().enumerate() {
                let name = rule.rule.name.as_deref().unwrap_or_default();
                lines.push(format!("    {}. \"{name}\": {}", i + 1, rule.describe()));
            }
        } else {
            head.extend(self.rules.iter().map(EntryRule::describe));
        }
        if let Some(max) = self.max_deletions {
            head.push(format!("at most {max} deletions"));
        }
        if !self.enabled {
            head.push("DISABLED".to_owned());
        }
        std::iter::once(head.join(", "))
            .chain(lines)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl EntryRule {
    /// The rule in words, every field named.
    fn describe(&self) -> String {
        let Rules {
            delete_older_than,
            keep_n,
            keep_n_by,
            order_by,
            name_regex_delete,
            name_regex_keep,
            keep_latest,
            delete_when_ref_gone,
        } = &self.rule.policy;
        let mut parts = Vec::new();
        // A named rule says first which tags it governs.
        if self.rule.name.is_some() {
            parts.push(match name_regex_delete {
                Some(re) => format!("governs tags {}", unanchor(re)),
                None => "governs every tag".to_owned(),
            });
            if let Some(re) = &self.rule.repository_regex {
                parts.push(format!("in repositories {}", unanchor(re)));
            }
        }
        parts.push(format!(
            "delete older than {} (age_from {})",
            format_age(*delete_older_than),
            match self.age_from {
                AgeFrom::Created => "created",
                AgeFrom::Published => "published",
            }
        ));
        if *keep_n > 0 {
            let ranked = match order_by {
                OrderBy::Date => "newest",
                OrderBy::Semver => "highest versions",
            };
            match keep_n_by {
                Some(re) => parts.push(format!("keep {keep_n} {ranked} of each stream {}", unanchor(re))),
                None => parts.push(format!("keep {keep_n} {ranked}")),
            }
        } else if let Some(re) = keep_n_by {
            parts.push(format!("streams {} (unused: keep_n is 0)", unanchor(re)));
        } else if *order_by == OrderBy::Semver {
            parts.push("order by semver (unused: keep_n is 0)".to_owned());
        }
        if self.rule.name.is_none()
            && let Some(re) = name_regex_delete
        {
            parts.push(format!("only tags {}", unanchor(re)));
        }
        if let Some(re) = name_regex_keep {
            parts.push(format!("never tags {}", unanchor(re)));
        }
        if let Some(gone) = delete_when_ref_gone {
            parts.push(format!(
                "tags {} of a gone branch or merge request after {}",
                unanchor(&gone.tag_regex),
                format_age(gone.grace)
            ));
        }
        if !keep_latest {
            parts.push("latest not protected".to_owned());
        }
        if self.rule.name.is_none()
            && let Some(re) = &self.rule.repository_regex
        {
            parts.push(format!("repositories {}", unanchor(re)));
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
        path: bounded(path, MAX_PATH_CHARS),
        message: bounded(&message.into(), MAX_MESSAGE_CHARS),
    }
}

/// Messages echo keys and values from the file; a huge one must not come
/// back whole into a terminal or the journal.
const MAX_PATH_CHARS: usize = 200;
const MAX_MESSAGE_CHARS: usize = 500;

fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
        let value = strict_json::from_str(text)
            .map_err(|err| Problem::Syntax(bounded(&format!("not valid JSON: {err}"), MAX_MESSAGE_CHARS)))?;
        Config::from_value(&value)
    }

    /// Validates a config from parsed JSON.
    pub fn from_value(value: &Value) -> Result<Config, Problem> {
        let Value::Object(top) = value else {
            return Err(problem("", "the top level must be a JSON object"));
        };
        if is_full_form(top) {
            validate::full(raw::read(value)?)
        } else {
            validate::legacy(raw::read(value)?)
        }
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

mod raw;
mod strict_json;
mod validate;

#[cfg(test)]
mod tests;
