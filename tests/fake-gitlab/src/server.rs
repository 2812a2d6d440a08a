//! The HTTP server: a background thread with its own tokio runtime, hyper
//! HTTP/1.1 connections, fault injection and request accounting.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::api::{self, Ctx, JSON, Reply};
use crate::state::{FaultState, Shared, TagName, lock};
use crate::throttle::{THROTTLED_BODY, ThrottleState, Verdict};
use crate::{
    AccessLevel, Branch, Fault, Faults, MergeRequest, MergeRequestState, Project, RepositoryStatus, RequestRecord,
    Route, Seed, Stats, Tag, TagProtectionRule, Throttle,
};

/// A running fake GitLab.
///
/// It serves from a background thread with its own multi-thread tokio
/// runtime (2 workers), so it can be used from plain `#[test]`s and from
/// inside another tokio runtime alike. Dropping it stops the server.
pub struct FakeGitlab {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeGitlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitlab")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeGitlab {
    /// Starts a fake on `127.0.0.1` with a free port.
    pub fn start(seed: Seed) -> io::Result<FakeGitlab> {
        FakeGitlab::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), seed)
    }

    /// Starts a fake on the given address. Fails if the address cannot be
    /// bound or the seed has duplicate project or repository ids.
    pub fn start_on(addr: SocketAddr, seed: Seed) -> io::Result<FakeGitlab> {
        let shared = Arc::new(Shared::new(seed)?);
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let server_shared = Arc::clone(&shared);
        // Everything tokio happens on the server thread, so that neither
        // start nor drop ever touches a runtime from the caller's context.
        let thread = std::thread::Builder::new()
            .name("fake-gitlab".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-gitlab-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let listener = {
                    let _guard = rt.enter();
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    }
                };
                let _ = ready_tx.send(Ok(()));
                rt.block_on(accept_loop(listener, server_shared, addr, shutdown_rx));
                rt.shutdown_timeout(Duration::from_millis(500));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other("fake-gitlab server thread died"));
            }
        }
        Ok(FakeGitlab {
            shared,
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the fault configuration (budgets and RNG start afresh).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// No latency, no rules.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// Installs a rate limit (`None`: none), with fresh counters; see
    /// [Rate limits](crate#rate-limits).
    ///
    /// # Panics
    /// If the window is zero.
    pub fn set_throttle(&self, throttle: Option<Throttle>) {
        let state = throttle.map(ThrottleState::checked).transpose();
        match state {
            Ok(state) => *lock(&self.shared.throttle) = state,
            Err(e) => panic!("fake-gitlab: cannot set the throttle: {e}"),
        }
    }

    /// How long until the throttle's current window ends (`None`: no
    /// throttle): a test can wait for a fresh window before a burst.
    pub fn throttle_window_remaining(&self) -> Option<Duration> {
        lock(&self.shared.throttle)
            .as_ref()
            .map(ThrottleState::window_remaining)
    }

    /// How many requests of a route have arrived so far, answered or not
    /// (a test can act while one is being answered, e.g. under a
    /// [`Fault::Delay`](crate::Fault::Delay)).
    pub fn arrived(&self, route: Route) -> u64 {
        lock(&self.shared.arrived).get(route.key()).copied().unwrap_or(0)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.shared.stats_snapshot()
    }

    /// Forgets all recorded requests; `max_in_flight` restarts from the
    /// number of requests in flight now.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Current tag names of a repository, sorted as GitLab sorts them
    /// (a collation, not byte order: see the crate docs); empty for an
    /// unknown repository.
    pub fn tag_names(&self, repository_id: u64) -> Vec<String> {
        self.shared
            .registry()
            .repos
            .get(&repository_id)
            .map(|r| r.tags.keys().map(|n| n.0.clone()).collect())
            .unwrap_or_default()
    }

    /// Every tag deleted so far, as `(repository_id, tag_name)`, in deletion order.
    pub fn deleted(&self) -> Vec<(u64, String)> {
        self.shared.registry().deleted.clone()
    }

    /// Adds (or replaces) a tag.
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn add_tag(&self, repository_id: u64, tag: Tag) {
        let found = {
            let mut reg = self.shared.registry();
            match reg.repos.get_mut(&repository_id) {
                Some(repo) => {
                    let (name, state) = tag.into();
                    repo.tags.insert(name, state);
                    true
                }
                None => false,
            }
        };
        assert!(found, "fake-gitlab: no repository with id {repository_id}");
    }

    /// Removes a tag, as someone else's deletion would (not recorded in
    /// [`FakeGitlab::deleted`]); whether it was there.
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn remove_tag(&self, repository_id: u64, name: &str) -> bool {
        let mut reg = self.shared.registry();
        let repo = reg
            .repos
            .get_mut(&repository_id)
            .unwrap_or_else(|| panic!("fake-gitlab: no repository with id {repository_id}"));
        repo.tags.remove(&TagName::of(name)).is_some()
    }

    /// Pushes `digest` as tag `name`, now; see [`FakeGitlab::push_tag_at`].
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn push_tag(&self, repository_id: u64, name: &str, digest: &str) {
        self.push_tag_at(repository_id, name, digest, jiff::Timestamp::now());
    }

    /// Pushes `digest` as tag `name` at `at`, as the registry records it:
    ///
    /// * a new tag is created at `at` (`createdAt` = `publishedAt` = `at`);
    /// * a new digest on an existing tag moves the digest (REST `digest`
    ///   and `revision`, GraphQL `digest`) and, with the metadata database,
    ///   only `publishedAt` (the first push stays `createdAt`); without it,
    ///   `created_at` (the new image's build time);
    /// * the same digest again changes nothing.
    ///
    /// [`default_digest`](crate::default_digest) gives the digest a seeded tag has.
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn push_tag_at(&self, repository_id: u64, name: &str, digest: &str, at: jiff::Timestamp) {
        let result = self.shared.registry().push_tag(repository_id, name, digest, at);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot push: {e}");
        }
    }

    /// A tag's current manifest digest, if the tag exists.
    pub fn tag_digest(&self, repository_id: u64, name: &str) -> Option<String> {
        let registry = self.shared.registry();
        Some(
            registry
                .repos
                .get(&repository_id)?
                .tags
                .get(&TagName::of(name))?
                .digest
                .clone(),
        )
    }

    /// Replaces a project's tag protection rules.
    ///
    /// # Panics
    /// If the project does not exist, a pattern is no valid regex, or there
    /// are rules without the metadata database.
    pub fn set_tag_protection_rules(&self, project_id: u64, rules: Vec<TagProtectionRule>) {
        let result = self.shared.registry().set_tag_protection_rules(project_id, rules);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot set tag protection rules: {e}");
        }
    }

    /// Sets the token user's role on one project (`None`: back to [`Seed::role`]).
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn set_role(&self, project_id: u64, role: Option<AccessLevel>) {
        let result = self.shared.registry().set_role(project_id, role);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot set the role: {e}");
        }
    }

    /// Sets a repository's status (`None`: not being removed).
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn set_repository_status(&self, repository_id: u64, status: Option<RepositoryStatus>) {
        let result = self.shared.registry().set_repository_status(repository_id, status);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot set the status: {e}");
        }
    }

    /// Adds a project with its repositories.
    ///
    /// # Panics
    /// If its id, its path or one of its repository ids is already taken.
    pub fn add_project(&self, project: Project) {
        let result = self.shared.registry().add_project(project);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot add project: {e}");
        }
    }

    /// Adds (or replaces) a branch of a project; a new default branch
    /// takes over from the old one.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn add_branch(&self, project_id: u64, branch: Branch) {
        self.with_project(project_id, |p| p.add_branch(branch));
    }

    /// Deletes a branch, as a merge with "delete source branch" would;
    /// whether it was there.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn delete_branch(&self, project_id: u64, name: &str) -> bool {
        self.with_project(project_id, |p| p.branches.remove(name).is_some())
    }

    /// A project's branch names in GitLab's order (byte order); empty for
    /// an unknown project.
    pub fn branch_names(&self, project_id: u64) -> Vec<String> {
        self.shared
            .registry()
            .projects
            .get(&project_id)
            .map(|p| p.branches.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Makes the project's branch listings end silently after `n` branches
    /// (`None`: whole again): offset pages name no next page from the page
    /// holding the n-th branch on, while `X-Total` and `X-Total-Pages`
    /// still count every branch; keyset pages have no `next` link from
    /// that page on. No error anywhere.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn set_branch_listing_cut(&self, project_id: u64, n: Option<usize>) {
        self.with_project(project_id, |p| p.branch_cut = n);
    }

    /// Adds a Git tag (`refs/tags/NAME`, not a registry tag) to a project;
    /// adding one it has changes nothing.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn add_git_tag(&self, project_id: u64, name: &str) {
        self.with_project(project_id, |p| {
            p.git_tags.insert(name.to_owned());
        });
    }

    /// Deletes a project's Git tag; whether it was there.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn delete_git_tag(&self, project_id: u64, name: &str) -> bool {
        self.with_project(project_id, |p| p.git_tags.remove(name))
    }

    /// A project's Git tag names in GitLab's order (byte order); empty for
    /// an unknown project.
    pub fn git_tag_names(&self, project_id: u64) -> Vec<String> {
        self.shared
            .registry()
            .projects
            .get(&project_id)
            .map(|p| p.git_tags.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds (or replaces, by `iid`) a merge request of a project.
    ///
    /// # Panics
    /// If the project does not exist.
    pub fn add_merge_request(&self, project_id: u64, merge_request: MergeRequest) {
        self.with_project(project_id, |p| {
            p.merge_requests.insert(merge_request.iid, merge_request);
        });
    }

    /// Moves a merge request to `state` (merged, closed, reopened …).
    ///
    /// # Panics
    /// If the project or the merge request does not exist.
    pub fn set_merge_request_state(&self, project_id: u64, iid: u64, state: MergeRequestState) {
        let result = self.shared.registry().set_merge_request_state(project_id, iid, state);
        if let Err(e) = result {
            panic!("fake-gitlab: cannot set the merge request state: {e}");
        }
    }

    /// A merge request's state, if the project has that `iid`.
    pub fn merge_request_state(&self, project_id: u64, iid: u64) -> Option<MergeRequestState> {
        let registry = self.shared.registry();
        Some(registry.projects.get(&project_id)?.merge_requests.get(&iid)?.state)
    }

    fn with_project<T>(&self, project_id: u64, f: impl FnOnce(&mut crate::state::ProjectState) -> T) -> T {
        let mut registry = self.shared.registry();
        match registry.project_mut(project_id) {
            Ok(project) => f(project),
            Err(e) => panic!("fake-gitlab: {e}"),
        }
    }
}

impl Drop for FakeGitlab {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    local: SocketAddr,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true).header_read_timeout(None);
    let http = Arc::new(http);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let http = Arc::clone(&http);
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&shared), local, req));
                        // Errors here are client disconnects and Drop faults.
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // E.g. too many open files: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

