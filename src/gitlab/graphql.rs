//! GitLab's GraphQL API: container repositories, their tags with dates
//! twenty at a time, and `destroyContainerRepositoryTags`.
//!
//! Requests go through the same funnel as REST calls (limit, retries), as
//! `POST /api/graphql` with `Authorization: Bearer`. The queries are fixed
//! strings checked against GitLab's schema by the test fake. Two pitfalls of
//! GitLab's tag connection shape them (`docs/gitlab-api.md#graphql-tag-pages`):
//! `first` is always given (without it the registry returns no tag at all)
//! and never above 20 (above it, tags are silently skipped).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::client::{GitlabClient, decode, ok_or_error};
use super::error::{ApiError, GraphqlFailure};
use super::record::{Digest, TagRecord, date_field};
use super::wire::Repository;
use crate::config::EntryKind;
use crate::policy::TagDate;

/// Tags per page: GitLab's maximum for this connection, and never more.
pub(super) const TAGS_PER_PAGE: usize = 20;
/// Most tag names one `destroyContainerRepositoryTags` takes.
pub(super) const DELETE_BATCH: usize = 20;
/// A listing longer than this many pages is refused (a loop guard).
pub(super) const MAX_PAGES: u32 = 1_000_000;

/// The repositories of a project or a group: the same query on either root field.
macro_rules! repositories_query {
    ($operation:literal, $root:literal) => {
        concat!(
            "query ",
            $operation,
            "($fullPath: ID!, $after: String) {\n  ",
            $root,
            "(fullPath: $fullPath) {
    containerRepositories(first: 100, after: $after, sort: NAME_ASC) {
      nodes { id path location status project { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"
        )
    };
}

const PROJECT_REPOSITORIES: &str = repositories_query!("ProjectRepositories", "project");
const GROUP_REPOSITORIES: &str = repositories_query!("GroupRepositories", "group");

/// A page of a repository's tags: the first page also asks for GitLab's own
/// count (for the completeness check), and where GitLab has them, each
/// tag's permission and protection (GitLab 17.8+; an older schema refuses
/// the query, and the fields are left out from then on).
macro_rules! tags_query {
    ($operation:literal, $sort:literal, $count:literal, $permissions:literal) => {
        concat!(
            "query ",
            $operation,
            "($id: ContainerRepositoryID!, $after: String) {
  containerRepository(id: $id) {",
            $count,
            "
    tags(first: 20, after: $after, sort: ",
            $sort,
            ") {
      nodes { name digest createdAt publishedAt totalSize",
            $permissions,
            " }
      pageInfo { hasNextPage endCursor }
    }
  }
}"
        )
    };
}

/// `[first page][with permissions]`, ascending by name.
const REPOSITORY_TAGS: [[&str; 2]; 2] = [
    [
        tags_query!("RepositoryTags", "NAME_ASC", "", ""),
        tags_query!(
            "RepositoryTags",
            "NAME_ASC",
            "",
            " userPermissions { destroyContainerRepositoryTag } protection { immutable }"
        ),
    ],
    [
        tags_query!("RepositoryTags", "NAME_ASC", "\n    tagsCount", ""),
        tags_query!(
            "RepositoryTags",
            "NAME_ASC",
            "\n    tagsCount",
            " userPermissions { destroyContainerRepositoryTag } protection { immutable }"
        ),
    ],
];

/// `[with permissions]`, descending by name (a walker from the end; `walk.rs`).
const REPOSITORY_TAGS_DESC: [&str; 2] = [
    tags_query!("RepositoryTags", "NAME_DESC", "", ""),
    tags_query!(
        "RepositoryTags",
        "NAME_DESC",
        "",
        " userPermissions { destroyContainerRepositoryTag } protection { immutable }"
    ),
];

/// The order of a tag page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sort {
    NameAsc,
    NameDesc,
}

const REPOSITORY_TAGS_COUNT: &str = "query RepositoryTagsCount($id: ContainerRepositoryID!) {
  containerRepository(id: $id) { tagsCount }
}";

/// Whether this GitLab's schema has the tag permission fields
/// (`GitlabClient::tag_permissions`): unknown until a tags query with them
/// works or is refused while the same query without them works; learned
/// afresh each pass.
const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

const DESTROY_TAGS: &str = "mutation DestroyTags($id: ContainerRepositoryID!, $tagNames: [String!]!) {
  destroyContainerRepositoryTags(input: {id: $id, tagNames: $tagNames}) {
    deletedTagNames
    errors
  }
}";

