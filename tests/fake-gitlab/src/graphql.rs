//! `POST /api/graphql`: GitLab's GraphQL API for container repositories and
//! tags, validated against the schema subset in
//! `gitlab-schema-subset.graphql` (the part of GitLab's schema the cleaner uses) with
//! apollo-compiler, then executed against the fake's registry.
//!
//! What it imitates (see `docs/gitlab-api.md#graphql`):
//!
//! * Parse and validation errors, unknown fields and wrong argument types
//!   are answered 200 `{"errors":[…]}` without `data`, as GitLab does; so a
//!   query real GitLab would reject fails the tests.
//! * Limits: query text ≤ 10,000 characters, depth ≤ 20, complexity ≤ 250
//!   (exactly 250 passes), scored with GitLab's `Types::BaseField` formula: a
//!   plain field 1 plus its children; a connection (`tags`,
//!   `containerRepositories`) its children + 1 (+1 with `sort`), then that
//!   times `1 + min(first, last, max_page_size) × 0.01`, truncated; the
//!   children are *not* multiplied by `first`. `queryComplexity { score
//!   limit }` reports the score (its own 3 points included).
//! * Page sizes: 100 for container repositories; **20 for tags**. With the
//!   metadata database, tags come from the registry's keyset pages: the page
//!   size sent to the registry is `first` itself, so `first > 20` returns 20
//!   nodes but an `endCursor` after the `first`-th tag (the tags between
//!   are silently skipped), and a missing `first` returns no tags at all.
//!   With name sort the cursor is the raw name of the page's last tag and
//!   `after` may be any string; with `PUBLISHED_AT_*` sort it is opaque.
//!   Without it, tags are paged by offset over the first 10,000 names and
//!   `first` is capped at 20.
//! * Tags: `digest`/`revision` follow pushes; `userPermissions` and
//!   `protection` follow the project's tag protection rules (see the crate
//!   docs); the schema may lack them ([`TagFields`](crate::TagFields)).
//! * `destroyContainerRepositoryTags`: at most 20 names ("Number of tags is
//!   greater than 20"); refused for the whole repository when a tag rule of
//!   the project is above the user's role; protected tags are filtered out
//!   ("cannot delete protected tag(s)" when nothing is left); a name that is already gone
//!   counts as deleted; the [`Fault::PartialDelete`](crate::Fault) fault
//!   gives a partial result with an error.
//! * Authentication: a wrong token is 401 `{"errors":[{"message":"Invalid
//!   token"}]}`; no token is an anonymous user who sees nothing; a
//!   `read_api` token may query but not mutate.

use std::cell::RefCell;
use std::sync::OnceLock;

use apollo_compiler::executable::{Field, Selection};
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde::Deserialize;

use crate::TagFields;
use crate::TagProtectionRule;
use crate::api::{Reply, RequestFaults, Scope};
use crate::state::{GroupState, ProjectState, Registry, RepoState, TagName, TagState, name_order};

const SCHEMA_SDL: &str = include_str!("gitlab-schema-subset.graphql");
/// GitLab's `default_max_page_size`.
const MAX_PAGE_SIZE: usize = 100;
/// `ContainerRepositoryDetails.tags`' `max_page_size`.
const TAGS_MAX_PAGE_SIZE: usize = 20;
/// `DestroyTags::LIMIT`.
const DESTROY_LIMIT: usize = 20;
/// What GitLab shows for a [`crate::Tag::protected`] tag: a tag it refuses
/// to delete as protected is one a rule covers (Maintainer and up).
static PROTECTED_TAG_RULE: crate::TagProtectionRule = crate::TagProtectionRule {
    pattern: String::new(),
    minimum_access_level_for_delete: Some(crate::AccessLevel::Maintainer),
    minimum_access_level_for_push: Some(crate::AccessLevel::Maintainer),
    immutable: false,
};

const MAX_COMPLEXITY: u64 = 250;
const MAX_DEPTH: usize = 20;
const MAX_QUERY_LENGTH: usize = 10_000;
const NO_PERMISSION: &str =
    "The resource that you are attempting to access does not exist or you don't have permission to perform this action";

/// The schema of the newest GitLab imitated.
fn schema() -> &'static Valid<Schema> {
    schema_for(TagFields::PermissionsAndProtection)
}

