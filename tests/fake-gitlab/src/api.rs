//! Routing and the GitLab API handlers. Everything here is synchronous and
//! holds the registry lock only while one answer is built.

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;

use crate::state::{ProjectState, Registry, RepoState, Shared, TagName, TagState};
use crate::{MergeRequest, MergeRequestState, Route};

/// The answer to one request, before it becomes a hyper response.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

pub(crate) const JSON: &str = "application/json";

impl Reply {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "message": message }).to_string())
    }

    fn error(status: u16, error: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "error": error }).to_string())
    }

    fn serialize<T: Serialize + ?Sized>(value: &T) -> Reply {
        // Serializing our own plain structs cannot fail.
        Reply::json(200, serde_json::to_vec(value).unwrap_or_default())
    }
}

/// What a request asks for, with its decoded path parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Version,
    Project { id: String },
    Group { id: String },
    Graphql,
    ProjectRepos { id: String },
    GroupRepos { id: String },
    Repository { id: String },
    Tags { id: String, rid: String },
    TagDetail { id: String, rid: String, name: String },
    DeleteTag { id: String, rid: String, name: String },
    Branches { id: String },
    GitTags { id: String },
    MergeRequests { id: String },
    MethodNotAllowed,
    NotFound,
}

/// Matches the raw path: split on `/`, then each segment percent-decoded,
/// so an encoded `%2F` stays inside its segment.
pub(crate) fn classify(method: &Method, raw_path: &str) -> (Route, Target) {
    if raw_path == "/api/graphql" {
        return match *method {
            Method::POST => (Route::Graphql, Target::Graphql),
            _ => (Route::Unknown, Target::MethodNotAllowed),
        };
    }
    let Some(rest) = raw_path.strip_prefix("/api/v4/") else {
        return (Route::Unknown, Target::NotFound);
    };
    let raw: Vec<&str> = rest.split('/').collect();
    if raw.iter().any(|s| s.is_empty()) {
        return (Route::Unknown, Target::NotFound);
    }
    let seg: Vec<String> = raw.iter().map(|s| percent_decode(s, false)).collect();
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    let (route, target) = match s.as_slice() {
        ["version"] if get => (Route::Version, Target::Version),
        ["version"] => return (Route::Unknown, Target::MethodNotAllowed),
        ["projects", id] if get => (Route::Project, Target::Project { id: id.to_string() }),
        ["groups", id] if get => (Route::Group, Target::Group { id: id.to_string() }),
        // GitLab's route requirement `id: /[0-9]*/`: anything else is the catch-all 404.
        ["registry", "repositories", id] if id.bytes().all(|b| b.is_ascii_digit()) => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::Repository, Target::Repository { id: id.to_string() })
        }
        ["projects", id, "registry", "repositories"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::ProjectRepositories, Target::ProjectRepos { id: id.to_string() })
        }
        ["groups", id, "registry", "repositories"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::GroupRepositories, Target::GroupRepos { id: id.to_string() })
        }
        ["projects", id, "repository", "branches"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::Branches, Target::Branches { id: id.to_string() })
        }
        // Git tags: `repository`, unlike the registry's tags under `registry/repositories`.
        ["projects", id, "repository", "tags"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::GitTags, Target::GitTags { id: id.to_string() })
        }
        ["projects", id, "merge_requests"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (Route::MergeRequests, Target::MergeRequests { id: id.to_string() })
        }
        ["projects", id, "registry", "repositories", rid, "tags"] => {
            if !get {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
            (
                Route::Tags,
                Target::Tags {
                    id: id.to_string(),
                    rid: rid.to_string(),
                },
            )
        }
        ["projects", id, "registry", "repositories", rid, "tags", name] => {
            let (id, rid, name) = (id.to_string(), rid.to_string(), name.to_string());
            if get {
                (Route::TagDetail, Target::TagDetail { id, rid, name })
            } else if method == Method::DELETE {
                (Route::DeleteTag, Target::DeleteTag { id, rid, name })
            } else {
                return (Route::Unknown, Target::MethodNotAllowed);
            }
        }
        _ => (Route::Unknown, Target::NotFound),
    };
    (route, target)
}

/// The parts of a request the handlers need.
pub(crate) struct Ctx<'a> {
    /// Raw (still percent-encoded) path, for Link URLs.
    pub raw_path: &'a str,
    /// Decoded query parameters; a repeated key keeps its last value, an
    /// array key (`iids[]`) all of them, in order (Rack).
    pub query: Vec<(String, String)>,
    /// The `Host` header (host:port), for Link URLs.
    pub host: &'a str,
    pub token: Option<&'a str>,
    /// The request body (read for `POST /api/graphql` only).
    pub body: &'a [u8],
    /// The faults that change how this request is performed.
    pub faults: RequestFaults,
}

