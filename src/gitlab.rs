//! The GitLab client — REST API v4, and GraphQL in `gitlab/graphql.rs`: one
//! `reqwest::Client`, one request funnel.
//!
//! Every request goes through one private funnel, `GitlabClient::send`, which holds one permit
//! of the process-wide request limit while the request is in flight (never
//! while backing off), retries what is worth retrying (429, 500, 502, 503,
//! 504, timeouts, broken connections) with exponential backoff and jitter or
//! GitLab's `Retry-After`, and turns everything else into an [`ApiError`].
//! Lists are read page by page (`per_page=100`), following `X-Next-Page` or
//! `Link: rel="next"`; a `Link` to another host is refused, so the token only
//! ever goes to the configured GitLab.

mod graphql;
mod retry;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::secret::Secret;

pub use graphql::{DELETE_BATCH, DestroyOutcome, GraphqlFailure, TagNode};
pub use retry::RetryPolicy;
pub use wire::{Repository, TagDetails, Version};

/// Items per page: GitLab's maximum.
pub const PER_PAGE: u32 = 100;
/// A listing longer than this many pages is refused (a loop guard: 10 million items).
const MAX_PAGES: u32 = 100_000;
/// The user agent, so GitLab admins can tell who is calling.
pub const USER_AGENT: &str = concat!("gitlab-registry-cleaner/", env!("CARGO_PKG_VERSION"));

/// How to reach GitLab.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Base URL, e.g. `https://gitlab.example.com` (a path prefix is kept).
    pub base_url: Url,
    /// The access token, sent as `PRIVATE-TOKEN`.
    pub token: Secret,
    /// Limit for each HTTP request, connect to last byte.
    pub timeout: Duration,
    /// Most requests in flight at once, for the whole process.
    pub concurrency: usize,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("--ssl-path {path}: {reason}")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// reqwest refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// A failed API call, with the request it belongs to. Never holds the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// GitLab answered with an error status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// The status code.
        status: u16,
        /// GitLab's message, or the start of the body.
        message: String,
    },
    /// No answer: connection refused, TLS failure, timeout, dropped connection.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// The cause chain, one line.
        reason: String,
    },
    /// A 2xx whose body is not what GitLab sends.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// What did not decode.
        reason: String,
    },
    /// Pagination headers that cannot be followed safely.
    #[error("{path}: {reason}")]
    Pagination {
        /// Request path, without query.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A GraphQL answer with errors.
    #[error("GraphQL {operation}: {message}")]
    Graphql {
        /// The operation's name.
        operation: &'static str,
        /// Refused, failed in a field, or nothing there.
        kind: GraphqlFailure,
        /// GitLab's messages, joined.
        message: String,
    },
    /// Shutdown was requested; the request was not sent.
    #[error("not sent: shutting down")]
    Cancelled,
}

impl ApiError {
    /// The HTTP status, if GitLab answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether GraphQL is not usable here, so that `api: auto` uses REST:
    /// no `/api/graphql` (404/405, e.g. a proxy that passes only `/api/v4`)
    /// or a query this GitLab's schema refuses.
    pub fn graphql_unavailable(&self) -> bool {
        match self {
            ApiError::Status { path, status, .. } => path.ends_with("/api/graphql") && matches!(status, 404 | 405),
            ApiError::Graphql { kind, .. } => *kind == GraphqlFailure::Rejected,
            _ => false,
        }
    }

    /// Whether GitLab may have acted although the request failed: no answer,
    /// or a 5xx/429 (a proxy's 502 can hide a delete that happened).
    pub fn may_have_acted(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// What an operator should check, for the statuses with a usual cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ApiError::Status { status: 401, .. } => Some(
                "the token is invalid, expired or revoked; create a new one with scope api (read_api for dry runs)",
            ),
            ApiError::Status {
                status: 403, message, ..
            } if message.contains("insufficient_scope") => {
                Some("the token lacks scope api (read_api and read_registry cannot delete)")
            }
            ApiError::Status {
                status: 403, message, ..
            } if message.contains("protected") => {
                Some("the tag is protected by a tag protection rule; only a Maintainer or higher may delete it")
            }
            ApiError::Status { status: 403, .. } => {
                Some("the token's user lacks the role: Reporter or higher to list, Developer or higher to delete tags")
            }
            ApiError::Status { status: 404, path, .. } if path.ends_with("/api/graphql") => Some(
                "GitLab's GraphQL endpoint is not reachable (a proxy that passes only /api/v4?); use api \"rest\" or \"auto\"",
            ),
            ApiError::Status { status: 404, .. }
            | ApiError::Graphql {
                kind: GraphqlFailure::NotFound,
                ..
            } => Some("no such project or group, or the token's user cannot see it; check the id or path"),
            ApiError::Graphql {
                kind: GraphqlFailure::Rejected,
                ..
            } => Some("this GitLab refuses the GraphQL query (an older version?); api \"auto\" uses REST instead"),
            ApiError::Graphql { message, .. } if message.contains("permission") => Some(
                "the token lacks scope api (read_api cannot delete), or its user lacks the Developer role on the project",
            ),
            ApiError::Transport { reason, .. } if reason.contains("certificate") => Some(
                "GitLab's TLS certificate is not trusted; give its CA with --ssl-path (or, at your own risk, --insecure)",
            ),
            _ => None,
        }
    }

    /// The message with its hint, for logs and `check`.
    pub fn explain(&self) -> String {
        match self.hint() {
            Some(hint) => format!("{self} ({hint})"),
            None => self.to_string(),
        }
    }
}