/// Returned by the service to make hyper close the connection without
/// answering (the Drop fault).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injection: connection dropped")
    }
}

impl std::error::Error for DropConnection {}

/// Counts the request as in flight while alive; records it when dropped
/// (also if hyper drops the handler because the client went away).
struct InFlight {
    shared: Arc<Shared>,
    record: Option<RequestRecord>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.finished = Instant::now();
            self.shared.record(record);
        }
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `PRIVATE-TOKEN`, else `Authorization: Bearer`.
fn presented_token(req: &Request<Incoming>) -> Option<&str> {
    if let Some(t) = header_str(req, "private-token") {
        return Some(t);
    }
    let (scheme, token) = header_str(req, "authorization")?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

async fn handle(
    shared: Arc<Shared>,
    local: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let started = Instant::now();
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);

    let token = presented_token(&req).map(str::to_owned);
    let (mut route, target) = api::classify(req.method(), req.uri().path());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let host = header_str(&req, "host").map(str::to_owned);
    let user_agent = header_str(&req, "user-agent").map(str::to_owned);
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    // Only GraphQL has a body worth reading; it also tells a mutation from a query.
    let body = if route == Route::Graphql {
        use http_body_util::BodyExt;
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if crate::graphql::is_mutation(&body) {
            route = Route::GraphqlMutation;
        }
        body
    } else {
        Bytes::new()
    };
    *lock(&shared.arrived).entry(route.key()).or_default() += 1;
    let guard = InFlight {
        shared: Arc::clone(&shared),
        record: Some(RequestRecord {
            method: method.as_str().to_owned(),
            path_and_query: path_and_query.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            route,
            status: 0,
            auth: token.clone(),
            user_agent,
            started,
            finished: started,
        }),
    };

    // A GraphQL request's key includes its body, so seeded draws tell requests apart.
    let request_key = if body.is_empty() {
        format!("{method} {path_and_query}")
    } else {
        format!("{method} {path_and_query} {}", String::from_utf8_lossy(&body))
    };
    let (latency, fault) = lock(&shared.faults).pick(route, &request_key);
    let local_host = local.to_string();
    let mut ctx = Ctx {
        raw_path: uri.path(),
        query: api::parse_query(uri.query()),
        host: host.as_deref().unwrap_or(&local_host),
        token: token.as_deref(),
        body: &body,
        faults: api::RequestFaults::default(),
    };

    let mut delay = latency;
    // Faults that answer in GitLab's place (a proxy, a dropped connection)
    // keep the request from GitLab's throttle; all others pass through it.
    let reaches_gitlab = !matches!(fault, Some(Fault::Status { .. } | Fault::Drop));
    let rate_limit = if reaches_gitlab {
        shared.throttle_check(token.as_deref(), &target)
    } else {
        None
    };
    let rate_headers = match rate_limit {
        Some(Verdict::Throttled(headers)) => {
            let mut reply = Reply::json(429, THROTTLED_BODY);
            reply.content_type = "text/plain";
            reply.headers = headers;
            return Ok(finish(guard, reply, started, latency).await);
        }
        Some(Verdict::Pass(headers)) => headers,
        None => Vec::new(),
    };
    // What GitLab answers, with the throttle's headers.
    let perform = |ctx: &Ctx<'_>| {
        let mut reply = api::execute(&shared, &target, ctx);
        reply.headers.extend(rate_headers.iter().cloned());
        reply
    };
    let reply = match fault {
        None => perform(&ctx),
        Some(Fault::Delay(extra)) => {
            delay += extra;
            perform(&ctx)
        }
        Some(Fault::Status {
            status,
            retry_after,
            body,
            content_type,
        }) => {
            let mut reply = Reply::json(status, body);
            reply.content_type = content_type;
            if let Some(ra) = retry_after {
                reply.headers.push(("retry-after", ra));
            }
            reply
        }
        Some(Fault::DeleteThen502) => {
            let _ = perform(&ctx);
            Reply {
                status: 502,
                content_type: "text/html",
                body: Bytes::from_static(
                    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
                ),
                headers: Vec::new(),
            }
        }
        Some(Fault::MalformedJson) => {
            let mut reply = perform(&ctx);
            reply.status = 200;
            reply.content_type = JSON;
            reply.body = truncate_json(&reply.body);
            reply
        }
        Some(Fault::WrongShapeJson) => {
            let mut reply = perform(&ctx);
            reply.status = 200;
            reply.content_type = JSON;
            reply.body = Bytes::from_static(br#"{"unexpected":true}"#);
            reply
        }
        Some(Fault::GraphqlError(message)) => Reply::json(
            200,
            serde_json::json!({ "errors": [{ "message": message }] }).to_string(),
        ),
        Some(Fault::RunThenGraphqlError(message)) => {
            let mut reply = perform(&ctx);
            reply.body = nulled_data(&reply.body, &message);
            reply
        }
        Some(Fault::PartialDelete) => {
            ctx.faults.partial_delete = true;
            perform(&ctx)
        }
        Some(Fault::RegistryCut) => {
            ctx.faults.registry_cut = true;
            perform(&ctx)
        }
        Some(Fault::TagsCountFails) => {
            ctx.faults.tags_count_fails = true;
            perform(&ctx)
        }
        Some(Fault::LinkElsewhere(base)) => {
            let mut reply = perform(&ctx);
            reply
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case("x-next-page") && !name.eq_ignore_ascii_case("link"));
            reply.headers.push((
                "link",
                format!("<{base}{}?page=2&per_page=100>; rel=\"next\"", ctx.raw_path),
            ));
            reply
        }
        Some(Fault::Drop) => {
            if !latency.is_zero() {
                crate::timer::sleep_until(started + latency).await;
            }
            drop(guard); // recorded with status 0
            return Err(DropConnection);
        }
    };
    Ok(finish(guard, reply, started, delay).await)
}

