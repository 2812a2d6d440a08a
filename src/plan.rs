//! The plan document: what `plan` decided, written for a person to read and
//! keep, and for `apply` to carry out (docs/command-line.md, "plan" and
//! "apply", shows it).
//!
//! Reading is strict, because `apply` deletes what it says: the JSON must
//! parse, name this format and version, and have exactly the known fields
//! (`serde_path_to_error` names the JSON path of the first problem); whether
//! it is for this GitLab and young enough is [`Plan::check`]'s. Writing is
//! atomic: a temporary file in the same directory, renamed over the target,
//! so a reader never sees half a plan.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Url;
use serde::{Deserialize, Serialize};

/// The `format` of a plan.
pub(crate) const FORMAT: &str = "gitlab-registry-cleaner/plan";
/// The `version` this build writes and reads.
pub(crate) const VERSION: u64 = 1;

/// A plan: per repository the tags to delete, and what was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Plan {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u64,
    /// The GitLab it was made against (`apply` refuses another).
    pub gitlab_url: String,
    /// When it was made, RFC 3339.
    pub created_at: String,
    /// SHA-256 of the config file's bytes as `plan` read them, in hex.
    pub config_sha256: String,
    /// Per config entry, in the config's order.
    pub entries: Vec<PlanEntry>,
    /// Sums over every repository.
    pub totals: PlanTotals,
}

/// One config entry's repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanEntry {
    /// The config key (`project` in the events).
    pub project: String,
    /// Every repository decided, also those with nothing to delete.
    pub repositories: Vec<PlanRepository>,
}

/// One repository: enough to list it again, and its decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanRepository {
    /// Repository id.
    pub id: u64,
    /// The project it belongs to (REST addresses tags through it).
    pub project_id: u64,
    /// `group/project/name`.
    pub path: String,
    /// `registry.example.com/group/project/name`.
    pub location: String,
    /// Tags listed.
    pub tags_seen: u64,
    /// The tags to delete.
    pub delete: Vec<PlanTag>,
    /// Tags kept, by reason.
    pub kept: BTreeMap<String, u64>,
}

/// A tag to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanTag {
    /// Its name.
    pub name: String,
    /// Its manifest digest: `apply` deletes it only if it is still this one
    /// (`null` where GitLab gave none: `apply` then keeps it).
    pub digest: Option<String>,
    /// The date it was aged by, RFC 3339.
    pub date: Option<String>,
    /// Bytes, where GitLab said.
    pub size: Option<u64>,
    /// The rule that chose it, in an entry with `rules`; `apply` logs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `ref_gone`: chosen because its branch or merge request is gone (else
    /// by age); `apply` logs it, with `ref` or `mr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PlanReason>,
    /// The slug of the gone branch it was built for.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The merged or closed merge request it was built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr: Option<u64>,
}

/// Why a planned tag goes, when not by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PlanReason {
    /// Its branch or merge request is gone (`delete_when_ref_gone`).
    #[serde(rename = "ref_gone")]
    RefGone,
}

/// Sums over the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanTotals {
    /// Repositories decided.
    pub repositories: u64,
    /// Tags listed.
    pub tags_seen: u64,
    /// Tags to delete.
    pub delete: u64,
    /// Tags kept.
    pub kept: u64,
    /// Bytes the tags to delete take, where GitLab said.
    pub bytes: u64,
}

