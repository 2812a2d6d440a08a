//! GitLab's JSON as it comes over the wire. Only the fields the cleaner uses
//! are read; others are ignored, so a newer GitLab adding fields is fine.

use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::record::{Digest, TagRecord, date_field};
use crate::policy::TagDate;

/// `GET /version`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Version {
    /// E.g. `17.5.0-ee`.
    pub version: String,
}

/// A container repository (`GET /projects/:id/registry/repositories`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Repository {
    /// Repository id.
    pub id: u64,
    /// Its path, `group/project/name`.
    pub path: String,
    /// The project it belongs to (tags are addressed through it).
    pub project_id: u64,
    /// `registry.example.com:5005/group/project/name`.
    pub location: String,
    /// `delete_scheduled` or `delete_ongoing` while GitLab removes it.
    #[serde(default)]
    pub status: Option<String>,
    /// Its GraphQL global id, when it was listed through GraphQL.
    #[serde(skip)]
    pub graphql_id: Option<String>,
}

/// `GET /registry/repositories/:id?tags_count=true`: only the count is read.
#[derive(Debug, Deserialize)]
pub(super) struct RepositoryCount {
    #[serde(default)]
    pub tags_count: Option<u64>,
}

/// One item of a tag list; only the name is kept.
#[derive(Debug, Deserialize)]
pub(super) struct TagName {
    pub name: String,
}

/// One item of a branch or git tag list; only the name is kept.
#[derive(Debug, Deserialize)]
pub(super) struct RefName {
    pub name: String,
}

/// What `GET /projects/:id` says of a fork: `forked_from_project` only
/// when the token may read the upstream, but `mr_default_target_self`
/// for every fork.
#[derive(Debug, Deserialize)]
pub(super) struct ForkedFrom {
    #[serde(default)]
    forked_from_project: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    mr_default_target_self: Option<serde::de::IgnoredAny>,
}

impl ForkedFrom {
    pub(super) fn is_fork(&self) -> bool {
        self.forked_from_project.is_some() || self.mr_default_target_self.is_some()
    }
}

/// One item of a merge request list (`view=simple`): its iid and state.
#[derive(Debug, Deserialize)]
pub(super) struct MergeRequest {
    pub iid: u64,
    pub state: String,
}

/// `GET …/tags/:tag_name`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TagDetails {
    /// The tag's name: always sent by GitLab, so an answer without it is not
    /// a tag's details (the name used is the one the listing gave).
    #[serde(rename = "name")]
    _name: String,
    /// The manifest digest.
    #[serde(default)]
    pub digest: Option<String>,
    /// `created_at` as sent: a string, `null`, or (from a broken proxy) anything.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
    /// Bytes, when GitLab knows.
    #[serde(default)]
    pub total_size: Option<u64>,
}

impl TagDetails {
    /// The tag as the pass sees it. REST has no push date.
    pub(super) fn into_record(self, name: String) -> TagRecord {
        let created = date_field(&name, "created_at", self.created_at.as_ref()).unwrap_or(TagDate::Missing);
        TagRecord {
            name,
            digest: self.digest.as_deref().map(Digest::parse),
            created,
            published: None,
            size: self.total_size,
            deletable: None,
        }
    }
}

/// The URL of `rel="next"` in a `Link` header.
pub(super) fn link_next(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then_some(target)
    })
}

/// GitLab's error message from a body: `{"message": …}`, `{"error": …}`, or
/// the start of whatever else came (an HTML page from a proxy, plain text).
pub(super) fn error_message(headers: &HeaderMap, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct GitlabError {
        message: Option<serde_json::Value>,
        error: Option<String>,
        error_description: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<GitlabError>(body) {
        let message = match parsed.message {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let text = [message, parsed.error, parsed.error_description]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        if !text.is_empty() {
            return text;
        }
    }
    let is_html = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("html"));
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut excerpt: String = text.chars().take(160).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    match (is_html, excerpt.is_empty()) {
        (_, true) => "(empty body)".to_owned(),
        (true, false) => format!("an HTML page, not GitLab's JSON (a proxy?): {excerpt}"),
        (false, false) => excerpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next_from_gitlab_header() {
        let h = r#"<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel="prev", <https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3>; rel="next", <https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel="first""#;
        assert_eq!(
            link_next(h),
            Some("https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3")
        );
        assert_eq!(link_next(r#"<https://x/a?page=1>; rel="first""#), None);
        assert_eq!(link_next("garbage"), None);
        assert_eq!(link_next(""), None);
    }

    #[test]
    fn a_fork_is_known_by_either_field() {
        let read = |json: &str| serde_json::from_str::<ForkedFrom>(json).unwrap().is_fork();
        assert!(read(
            r#"{"id":2,"forked_from_project":{"id":1},"mr_default_target_self":false}"#
        ));
        // The upstream is not readable by the token: only this field says it.
        assert!(read(r#"{"id":2,"mr_default_target_self":false}"#));
        assert!(!read(r#"{"id":1,"path_with_namespace":"acme/shop"}"#));
    }

    #[test]
    fn error_messages() {
        let h = HeaderMap::new();
        assert_eq!(
            error_message(&h, br#"{"message":"401 Unauthorized"}"#),
            "401 Unauthorized"
        );
        assert_eq!(
            error_message(&h, br#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#),
            "insufficient_scope: The request requires higher privileges than provided by the access token."
        );
        assert_eq!(
            error_message(&h, br#"{"message":{"name":["is invalid"]}}"#),
            r#"{"name":["is invalid"]}"#
        );
        assert_eq!(error_message(&h, b"Retry later\n"), "Retry later");
        assert_eq!(error_message(&h, b""), "(empty body)");
        let mut html = HeaderMap::new();
        html.insert(reqwest::header::CONTENT_TYPE, "text/html".parse().unwrap());
        assert!(error_message(&html, b"<html><body>502 Bad Gateway</body></html>").starts_with("an HTML page"));
    }

    #[test]
    fn tag_details_with_odd_dates() {
        let record = |json: &str| {
            serde_json::from_str::<TagDetails>(json)
                .unwrap()
                .into_record("a".into())
        };
        let t = record(r#"{"name":"a","created_at":null,"total_size":null}"#);
        assert_eq!((t.created, t.published, t.size), (TagDate::Missing, None, None));
        assert_eq!(record(r#"{"name":"a","created_at":12}"#).created, TagDate::Unparsable);
        let t =
            record(r#"{"name":"a","digest":"sha256:1","created_at":"2019-01-06T16:49:51.272+00:00","total_size":5}"#);
        assert_eq!(t.created, TagDate::parse(Some("2019-01-06T16:49:51.272+00:00")));
        assert_eq!(
            (t.digest.map(|d| d.to_string()), t.size),
            (Some("sha256:1".to_owned()), Some(5))
        );
    }
}
