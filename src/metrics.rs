//! Prometheus metrics, and the small HTTP server that exposes them.
//!
//! The counters live in one process-wide registry: a pass adds to them
//! wherever it logs a decision, and the request funnel counts every answer.
//! `daemon --metrics-listen ADDR` serves `/metrics` (OpenMetrics text, which
//! Prometheus reads) and `/healthz` (200 while the daemon runs) on hyper,
//! which the HTTP stack already brings.
//!
//! A leaf: it records plain values (a result name, a flag, a duration) and
//! knows nothing of passes or GitLab, so every layer may call it.

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeptLabels {
    project: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Every metric of the process.
pub(crate) struct Metrics {
    registry: Registry,
    tags_deleted: Family<ProjectLabels, Counter>,
    tags_kept: Family<KeptLabels, Counter>,
    delete_errors: Family<ProjectLabels, Counter>,
    bytes_freed: Family<ProjectLabels, Counter>,
    api_requests: Family<RequestLabels, Counter>,
    rate_limited: Counter,
    rate_limit_wait: Counter<f64, AtomicU64>,
    passes: Family<ResultLabels, Counter>,
    pass_duration: Histogram,
    last_pass_timestamp: Gauge<f64, AtomicU64>,
    last_pass_success: Gauge,
    last_success_timestamp: Gauge<f64, AtomicU64>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gitlab_registry_cleaner");
        let metrics = Metrics {
            tags_deleted: Family::default(),
            tags_kept: Family::default(),
            delete_errors: Family::default(),
            bytes_freed: Family::default(),
            api_requests: Family::default(),
            rate_limited: Counter::default(),
            rate_limit_wait: Counter::default(),
            passes: Family::default(),
            // 0.1 s to about 27 min.
            pass_duration: Histogram::new(exponential_buckets(0.1, 2.0, 15)),
            last_pass_timestamp: Gauge::default(),
            last_pass_success: Gauge::default(),
            last_success_timestamp: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("tags_deleted", "Tags deleted", metrics.tags_deleted.clone());
        registry.register("tags_kept", "Tags kept, by reason", metrics.tags_kept.clone());
        registry.register(
            "delete_errors",
            "Tag deletions that failed",
            metrics.delete_errors.clone(),
        );
        registry.register(
            "bytes_freed",
            "Bytes of deleted tags, where GitLab reports total_size (blobs are freed by garbage collection)",
            metrics.bytes_freed.clone(),
        );
        registry.register(
            "api_requests",
            "GitLab API answers, by method and status",
            metrics.api_requests.clone(),
        );
        registry.register(
            "rate_limited",
            "GitLab answers 429 (throttled)",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "rate_limit_wait_seconds",
            "Seconds requests spent waiting for their turn under the rate limits, summed over requests",
            metrics.rate_limit_wait.clone(),
        );
        registry.register("passes", "Cleanup passes, by result", metrics.passes.clone());
        registry.register(
            "pass_duration_seconds",
            "Duration of cleanup passes",
            metrics.pass_duration.clone(),
        );
        registry.register(
            "last_pass_timestamp_seconds",
            "When the last pass finished (Unix time)",
            metrics.last_pass_timestamp.clone(),
        );
        registry.register(
            "last_pass_success",
            "1 if the last pass did everything, else 0",
            metrics.last_pass_success.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When the last pass that did everything finished (Unix time; 0 before the first)",
            metrics.last_success_timestamp.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// A tag was deleted.
    pub(crate) fn tag_deleted(&self, project: &str, bytes: Option<u64>) {
        let labels = ProjectLabels {
            project: project.to_owned(),
        };
        self.tags_deleted.get_or_create(&labels).inc();
        if let Some(bytes) = bytes {
            self.bytes_freed.get_or_create(&labels).inc_by(bytes);
        }
    }

    /// A tag was kept, for `reason`.
    pub(crate) fn tag_kept(&self, project: &str, reason: &str) {
        let labels = KeptLabels {
            project: project.to_owned(),
            reason: reason.to_owned(),
        };
        self.tags_kept.get_or_create(&labels).inc();
    }

    /// A DELETE failed.
    pub(crate) fn delete_error(&self, project: &str) {
        self.delete_errors
            .get_or_create(&ProjectLabels {
                project: project.to_owned(),
            })
            .inc();
    }

    /// GitLab answered (`status`), or did not (`None`).
    pub(crate) fn api_request(&self, method: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.api_requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                status,
            })
            .inc();
    }

    /// GitLab answered 429.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// A request waited `wait` for its turn under the rate limits.
    pub(crate) fn rate_limit_wait(&self, wait: Duration) {
        self.rate_limit_wait.inc_by(wait.as_secs_f64());
    }

    /// A pass ended with `result` (`success`, `failed`, `interrupted`, ...);
    /// `complete` when it did everything it set out to do.
    pub(crate) fn pass_finished(&self, result: &str, complete: bool, duration: Duration) {
        self.passes
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.pass_duration.observe(duration.as_secs_f64());
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.last_pass_timestamp.set(now);
        self.last_pass_success.set(i64::from(complete));
        if complete {
            self.last_success_timestamp.set(now);
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// What one scraper, or a stuck client, may hold of the metrics server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerLimits {
    /// Connections served at once; more are closed as they come.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            // Prometheus holds one; a few more for curl and a second scraper.
            max_connections: 16,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `/metrics` and `/healthz` until `shutdown`, within the default [`ServerLimits`].
pub(crate) async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    serve_within(listener, shutdown, ServerLimits::default()).await;
}

/// Serves `/metrics` and `/healthz` until `shutdown`, within `limits`.
pub(crate) async fn serve_within(listener: TcpListener, shutdown: CancellationToken, limits: ServerLimits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        // Dropping the stream closes it: a flood of connections costs no task.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("metrics server: too many connections; one closed");
            continue;
        };
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(answer);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(io, service)
                .await;
            drop(slot);
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics().encode(),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_owned()),
        (_, "/metrics" | "/healthz") => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        let m = Metrics::new();
        m.tag_deleted("web", Some(1000));
        m.tag_deleted("web", None);
        m.tag_kept("web", "too_new");
        m.delete_error("ci");
        m.api_request("GET", Some(200));
        m.api_request("DELETE", None);
        m.rate_limited();
        m.rate_limit_wait(Duration::from_millis(1500));
        m.rate_limit_wait(Duration::from_millis(250));
        m.pass_finished("failed", false, Duration::from_millis(1500));
        let text = m.encode();
        assert!(
            text.lines()
                .any(|l| l == "gitlab_registry_cleaner_last_success_timestamp_seconds 0.0"),
            "no success yet: 0\n{text}"
        );
        m.pass_finished("success", true, Duration::from_millis(1500));
        let text = m.encode();
        for line in [
            "gitlab_registry_cleaner_tags_deleted_total{project=\"web\"} 2",
            "gitlab_registry_cleaner_bytes_freed_total{project=\"web\"} 1000",
            "gitlab_registry_cleaner_tags_kept_total{project=\"web\",reason=\"too_new\"} 1",
            "gitlab_registry_cleaner_delete_errors_total{project=\"ci\"} 1",
            "gitlab_registry_cleaner_api_requests_total{method=\"GET\",status=\"200\"} 1",
            "gitlab_registry_cleaner_api_requests_total{method=\"DELETE\",status=\"error\"} 1",
            "gitlab_registry_cleaner_rate_limited_total 1",
            "gitlab_registry_cleaner_rate_limit_wait_seconds_total 1.75",
            "gitlab_registry_cleaner_passes_total{result=\"success\"} 1",
            "gitlab_registry_cleaner_passes_total{result=\"failed\"} 1",
            "gitlab_registry_cleaner_pass_duration_seconds_count 2",
            "gitlab_registry_cleaner_last_pass_success 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.contains("gitlab_registry_cleaner_last_pass_timestamp_seconds "));
        assert!(text.contains("gitlab_registry_cleaner_last_success_timestamp_seconds "));
        let success = text
            .lines()
            .find_map(|l| l.strip_prefix("gitlab_registry_cleaner_last_success_timestamp_seconds "))
            .unwrap()
            .parse::<f64>()
            .unwrap();
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!((now - success).abs() < 60.0, "{success} is not now ({now})");
        assert!(text.ends_with("# EOF\n"));
    }

    use std::io::{Read, Write};

    /// A server on a loopback port, stopped when the test's runtime ends.
    async fn server(limits: ServerLimits) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_within(listener, CancellationToken::new(), limits));
        addr
    }

    /// Reads until the server closes, on a blocking thread; what it said.
    async fn read_to_close(mut stream: std::net::TcpStream) -> String {
        tokio::task::spawn_blocking(move || {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut bytes = Vec::new();
            match stream.read_to_end(&mut bytes) {
                Ok(_) => {}
                // Closing with our request unread is a reset: closed all the same.
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(err) => panic!("the server did not close in time: {err}"),
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .await
        .unwrap()
    }

    fn get(addr: std::net::SocketAddr) -> std::net::TcpStream {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        stream
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_closed() {
        let addr = server(ServerLimits {
            header_read_timeout: Duration::from_millis(200),
            ..ServerLimits::default()
        })
        .await;
        let mut slow = std::net::TcpStream::connect(addr).unwrap();
        write!(slow, "GET /healthz HTTP/1.1\r\nHost:").unwrap();
        let started = std::time::Instant::now();
        let answer = read_to_close(slow).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(!answer.contains("ok\n"), "{answer}");
        assert!(
            read_to_close(get(addr)).await.ends_with("ok\n"),
            "others are still served"
        );
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_at_once() {
        let addr = server(ServerLimits {
            max_connections: 1,
            ..ServerLimits::default()
        })
        .await;
        let idle = std::net::TcpStream::connect(addr).unwrap();
        // Let the server take the first connection before the second comes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            read_to_close(get(addr)).await,
            "",
            "the second connection is closed unanswered"
        );
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            read_to_close(get(addr)).await.ends_with("ok\n"),
            "the slot is free again"
        );
    }
}