/// What a DELETE achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// GitLab deleted the tag.
    Deleted,
    /// The tag was not there any more: deleted by an earlier attempt whose
    /// answer was lost (a 502 after the delete), or by someone else.
    AlreadyGone,
}

/// One GitLab answer, read in full.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

/// The GitLab API client. Cheap to clone: clones share the connection pool
/// and the request limit.
#[derive(Clone)]
pub struct GitlabClient {
    http: reqwest::Client,
    api_base: Url,
    graphql_url: Url,
    /// `PRIVATE-TOKEN` for REST.
    private_token: HeaderValue,
    /// `Authorization: Bearer` for GraphQL, as GitLab documents it.
    bearer: HeaderValue,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    cancel: CancellationToken,
}

impl GitlabClient {
    /// Builds the one HTTP client of the process.
    pub fn new(options: &ClientOptions, cancel: CancellationToken) -> Result<GitlabClient, ClientBuildError> {
        install_crypto_provider();
        let mut token = HeaderValue::from_str(options.token.expose())
            .map_err(|_| ClientBuildError::Build("the token holds characters not allowed in an HTTP header".into()))?;
        token.set_sensitive(true);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", options.token.expose()))
            .map_err(|_| ClientBuildError::Build("the token holds characters not allowed in an HTTP header".into()))?;
        bearer.set_sensitive(true);
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(options.concurrency);
        if let Some(path) = &options.ca_bundle {
            let pem = std::fs::read(path).map_err(|err| ClientBuildError::CaBundle {
                path: path.clone(),
                reason: err.to_string(),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| ClientBuildError::CaBundle {
                path: path.clone(),
                reason: format!("not a PEM certificate bundle: {err}"),
            })?;
            if certs.is_empty() {
                return Err(ClientBuildError::CaBundle {
                    path: path.clone(),
                    reason: "holds no PEM certificate".into(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        if options.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|err| ClientBuildError::Build(error_chain(&err)))?;
        Ok(GitlabClient {
            http,
            api_base: api_base(&options.base_url),
            graphql_url: graphql_url(&options.base_url),
            private_token: token,
            bearer,
            limiter: Arc::new(Semaphore::new(options.concurrency.max(1))),
            retry: options.retry.clone(),
            cancel,
        })
    }

    /// Whether shutdown was requested: no request is sent any more.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Version, ApiError> {
        let url = self.url(&["version"]);
        let answer = self.get_ok(url.clone()).await?;
        decode(&Method::GET, &url, &answer.body)
    }

    /// Every container repository of a project or group, all pages.
    pub async fn repositories(
        &self,
        kind: crate::config::EntryKind,
        target: &Target,
    ) -> Result<Vec<Repository>, ApiError> {
        let id = target.to_string();
        let section = match kind {
            crate::config::EntryKind::Project => "projects",
            crate::config::EntryKind::Group => "groups",
        };
        let mut repositories = Vec::new();
        self.each_page::<Repository>(self.url(&[section, &id, "registry", "repositories"]), |page| {
            repositories.extend(page);
        })
        .await?;
        // A repository created between two page reads shifts the offsets; one listed twice is one.
        repositories.sort_unstable_by_key(|r| r.id);
        repositories.dedup_by_key(|r| r.id);
        Ok(repositories)
    }

    /// Every tag name of a repository, all pages, sorted and without
    /// duplicates (a tag pushed between two page reads shifts the offsets, so
    /// a name can come twice).
    pub async fn tag_names(&self, project_id: u64, repository_id: u64) -> Result<Vec<String>, ApiError> {
        let mut names: Vec<String> = Vec::new();
        self.for_each_tag_name(project_id, repository_id, |name| names.push(name))
            .await?;
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// Hands every tag name of a repository to `each` as its page arrives.
    /// The listing is complete only when this returns `Ok`; the caller must
    /// not delete anything before (deleting while paging by offset skips tags).
    pub async fn for_each_tag_name(
        &self,
        project_id: u64,
        repository_id: u64,
        mut each: impl FnMut(String),
    ) -> Result<(), ApiError> {
        let url = self.tags_url(project_id, repository_id, None);
        self.each_page::<wire::TagName>(url, |page| page.into_iter().for_each(|t| each(t.name)))
            .await
    }

    /// A tag's details; `None` if the tag is gone (404).
    pub async fn tag_details(
        &self,
        project_id: u64,
        repository_id: u64,
        tag: &str,
    ) -> Result<Option<TagDetails>, ApiError> {
        let url = self.tags_url(project_id, repository_id, Some(tag));
        let answer = self.send(Method::GET, url.clone(), None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer = ok_or_error(&Method::GET, &url, answer)?;
        decode(&Method::GET, &url, &answer.body).map(Some)
    }

    /// Deletes one tag. A 404 (possibly after a retried 502) means it is gone.
    pub async fn delete_tag(&self, project_id: u64, repository_id: u64, tag: &str) -> Result<DeleteOutcome, ApiError> {
        let url = self.tags_url(project_id, repository_id, Some(tag));
        let answer = self.send(Method::DELETE, url.clone(), None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(DeleteOutcome::AlreadyGone);
        }
        ok_or_error(&Method::DELETE, &url, answer)?;
        Ok(DeleteOutcome::Deleted)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL can have path segments")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn tags_url(&self, project_id: u64, repository_id: u64, tag: Option<&str>) -> Url {
        let (project_id, repository_id) = (project_id.to_string(), repository_id.to_string());
        let mut segments = vec![
            "projects",
            &project_id,
            "registry",
            "repositories",
            &repository_id,
            "tags",
        ];
        segments.extend(tag);
        self.url(&segments)
    }

    fn graphql_url(&self) -> Url {
        self.graphql_url.clone()
    }

    async fn get_ok(&self, url: Url) -> Result<Answer, ApiError> {
        let answer = self.send(Method::GET, url.clone(), None).await?;
        ok_or_error(&Method::GET, &url, answer)
    }

    /// Reads a paginated list, handing each decoded page to `each`.
    async fn each_page<T: DeserializeOwned>(&self, first: Url, mut each: impl FnMut(Vec<T>)) -> Result<(), ApiError> {
        let mut url = first;
        url.query_pairs_mut()
            .append_pair("per_page", &PER_PAGE.to_string())
            .append_pair("page", "1");
        for _ in 0..MAX_PAGES {
            let answer = self.get_ok(url.clone()).await?;
            let page: Vec<T> = decode(&Method::GET, &url, &answer.body)?;
            each(page);
            match next_page(&url, &answer.headers)? {
                Some(next) => url = next,
                None => return Ok(()),
            }
        }
        Err(ApiError::Pagination {
            path: url.path().to_owned(),
            reason: format!("more than {MAX_PAGES} pages; refusing to go on"),
        })
    }

    /// The request funnel: limit, send, read, retry. A body makes it a
    /// GraphQL request (JSON, Bearer token).
    async fn send(&self, method: Method, url: Url, body: Option<bytes::Bytes>) -> Result<Answer, ApiError> {
        let mut attempt = 1;
        loop {
            if self.cancel.is_cancelled() {
                return Err(ApiError::Cancelled);
            }
            let outcome = {
                // Held while the request is in flight, released before any backoff.
                let _permit = self.limiter.acquire().await.map_err(|_| ApiError::Cancelled)?;
                if self.cancel.is_cancelled() {
                    return Err(ApiError::Cancelled);
                }
                tracing::trace!(method = %method, path = url.path(), attempt, "request");
                self.attempt(method.clone(), url.clone(), body.clone()).await
            };
            crate::metrics::metrics().api_request(method.as_str(), outcome.as_ref().ok().map(|a| a.status.as_u16()));
            let retry_in = match &outcome {
                Ok(answer) if retry::is_retryable_status(answer.status) => Some(
                    retry::retry_after(&answer.headers, jiff::Timestamp::now())
                        .map(|wait| wait.min(self.retry.max_retry_after))
                        .unwrap_or_else(|| self.retry.backoff(attempt)),
                ),
                Err(err) if retry::is_retryable_error(err) => Some(self.retry.backoff(attempt)),
                _ => None,
            };
            let Some(delay) = retry_in.filter(|_| attempt < self.retry.max_attempts) else {
                return outcome.map_err(|err| ApiError::Transport {
                    method: method.clone(),
                    path: url.path().to_owned(),
                    reason: error_chain(&err),
                });
            };
            let why = match &outcome {
                Ok(answer) => format!("HTTP {}", answer.status.as_u16()),
                Err(err) => error_chain(err),
            };
            tracing::warn!(
                method = %method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %why,
                "retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // GitLab may have acted on an attempt already: report that
                // attempt's failure, not a clean "not sent".
                () = self.cancel.cancelled() => return Err(match outcome {
                    Ok(answer) => ApiError::Status {
                        method: method.clone(),
                        path: url.path().to_owned(),
                        status: answer.status.as_u16(),
                        message: wire::error_message(&answer.headers, &answer.body),
                    },
                    Err(err) => ApiError::Transport {
                        method: method.clone(),
                        path: url.path().to_owned(),
                        reason: error_chain(&err),
                    },
                }),
            }
            attempt += 1;
        }
    }

    async fn attempt(&self, method: Method, url: Url, body: Option<bytes::Bytes>) -> Result<Answer, reqwest::Error> {
        let request = self.http.request(method, url);
        let request = match body {
            Some(body) => request
                .header(reqwest::header::AUTHORIZATION, self.bearer.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
            None => request.header("PRIVATE-TOKEN", self.private_token.clone()),
        };
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Answer { status, headers, body })
    }
}

/// `<base>/api/v4/`, keeping a path prefix such as `https://example.com/gitlab`.
fn api_base(base: &Url) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .expect("an http(s) base URL can have path segments")
        .pop_if_empty()
        .extend(["api", "v4"]);
    url
}

/// `<base>/api/graphql`.
fn graphql_url(base: &Url) -> Url {
    let mut url = api_base(base);
    url.path_segments_mut()
        .expect("an http(s) base URL can have path segments")
        .pop()
        .pop()
        .push("api")
        .push("graphql");
    url
}

/// The URL of the next page, from `X-Next-Page` (preferred) or `Link: rel="next"`.
/// `None` on the last page. `X-Total-Pages` alone is never trusted.
fn next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, ApiError> {
    let fail = |reason: String| ApiError::Pagination {
        path: current.path().to_owned(),
        reason,
    };
    let current_page = current
        .query_pairs()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(1);
    let next = if let Some(value) = headers.get("x-next-page") {
        let text = value
            .to_str()
            .map_err(|_| fail("X-Next-Page is not a page number".to_owned()))?
            .trim();
        if text.is_empty() {
            None
        } else {
            let page: u32 = text
                .parse()
                .map_err(|_| fail(format!("X-Next-Page {text:?} is not a page number")))?;
            if Some(page) != current_page.checked_add(1) {
                return Err(fail(format!(
                    "X-Next-Page {page} after page {current_page}: pages would be skipped or read twice"
                )));
            }
            let mut next = current.clone();
            let pairs: Vec<(String, String)> = current
                .query_pairs()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            next.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair("page", &page.to_string());
            Some(next)
        }
    } else {
        link_next_page(current, headers).map_err(fail)?
    };
    // X-Total-Pages is never followed, but an answer that counts more pages
    // than it lets us reach (a proxy that strips headers) is a cut listing.
    if next.is_none()
        && let Some(total) = headers
            .get("x-total-pages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
        && total > current_page
    {
        return Err(fail(format!(
            "the answer counts {total} pages but names no page after page {current_page}"
        )));
    }
    Ok(next)
}

/// The next page from `Link: rel="next"`, refused if it leaves the host.
fn link_next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, String> {
    let Some(link) = headers.get(reqwest::header::LINK).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(target) = wire::link_next(link) else {
        return Ok(None);
    };
    let next = current
        .join(target)
        .map_err(|err| format!("Link rel=\"next\" {target:?}: {err}"))?;
    if next.origin() != current.origin() {
        return Err(format!(
            "Link rel=\"next\" points to another host ({}); not following it with the token",
            next.origin().ascii_serialization()
        ));
    }
    if next == *current {
        return Err("Link rel=\"next\" points to the same page".to_owned());
    }
    Ok(Some(next))
}

fn ok_or_error(method: &Method, url: &Url, answer: Answer) -> Result<Answer, ApiError> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    let message = if answer.status.is_redirection() {
        let to = answer
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        format!("redirected to {to}; redirects are not followed, set the URL GitLab answers on")
    } else {
        wire::error_message(&answer.headers, &answer.body)
    };
    Err(ApiError::Status {
        method: method.clone(),
        path: url.path().to_owned(),
        status: answer.status.as_u16(),
        message,
    })
}

fn decode<T: DeserializeOwned>(method: &Method, url: &Url, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::Decode {
        method: method.clone(),
        path: url.path().to_owned(),
        reason: err.to_string(),
    })
}

/// An error and its causes on one line, each cause once.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        let text = current.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ")
}

/// rustls needs a process-wide crypto provider; ring is the lighter build.
fn install_crypto_provider() {
    // Err means one is installed already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests;