/// Records the answer's status, holds it back until `delay` after the
/// request's arrival, and hands it to hyper.
async fn finish(mut guard: InFlight, reply: Reply, started: Instant, delay: Duration) -> Response<Full<Bytes>> {
    if let Some(record) = guard.record.as_mut() {
        record.status = reply.status;
    }
    let response = into_response(reply);
    if !delay.is_zero() {
        // Counted from the request's arrival, to the microsecond (see `timer`).
        crate::timer::sleep_until(started + delay).await;
    }
    drop(guard);
    response
}

/// A GraphQL answer with each top-level `data` field null and `message` as
/// the error at its path.
fn nulled_data(body: &Bytes, message: &str) -> Bytes {
    let fields: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("data")
                .and_then(|d| d.as_object())
                .map(|d| d.keys().cloned().collect())
        })
        .unwrap_or_default();
    let data: serde_json::Map<String, serde_json::Value> =
        fields.iter().map(|f| (f.clone(), serde_json::Value::Null)).collect();
    let errors: Vec<serde_json::Value> = fields
        .iter()
        .map(|f| serde_json::json!({ "message": message, "path": [f] }))
        .collect();
    Bytes::from(serde_json::json!({ "data": data, "errors": errors }).to_string())
}

/// The real body cut in half; never valid JSON.
fn truncate_json(body: &Bytes) -> Bytes {
    let half = body.slice(..body.len() / 2);
    if half.is_empty() || serde_json::from_slice::<serde_json::Value>(&half).is_ok() {
        Bytes::from_static(br#"[{"name":"trunc"#)
    } else {
        half
    }
}

fn into_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    response
}
