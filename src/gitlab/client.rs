//! The one HTTP client of the process and its request funnel.
//!
//! Every request goes through `GitlabClient::send`, which first waits for
//! its turn from the traffic governor (`traffic.rs`: the rate cap, GitLab's
//! `RateLimit-*` budget, 429s), then holds one permit of the process-wide
//! request limit while the request is in flight (never while backing off),
//! retries what is worth retrying (429, 500, 502, 503, 504, timeouts, broken
//! connections) with exponential backoff and jitter or GitLab's
//! `Retry-After`, and turns everything else into an [`ApiError`]. A 429 is
//! re-sent when the governor allows, without using up an attempt.
//! Lists are read page by page (`per_page=100`), following `X-Next-Page` or
//! `Link: rel="next"`; a `Link` to another host is refused, so the token only
//! ever goes to the configured GitLab.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, error_chain};
use super::retry::{self, RetryPolicy};
use super::traffic::{Refused, Traffic};
use super::wire;
use crate::secret::Secret;

/// Items per page: GitLab's maximum.
pub(super) const PER_PAGE: u32 = 100;
/// A listing longer than this many pages is refused (a loop guard: 10 million items).
const MAX_PAGES: u32 = 100_000;
/// Most 429s one request is re-sent after (a GitLab that refuses forever
/// still ends the request); then 429 is an ordinary retryable status.
const MAX_THROTTLED: u32 = 100;
/// The user agent, so GitLab admins can tell who is calling.
pub(crate) const USER_AGENT: &str = concat!("gitlab-registry-cleaner/", env!("CARGO_PKG_VERSION"));

/// How to reach GitLab.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// Base URL, e.g. `https://gitlab.example.com` (a path prefix is kept).
    pub base_url: Url,
    /// The access token, sent as `PRIVATE-TOKEN`.
    pub token: Secret,
    /// Limit for each HTTP request, connect to last byte.
    pub timeout: Duration,
    /// Most requests in flight at once, for the whole process.
    pub concurrency: std::num::NonZeroUsize,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Client-side ceiling on requests a minute, whole process.
    pub max_requests_per_minute: Option<std::num::NonZeroU32>,
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

/// One GitLab answer, read in full.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: bytes::Bytes,
}

/// The GitLab API client. Cheap to clone: clones share the connection pool
/// and the request limit.
#[derive(Clone)]
pub(crate) struct GitlabClient {
    http: reqwest::Client,
    api_base: Url,
    graphql_url: Url,
    /// `PRIVATE-TOKEN` for REST.
    private_token: HeaderValue,
    /// `Authorization: Bearer` for GraphQL, as GitLab documents it.
    bearer: HeaderValue,
    limiter: Arc<Semaphore>,
    /// When a request may start; shared like `limiter`.
    traffic: Arc<Traffic>,
    retry: RetryPolicy,
    cancel: CancellationToken,
    /// No request starts at or after this instant (a pass's `pass_timeout`);
    /// retries of a request already sent go on.
    deadline: Option<tokio::time::Instant>,
    /// Whether this GitLab's GraphQL schema has the tag permission fields,
    /// learned by the first tags query of a pass (see `graphql.rs`).
    pub(super) tag_permissions: Arc<std::sync::atomic::AtomicU8>,
}