/// One tag as the tags connection gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagNode {
    /// The tag's name.
    pub name: String,
    /// The manifest digest.
    #[serde(default)]
    pub digest: Option<String>,
    /// `createdAt`: a string, `null`, or (from a broken proxy) anything.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
    /// `publishedAt`: null without the registry's metadata database.
    #[serde(default)]
    pub published_at: Option<serde_json::Value>,
    /// `totalSize`, a BigInt sent as a string.
    #[serde(default)]
    pub total_size: Option<serde_json::Value>,
    /// Whether the token's user may delete it (GitLab 17.8+).
    #[serde(default)]
    pub user_permissions: Option<TagPermissions>,
    /// The tag protection rule that matches it; null when none does.
    #[serde(default)]
    pub protection: Option<TagProtection>,
}

/// `ContainerRepositoryTagPermissions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagPermissions {
    #[serde(default)]
    destroy_container_repository_tag: Option<bool>,
}

/// `ContainerProtectionAccessLevel`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TagProtection {
    #[serde(default)]
    immutable: Option<bool>,
}

impl TagNode {
    /// The tag as the pass sees it.
    pub(super) fn into_record(self) -> TagRecord {
        let created = date_field(&self.name, "createdAt", self.created_at.as_ref()).unwrap_or(TagDate::Missing);
        let published = date_field(&self.name, "publishedAt", self.published_at.as_ref());
        // Protected: a protection rule covers the tag, and GitLab says the
        // user may not delete it (or the rule is immutable). A `false`
        // without a rule is a role or scope problem: the DELETE tells.
        let deletable = self.protection.as_ref().map(|rule| {
            let allowed = self
                .user_permissions
                .as_ref()
                .and_then(|p| p.destroy_container_repository_tag)
                .unwrap_or(true);
            allowed && rule.immutable != Some(true)
        });
        TagRecord {
            deletable,
            size: self.size(),
            digest: self.digest.as_deref().map(Digest::parse),
            name: self.name,
            created,
            published,
        }
    }

    /// Bytes, when GitLab says.
    fn size(&self) -> Option<u64> {
        match &self.total_size {
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        }
    }
}

/// What a whole tag listing said besides its tags.
pub(super) struct TagsListed {
    /// GitLab's own count (`tagsCount`), read with the first page.
    pub count: Option<u64>,
}