/// Faults that act inside the request rather than in place of it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestFaults {
    /// [`crate::Fault::PartialDelete`]
    pub partial_delete: bool,
    /// [`crate::Fault::RegistryCut`]
    pub registry_cut: bool,
    /// [`crate::Fault::TagsCountFails`]
    pub tags_count_fails: bool,
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of an array parameter (`iids[]`), in order.
    fn params<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k, true), percent_decode(v, true));
        if !k.ends_with("[]") {
            out.retain(|(ek, _)| *ek != k);
        }
        out.push((k, v));
    }
    out
}

/// Decodes `%XX` escapes (and `+` as space in queries); invalid escapes
/// are kept literally.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Ruby's `CGI.escape`, used by `Hash#to_query`.
fn cgi_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Api,
    ReadApi,
}

/// Answers a request that reached GitLab (no fault in the way).
pub(crate) fn execute(shared: &Shared, target: &Target, ctx: &Ctx<'_>) -> Reply {
    match target {
        Target::NotFound => return Reply::error(404, "404 Not Found"),
        Target::MethodNotAllowed => return Reply::message(405, "405 Method Not Allowed"),
        Target::Graphql => {
            let mut registry = shared.registry();
            if registry.graphql == crate::GraphqlSupport::Missing {
                return Reply::error(404, "404 Not Found");
            }
            let scope = match ctx.token {
                None | Some("") => None,
                Some(t) if t == shared.token => Some(Scope::Api),
                Some(t) if shared.read_only_token.as_deref() == Some(t) => Some(Scope::ReadApi),
                Some(_) => return Reply::json(401, r#"{"errors":[{"message":"Invalid token"}]}"#),
            };
            return crate::graphql::execute(&mut registry, scope, ctx.body, ctx.faults);
        }
        _ => {}
    }
    let scope = match ctx.token {
        Some(t) if !t.is_empty() && t == shared.token => Scope::Api,
        Some(t) if !t.is_empty() && shared.read_only_token.as_deref() == Some(t) => Scope::ReadApi,
        _ => return Reply::message(401, "401 Unauthorized"),
    };
    if matches!(target, Target::DeleteTag { .. }) && matches!(scope, Scope::ReadApi) {
        return Reply::json(
            403,
            r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#,
        );
    }
    match target {
        Target::Version => Reply::json(200, r#"{"version":"17.5.0-ee","revision":"abc123"}"#),
        Target::Project { id } => project(shared, id),
        Target::Group { id } => group(shared, ctx, id),
        Target::Repository { id } => repository(shared, ctx, id),
        Target::ProjectRepos { id } => project_repositories(shared, ctx, id),
        Target::GroupRepos { id } => group_repositories(shared, ctx, id),
        Target::Tags { id, rid } => tags(shared, ctx, id, rid),
        Target::TagDetail { id, rid, name } => tag_detail(shared, id, rid, name),
        Target::DeleteTag { id, rid, name } => delete_tag(shared, id, rid, name),
        Target::Branches { id } => git_refs(shared, ctx, id, GitRefs::Branches),
        Target::GitTags { id } => git_refs(shared, ctx, id, GitRefs::Tags),
        Target::MergeRequests { id } => merge_requests(shared, ctx, id),
        Target::MethodNotAllowed | Target::NotFound | Target::Graphql => unreachable!("handled above"),
    }
}

#[derive(Clone, Copy)]
struct Pagination {
    page: u64,
    per_page: u64,
}

impl Pagination {
    fn offset(self) -> usize {
        usize::try_from((self.page - 1).saturating_mul(self.per_page)).unwrap_or(usize::MAX)
    }

    fn limit(self) -> usize {
        self.per_page as usize
    }
}

/// Grape's `Integer` coercion followed by Kaminari's handling: a page below
/// 1 is page 1, `per_page` is clamped to 1..=100.
fn int_param(ctx: &Ctx<'_>, name: &str, default: i64, errors: &mut Vec<String>) -> i64 {
    match ctx.param(name) {
        None | Some("") => default,
        Some(v) => v.parse::<i64>().unwrap_or_else(|_| {
            errors.push(format!("{name} is invalid"));
            default
        }),
    }
}

fn bool_param(ctx: &Ctx<'_>, name: &str, errors: &mut Vec<String>) -> bool {
    match ctx.param(name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => false,
        Some("1" | "true" | "t" | "yes" | "y" | "on") => true,
        Some("0" | "false" | "f" | "no" | "n" | "off") => false,
        Some(_) => {
            errors.push(format!("{name} is invalid"));
            false
        }
    }
}

fn pagination(ctx: &Ctx<'_>, errors: &mut Vec<String>) -> Pagination {
    let page = int_param(ctx, "page", 1, errors);
    let per_page = int_param(ctx, "per_page", 20, errors);
    Pagination {
        page: page.max(1) as u64,
        per_page: per_page.clamp(1, 100) as u64,
    }
}

/// Grape's validation error: all messages joined, 400.
fn validation(errors: Vec<String>) -> Result<(), Reply> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Reply::error(400, &errors.join(", ")))
    }
}