/// The schema of a GitLab with these tag fields: older ones lack the
/// experiment fields, so a query asking for them fails validation.
fn schema_for(tag_fields: TagFields) -> &'static Valid<Schema> {
    static SCHEMAS: [OnceLock<Valid<Schema>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    const PROTECTION: &str = "  protection: ContainerProtectionAccessLevel\n";
    const PERMISSIONS: &str = "  userPermissions: ContainerRepositoryTagPermissions!\n";
    let (slot, removed): (usize, &[&str]) = match tag_fields {
        TagFields::PermissionsAndProtection => (0, &[]),
        TagFields::PermissionsOnly => (1, &[PROTECTION]),
        TagFields::Neither => (2, &[PROTECTION, PERMISSIONS]),
    };
    SCHEMAS[slot].get_or_init(|| {
        let sdl = removed.iter().fold(SCHEMA_SDL.to_owned(), |sdl, line| {
            assert!(sdl.contains(line), "the schema subset has {line:?}");
            sdl.replace(line, "")
        });
        Schema::parse_and_validate(sdl, "gitlab-schema-subset.graphql").expect("the schema subset is valid SDL")
    })
}

#[derive(Deserialize)]
struct Request {
    query: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

/// Whether the body is a request for a mutation (for routing and faults).
pub(crate) fn is_mutation(body: &[u8]) -> bool {
    let Ok(request) = serde_json::from_slice::<Request>(body) else {
        return false;
    };
    let Some(query) = request.query else { return false };
    let Ok(doc) = ExecutableDocument::parse(schema(), query, "query.graphql") else {
        return false;
    };
    doc.operations
        .get(request.operation_name.as_deref())
        .is_ok_and(|op| op.operation_type.is_mutation())
}

fn errors(messages: &[&str]) -> Reply {
    let errors: Vec<serde_json::Value> = messages.iter().map(|m| serde_json::json!({ "message": m })).collect();
    Reply::json(200, serde_json::json!({ "errors": errors }).to_string())
}

/// Answers one GraphQL request, with the faults that act inside it.
pub(crate) fn execute(registry: &mut Registry, scope: Option<Scope>, body: &[u8], faults: RequestFaults) -> Reply {
    let schema = schema_for(registry.tag_fields);
    let request: Request = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => return Reply::json(400, r#"{"errors":[{"message":"Invalid JSON body"}]}"#),
    };
    let Some(query) = request.query.filter(|q| !q.trim().is_empty()) else {
        return errors(&["No query string was present"]);
    };
    if query.len() > MAX_QUERY_LENGTH {
        return errors(&["Query too large"]);
    }
    let document = match ExecutableDocument::parse_and_validate(schema, query, "query.graphql") {
        Ok(doc) => doc,
        Err(with_errors) => {
            let errors: Vec<serde_json::Value> = with_errors
                .errors
                .iter()
                .map(|d| serde_json::to_value(d.to_json()).unwrap_or_default())
                .collect();
            return Reply::json(200, serde_json::json!({ "errors": errors }).to_string());
        }
    };
    let variables: JsonMap = match request.variables {
        None | Some(serde_json::Value::Null) => JsonMap::new(),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v).unwrap_or_default(),
        Some(_) => return errors(&["Variables are invalid JSON."]),
    };
    let Ok(operation) = document.operations.get(request.operation_name.as_deref()) else {
        return errors(&["An operation name is required"]);
    };
    let limits = Limits::new(&document, &variables);
    let depth = limits.depth(&operation.selection_set.selections);
    if depth > MAX_DEPTH {
        return errors(&[&format!(
            "Query has depth of {depth}, which exceeds max depth of {MAX_DEPTH}"
        )]);
    }
    let complexity = limits.complexity(&operation.selection_set.selections);
    if complexity > MAX_COMPLEXITY {
        return errors(&[&format!(
            "Query has complexity of {complexity}, which exceeds max complexity of {MAX_COMPLEXITY}"
        )]);
    }
    let execution = Execution::new(schema, &document)
        .operation(operation)
        .raw_variable_values(&variables);
    let response = if operation.operation_type.is_mutation() {
        let root = MutationRoot {
            registry: RefCell::new(registry),
            scope,
            partial_delete: faults.partial_delete,
        };
        execution.execute_sync(&root)
    } else {
        let env = Env { reg: registry, faults };
        let root = Obj::Query {
            env: &env,
            visible: scope.is_some(),
            can_delete: matches!(scope, Some(Scope::Api)),
            complexity,
        };
        execution.execute_sync(&root)
    };
    match response {
        Ok(mut response) => {
            // GitLab says just the message.
            for error in &mut response.errors {
                if let Some(message) = error.message.strip_prefix("resolver error: ") {
                    error.message = message.to_owned();
                }
            }
            Reply::json(200, serde_json::to_vec(&response).unwrap_or_default())
        }
        Err(err) => errors(&[&err.message().to_string()]),
    }
}