/// What one `destroyContainerRepositoryTags` did.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DestroyOutcome {
    /// The names GitLab says it deleted.
    pub deleted_tag_names: Vec<String>,
    /// Its messages; may come with a partial `deleted_tag_names`.
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connection<T> {
    pub nodes: Vec<T>,
    pub page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryNode {
    id: String,
    path: String,
    location: String,
    #[serde(default)]
    status: Option<String>,
    project: ProjectRef,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerData {
    #[serde(alias = "group")]
    project: Option<Owner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owner {
    container_repositories: Option<Connection<RepositoryNode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagsData {
    container_repository: Option<TagsOwner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagsOwner {
    #[serde(default)]
    tags_count: Option<u64>,
    #[serde(default)]
    tags: Option<Connection<TagNode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DestroyData {
    destroy_container_repository_tags: Option<DestroyOutcome>,
}

/// The number at the end of a global id, `gid://gitlab/<Kind>/<n>`.
pub(super) fn gid_number(gid: &str, kind: &str) -> Option<u64> {
    gid.strip_prefix("gid://gitlab/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .parse()
        .ok()
}

impl GitlabClient {
    /// Every container repository of a project or group (by full path), all pages.
    pub(crate) async fn graphql_repositories(
        &self,
        kind: EntryKind,
        full_path: &str,
    ) -> Result<Vec<Repository>, ApiError> {
        let (query, operation) = match kind {
            EntryKind::Project => (PROJECT_REPOSITORIES, "ProjectRepositories"),
            EntryKind::Group => (GROUP_REPOSITORIES, "GroupRepositories"),
        };
        let mut repositories = Vec::new();
        let (mut after, mut cursors): (Option<String>, Cursors) = (None, Cursors::default());
        for _ in 0..MAX_PAGES {
            let variables = serde_json::json!({ "fullPath": full_path, "after": after });
            let data: OwnerData = self.graphql(operation, query, variables).await?;
            let connection = data
                .project
                .ok_or_else(|| not_found(operation, format!("{} {full_path} not found", kind.as_str())))?
                .container_repositories
                .ok_or_else(|| field_error(operation, "containerRepositories is null".to_owned()))?;
            for node in connection.nodes {
                let (Some(id), Some(project_id)) = (
                    gid_number(&node.id, "ContainerRepository"),
                    gid_number(&node.project.id, "Project"),
                ) else {
                    return Err(field_error(operation, format!("unexpected global ids {:?}", node.id)));
                };
                repositories.push(Repository {
                    id,
                    path: node.path,
                    project_id,
                    location: node.location,
                    // GraphQL's enum (`DELETE_SCHEDULED`) in REST's spelling.
                    status: node.status.map(|s| s.to_ascii_lowercase()),
                    graphql_id: Some(node.id),
                });
            }
            match cursors.next(operation, &connection.page_info)? {
                Some(cursor) => after = Some(cursor),
                None => {
                    repositories.sort_unstable_by_key(|r| r.id);
                    repositories.dedup_by_key(|r| r.id);
                    return Ok(repositories);
                }
            }
        }
        Err(too_many_pages(operation))
    }

    /// One page of a repository's tags, in `sort` order after `after`; with
    /// `count`, GitLab's own count of them too (`tagsCount`).
    pub(super) async fn graphql_tag_page(
        &self,
        repository_gid: &str,
        sort: Sort,
        after: Option<&str>,
        count: bool,
    ) -> Result<(Option<u64>, Connection<TagNode>), ApiError> {
        const OPERATION: &str = "RepositoryTags";
        let query = |permissions: bool| match sort {
            Sort::NameAsc => REPOSITORY_TAGS[usize::from(count)][usize::from(permissions)],
            Sort::NameDesc => REPOSITORY_TAGS_DESC[usize::from(permissions)],
        };
        let variables = serde_json::json!({ "id": repository_gid, "after": after });
        let known = &self.tag_permissions;
        let permissions = known.load(Ordering::Relaxed) != UNSUPPORTED;
        let data: TagsData = match self.graphql(OPERATION, query(permissions), variables.clone()).await {
            // An older schema without the permission fields: ask again
            // without them — every query that asked for them and was
            // refused, not only the first (several may be in flight) —
            // and remember it only if that works.
            Err(
                err @ ApiError::Graphql {
                    kind: GraphqlFailure::Rejected,
                    ..
                },
            ) if permissions && known.load(Ordering::Relaxed) != SUPPORTED => {
                let data = self.graphql(OPERATION, query(false), variables).await?;
                if known.swap(UNSUPPORTED, Ordering::Relaxed) != UNSUPPORTED {
                    tracing::info!(
                        operation = "graphql_without_tag_permissions",
                        reason = %err,
                        "this GitLab has no tag permission fields (before 17.8?): protected tags are found by their DELETE"
                    );
                }
                data
            }
            other => other?,
        };
        if permissions {
            let _ = known.compare_exchange(UNKNOWN, SUPPORTED, Ordering::Relaxed, Ordering::Relaxed);
        }
        let owner = data
            .container_repository
            .ok_or_else(|| not_found(OPERATION, format!("container repository {repository_gid} not found")))?;
        let connection = owner
            .tags
            .ok_or_else(|| field_error(OPERATION, "tags is null".to_owned()))?;
        if connection.nodes.len() > TAGS_PER_PAGE {
            return Err(field_error(
                OPERATION,
                format!("{} tags on a page of {TAGS_PER_PAGE}", connection.nodes.len()),
            ));
        }
        Ok((owner.tags_count.filter(|_| count), connection))
    }

    /// GitLab's own count of a repository's tags (`tagsCount`).
    pub(super) async fn graphql_tags_count(&self, repository_gid: &str) -> Result<Option<u64>, ApiError> {
        const OPERATION: &str = "RepositoryTagsCount";
        let variables = serde_json::json!({ "id": repository_gid });
        let data: TagsData = self.graphql(OPERATION, REPOSITORY_TAGS_COUNT, variables).await?;
        let owner = data
            .container_repository
            .ok_or_else(|| not_found(OPERATION, format!("container repository {repository_gid} not found")))?;
        Ok(owner.tags_count)
    }

    /// Deletes up to [`DELETE_BATCH`] tags of a repository in one mutation.
    pub(crate) async fn destroy_tags(&self, repository_gid: &str, names: &[&str]) -> Result<DestroyOutcome, ApiError> {
        const OPERATION: &str = "DestroyTags";
        debug_assert!(names.len() <= DELETE_BATCH);
        let variables = serde_json::json!({ "id": repository_gid, "tagNames": names });
        let (data, errors) = self
            .graphql_answer::<DestroyData>(OPERATION, DESTROY_TAGS, variables)
            .await?;
        // A payload is GitLab's word on what it deleted, errors beside it or not.
        let refused = data.is_none();
        match (data.and_then(|d| d.destroy_container_repository_tags), errors) {
            (Some(mut outcome), errors) => {
                outcome.errors.extend(errors);
                Ok(outcome)
            }
            (None, errors) if errors.is_empty() => Err(field_error(
                OPERATION,
                "destroyContainerRepositoryTags is null".to_owned(),
            )),
            (None, errors) => Err(ApiError::Graphql {
                operation: OPERATION,
                kind: if refused {
                    GraphqlFailure::Rejected
                } else {
                    GraphqlFailure::Field
                },
                message: errors.join("; "),
            }),
        }
    }

    /// One GraphQL request through the funnel; any error in the answer is
    /// an [`ApiError::Graphql`]: a query's data is never half-trusted.
    async fn graphql<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &'static str,
        variables: serde_json::Value,
    ) -> Result<T, ApiError> {
        match self.graphql_answer(operation, query, variables).await? {
            (Some(data), errors) if errors.is_empty() => Ok(data),
            (data, errors) => Err(ApiError::Graphql {
                operation,
                kind: if data.is_none() {
                    GraphqlFailure::Rejected
                } else {
                    GraphqlFailure::Field
                },
                message: errors.join("; "),
            }),
        }
    }

    /// One GraphQL request through the funnel: its `data` (absent when
    /// GitLab refused the request) and its error messages.
    async fn graphql_answer<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &'static str,
        variables: serde_json::Value,
    ) -> Result<(Option<T>, Vec<String>), ApiError> {
        let url = self.graphql_url();
        let body = serde_json::json!({ "operationName": operation, "query": query, "variables": variables });
        let body = bytes::Bytes::from(serde_json::to_vec(&body).expect("a JSON value serializes"));
        let answer = self.send(Method::POST, url.clone(), Some(body)).await?;
        let answer = ok_or_error(&Method::POST, &url, answer)?;
        let envelope: Envelope<T> = decode(&Method::POST, &url, &answer.body)?;
        let errors: Vec<String> = envelope.errors.into_iter().map(|e| e.message).collect();
        if envelope.data.is_none() && errors.is_empty() {
            return Err(ApiError::Decode {
                method: Method::POST,
                path: url.path().to_owned(),
                reason: "neither data nor errors".to_owned(),
            });
        }
        Ok((envelope.data, errors))
    }
}

fn not_found(operation: &'static str, message: String) -> ApiError {
    ApiError::Graphql {
        operation,
        kind: GraphqlFailure::NotFound,
        message,
    }
}

fn field_error(operation: &'static str, message: String) -> ApiError {
    ApiError::Graphql {
        operation,
        kind: GraphqlFailure::Field,
        message,
    }
}

fn too_many_pages(operation: &'static str) -> ApiError {
    ApiError::Pagination {
        path: operation.to_owned(),
        reason: format!("more than {MAX_PAGES} pages; refusing to go on"),
    }
}

/// The cursors a listing has followed: an answer that says "more" without a
/// cursor, or with one already followed, would loop or skip, and is an error.
#[derive(Debug, Default)]
pub(super) struct Cursors {
    seen: HashSet<String>,
}

impl Cursors {
    /// The cursor of the next page, `None` on the last page.
    pub(super) fn next(&mut self, operation: &'static str, page: &PageInfo) -> Result<Option<String>, ApiError> {
        if !page.has_next_page {
            return Ok(None);
        }
        match page.end_cursor.as_deref() {
            Some(cursor) if !cursor.is_empty() && self.seen.insert(cursor.to_owned()) => Ok(Some(cursor.to_owned())),
            _ => Err(ApiError::Pagination {
                path: operation.to_owned(),
                reason: "hasNextPage without a new endCursor".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids() {
        assert_eq!(
            gid_number("gid://gitlab/ContainerRepository/42", "ContainerRepository"),
            Some(42)
        );
        assert_eq!(gid_number("gid://gitlab/Project/42", "ContainerRepository"), None);
        assert_eq!(
            gid_number("gid://gitlab/ContainerRepository/x", "ContainerRepository"),
            None
        );
        assert_eq!(gid_number("42", "Project"), None);
    }

    #[test]
    fn cursors_must_move_and_never_come_back() {
        let page = |next, cursor: Option<&str>| PageInfo {
            has_next_page: next,
            end_cursor: cursor.map(str::to_owned),
        };
        let mut cursors = Cursors::default();
        assert_eq!(cursors.next("Q", &page(true, Some("a"))).unwrap().as_deref(), Some("a"));
        assert_eq!(cursors.next("Q", &page(true, Some("b"))).unwrap().as_deref(), Some("b"));
        assert!(
            cursors.next("Q", &page(true, Some("b"))).is_err(),
            "the same page again"
        );
        assert!(cursors.next("Q", &page(true, Some("a"))).is_err(), "a cycle a → b → a");
        assert!(cursors.next("Q", &page(true, None)).is_err());
        assert!(cursors.next("Q", &page(true, Some(""))).is_err());
        assert_eq!(
            cursors.next("Q", &page(false, Some("a"))).unwrap(),
            None,
            "the last page"
        );
    }

    #[test]
    fn tag_nodes_decode_gitlab_shapes() {
        let t: TagNode = serde_json::from_str(
            r#"{"name":"v1","createdAt":"2024-01-02T03:04:05Z","publishedAt":null,"totalSize":"1234509876"}"#,
        )
        .unwrap();
        assert_eq!(t.size(), Some(1_234_509_876));
        assert!(t.published_at.is_none(), "null is no date");
        let t: TagNode = serde_json::from_str(r#"{"name":"v1"}"#).unwrap();
        assert_eq!(t.size(), None);
        let e: Envelope<DestroyData> = serde_json::from_str(
            r#"{"data":{"destroyContainerRepositoryTags":null},"errors":[{"message":"Number of tags is greater than 20","path":["destroyContainerRepositoryTags"]}]}"#,
        )
        .unwrap();
        assert_eq!(e.errors[0].message, "Number of tags is greater than 20");
    }

    #[test]
    fn repository_queries_differ_only_in_their_root() {
        assert!(PROJECT_REPOSITORIES.starts_with(
            "query ProjectRepositories($fullPath: ID!, $after: String) {\n  project(fullPath: $fullPath) {"
        ));
        assert_eq!(
            PROJECT_REPOSITORIES
                .replace("ProjectRepositories", "GroupRepositories")
                .replace("project(fullPath", "group(fullPath"),
            GROUP_REPOSITORIES
        );
    }

    mod decoders_never_panic {
        use super::*;
        use proptest::prelude::*;

        const TAGS: &str = r#"{"data":{"containerRepository":{"tags":{"nodes":[{"name":"v1","createdAt":"2024-01-02T03:04:05Z","publishedAt":null,"totalSize":"1234"}],"pageInfo":{"hasNextPage":true,"endCursor":"6e3a7631"}}}}}"#;
        const REPOSITORIES: &str = r#"{"data":{"project":{"containerRepositories":{"nodes":[{"id":"gid://gitlab/ContainerRepository/5","path":"g/p","location":"r:5005/g/p","project":{"id":"gid://gitlab/Project/1"}}],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}}"#;
        const DESTROY: &str = r#"{"data":{"destroyContainerRepositoryTags":{"deletedTagNames":["a"],"errors":["error while deleting tags"]}},"errors":[{"message":"x","path":["destroyContainerRepositoryTags"]}]}"#;

        fn all_decoders(body: &[u8]) {
            if let Ok(e) = serde_json::from_slice::<Envelope<TagsData>>(body)
                && let Some(tags) = e.data.and_then(|d| d.container_repository).and_then(|r| r.tags)
            {
                let _ = Cursors::default().next("Q", &tags.page_info);
                for node in &tags.nodes {
                    let _ = node.size();
                }
            }
            let _ = serde_json::from_slice::<Envelope<OwnerData>>(body);
            let _ = serde_json::from_slice::<Envelope<DestroyData>>(body);
        }

        proptest! {
            #[test]
            fn mutated_graphql_answers(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
                for original in [TAGS, REPOSITORIES, DESTROY] {
                    let mut body = original.as_bytes().to_vec();
                    let at = pos % body.len();
                    body[at] = byte;
                    all_decoders(&body);
                    all_decoders(&original.as_bytes()[..cut.min(original.len())]);
                }
            }
        }

        #[test]
        fn the_examples_decode() {
            let tags: Envelope<TagsData> = serde_json::from_str(TAGS).unwrap();
            let tags = tags.data.unwrap().container_repository.unwrap().tags.unwrap();
            assert_eq!(tags.nodes[0].size(), Some(1234));
            assert_eq!(
                Cursors::default().next("Q", &tags.page_info).unwrap().as_deref(),
                Some("6e3a7631")
            );
            let repos: Envelope<OwnerData> = serde_json::from_str(REPOSITORIES).unwrap();
            assert_eq!(
                repos
                    .data
                    .unwrap()
                    .project
                    .unwrap()
                    .container_repositories
                    .unwrap()
                    .nodes
                    .len(),
                1
            );
            let destroy: Envelope<DestroyData> = serde_json::from_str(DESTROY).unwrap();
            assert_eq!(destroy.errors.len(), 1);
            let outcome = destroy.data.unwrap().destroy_container_repository_tags.unwrap();
            assert_eq!(outcome.deleted_tag_names, ["a"]);
        }
    }

    #[test]
    fn the_queries_ask_for_at_most_twenty_tags() {
        for query in REPOSITORY_TAGS.iter().flatten() {
            assert!(query.contains("tags(first: 20,"), "{query}");
        }
        assert!(
            REPOSITORY_TAGS[1].iter().all(|q| q.contains("tagsCount")),
            "the first page counts"
        );
        assert!(
            REPOSITORY_TAGS[0].iter().all(|q| !q.contains("tagsCount")),
            "later pages do not"
        );
        assert!(
            REPOSITORY_TAGS
                .iter()
                .all(|pair| pair[1].contains("protection") && !pair[0].contains("protection"))
        );
        assert_eq!(TAGS_PER_PAGE, 20);
        assert_eq!(DELETE_BATCH, 20);
    }
}