/// The request URL with some query parameters replaced, the query written
/// like Ruby's `Hash#to_query`: one chunk per key (an array key's values
/// joined in their order), chunks sorted.
fn link_href(ctx: &Ctx<'_>, replace: &[(&str, String)]) -> String {
    let mut chunks: Vec<(&str, String)> = Vec::new();
    for (k, v) in ctx.query.iter().filter(|(k, _)| !replace.iter().any(|(r, _)| r == k)) {
        let pair = format!("{}={}", cgi_escape(k), cgi_escape(v));
        match chunks.iter_mut().find(|(ck, _)| ck == k) {
            Some((_, chunk)) => {
                chunk.push('&');
                chunk.push_str(&pair);
            }
            None => chunks.push((k, pair)),
        }
    }
    chunks.extend(
        replace
            .iter()
            .map(|(k, v)| (*k, format!("{}={}", cgi_escape(k), cgi_escape(v)))),
    );
    let mut parts: Vec<String> = chunks.into_iter().map(|(_, c)| c).collect();
    parts.sort();
    format!("http://{}{}?{}", ctx.host, ctx.raw_path, parts.join("&"))
}

/// GitLab's offset pagination headers (Kaminari semantics).
fn paginate(reply: &mut Reply, ctx: &Ctx<'_>, p: Pagination, total: u64) {
    let pages = total.div_ceil(p.per_page);
    let next = (p.page < pages).then_some(p.page + 1);
    let prev = (p.page > 1 && p.page <= pages).then(|| p.page - 1);
    // GitLab does not count lists this long: no totals, no `last` link.
    let counted = total < COUNT_LIMIT;
    offset_headers(reply, ctx, p, next, prev, counted.then_some((total, pages.max(1))));
}

/// The offset headers as GitLab writes them; `counts` is `(total, pages)`
/// when the list was counted.
fn offset_headers(
    reply: &mut Reply,
    ctx: &Ctx<'_>,
    p: Pagination,
    next: Option<u64>,
    prev: Option<u64>,
    counts: Option<(u64, u64)>,
) {
    let href = |page: u64| link_href(ctx, &[("page", page.to_string()), ("per_page", p.per_page.to_string())]);
    let mut links = Vec::with_capacity(4);
    if let Some(n) = prev {
        links.push(format!("<{}>; rel=\"prev\"", href(n)));
    }
    if let Some(n) = next {
        links.push(format!("<{}>; rel=\"next\"", href(n)));
    }
    links.push(format!("<{}>; rel=\"first\"", href(1)));
    if let Some((_, last)) = counts {
        links.push(format!("<{}>; rel=\"last\"", href(last)));
    }
    let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    reply.headers.extend([
        ("x-per-page", p.per_page.to_string()),
        ("x-page", p.page.to_string()),
        ("x-next-page", opt(next)),
        ("x-prev-page", opt(prev)),
        ("link", links.join(", ")),
    ]);
    if let Some((total, last)) = counts {
        reply
            .headers
            .extend([("x-total", total.to_string()), ("x-total-pages", last.to_string())]);
    }
}

/// From this many items on, GitLab's offset pagination omits `X-Total` and `X-Total-Pages`.
const COUNT_LIMIT: u64 = 10_000;

#[derive(Serialize)]
struct RepoEntity<'a> {
    id: u64,
    name: &'a str,
    path: &'a str,
    project_id: u64,
    location: &'a str,
    created_at: &'a str,
    cleanup_policy_started_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<TagEntity<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<Option<u64>>,
    status: Option<&'static str>,
}

/// Which optional fields a repository entity has.
#[derive(Clone, Copy, Default)]
struct RepoOptions {
    tags: bool,
    tags_count: bool,
    size: bool,
}

