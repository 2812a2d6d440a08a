//! GitLab's REST API v4: container repositories, tag names page by page,
//! a tag's details, DELETE of one tag, the lookups GraphQL needs, and a
//! project's branches and merge requests (for `delete_when_ref_gone`).

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::client::{GitlabClient, PER_PAGE, decode, next_page, ok_or_error};
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
    ///   branch deleted meanwhile shifts no page), checked against GitLab's
    ///   own count (`X-Total` of a one-item offset page) read before and
    ///   after: fewer names than both counts is a list cut short;
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
        let before = self.ref_count(&url).await?;
        let first = self.ref_pages(&url, PER_PAGE, true).await?;
        let listed = first.names.len() as u64;
        match first.totals.first() {
            None => {
                let after = self.ref_count(&url).await?;
                let counts: Vec<u64> = before.into_iter().chain(after).collect();
                if counts.is_empty() {
                    return Err(untrusted(format!(
                        "GitLab gives no count of the {}, so a complete list cannot be told from a cut one",
                        kind.plural()
                    )));
                }
                // A ref created or deleted meanwhile moves one count, not both.
                if counts.iter().all(|&count| listed < count) {
                    return Err(untrusted(format!(
                        "listed {listed} {} but GitLab counts {}: the list was cut short",
                        kind.plural(),
                        counts
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" before and ")
                    )));
                }
            }
            Some(&total) => {
                if first.totals.len() > 1 || listed != total {
                    return Err(untrusted(format!(
                        "listed {listed} {} but GitLab counts {}: the list changed or was cut short while it was read",
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
                            "two readings of the {} by offset pages differ ({listed} and {} names): they changed \
                             while they were read",
                            kind.plural(),
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
        {
            let mut query = url.query_pairs_mut();
            if keyset {
                query.append_pair("pagination", "keyset");
            }
            // Git tags come newest first unless asked by name; pages by
            // name are what keyset and the second reading rely on.
            query
                .append_pair("order_by", "name")
                .append_pair("sort", "asc")
                .append_pair("per_page", &per_page.to_string())
                .append_pair("page", "1");
        }
        let mut pages = RefPages::default();
        for _ in 0..MAX_REF_PAGES {
            let answer = self.get_ok(url.clone()).await?;
            let page: Vec<wire::RefName> = decode(&Method::GET, &url, &answer.body)?;
            pages.pages += 1;
            pages.names.extend(page.into_iter().map(|r| r.name));
            pages.totals.extend(header_u64(&answer.headers, "x-total"));
            let next = match keyset_token(&url, &answer.headers) {
                // GitLab builds keyset links on its configured host, which
                // need not be the one it is reached by: only the token is taken.
                Some(token) => {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "page_token")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    let mut next = url.clone();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(pairs)
                        .append_pair("page_token", &token);
                    Some(next)
                }
                None => next_page(&url, &answer.headers)?,
            };
            match next {
                Some(next) => url = next,
                None => {
                    pages.names.sort_unstable();
                    pages.names.dedup();
                    return Ok(pages);
                }
            }
        }
        Err(ApiError::Pagination {
            path: url.path().to_owned(),
            reason: format!("more than {MAX_REF_PAGES} pages; refusing to go on"),
        })
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

    /// Whether a project is a fork (`GET /projects/:id`).
    pub(crate) async fn is_fork(&self, project_id: u64) -> Result<bool, ApiError> {
        let url = self.url(&["projects", &project_id.to_string()]);
        let answer = self.get_ok(url.clone()).await?;
        let entity: wire::ForkedFrom = decode(&Method::GET, &url, &answer.body)?;
        Ok(entity.is_fork())
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

/// The most pages of a ref list read (a million branches).
const MAX_REF_PAGES: u32 = 10_000;

/// The `page_token` of a keyset page's `Link rel="next"`, if it has one
/// and no `X-Next-Page` says the pages are offset pages.
fn keyset_token(current: &Url, headers: &HeaderMap) -> Option<String> {
    if headers.contains_key("x-next-page") {
        return None;
    }
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let next = current.join(wire::link_next(link)?).ok()?;
    next.query_pairs()
        .find(|(k, _)| k == "page_token")
        .map(|(_, v)| v.into_owned())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::LINK, value.parse().unwrap());
        headers
    }

    #[test]
    fn keyset_pages_go_on_by_the_token_whatever_host_the_link_names() {
        let current =
            Url::parse("http://gitlab.internal:8080/api/v4/projects/1/repository/branches?pagination=keyset").unwrap();
        let other_host = link(
            r#"<https://gitlab.example.com/api/v4/projects/1/repository/branches?page_token=feature%2Fx&pagination=keyset&per_page=100>; rel="next""#,
        );
        assert_eq!(keyset_token(&current, &other_host).as_deref(), Some("feature/x"));
        let relative = link(r#"<?page_token=main&pagination=keyset>; rel="next""#);
        assert_eq!(keyset_token(&current, &relative).as_deref(), Some("main"));
        // Offset pages, or no next page: no token.
        let mut offset = link(r#"<http://gitlab.internal:8080/api/v4/x?page=2>; rel="next""#);
        assert_eq!(keyset_token(&current, &offset), None);
        offset.insert("x-next-page", "2".parse().unwrap());
        assert_eq!(keyset_token(&current, &offset), None);
        assert_eq!(
            keyset_token(&current, &link(r#"<https://x/?page_token=a>; rel="first""#)),
            None
        );
        assert_eq!(keyset_token(&current, &HeaderMap::new()), None);
    }
}
