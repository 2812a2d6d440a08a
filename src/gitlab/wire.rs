//! GitLab's JSON as it comes over the wire. Only the fields the cleaner uses
//! are read; others are ignored, so a newer GitLab adding fields is fine.

use reqwest::header::HeaderMap;
use serde::Deserialize;

/// `GET /version`.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    /// E.g. `17.5.0-ee`.
    pub version: String,
}

/// A container repository (`GET /projects/:id/registry/repositories`).
#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// Repository id.
    pub id: u64,
    /// Its path, `group/project/name`.
    pub path: String,
    /// The project it belongs to (tags are addressed through it).
    pub project_id: u64,
    /// `registry.example.com:5005/group/project/name`.
    pub location: String,
    /// Its GraphQL global id, when it was listed through GraphQL.
    #[serde(skip)]
    pub graphql_id: Option<String>,
}

/// One item of a tag list; only the name is kept.
#[derive(Debug, Deserialize)]
pub(super) struct TagName {
    pub name: String,
}

/// `GET …/tags/:tag_name`.
#[derive(Debug, Clone, Deserialize)]
pub struct TagDetails {
    /// The tag's name.
    pub name: String,
    /// `created_at` as sent: a string, `null`, or (from a broken proxy) anything.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
    /// Bytes, when GitLab knows.
    #[serde(default)]
    pub total_size: Option<u64>,
}

impl TagDetails {
    /// `created_at` if it is a string.
    pub fn created_at_str(&self) -> Option<&str> {
        match &self.created_at {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether `created_at` is present but not a string (kept as no date).
    pub fn created_at_is_odd(&self) -> bool {
        matches!(&self.created_at, Some(v) if !v.is_null() && !v.is_string())
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
        let t: TagDetails = serde_json::from_str(r#"{"name":"a","created_at":null,"total_size":null}"#).unwrap();
        assert_eq!(t.created_at_str(), None);
        assert!(!t.created_at_is_odd());
        let t: TagDetails = serde_json::from_str(r#"{"name":"a","created_at":12}"#).unwrap();
        assert!(t.created_at_is_odd());
        let t: TagDetails =
            serde_json::from_str(r#"{"name":"a","created_at":"2019-01-06T16:49:51.272+00:00","total_size":5}"#)
                .unwrap();
        assert_eq!(t.created_at_str(), Some("2019-01-06T16:49:51.272+00:00"));
    }
}