impl<'a> RepoEntity<'a> {
    fn new(reg: &'a Registry, r: &'a RepoState, options: RepoOptions, faults: RequestFaults) -> Self {
        RepoEntity {
            id: r.id,
            name: &r.name,
            path: &r.path,
            project_id: r.project_id,
            location: &r.location,
            created_at: &r.created_at,
            cleanup_policy_started_at: None,
            tags_count: options
                .tags_count
                .then(|| Registry::tags_count(r, faults.tags_count_fails)),
            tags: options.tags.then(|| {
                reg.listed_names(r)
                    .into_iter()
                    .map(|(n, _)| TagEntity::new(r, n))
                    .collect()
            }),
            // Only a registry with the metadata database knows a repository's size.
            size: options.size.then(|| {
                reg.metadata_database
                    .then(|| r.tags.values().filter_map(|t| t.total_size).sum())
            }),
            status: r.status.map(crate::RepositoryStatus::rest_name),
        }
    }
}

#[derive(Serialize)]
struct TagEntity<'a> {
    name: &'a str,
    path: String,
    location: String,
}

impl<'a> TagEntity<'a> {
    fn new(r: &RepoState, name: &'a str) -> Self {
        TagEntity {
            name,
            path: format!("{}:{name}", r.path),
            location: format!("{}:{name}", r.location),
        }
    }
}

#[derive(Serialize)]
struct TagDetails<'a> {
    name: &'a str,
    path: String,
    location: String,
    revision: &'a str,
    short_revision: &'a str,
    digest: &'a str,
    created_at: Option<&'a str>,
    total_size: Option<u64>,
}

fn project_not_found() -> Reply {
    Reply::message(404, "404 Project Not Found")
}

fn repository_not_found() -> Reply {
    Reply::message(404, "404 Repository Not Found")
}

/// `GET /projects/:id`: the fields of GitLab's project entity a client may use.
fn project(shared: &Shared, id: &str) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    Reply::serialize(&project_entity(&reg, project))
}

/// GitLab's project entity; a fork's has `forked_from_project`, others none.
fn project_entity(reg: &Registry, project: &ProjectState) -> serde_json::Value {
    let mut entity = basic_project_entity(project);
    entity["container_registry_enabled"] = true.into();
    if let Some(parent) = project.forked_from.and_then(|id| reg.projects.get(&id)) {
        entity["forked_from_project"] = basic_project_entity(parent);
    }
    entity
}

/// The fields of GitLab's `BasicProjectDetails` a client may use.
fn basic_project_entity(project: &ProjectState) -> serde_json::Value {
    let path = project.path.as_str();
    let name = path.rsplit('/').next().unwrap_or(path);
    let default_branch = project.branches.iter().find(|(_, b)| b.default).map(|(n, _)| n);
    serde_json::json!({
        "id": project.id,
        "name": name,
        "path": name,
        "path_with_namespace": path,
        "name_with_namespace": path.replace('/', " / "),
        "default_branch": default_branch,
    })
}

/// `GET /groups/:id`: with the group's own projects (not its subgroups')
/// unless `with_projects=false`.
fn group(shared: &Shared, ctx: &Ctx<'_>, id: &str) -> Reply {
    let reg = shared.registry();
    let Some(group) = reg.find_group(id) else {
        return Reply::message(404, "404 Group Not Found");
    };
    let mut errors = Vec::new();
    let with_projects = match ctx.param("with_projects") {
        None | Some("") => true,
        Some(_) => bool_param(ctx, "with_projects", &mut errors),
    };
    if let Err(r) = validation(errors) {
        return r;
    }
    let name = group.path.rsplit('/').next().unwrap_or(&group.path);
    let mut entity = serde_json::json!({
        "id": group.id,
        "name": name,
        "path": name,
        "full_path": group.path,
    });
    if with_projects {
        let projects: Vec<serde_json::Value> = reg
            .projects
            .values()
            .filter(|p| {
                p.lower_path
                    .rsplit_once('/')
                    .is_some_and(|(parent, _)| parent == group.lower_path)
            })
            .map(|p| project_entity(&reg, p))
            .collect();
        entity["projects"] = projects.into();
        entity["shared_projects"] = serde_json::json!([]);
    }
    Reply::serialize(&entity)
}

/// `GET /registry/repositories/:id` (options `tags`, `tags_count`, `size`).
fn repository(shared: &Shared, ctx: &Ctx<'_>, id: &str) -> Reply {
    let reg = shared.registry();
    let mut errors = Vec::new();
    let options = RepoOptions {
        tags: bool_param(ctx, "tags", &mut errors),
        tags_count: bool_param(ctx, "tags_count", &mut errors),
        size: bool_param(ctx, "size", &mut errors),
    };
    if let Err(r) = validation(errors) {
        return r;
    }
    // `ContainerRepository.find`'s RecordNotFound, rendered by GitLab's API.
    let Some(repo) = id.parse::<u64>().ok().and_then(|id| reg.repos.get(&id)) else {
        return Reply::message(404, "404 Not found");
    };
    Reply::serialize(&RepoEntity::new(&reg, repo, options, ctx.faults))
}

