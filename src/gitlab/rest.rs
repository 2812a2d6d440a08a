//! GitLab's REST API v4: container repositories, tag names page by page,
//! a tag's details, DELETE of one tag, the lookups GraphQL needs, and a
//! project's branches and merge requests (for `delete_when_ref_gone`).

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::client::{GitlabClient, PER_PAGE, decode, ok_or_error};
use super::error::ApiError;
use super::wire::{self, Repository, TagDetails, Version};
use crate::config::{EntryKind, Target};

impl GitlabClient {
    /// `GET /version`.
    pub(crate) async fn version(&self) -> Result<Version, ApiError> {
        let url = self.url(&["version"]);
        let answer = self.get_ok(url.clone()).await?;
        decode(&Method::GET, &url, &answer.body)
    }

    /// Every container repository of a project or group, all pages.
    pub(crate) async fn repositories(
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

    /// Hands every tag name of a repository to `each` as its page arrives.
    /// The listing is complete only when this returns `Ok`; the caller must
    /// not delete anything before (deleting while paging by offset skips tags).
    pub(crate) async fn for_each_tag_name(
        &self,
        project_id: u64,
        repository_id: u64,
        mut each: impl FnMut(String),
    ) -> Result<(), ApiError> {
        let url = self.tags_url(project_id, repository_id, None);
        self.each_page::<wire::TagName>(url, |page| page.into_iter().for_each(|t| each(t.name)))
            .await
    }

    /// A tag's details; `None` if the tag is gone (404 Tag Not Found).
    pub(crate) async fn tag_details(
        &self,
        project_id: u64,
        repository_id: u64,
        tag: &str,
    ) -> Result<Option<TagDetails>, ApiError> {
        let url = self.tags_url(project_id, repository_id, Some(tag));
        let answer = self.send(Method::GET, url.clone(), None).await?;
        // Only GitLab's "404 Tag Not Found" says the tag is gone; a 404 for
        // the project or the repository (access lost, a proxy) says nothing
        // of the tag, and a tag reported gone would be reported deleted.
        if answer.status == StatusCode::NOT_FOUND
            && wire::error_message(&answer.headers, &answer.body).contains("Tag Not Found")
        {
            return Ok(None);
        }
        let answer = ok_or_error(&Method::GET, &url, answer)?;
        decode(&Method::GET, &url, &answer.body).map(Some)
    }

    /// Deletes one tag. Any error, a 404 included, is the caller's to
    /// interpret: with the registry metadata database GitLab answers 403 for
    /// a tag that is already gone, and only a GET tells (docs/gitlab-api.md).
    pub(crate) async fn delete_tag(&self, project_id: u64, repository_id: u64, tag: &str) -> Result<(), ApiError> {
        let url = self.tags_url(project_id, repository_id, Some(tag));
        let answer = self.send(Method::DELETE, url.clone(), None).await?;
        ok_or_error(&Method::DELETE, &url, answer)?;
        Ok(())
    }

    /// Every branch (or git tag) name of a project, checked whole:
    ///
    /// - keyset pages by name where GitLab has them (`pagination=keyset`; a
    ///   branch deleted meanwhile shifts no page), then GitLab's own count
    ///   (`X-Total` of a one-item offset page): fewer names than it counts
    ///   is a list cut short;
    /// - else offset pages, whose `X-Total` must be the names listed; more
    ///   than one page is read a second time with another page size, and
    ///   must name the same: a branch deleted and another created while
    ///   offset pages are read shifts them, and the one skipped would look
    ///   gone.
    ///
    /// A project without any branch is refused too (git tags may be none).
    pub(crate) async fn ref_names(&self, project_id: u64, kind: RefKind) -> Result<Vec<String>, ApiError> {
        let url = self.url(&["projects", &project_id.to_string(), "repository", kind.segment()]);
        let untrusted = |reason: String| ApiError::Untrusted {
            path: url.path().to_owned(),
            reason,
        };
        let first = self.ref_pages(&url, PER_PAGE, true).await?;
        match first.totals.first() {
            None => {
                let counted = self.ref_count(&url).await?.ok_or_else(|| {
                    untrusted(format!(
                        "GitLab gives no count of the {}, so a complete list cannot be told from a cut one",
                        kind.plural()
                    ))
                })?;
                if (first.names.len() as u64) < counted {
                    return Err(untrusted(format!(
                        "listed {} {} but GitLab counts {counted}: the list was cut short (or changed while it was read)",
                        first.names.len(),
                        kind.plural()
                    )));
                }
            }
            Some(&total) => {
                if first.totals.len() > 1 || first.names.len() as u64 != total {
                    return Err(untrusted(format!(
                        "listed {} {} but GitLab counts {}: the list changed or was cut short while it was read",
                        first.names.len(),
                        kind.plural(),
                        first
                            .totals
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" then ")
                    )));
                }
                if first.pages > 1 {
                    let again = self.ref_pages(&url, PER_PAGE - 1, false).await?;
                    if again.names != first.names {
                        return Err(untrusted(format!(
                            "two readings of the {} by offset pages differ ({} and {} names): they changed while \
                             they were read",
                            kind.plural(),
                            first.names.len(),
                            again.names.len()
                        )));
                    }
                }
            }
        }
        if kind == RefKind::Branches && first.names.is_empty() {
            return Err(untrusted(
                "GitLab lists no branch at all (an empty repository, or one the token's user cannot read); \
                 that is not taken to mean every branch is gone"
                    .to_owned(),
            ));
        }
        Ok(first.names)
    }