impl GitlabClient {
    /// Builds the one HTTP client of the process.
    pub(crate) fn new(options: &ClientOptions, cancel: CancellationToken) -> Result<GitlabClient, ClientBuildError> {
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
            .pool_max_idle_per_host(options.concurrency.get());
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
            limiter: Arc::new(Semaphore::new(options.concurrency.get())),
            traffic: Arc::new(Traffic::new(
                options.max_requests_per_minute,
                u32::try_from(options.concurrency.get())
                    .ok()
                    .and_then(std::num::NonZeroU32::new)
                    .unwrap_or(std::num::NonZeroU32::MIN),
                options.retry.base_delay,
            )),
            retry: options.retry.clone(),
            cancel,
            deadline: None,
            tag_permissions: Arc::default(),
        })
    }

    /// Whether shutdown was requested: no request is sent any more.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The same client (same pool, limit and cancellation), starting no
    /// request at or after `deadline`; `None` lifts it.
    pub(crate) fn with_deadline(&self, deadline: Option<tokio::time::Instant>) -> GitlabClient {
        GitlabClient {
            deadline,
            ..self.clone()
        }
    }

    /// The client for one pass: its deadline, and what it knows of GitLab's
    /// schema learned afresh (GitLab may have been upgraded since).
    pub(crate) fn for_pass(&self, deadline: Option<tokio::time::Instant>) -> GitlabClient {
        GitlabClient {
            deadline,
            tag_permissions: Arc::default(),
            ..self.clone()
        }
    }

    /// Whether the deadline has come: no new request starts.
    pub(crate) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
    }

    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL can have path segments")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub(super) fn tags_url(&self, project_id: u64, repository_id: u64, tag: Option<&str>) -> Url {
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

    pub(super) fn graphql_url(&self) -> Url {
        self.graphql_url.clone()
    }

    pub(super) async fn get_ok(&self, url: Url) -> Result<Answer, ApiError> {
        let answer = self.send(Method::GET, url.clone(), None).await?;
        ok_or_error(&Method::GET, &url, answer)
    }

    /// Reads a paginated list, handing each decoded page to `each`.
    pub(super) async fn each_page<T: DeserializeOwned>(
        &self,
        first: Url,
        mut each: impl FnMut(Vec<T>),
    ) -> Result<(), ApiError> {
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

    /// The request funnel: turn, limit, send, read, retry. A body makes it
    /// a GraphQL request (JSON, Bearer token).
    pub(super) async fn send(&self, method: Method, url: Url, body: Option<bytes::Bytes>) -> Result<Answer, ApiError> {
        let mut attempt = 1;
        let mut throttled = 0;
        // The last attempt's failure: what a wait cut short reports, since
        // GitLab may have acted on an attempt other than a 429.
        let mut last: Option<Result<Answer, reqwest::Error>> = None;
        let failure = |outcome: Result<Answer, reqwest::Error>| match outcome {
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
        };
        loop {
            if self.cancel.is_cancelled() {
                return Err(last.map_or(ApiError::Cancelled, failure));
            }
            if attempt == 1 && self.past_deadline() {
                return Err(ApiError::Deadline);
            }
            // The turn comes before the permit: a request waiting for the
            // rate holds none of the --concurrency slots, so a pause holds
            // up no request already let through. Waiting for a permit can
            // only send a request later than its turn, never sooner.
            let ticket = match self.traffic.ticket(self.deadline, &self.cancel).await {
                Ok(ticket) => ticket,
                Err(Refused::Deadline) if attempt == 1 => return Err(ApiError::Deadline),
                Err(Refused::Deadline | Refused::Cancelled) => return Err(last.map_or(ApiError::Cancelled, failure)),
            };
            let outcome = {
                // Held while the request is in flight, released before any backoff.
                let _permit = self.limiter.acquire().await.map_err(|_| ApiError::Cancelled)?;
                if self.cancel.is_cancelled() {
                    return Err(ApiError::Cancelled);
                }
                // It may have waited for its permit past the deadline.
                if attempt == 1 && self.past_deadline() {
                    return Err(ApiError::Deadline);
                }
                // Or into a pause that a 429 began meanwhile: take a new turn.
                if !ticket.still_open() {
                    continue;
                }
                tracing::trace!(method = %method, path = url.path(), attempt, "request");
                self.attempt(method.clone(), url.clone(), body.clone()).await
            };
            match &outcome {
                Ok(answer) => ticket.answered(answer.status, &answer.headers),
                // No answer: its turn ends now, not after the backoff below
                // (a probe's would hold up every other request meanwhile).
                Err(_) => drop(ticket),
            }
            crate::metrics::metrics().api_request(method.as_str(), outcome.as_ref().ok().map(|a| a.status.as_u16()));
            // GitLab did not perform a throttled request: it goes again when
            // the governor allows, without using up an attempt.
            if let Ok(answer) = &outcome
                && answer.status == StatusCode::TOO_MANY_REQUESTS
                && throttled < MAX_THROTTLED
            {
                throttled += 1;
                tracing::debug!(method = %method, path = url.path(), throttled, "throttled; sent again in its turn");
                // Not `last`: a 429 was not performed, so a wait cut short
                // after it reports the attempt before it (or "not sent").
                continue;
            }
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
                () = self.cancel.cancelled() => return Err(failure(outcome)),
            }
            last = Some(outcome);
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
pub(super) fn api_base(base: &Url) -> Url {
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
pub(super) fn graphql_url(base: &Url) -> Url {
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
pub(super) fn next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, ApiError> {
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
pub(super) fn link_next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, String> {
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

pub(super) fn ok_or_error(method: &Method, url: &Url, answer: Answer) -> Result<Answer, ApiError> {
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

pub(super) fn decode<T: DeserializeOwned>(method: &Method, url: &Url, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::Decode {
        method: method.clone(),
        path: url.path().to_owned(),
        reason: err.to_string(),
    })
}

/// rustls needs a process-wide crypto provider; ring is the lighter build.
fn install_crypto_provider() {
    // Err means one is installed already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