/// GitLab's static limits, computed on the selection sets.
struct Limits<'a> {
    document: &'a Valid<ExecutableDocument>,
    variables: &'a JsonMap,
}

impl<'a> Limits<'a> {
    fn new(document: &'a Valid<ExecutableDocument>, variables: &'a JsonMap) -> Self {
        Limits { document, variables }
    }

    /// Every field of a selection set, fragments flattened.
    fn fields(&self, selections: &'a [Selection]) -> Vec<&'a Field> {
        let mut out = Vec::new();
        for selection in selections {
            match selection {
                Selection::Field(f) => out.push(&**f),
                Selection::InlineFragment(inline) => out.extend(self.fields(&inline.selection_set.selections)),
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        out.extend(self.fields(&fragment.selection_set.selections));
                    }
                }
            }
        }
        out
    }

    fn depth(&self, selections: &'a [Selection]) -> usize {
        self.fields(selections)
            .iter()
            .map(|f| 1 + self.depth(&f.selection_set.selections))
            .max()
            .unwrap_or(0)
    }

    fn complexity(&self, selections: &'a [Selection]) -> u64 {
        self.fields(selections).iter().map(|f| self.field_complexity(f)).sum()
    }

    /// GitLab's `Types::BaseField` formula: a plain field costs 1 plus its
    /// children; a resolver-backed field its children plus the resolver's
    /// cost (1, +1 with `sort`), and a connection then 1 % more per item it
    /// may return (`min(first, last, max_page_size)`), truncated. Children
    /// are not multiplied by the page size.
    fn field_complexity(&self, field: &'a Field) -> u64 {
        let children = self.complexity(&field.selection_set.selections);
        // `project`, `group` and `containerRepository` have resolvers too,
        // without `sort`: they cost what a plain field costs.
        let max_page_size = match field.name.as_str() {
            "tags" => TAGS_MAX_PAGE_SIZE,
            "containerRepositories" => MAX_PAGE_SIZE,
            _ => return children + 1,
        };
        let resolver = 1 + u64::from(field.arguments.iter().any(|a| a.name == "sort"));
        let cost = children + resolver;
        let items = ["first", "last"]
            .iter()
            .filter_map(|name| self.int_argument(field, name))
            .map(|n| n.clamp(0, max_page_size as i64) as u64)
            .fold(max_page_size as u64, u64::min);
        cost + cost * items / 100
    }

    fn int_argument(&self, field: &Field, name: &str) -> Option<i64> {
        let value = field.arguments.iter().find(|a| a.name == name)?;
        match &*value.value {
            apollo_compiler::ast::Value::Int(i) => i.try_to_i32().ok().map(i64::from),
            apollo_compiler::ast::Value::Variable(v) => self.variables.get(v.as_str()).and_then(JsonValue::as_i64),
            _ => None,
        }
    }
}

fn int_arg(info: &ResolveInfo<'_>, name: &str) -> Option<i64> {
    info.arguments().get(name).and_then(JsonValue::as_i64)
}

fn str_arg<'i>(info: &'i ResolveInfo<'_>, name: &str) -> Option<&'i str> {
    info.arguments().get(name).and_then(JsonValue::as_str)
}

/// `gid://gitlab/<Type>/<n>`.
fn gid(kind: &str, id: u64) -> String {
    format!("gid://gitlab/{kind}/{id}")
}