    /// One reading of a ref list, all pages: names sorted, each once; the
    /// `X-Total`s seen (none on keyset pages); how many pages.
    async fn ref_pages(&self, url: &Url, per_page: u32, keyset: bool) -> Result<RefPages, ApiError> {
        let mut url = url.clone();
        if keyset {
            url.query_pairs_mut().append_pair("pagination", "keyset");
        }
        if url.path().ends_with("/tags") {
            // Git tags come newest first unless asked by name; pages by
            // name are what keyset and the second reading rely on.
            url.query_pairs_mut()
                .append_pair("order_by", "name")
                .append_pair("sort", "asc");
        }
        let mut pages = RefPages::default();
        self.each_page_with_headers::<wire::RefName>(url, per_page, |page, headers| {
            pages.pages += 1;
            pages.names.extend(page.into_iter().map(|r| r.name));
            pages.totals.extend(header_u64(headers, "x-total"));
        })
        .await?;
        pages.names.sort_unstable();
        pages.names.dedup();
        Ok(pages)
    }

    /// GitLab's count of a ref list: `X-Total` of a one-item offset page.
    async fn ref_count(&self, url: &Url) -> Result<Option<u64>, ApiError> {
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair("per_page", "1")
            .append_pair("page", "1");
        let answer = self.get_ok(url).await?;
        Ok(header_u64(&answer.headers, "x-total"))
    }

    /// Whether a project is a fork (`forked_from_project` in `GET /projects/:id`).
    pub(crate) async fn is_fork(&self, project_id: u64) -> Result<bool, ApiError> {
        #[derive(Deserialize)]
        struct Entity {
            #[serde(default)]
            forked_from_project: Option<serde::de::IgnoredAny>,
        }
        let url = self.url(&["projects", &project_id.to_string()]);
        let answer = self.get_ok(url.clone()).await?;
        let entity: Entity = decode(&Method::GET, &url, &answer.body)?;
        Ok(entity.forked_from_project.is_some())
    }

    /// The state (`opened`, `closed`, `locked`, `merged`) of a project's
    /// merge requests by iid, as many as GitLab lists on a page at a time;
    /// an iid GitLab does not know is absent.
    pub(crate) async fn merge_request_states(
        &self,
        project_id: u64,
        iids: &[u64],
    ) -> Result<Vec<(u64, String)>, ApiError> {
        let mut url = self.url(&["projects", &project_id.to_string(), "merge_requests"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("view", "simple").append_pair("state", "all");
            for iid in iids {
                query.append_pair("iids[]", &iid.to_string());
            }
        }
        let mut states = Vec::with_capacity(iids.len());
        self.each_page::<wire::MergeRequest>(url, |page| {
            states.extend(page.into_iter().map(|mr| (mr.iid, mr.state)));
        })
        .await?;
        Ok(states)
    }

    /// GitLab's own count of a repository's tags:
    /// `GET /registry/repositories/:id?tags_count=true`.
    pub(crate) async fn tags_count(&self, repository_id: u64) -> Result<Option<u64>, ApiError> {
        let mut url = self.url(&["registry", "repositories", &repository_id.to_string()]);
        url.query_pairs_mut().append_pair("tags_count", "true");
        let answer = self.get_ok(url.clone()).await?;
        let repository: wire::RepositoryCount = decode(&Method::GET, &url, &answer.body)?;
        Ok(repository.tags_count)
    }

    /// `GET /projects/:id` or `/groups/:id`: the full path GraphQL needs.
    pub(crate) async fn full_path(&self, kind: EntryKind, id: u64) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Entity {
            path_with_namespace: Option<String>,
            full_path: Option<String>,
        }
        let section = match kind {
            EntryKind::Project => "projects",
            EntryKind::Group => "groups",
        };
        let mut url = self.url(&[section, &id.to_string()]);
        if kind == EntryKind::Group {
            // Else GitLab lists the group's projects too (and throttles this endpoint).
            url.query_pairs_mut().append_pair("with_projects", "false");
        }
        let answer = self.get_ok(url.clone()).await?;
        let entity: Entity = decode(&Method::GET, &url, &answer.body)?;
        entity
            .path_with_namespace
            .or(entity.full_path)
            .ok_or_else(|| ApiError::Decode {
                method: Method::GET,
                path: url.path().to_owned(),
                reason: "no path_with_namespace or full_path".to_owned(),
            })
    }
}

/// Which of a project's git refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RefKind {
    /// `GET /projects/:id/repository/branches`.
    Branches,
    /// `GET /projects/:id/repository/tags`: a tag pipeline's
    /// `CI_COMMIT_REF_SLUG` is its git tag's.
    Tags,
}

impl RefKind {
    fn segment(self) -> &'static str {
        match self {
            RefKind::Branches => "branches",
            RefKind::Tags => "tags",
        }
    }

    /// `branches` or `git tags`, as messages say.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            RefKind::Branches => "branches",
            RefKind::Tags => "git tags",
        }
    }
}

/// One reading of a ref list.
#[derive(Debug, Default)]
struct RefPages {
    names: Vec<String>,
    totals: BTreeSet<u64>,
    pages: u32,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}