fn project_repositories(shared: &Shared, ctx: &Ctx<'_>, id: &str) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let options = RepoOptions {
        tags: bool_param(ctx, "tags", &mut errors),
        tags_count: bool_param(ctx, "tags_count", &mut errors),
        size: false,
    };
    let p = pagination(ctx, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let page: Vec<RepoEntity<'_>> = project
        .repos
        .iter()
        .skip(p.offset())
        .take(p.limit())
        .filter_map(|rid| reg.repos.get(rid))
        .map(|r| RepoEntity::new(&reg, r, options, ctx.faults))
        .collect();
    let mut reply = Reply::serialize(&page);
    paginate(&mut reply, ctx, p, project.repos.len() as u64);
    reply
}

fn group_repositories(shared: &Shared, ctx: &Ctx<'_>, id: &str) -> Reply {
    let reg = shared.registry();
    let Some(group) = reg.find_group(id) else {
        return Reply::message(404, "404 Group Not Found");
    };
    let mut errors = Vec::new();
    let p = pagination(ctx, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let ids = reg.group_repo_ids(group);
    let page: Vec<RepoEntity<'_>> = ids
        .iter()
        .skip(p.offset())
        .take(p.limit())
        .filter_map(|rid| reg.repos.get(rid))
        .map(|r| RepoEntity::new(&reg, r, RepoOptions::default(), ctx.faults))
        .collect();
    let mut reply = Reply::serialize(&page);
    paginate(&mut reply, ctx, p, ids.len() as u64);
    reply
}

/// Grape's `Integer` coercion of `:repository_id`.
fn repository_id(rid: &str, errors: &mut Vec<String>) -> Option<u64> {
    let id = rid.parse::<i64>().ok();
    if id.is_none() {
        errors.push("repository_id is invalid".to_owned());
    }
    id.and_then(|n| u64::try_from(n).ok())
}

fn tags(shared: &Shared, ctx: &Ctx<'_>, id: &str, rid: &str) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let rid = repository_id(rid, &mut errors);
    let p = pagination(ctx, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let Some(repo) = rid
        .and_then(|rid| reg.repos.get(&rid))
        .filter(|r| r.project_id == project.id)
    else {
        return repository_not_found();
    };
    if ctx.param("pagination") == Some("keyset") {
        // A registry without the metadata database cannot page by key.
        return Reply::message(405, "405 Method Not Allowed");
    }
    if ctx.faults.registry_cut {
        // GitLab turns the registry's failure into an empty list: the
        // listing ends here, and the totals count only what came before.
        let mut reply = Reply::serialize(&[] as &[TagEntity<'_>]);
        paginate(&mut reply, ctx, p, p.offset() as u64);
        return reply;
    }
    let listed = reg.listed_names(repo);
    let page: Vec<TagEntity<'_>> = listed
        .iter()
        .skip(p.offset())
        .take(p.limit())
        .map(|(n, _)| TagEntity::new(repo, n))
        .collect();
    let mut reply = Reply::serialize(&page);
    paginate(&mut reply, ctx, p, listed.len() as u64);
    reply
}

fn tag_detail(shared: &Shared, id: &str, rid: &str, name: &str) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let rid = repository_id(rid, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let Some(repo) = rid
        .and_then(|rid| reg.repos.get(&rid))
        .filter(|r| r.project_id == project.id)
    else {
        return repository_not_found();
    };
    let Some((TagName(name), tag)) = repo.tags.get_key_value(&TagName::of(name)) else {
        return Reply::message(404, "404 Tag Not Found");
    };
    let TagState {
        created_at,
        total_size,
        digest,
        revision,
        ..
    } = tag;
    Reply::serialize(&TagDetails {
        name,
        path: format!("{}:{name}", repo.path),
        location: format!("{}:{name}", repo.location),
        short_revision: &revision[..9],
        revision,
        digest,
        created_at: created_at.as_deref(),
        total_size: *total_size,
    })
}

fn delete_tag(shared: &Shared, id: &str, rid: &str, name: &str) -> Reply {
    let mut reg = shared.registry();
    let Some(project_id) = reg.find_project(id).map(|p| p.id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let rid = repository_id(rid, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let Some(repo) = rid
        .and_then(|rid| reg.repos.get(&rid))
        .filter(|r| r.project_id == project_id)
    else {
        return repository_not_found();
    };
    match repo.tags.get(&TagName::of(name)) {
        // Authorised per tag, whatever the project's other rules.
        Some(tag) if !reg.may_delete_tag(repo, name, tag) => {
            Reply::message(403, "403 Forbidden - cannot delete protected tag(s)")
        }
        Some(_) => {
            let rid = repo.id;
            if let Some(repo) = reg.repos.get_mut(&rid) {
                repo.tags.remove(&TagName::of(name));
            }
            reg.deleted.push((rid, name.to_owned()));
            Reply::json(200, "200")
        }
        // With the metadata database, the missing tag fails the permission check.
        None if reg.metadata_database => Reply::message(403, "403 Forbidden"),
        // The legacy registry path treats the registry's 404 as success.
        None => Reply::json(200, "200"),
    }
}

/// Which of a project's Git refs a listing serves.
#[derive(Clone, Copy)]
enum GitRefs {
    Branches,
    Tags,
}

/// `GET /projects/:id/repository/branches` and `…/repository/tags`:
/// Gitaly's keyset pages with `pagination=keyset` (and the feature flag,
/// which GitLab's one pager reads for both), else offset pages.
fn git_refs(shared: &Shared, ctx: &Ctx<'_>, id: &str, kind: GitRefs) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let p = pagination(ctx, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let refs = match kind {
        GitRefs::Branches => Refs {
            names: project.branches.keys().map(String::as_str).collect(),
            cut: project.branch_cut,
            prefix: "refs/heads/",
        },
        GitRefs::Tags => Refs {
            names: project.git_tags.iter().map(String::as_str).collect(),
            cut: None,
            prefix: "refs/tags/",
        },
    };
    ref_pages(ctx, p, reg.branch_keyset_pagination, &refs, |n| match kind {
        GitRefs::Branches => branch_entity(ctx, project, n),
        GitRefs::Tags => git_tag_entity(ctx, project, n),
    })
}

/// One kind of a project's Git refs, as Gitaly lists them.
struct Refs<'a> {
    /// In byte order, as Gitaly sorts refs.
    names: Vec<&'a str>,
    /// The listing ends silently after this many.
    cut: Option<usize>,
    /// `refs/heads/` or `refs/tags/`: Gitaly names a bad page token by its full ref.
    prefix: &'static str,
}

/// A page of refs: Gitaly's keyset pages with `pagination=keyset` and
/// `keyset_flag`, else offset pages (the first from Gitaly with the flag).
fn ref_pages(
    ctx: &Ctx<'_>,
    p: Pagination,
    keyset_flag: bool,
    refs: &Refs<'_>,
    entity: impl Fn(&str) -> serde_json::Value,
) -> Reply {
    let names = &refs.names;
    let total = names.len();
    // The cut hides the refs after the n-th, without an error.
    let shown = refs.cut.map_or(total, |n| n.min(total));
    let cut = shown < total;
    let per_page = p.limit();
    if keyset_flag && ctx.param("pagination") == Some("keyset") {
        let start = match ctx.param("page_token") {
            None | Some("") => 0,
            Some(token) => match names.binary_search(&token) {
                Ok(i) => i + 1,
                // Gitaly cannot start after a ref that does not exist.
                Err(_) => {
                    return Reply::message(422, &format!("Invalid page token: {}{token}", refs.prefix));
                }
            },
        };
        let end = (start + per_page).min(shown).max(start.min(shown));
        let page: Vec<serde_json::Value> = names[start.min(shown)..end].iter().map(|n| entity(n)).collect();
        let mut reply = Reply::serialize(&page);
        // GitLab links on when the page is full, whether or not more follow.
        if page.len() == per_page && !(cut && end >= shown) {
            let href = link_href(ctx, &[("page_token", names[end - 1].to_owned())]);
            reply.headers.push(("link", format!("<{href}>; rel=\"next\"")));
        }
        return reply;
    }
    let offset = p.offset().min(shown);
    let end = (offset + per_page).min(shown);
    let page: Vec<serde_json::Value> = names[offset..end].iter().map(|n| entity(n)).collect();
    let mut reply = Reply::serialize(&page);
    let cut_here = cut && p.offset() + per_page >= shown;
    let first_page = matches!(ctx.param("page"), None | Some("")) || p.page == 1;
    if keyset_flag && first_page {
        // GitLab's first page through Gitaly: always a page 2, and
        // `total / per_page + 1` pages, whatever the total.
        let next = (!cut_here).then_some(2);
        let pages = total as u64 / p.per_page + 1;
        offset_headers(&mut reply, ctx, p, next, None, Some((total as u64, pages)));
        return reply;
    }
    paginate(&mut reply, ctx, p, total as u64);
    if cut_here {
        for (name, value) in &mut reply.headers {
            if *name == "x-next-page" {
                value.clear();
            } else if *name == "link" {
                *value = value
                    .split(", ")
                    .filter(|l| !l.ends_with("rel=\"next\""))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
    }
    reply
}

/// A commit as GitLab's `Commit` entity shows it, under `title`.
fn commit_entity(ctx: &Ctx<'_>, project: &ProjectState, id: &str, title: &str) -> serde_json::Value {
    // A fixed time: the fake's commits carry no history.
    let when = "2024-01-15T10:00:00.000+00:00";
    serde_json::json!({
        "id": id,
        "short_id": &id[..8],
        "created_at": when,
        "parent_ids": [],
        "title": title,
        "message": format!("{title}\n"),
        "author_name": "Fake Author",
        "author_email": "author@example.com",
        "authored_date": when,
        "committer_name": "Fake Author",
        "committer_email": "author@example.com",
        "committed_date": when,
        "trailers": {},
        "extended_trailers": {},
        "web_url": format!("http://{}/{}/-/commit/{id}", ctx.host, project.path),
    })
}

fn branch_entity(ctx: &Ctx<'_>, project: &ProjectState, name: &str) -> serde_json::Value {
    let branch = &project.branches[name];
    let id = project.commit_of(name);
    serde_json::json!({
        "name": name,
        "commit": commit_entity(ctx, project, &id, &format!("Update {name}")),
        "merged": false,
        "protected": branch.protected,
        "developers_can_push": false,
        "developers_can_merge": false,
        "can_push": true,
        "default": branch.default,
        "web_url": format!("http://{}/{}/-/tree/{name}", ctx.host, project.path),
    })
}

/// A lightweight tag (no `message`), so `target` is the commit itself.
fn git_tag_entity(ctx: &Ctx<'_>, project: &ProjectState, name: &str) -> serde_json::Value {
    let id = project.git_tag_commit(name);
    serde_json::json!({
        "name": name,
        "message": null,
        "target": id,
        "commit": commit_entity(ctx, project, &id, &format!("Release {name}")),
        "release": null,
        "protected": false,
        "created_at": null,
    })
}

/// `GET /projects/:id/merge_requests`: newest first, offset-paginated.
fn merge_requests(shared: &Shared, ctx: &Ctx<'_>, id: &str) -> Reply {
    let reg = shared.registry();
    let Some(project) = reg.find_project(id) else {
        return project_not_found();
    };
    let mut errors = Vec::new();
    let state = match ctx.param("state") {
        None => "all",
        Some(s @ ("opened" | "closed" | "locked" | "merged" | "all")) => s,
        Some(_) => {
            errors.push("state does not have a valid value".to_owned());
            "all"
        }
    };
    let simple = match ctx.param("view") {
        None => false,
        Some("simple") => true,
        Some(_) => {
            errors.push("view does not have a valid value".to_owned());
            false
        }
    };
    let iids = iids_param(ctx, &mut errors);
    let p = pagination(ctx, &mut errors);
    if let Err(r) = validation(errors) {
        return r;
    }
    let matching: Vec<&MergeRequest> = project
        .merge_requests
        .values()
        .rev()
        .filter(|mr| state == "all" || mr.state.rest_name() == state)
        .filter(|mr| iids.as_ref().is_none_or(|iids| iids.contains(&mr.iid)))
        .collect();
    let page: Vec<serde_json::Value> = matching
        .iter()
        .skip(p.offset())
        .take(p.limit())
        .map(|mr| merge_request_entity(ctx, project, mr, simple))
        .collect();
    let mut reply = Reply::serialize(&page);
    paginate(&mut reply, ctx, p, matching.len() as u64);
    reply
}

/// `iids` as GitLab's `CommaSeparatedToIntegerArray` coerces it: `iids[]`
/// repeated, or comma-separated; `None` (none given) means no filter.
fn iids_param(ctx: &Ctx<'_>, errors: &mut Vec<String>) -> Option<Vec<u64>> {
    let mut raw: Vec<&str> = ctx.params("iids[]").collect();
    raw.extend(ctx.param("iids"));
    let mut iids = Vec::new();
    let mut given = false;
    for value in raw.iter().flat_map(|v| v.split(',')).map(str::trim) {
        given = true;
        match value.parse::<i64>() {
            // Ruby's Integer() takes a sign; a negative iid matches nothing.
            Ok(n) => iids.extend(u64::try_from(n).ok()),
            Err(_) => {
                errors.push("iids is invalid".to_owned());
                return None;
            }
        }
    }
    given.then_some(iids)
}

fn merge_request_entity(ctx: &Ctx<'_>, project: &ProjectState, mr: &MergeRequest, simple: bool) -> serde_json::Value {
    let base = jiff::Timestamp::from_second(1_704_067_200).expect("valid timestamp");
    // A later iid was opened later: one hour per iid.
    let at = |hours: i64| {
        let ts = base
            .checked_add(jiff::SignedDuration::from_hours(hours))
            .unwrap_or(base);
        ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    };
    let iid = mr.iid as i64;
    let created_at = at(iid);
    let updated_at = at(iid + 1);
    let mut entity = serde_json::json!({
        "id": project.id * 100_000 + mr.iid,
        "iid": mr.iid,
        "project_id": project.id,
        "title": format!("Merge request !{}", mr.iid),
        "description": "",
        "state": mr.state.rest_name(),
        "created_at": created_at,
        "updated_at": updated_at,
        "web_url": format!("http://{}/{}/-/merge_requests/{}", ctx.host, project.path, mr.iid),
    });
    if !simple {
        let source = mr.source_branch.clone().unwrap_or_else(|| format!("mr-{}", mr.iid));
        let target = project
            .branches
            .iter()
            .find(|(_, b)| b.default)
            .map_or("main", |(n, _)| n.as_str());
        let merged = mr.state == MergeRequestState::Merged;
        let closed = mr.state == MergeRequestState::Closed;
        let extra = serde_json::json!({
            "source_branch": source,
            "target_branch": target,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "merged_at": merged.then(|| updated_at.clone()),
            "closed_at": closed.then(|| updated_at.clone()),
            "draft": false,
            "work_in_progress": false,
            "merge_status": "can_be_merged",
            "detailed_merge_status": if mr.state == MergeRequestState::Opened { "mergeable" } else { "not_open" },
            "sha": project.commit_of(&source),
            "references": {
                "short": format!("!{}", mr.iid),
                "relative": format!("!{}", mr.iid),
                "full": format!("{}!{}", project.path, mr.iid),
            },
        });
        if let (Some(e), serde_json::Value::Object(x)) = (entity.as_object_mut(), extra) {
            e.extend(x);
        }
    }
    entity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_segments_and_queries() {
        assert_eq!(percent_decode("group%2Fsub%2fapp", false), "group/sub/app");
        assert_eq!(percent_decode("a+b%20c", false), "a+b c");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(
            parse_query(Some("a=1&b=x%3Dy&a=2&&c")),
            vec![
                ("b".to_owned(), "x=y".to_owned()),
                ("a".to_owned(), "2".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
        assert_eq!(cgi_escape("a b/c~d"), "a+b%2Fc~d");
    }

    #[test]
    fn classifies_routes() {
        let g = Method::GET;
        assert_eq!(classify(&g, "/api/v4/version").0, Route::Version);
        assert_eq!(
            classify(&g, "/api/v4/projects/a%2Fb/registry/repositories").1,
            Target::ProjectRepos { id: "a/b".into() }
        );
        assert_eq!(
            classify(&g, "/api/v4/projects/a/b/registry/repositories").1,
            Target::NotFound
        );
        assert_eq!(
            classify(&Method::DELETE, "/api/v4/projects/1/registry/repositories/2/tags/v1.0").1,
            Target::DeleteTag {
                id: "1".into(),
                rid: "2".into(),
                name: "v1.0".into()
            }
        );
        assert_eq!(
            classify(&Method::POST, "/api/v4/projects/1/registry/repositories/2/tags/v1.0"),
            (Route::Unknown, Target::MethodNotAllowed)
        );
        assert_eq!(
            classify(&g, "/api/v4/projects/1/registry/repositories/").1,
            Target::NotFound
        );
        assert_eq!(classify(&g, "/api/v3/version").1, Target::NotFound);
        assert_eq!(
            classify(&g, "/api/v4/projects/1/repository/tags"),
            (Route::GitTags, Target::GitTags { id: "1".into() })
        );
        assert_eq!(
            classify(&g, "/api/v4/projects/1/registry/repositories/2/tags").0,
            Route::Tags
        );
        assert_eq!(
            classify(&Method::DELETE, "/api/v4/projects/1/repository/tags"),
            (Route::Unknown, Target::MethodNotAllowed)
        );
    }
}