/// Why a plan cannot be read, used or written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file cannot be read.
    #[error("plan {}: cannot read it: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON (a truncated file is this).
    #[error("plan {}: not valid JSON (truncated?): {source}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, with line and column.
        source: serde_json::Error,
    },
    /// JSON, but not a plan of this format.
    #[error("plan {}: format is {found}, expected \"{FORMAT}\": this is not a gitlab-registry-cleaner plan", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The `format` it has, as JSON.
        found: String,
    },
    /// A plan of another version.
    #[error("plan {}: version is {found}, this build reads version {VERSION}; make a new plan with this build", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The `version` it has, as JSON.
        found: String,
    },
    /// A field is missing, unknown or of the wrong type.
    #[error("plan {}: {json_path}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where in the document.
        json_path: String,
        /// What is wrong there.
        message: String,
    },
    /// Made against another GitLab than the configured one.
    #[error(
        "the plan was made for {planned}, but the configured GitLab is {configured}; make a new plan against this GitLab"
    )]
    OtherGitlab {
        /// The plan's `gitlab_url`.
        planned: String,
        /// `--url`.
        configured: String,
    },
    /// Older than `--max-plan-age`.
    #[error(
        "the plan was made at {created_at}, {age} ago, more than --max-plan-age {max_age}; make a new plan (or raise --max-plan-age)"
    )]
    TooOld {
        /// The plan's `created_at`.
        created_at: String,
        /// How old it is.
        age: String,
        /// The limit.
        max_age: String,
    },
    /// Dated in the future: a clock is wrong, or the file was edited.
    #[error("the plan was made at {created_at}, which is in the future here; check the clocks and make a new plan")]
    FromTheFuture {
        /// The plan's `created_at`.
        created_at: String,
    },
    /// `-o` names a file in a directory that does not exist.
    #[error("plan {}: its directory does not exist", path.display())]
    NoDirectory {
        /// The file.
        path: PathBuf,
    },
    /// The plan cannot be written.
    #[error("plan {}: cannot write it: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Plan {
    /// Reads a plan file: JSON, this format and version, known fields only.
    pub(crate) fn read(path: &Path) -> Result<Plan, PlanError> {
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            path: path.to_owned(),
            source,
        })?;
        Plan::parse(path, &bytes)
    }

    /// Parses a plan; `path` names it in errors.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Plan, PlanError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|source| PlanError::NotJson {
            path: path.to_owned(),
            source,
        })?;
        // Format and version first: another version's fields would only
        // give a puzzling path.
        let field = |name: &str| value.get(name).map_or("missing".to_owned(), ToString::to_string);
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(PlanError::Format {
                path: path.to_owned(),
                found: field("format"),
            });
        }
        if value.get("version").and_then(|v| v.as_u64()) != Some(VERSION) {
            return Err(PlanError::Version {
                path: path.to_owned(),
                found: field("version"),
            });
        }
        let plan: Plan = serde_path_to_error::deserialize(value).map_err(|err| PlanError::Malformed {
            path: path.to_owned(),
            json_path: err.path().to_string(),
            message: err.inner().to_string(),
        })?;
        let malformed = |json_path: String, message: String| PlanError::Malformed {
            path: path.to_owned(),
            json_path,
            message,
        };
        timestamp(&plan.created_at).map_err(|m| malformed("created_at".to_owned(), m))?;
        // A repository or tag twice would be listed or counted twice (a
        // copy never found reads as "gone"): an edited plan that does that
        // is refused, not guessed at.
        let mut repositories = std::collections::HashSet::new();
        for (e, entry) in plan.entries.iter().enumerate() {
            for (r, repository) in entry.repositories.iter().enumerate() {
                if !repositories.insert(repository.id) {
                    let at = format!("entries[{e}].repositories[{r}].id");
                    return Err(malformed(
                        at,
                        format!("repository {} is in the plan twice", repository.id),
                    ));
                }
                let mut names = std::collections::HashSet::new();
                for (t, tag) in repository.delete.iter().enumerate() {
                    if !names.insert(tag.name.as_str()) {
                        let at = format!("entries[{e}].repositories[{r}].delete[{t}].name");
                        return Err(malformed(at, format!("tag {:?} is in the plan twice", tag.name)));
                    }
                    if let Some(date) = &tag.date {
                        let at = || format!("entries[{e}].repositories[{r}].delete[{t}].date");
                        timestamp(date).map_err(|m| malformed(at(), m))?;
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Whether the plan may be applied to the GitLab at `gitlab_url` at
    /// `now`: made for the same GitLab, and at most `max_age` ago.
    pub(crate) fn check(&self, gitlab_url: &Url, max_age: Duration, now: Timestamp) -> Result<(), PlanError> {
        let planned = self.gitlab_url.parse::<Url>().ok().map(|url| normalized_url(&url));
        let configured = normalized_url(gitlab_url);
        if planned.as_deref() != Some(configured.as_str()) {
            return Err(PlanError::OtherGitlab {
                planned: self.gitlab_url.clone(),
                configured,
            });
        }
        let created = timestamp(&self.created_at).expect("read checks created_at");
        // A few minutes of clock skew between two machines are no cause.
        if created > now + jiff::SignedDuration::from_secs(300) {
            return Err(PlanError::FromTheFuture {
                created_at: self.created_at.clone(),
            });
        }
        let age = now.duration_since(created).unsigned_abs();
        if age > max_age {
            return Err(PlanError::TooOld {
                created_at: self.created_at.clone(),
                age: humantime::format_duration(Duration::from_secs(age.as_secs())).to_string(),
                max_age: humantime::format_duration(max_age).to_string(),
            });
        }
        Ok(())
    }

    /// Writes the plan to `output` atomically (pretty JSON), or to stdout as
    /// one line when `output` is `-`.
    pub(crate) fn write(&self, output: &Path) -> Result<(), PlanError> {
        let failed = |source: std::io::Error| PlanError::Write {
            path: output.to_owned(),
            source,
        };
        if output == Path::new("-") {
            let mut line = serde_json::to_vec(self).map_err(|err| failed(err.into()))?;
            line.push(b'\n');
            let mut stdout = std::io::stdout().lock();
            return stdout.write_all(&line).and_then(|()| stdout.flush()).map_err(failed);
        }
        let mut text = serde_json::to_vec_pretty(self).map_err(|err| failed(err.into()))?;
        text.push(b'\n');
        let name = output
            .file_name()
            .ok_or_else(|| failed(std::io::Error::other("not a file name")))?;
        let directory = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temporary = name.to_owned();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = directory.join(temporary);
        let written = std::fs::File::create(&temporary)
            .and_then(|mut file| file.write_all(&text).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temporary, output));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written.map_err(failed)
    }
}

/// `scheme://host[:port]/path` without a trailing `/`, host lower-cased and
/// a default port dropped (the URL parser does both): two spellings of one
/// GitLab compare equal.
fn normalized_url(url: &Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path().trim_end_matches('/')
    )
}

fn timestamp(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|err| format!("{text:?} is not an RFC 3339 time: {err}"))
}

/// SHA-256 of `bytes`, in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