fn parse_gid(kind: &str, text: &str) -> Option<u64> {
    text.strip_prefix("gid://gitlab/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .parse()
        .ok()
}

/// Opaque cursors: hex of `o:<offset>` or `n:<tag name>`.
fn encode_cursor(raw: &str) -> String {
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn offset_after(cursor: Option<&str>) -> usize {
    cursor
        .and_then(decode_cursor)
        .and_then(|c| c.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
        .map_or(0, |n| n + 1)
}

/// GraphQL's `Time` as GitLab serializes it (`2019-01-06T16:49:51Z`); a
/// stored value that is no timestamp is passed through as it is.
fn graphql_time(raw: &str) -> JsonValue {
    match raw.parse::<jiff::Timestamp>() {
        Ok(ts) => JsonValue::from(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        Err(_) => JsonValue::from(raw),
    }
}

fn optional_time(raw: Option<&str>) -> JsonValue {
    raw.map_or(JsonValue::Null, graphql_time)
}

#[derive(Clone)]
struct PageInfo {
    end_cursor: Option<String>,
    start_cursor: Option<String>,
    has_next_page: bool,
    has_previous_page: bool,
}

/// One object of the query's result tree.
enum Obj<'r> {
    Query {
        env: &'r Env<'r>,
        visible: bool,
        can_delete: bool,
        /// The query's complexity score.
        complexity: u64,
    },
    Project {
        env: &'r Env<'r>,
        project: &'r ProjectState,
        can_delete: bool,
    },
    Group {
        env: &'r Env<'r>,
        group: &'r GroupState,
        can_delete: bool,
    },
    RepositoryConnection {
        env: &'r Env<'r>,
        page: Vec<(String, &'r RepoState)>,
        page_info: PageInfo,
        can_delete: bool,
    },
    /// `ContainerRepository`, or `ContainerRepositoryDetails` when `details`.
    Repository {
        env: &'r Env<'r>,
        repo: &'r RepoState,
        details: bool,
        can_delete: bool,
    },
    TagConnection {
        env: &'r Env<'r>,
        repo: &'r RepoState,
        page: Vec<(String, &'r str, &'r TagState)>,
        page_info: PageInfo,
        can_delete: bool,
    },
    Tag {
        env: &'r Env<'r>,
        repo: &'r RepoState,
        name: &'r str,
        tag: &'r TagState,
        can_delete: bool,
    },
    Edge {
        cursor: String,
        node: Box<Obj<'r>>,
    },
    PageInfo(PageInfo),
    RepositoryPermissions(bool),
    TagPermissions(bool),
    /// A tag's `protection`: the most restrictive matching rule.
    Protection(&'r TagProtectionRule),
    /// `queryComplexity`, with the query's score.
    QueryComplexity(u64),
}

/// What every object of one query's result tree shares.
struct Env<'r> {
    reg: &'r Registry,
    faults: RequestFaults,
}

impl<'r> Obj<'r> {
    fn repositories(env: &'r Env<'r>, ids: &[u64], info: &ResolveInfo<'_>, can_delete: bool) -> Obj<'r> {
        let mut repos: Vec<&RepoState> = ids.iter().filter_map(|id| env.reg.repos.get(id)).collect();
        match str_arg(info, "sort") {
            Some("NAME_ASC") => repos.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id))),
            Some("NAME_DESC") => repos.sort_by(|a, b| (&b.name, b.id).cmp(&(&a.name, a.id))),
            Some("CREATED_ASC" | "UPDATED_ASC") => repos.sort_by_key(|r| r.id),
            _ => repos.sort_by_key(|r| std::cmp::Reverse(r.id)),
        }
        if let Some(name) = str_arg(info, "name") {
            repos.retain(|r| r.name.contains(name));
        }
        let first = int_arg(info, "first").map_or(MAX_PAGE_SIZE, |n| n.clamp(0, MAX_PAGE_SIZE as i64) as usize);
        let start = offset_after(str_arg(info, "after"));
        let page: Vec<(String, &RepoState)> = repos
            .iter()
            .enumerate()
            .skip(start)
            .take(first)
            .map(|(i, r)| (encode_cursor(&format!("o:{i}")), *r))
            .collect();
        let page_info = PageInfo {
            start_cursor: page.first().map(|(c, _)| c.clone()),
            end_cursor: page.last().map(|(c, _)| c.clone()),
            has_next_page: start + page.len() < repos.len(),
            has_previous_page: start > 0,
        };
        Obj::RepositoryConnection {
            env,
            page,
            page_info,
            can_delete,
        }
    }

    fn tags(env: &'r Env<'r>, repo: &'r RepoState, info: &ResolveInfo<'_>, can_delete: bool) -> Obj<'r> {
        let reg = env.reg;
        let after = str_arg(info, "after");
        let connection = |page: Vec<(String, &'r str, &'r TagState)>, end_cursor: Option<String>, has_next_page| {
            let page_info = PageInfo {
                start_cursor: page.first().map(|(c, _, _)| c.clone()),
                end_cursor,
                has_next_page,
                has_previous_page: after.is_some(),
            };
            Obj::TagConnection {
                env,
                repo,
                page,
                page_info,
                can_delete,
            }
        };
        if env.faults.registry_cut {
            // GitLab turns the registry's failure into an empty last page, without an error.
            return connection(Vec::new(), None, false);
        }
        let mut tags = reg.listed_names(repo);
        if let Some(name) = str_arg(info, "name") {
            tags.retain(|(n, _)| n.contains(name));
        }
        let sort = str_arg(info, "sort");
        let by_published = matches!(sort, Some("PUBLISHED_AT_ASC" | "PUBLISHED_AT_DESC"));
        if reg.metadata_database && by_published {
            tags.sort_by(|(a, ta), (b, tb)| {
                let when = |t: &TagState| published(t).and_then(|p| p.parse::<jiff::Timestamp>().ok());
                when(ta).cmp(&when(tb)).then_with(|| name_order(a, b))
            });
        }
        if matches!(sort, Some("NAME_DESC" | "PUBLISHED_AT_DESC")) {
            tags.reverse();
        }
        let first = int_arg(info, "first");
        if !reg.metadata_database {
            let size = first.map_or(TAGS_MAX_PAGE_SIZE, |n| n.clamp(0, TAGS_MAX_PAGE_SIZE as i64) as usize);
            let start = offset_after(after);
            let page: Vec<(String, &str, &TagState)> = tags
                .iter()
                .enumerate()
                .skip(start)
                .take(size)
                .map(|(i, (n, t))| (encode_cursor(&format!("o:{i}")), *n, *t))
                .collect();
            let end = page.last().map(|(c, _, _)| c.clone());
            let has_next = start + page.len() < tags.len();
            return connection(page, end, has_next);
        }
        // The registry's keyset page: `first` goes to the registry as the
        // page size unchecked; the connection then keeps 20 nodes.
        let size = first.max(int_arg(info, "last")).unwrap_or(0);
        if !(1..=1000).contains(&size) {
            return connection(Vec::new(), None, false);
        }
        let start = match after {
            None => 0,
            // With name sort the cursor is a raw name, and any string is a
            // start point: the registry lists the names after it, whether
            // or not a tag of that name exists.
            Some(marker) if !by_published => {
                if !marker.chars().any(|c| c.is_ascii_alphanumeric() || c == '_') {
                    // The registry answers 400, which GitLab turns into an empty page.
                    return connection(Vec::new(), None, false);
                }
                // `tags` is in name order (reversed for NAME_DESC): the
                // first name past the marker, by binary search.
                match sort {
                    Some("NAME_DESC") => tags.partition_point(|(n, _)| name_order(n, marker).is_ge()),
                    _ => tags.partition_point(|(n, _)| name_order(n, marker).is_le()),
                }
            }
            // With publication sort it is opaque, and names the last tag seen.
            Some(cursor) => decode_cursor(cursor)
                .and_then(|c| c.strip_prefix("n:").map(str::to_owned))
                .and_then(|marker| tags.iter().position(|(n, _)| *n == marker))
                .map_or(tags.len(), |i| i + 1),
        };
        let cursor = |name: &str| {
            if by_published {
                encode_cursor(&format!("n:{name}"))
            } else {
                name.to_owned()
            }
        };
        let fetched: Vec<(&str, &TagState)> = tags.iter().skip(start).take(size as usize).copied().collect();
        let more = start + fetched.len() < tags.len();
        let end = more.then(|| fetched.last().map(|(n, _)| cursor(n))).flatten();
        let page = fetched
            .iter()
            .take(TAGS_MAX_PAGE_SIZE.min(size as usize))
            .map(|(n, t)| (encode_cursor(&format!("n:{n}")), *n, *t))
            .collect();
        let has_next = end.is_some();
        connection(page, end, has_next)
    }
}

/// `publishedAt`: the registry's last push, or (never pushed again) the
/// creation; null without the metadata database.
fn published(tag: &TagState) -> Option<&str> {
    tag.published_at.as_deref().or(tag.created_at.as_deref())
}

impl ObjectValue for Obj<'_> {
    fn type_name(&self) -> &str {
        match self {
            Obj::Query { .. } => "Query",
            Obj::Project { .. } => "Project",
            Obj::Group { .. } => "Group",
            Obj::RepositoryConnection { .. } => "ContainerRepositoryConnection",
            Obj::Repository { details: false, .. } => "ContainerRepository",
            Obj::Repository { details: true, .. } => "ContainerRepositoryDetails",
            Obj::TagConnection { .. } => "ContainerRepositoryTagConnection",
            Obj::Tag { .. } => "ContainerRepositoryTag",
            Obj::Edge { node, .. } => match **node {
                Obj::Tag { .. } => "ContainerRepositoryTagEdge",
                _ => "ContainerRepositoryEdge",
            },
            Obj::PageInfo(_) => "PageInfo",
            Obj::RepositoryPermissions(_) => "ContainerRepositoryPermissions",
            Obj::TagPermissions(_) => "ContainerRepositoryTagPermissions",
            Obj::Protection(_) => "ContainerProtectionAccessLevel",
            Obj::QueryComplexity(_) => "QueryComplexity",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, FieldError> {
        let field = info.field_name();
        let leaf = |v: JsonValue| Ok(ResolvedValue::leaf(v));
        match self {
            Obj::Query {
                env,
                visible,
                can_delete,
                complexity,
            } => {
                // An anonymous user sees nothing: every root field is null.
                if !*visible {
                    return leaf(JsonValue::Null);
                }
                let can_delete = *can_delete;
                match field {
                    "project" => {
                        let project = str_arg(info, "fullPath").and_then(|p| env.reg.find_project_by_path(p));
                        Ok(ResolvedValue::nullable_object(project.map(|project| Obj::Project {
                            env,
                            project,
                            can_delete,
                        })))
                    }
                    "group" => {
                        let group = str_arg(info, "fullPath").and_then(|p| env.reg.find_group_by_path(p));
                        Ok(ResolvedValue::nullable_object(group.map(|group| Obj::Group {
                            env,
                            group,
                            can_delete,
                        })))
                    }
                    "queryComplexity" => Ok(ResolvedValue::object(Obj::QueryComplexity(*complexity))),
                    "containerRepository" => {
                        let repo = str_arg(info, "id")
                            .and_then(|id| parse_gid("ContainerRepository", id))
                            .and_then(|id| env.reg.repos.get(&id));
                        Ok(ResolvedValue::nullable_object(repo.map(|repo| Obj::Repository {
                            env,
                            repo,
                            details: true,
                            can_delete,
                        })))
                    }
                    _ => Err(self.unknown_field_error(info)),
                }
            }
            Obj::Project {
                env,
                project,
                can_delete,
            } => match field {
                "id" => leaf(gid("Project", project.id).into()),
                "fullPath" => leaf(project.path.as_str().into()),
                "containerRepositoriesCount" => leaf((project.repos.len() as i64).into()),
                "containerRepositories" => Ok(ResolvedValue::object(Obj::repositories(
                    env,
                    &project.repos,
                    info,
                    *can_delete,
                ))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::Group { env, group, can_delete } => match field {
                "id" => leaf(gid("Group", group.id).into()),
                "fullPath" => leaf(group.path.as_str().into()),
                "containerRepositoriesCount" => leaf((env.reg.group_repo_ids(group).len() as i64).into()),
                "containerRepositories" => Ok(ResolvedValue::object(Obj::repositories(
                    env,
                    &env.reg.group_repo_ids(group),
                    info,
                    *can_delete,
                ))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::RepositoryConnection {
                env,
                page,
                page_info,
                can_delete,
            } => {
                let node = |repo: &'a RepoState| Obj::Repository {
                    env,
                    repo,
                    details: false,
                    can_delete: *can_delete,
                };
                match field {
                    "nodes" => Ok(ResolvedValue::list(
                        page.iter().map(move |(_, r)| ResolvedValue::object(node(r))),
                    )),
                    "edges" => Ok(ResolvedValue::list(page.iter().map(move |(c, r)| {
                        ResolvedValue::object(Obj::Edge {
                            cursor: c.clone(),
                            node: Box::new(node(r)),
                        })
                    }))),
                    "pageInfo" => Ok(ResolvedValue::object(Obj::PageInfo(page_info.clone()))),
                    _ => Err(self.unknown_field_error(info)),
                }
            }
            Obj::Repository {
                env,
                repo,
                details,
                can_delete,
            } => match field {
                "id" => leaf(gid("ContainerRepository", repo.id).into()),
                "name" => leaf(repo.name.as_str().into()),
                "path" => leaf(repo.path.as_str().into()),
                "location" => leaf(repo.location.as_str().into()),
                "createdAt" | "updatedAt" => leaf(graphql_time(&repo.created_at)),
                "tagsCount" => leaf((Registry::tags_count(repo, env.faults.tags_count_fails) as i64).into()),
                "status" => leaf(repo.status.map_or(JsonValue::Null, |s| s.graphql_name().into())),
                "protectionRuleExists" => leaf(false.into()),
                "project" => match env.reg.projects.get(&repo.project_id) {
                    Some(project) => Ok(ResolvedValue::object(Obj::Project {
                        env,
                        project,
                        can_delete: *can_delete,
                    })),
                    None => Err(FieldError {
                        message: "project not found".to_owned(),
                    }),
                },
                "userPermissions" => Ok(ResolvedValue::object(Obj::RepositoryPermissions(*can_delete))),
                "lastPublishedAt" if *details => leaf(if env.reg.metadata_database {
                    optional_time(
                        repo.tags
                            .values()
                            .filter_map(published)
                            .max_by_key(|p| p.parse::<jiff::Timestamp>().ok()),
                    )
                } else {
                    JsonValue::Null
                }),
                "size" | "manifest" if *details => leaf(JsonValue::Null),
                "tags" if *details => Ok(ResolvedValue::object(Obj::tags(env, repo, info, *can_delete))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::TagConnection {
                env,
                repo,
                page,
                page_info,
                can_delete,
            } => {
                let node = |name: &'a str, tag: &'a TagState| Obj::Tag {
                    env,
                    repo,
                    name,
                    tag,
                    can_delete: *can_delete,
                };
                match field {
                    "nodes" => Ok(ResolvedValue::list(
                        page.iter().map(move |(_, n, t)| ResolvedValue::object(node(n, t))),
                    )),
                    "edges" => Ok(ResolvedValue::list(page.iter().map(move |(c, n, t)| {
                        ResolvedValue::object(Obj::Edge {
                            cursor: c.clone(),
                            node: Box::new(node(n, t)),
                        })
                    }))),
                    "pageInfo" => Ok(ResolvedValue::object(Obj::PageInfo(page_info.clone()))),
                    _ => Err(self.unknown_field_error(info)),
                }
            }
            Obj::Tag {
                env,
                repo,
                name,
                tag,
                can_delete,
            } => match field {
                "name" => leaf((*name).into()),
                "path" => leaf(format!("{}:{name}", repo.path).into()),
                "location" => leaf(format!("{}:{name}", repo.location).into()),
                "digest" => leaf(tag.digest.as_str().into()),
                "revision" => leaf(tag.revision.as_str().into()),
                "shortRevision" => leaf(tag.revision[..9].into()),
                "mediaType" => leaf("application/vnd.oci.image.manifest.v1+json".into()),
                "createdAt" => leaf(optional_time(tag.created_at.as_deref())),
                "publishedAt" => leaf(if env.reg.metadata_database {
                    optional_time(published(tag))
                } else {
                    JsonValue::Null
                }),
                // BigInt is serialized as a string.
                "totalSize" => leaf(tag.total_size.map_or(JsonValue::Null, |s| s.to_string().into())),
                "userPermissions" => Ok(ResolvedValue::object(Obj::TagPermissions(
                    *can_delete && env.reg.may_delete_tag(repo, name, tag),
                ))),
                "protection" => Ok(ResolvedValue::nullable_object(
                    env.reg
                        .tag_protection(repo, name)
                        .or(tag.protected.then_some(&PROTECTED_TAG_RULE))
                        .map(Obj::Protection),
                )),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::Edge { cursor, node } => match field {
                "cursor" => leaf(cursor.as_str().into()),
                "node" => Ok(ResolvedValue::object(Obj::clone_ref(node))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::PageInfo(p) => match field {
                "endCursor" => leaf(p.end_cursor.as_deref().map_or(JsonValue::Null, Into::into)),
                "startCursor" => leaf(p.start_cursor.as_deref().map_or(JsonValue::Null, Into::into)),
                "hasNextPage" => leaf(p.has_next_page.into()),
                "hasPreviousPage" => leaf(p.has_previous_page.into()),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::RepositoryPermissions(can) => match field {
                "destroyContainerRepository" => leaf((*can).into()),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::TagPermissions(can) => match field {
                "destroyContainerRepositoryTag" => leaf((*can).into()),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::Protection(rule) => {
                let level = |l: Option<crate::AccessLevel>| l.map_or(JsonValue::Null, |l| l.graphql_name().into());
                match field {
                    "minimumAccessLevelForDelete" => leaf(level(rule.minimum_access_level_for_delete)),
                    "minimumAccessLevelForPush" => leaf(level(rule.minimum_access_level_for_push)),
                    "immutable" => leaf(rule.immutable.into()),
                    _ => Err(self.unknown_field_error(info)),
                }
            }
            Obj::QueryComplexity(score) => match field {
                "score" => leaf((*score as i64).into()),
                "limit" => leaf((MAX_COMPLEXITY as i64).into()),
                _ => Err(self.unknown_field_error(info)),
            },
        }
    }
}

impl<'r> Obj<'r> {
    /// An edge's node, handed out again (all variants an edge holds are references).
    fn clone_ref(node: &Obj<'r>) -> Obj<'r> {
        match node {
            Obj::Repository {
                env,
                repo,
                details,
                can_delete,
            } => Obj::Repository {
                env,
                repo,
                details: *details,
                can_delete: *can_delete,
            },
            Obj::Tag {
                env,
                repo,
                name,
                tag,
                can_delete,
            } => Obj::Tag {
                env,
                repo,
                name,
                tag,
                can_delete: *can_delete,
            },
            _ => Obj::PageInfo(PageInfo {
                end_cursor: None,
                start_cursor: None,
                has_next_page: false,
                has_previous_page: false,
            }),
        }
    }
}

/// The mutation root: it changes the registry.
struct MutationRoot<'r> {
    registry: RefCell<&'r mut Registry>,
    scope: Option<Scope>,
    partial_delete: bool,
}

struct DestroyTagsPayload {
    client_mutation_id: Option<String>,
    deleted: Vec<String>,
    errors: Vec<String>,
}

impl ObjectValue for MutationRoot<'_> {
    fn type_name(&self) -> &str {
        "Mutation"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, FieldError> {
        let no_permission = || FieldError {
            message: NO_PERMISSION.to_owned(),
        };
        match info.field_name() {
            "destroyContainerRepositoryTags" => {
                let input = info.arguments().get("input").and_then(JsonValue::as_object);
                let names: Vec<String> = input
                    .and_then(|i| i.get("tagNames"))
                    .and_then(JsonValue::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                if names.len() > DESTROY_LIMIT {
                    return Err(FieldError {
                        message: format!("Number of tags is greater than {DESTROY_LIMIT}"),
                    });
                }
                if !matches!(self.scope, Some(Scope::Api)) {
                    return Err(no_permission());
                }
                let id = input
                    .and_then(|i| i.get("id"))
                    .and_then(JsonValue::as_str)
                    .and_then(|id| parse_gid("ContainerRepository", id))
                    .ok_or_else(no_permission)?;
                let client_mutation_id = input
                    .and_then(|i| i.get("clientMutationId"))
                    .and_then(JsonValue::as_str)
                    .map(str::to_owned);
                let mut registry = self.registry.borrow_mut();
                let registry = &mut **registry;
                let repo = registry.repos.get(&id).ok_or_else(no_permission)?;
                // The project's tag rules may refuse the whole repository,
                // whatever names are asked.
                if registry.refuses_bulk_delete(repo) {
                    return Err(no_permission());
                }
                let mut allowed: Vec<String> = names
                    .iter()
                    .filter(|n| {
                        repo.tags
                            .get(&TagName::of(n))
                            .is_none_or(|t| registry.may_delete_tag(repo, n, t))
                    })
                    .cloned()
                    .collect();
                let repo = registry.repos.get_mut(&id).ok_or_else(no_permission)?;
                let mut errors = Vec::new();
                if allowed.is_empty() && !names.is_empty() {
                    errors.push("cannot delete protected tag(s)".to_owned());
                }
                if self.partial_delete && !allowed.is_empty() {
                    let failed = allowed.split_off(allowed.len() / 2);
                    errors.push(if allowed.is_empty() {
                        format!("could not delete tags: {}", failed.join(", "))
                    } else {
                        "error while deleting tags".to_owned()
                    });
                }
                for name in &allowed {
                    // A tag already gone counts as deleted, as with the registry's 404.
                    if repo.tags.remove(&TagName::of(name)).is_some() {
                        registry.deleted.push((id, name.clone()));
                    }
                }
                Ok(ResolvedValue::object(DestroyTagsPayload {
                    client_mutation_id,
                    deleted: allowed,
                    errors,
                }))
            }
            "destroyContainerRepository" => Err(FieldError {
                message: "destroyContainerRepository is not imitated by fake-gitlab".to_owned(),
            }),
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

impl ObjectValue for DestroyTagsPayload {
    fn type_name(&self) -> &str {
        "DestroyContainerRepositoryTagsPayload"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, FieldError> {
        let strings = |v: &'a [String]| ResolvedValue::list(v.iter().map(|s| ResolvedValue::leaf(s.as_str())));
        match info.field_name() {
            "clientMutationId" => Ok(ResolvedValue::leaf(
                self.client_mutation_id.as_deref().map_or(JsonValue::Null, Into::into),
            )),
            "deletedTagNames" => Ok(strings(&self.deleted)),
            "errors" => Ok(strings(&self.errors)),
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_subset_is_valid() {
        schema();
    }

    #[test]
    fn cursors_round_trip() {
        for raw in ["o:0", "n:v1.2.3", "n:ünï"] {
            assert_eq!(decode_cursor(&encode_cursor(raw)).as_deref(), Some(raw));
        }
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(offset_after(Some(&encode_cursor("o:4"))), 5);
        assert_eq!(offset_after(None), 0);
        assert_eq!(
            parse_gid("ContainerRepository", "gid://gitlab/ContainerRepository/12"),
            Some(12)
        );
        assert_eq!(parse_gid("ContainerRepository", "gid://gitlab/Project/12"), None);
    }

    #[test]
    fn times_are_graphql_times() {
        assert_eq!(
            graphql_time("2019-01-06T16:49:51.272+00:00"),
            JsonValue::from("2019-01-06T16:49:51Z")
        );
        assert_eq!(graphql_time("yesterday"), JsonValue::from("yesterday"));
    }
}
