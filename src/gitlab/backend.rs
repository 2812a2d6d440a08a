//! The seam between the pass and GitLab's two APIs.
//!
//! The pass asks three things of one config entry — its repositories, a
//! repository's complete tag list as [`TagRecord`]s, "delete these names" —
//! and never learns whether REST or GraphQL did the work. Everything that
//! depends on the protocol is decided here, once:
//!
//! - `api: auto` tries GraphQL and falls back to REST for the rest of the
//!   entry when GraphQL is not usable (no endpoint, or a query or mutation
//!   this GitLab refuses), logging `api_fallback` once per entry — except
//!   where the entry ages tags by their push date, which REST does not have:
//!   such an entry fails and keeps everything;
//! - GraphQL lists twenty tags with their dates a page; REST lists names and
//!   reads each wanted tag's details while later pages are still coming;
//! - GraphQL deletes twenty names a mutation, REST one DELETE a tag; when
//!   either fails in a way that may hide a deletion that happened (no
//!   answer, a 5xx), each name is looked up exactly before it is called
//!   failed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};

use super::client::GitlabClient;
use super::error::{ApiError, GraphqlFailure};
use super::graphql::DELETE_BATCH;
use super::record::TagRecord;
use super::refs::RefCache;
use super::wire::{Repository, Version};
use crate::config::{ApiMode, EntryKind, Target};

/// GitLab, through the API the settings chose. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Backend {
    client: GitlabClient,
    api: ApiMode,
    /// Bounds the futures waiting for the client's request limit.
    concurrency: NonZeroUsize,
    /// The branches and merge requests this pass has read.
    refs: Arc<RefCache>,
}

/// The project or group an entry names, and what its tags must carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    /// Project or group.
    pub kind: EntryKind,
    /// Its id or path.
    pub target: &'a Target,
    /// How much the entry's policy depends on a tag's push date, which only
    /// GraphQL gives.
    pub push_date: PushDate,
}

/// How much an entry depends on `publishedAt`, the last push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushDate {
    /// Asked for by the config (`age_from: "published"`): REST must not
    /// stand in, the entry fails and keeps everything.
    Required,
    /// The default basis: where GraphQL is not usable the entry goes on
    /// through REST, aging tags by `created_at`, and says so.
    Preferred,
    /// Not used (`age_from: "created"`).
    Unused,
}

/// One entry's view of GitLab: under `auto`, the API it ended up on.
pub(crate) struct EntryApi<'a> {
    backend: &'a Backend,
    owner: Owner<'a>,
    /// GraphQL refused this entry after its repositories were listed: the
    /// rest of the entry goes through REST.
    graphql_refused: AtomicBool,
    /// GraphQL refused this entry's deletions: they go through REST. Kept
    /// apart from `graphql_refused`, so that it never changes how tags are
    /// listed (and so which date ages them).
    deletions_refused: AtomicBool,
}

/// How far a repository's listing got.
#[derive(Debug)]
pub(crate) struct TagListing {
    /// Distinct names listed.
    pub seen: u64,
    /// Whether the API that listed them gives push dates (GraphQL does, where
    /// the registry has its metadata database; REST never does).
    pub push_dates: bool,
    /// GitLab's own count of the repository's tags, read with the listing.
    pub count: Option<u64>,
    /// `Ok` only if every page was read: nothing may be deleted otherwise.
    pub complete: Result<(), ApiError>,
}

/// A wanted tag, as the listing hands it over.
#[derive(Debug)]
pub(crate) enum Listed {
    /// The tag with its dates.
    Record(TagRecord),
    /// Its details could not be read.
    Unreadable(String, ApiError),
    /// The listing starts over through REST: what was handed over so far is
    /// void (the answers of `wanted` stand; no name is asked about twice).
    Restart,
}

/// What became of one name handed to [`EntryApi::delete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeleteResult {
    /// GitLab deleted it.
    Deleted,
    /// It was not there any more: deleted by an earlier attempt whose answer
    /// was lost, or by someone else.
    AlreadyGone,
    /// Not deleted: GitLab says the token's user may not delete it (a tag
    /// protection rule, an immutable tag). Kept, not an error.
    Protected(String),
    /// Not deleted; GitLab's reason, with a hint for the operator.
    Failed(String),
    /// Not tried: shutting down.
    NotSent,
    /// Not tried: the pass reached its `pass_timeout`.
    TimedOut,
}

impl Backend {
    /// A backend over the process's one client.
    pub(crate) fn new(client: GitlabClient, api: ApiMode, concurrency: NonZeroUsize) -> Backend {
        Backend {
            client,
            api,
            concurrency,
            refs: Arc::default(),
        }
    }

    /// The backend for one pass: no request starts at or after `deadline`,
    /// and what it knows of GitLab's schema, branches and merge requests is
    /// learned afresh.
    pub(crate) fn for_pass(&self, deadline: Option<tokio::time::Instant>) -> Backend {
        Backend {
            client: self.client.for_pass(deadline),
            refs: Arc::default(),
            ..self.clone()
        }
    }

    /// Whether shutdown was requested: no request is sent any more.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.client.is_cancelled()
    }

    /// `GET /version`.
    pub(crate) async fn version(&self) -> Result<Version, ApiError> {
        self.client.version().await
    }

    /// One entry's view of GitLab.
    pub(crate) fn entry<'a>(&'a self, owner: Owner<'a>) -> EntryApi<'a> {
        EntryApi {
            backend: self,
            owner,
            graphql_refused: AtomicBool::new(false),
            deletions_refused: AtomicBool::new(false),
        }
    }
}

impl EntryApi<'_> {
    pub(super) fn client(&self) -> &GitlabClient {
        &self.backend.client
    }

    pub(super) fn refs(&self) -> &RefCache {
        &self.backend.refs
    }

    fn concurrency(&self) -> usize {
        self.backend.concurrency.get()
    }

    /// Whether `err` sends this entry from GraphQL to REST: only under
    /// `auto`, and only for an answer that says GraphQL is not usable here.
    fn falls_back(&self, err: &ApiError) -> bool {
        self.backend.api == ApiMode::Auto && err.graphql_unavailable()
    }

    /// Records the fallback to REST for the rest of the entry; the first
    /// caller logs it.
    fn fall_back(&self, err: &ApiError, message: &'static str) {
        if self.graphql_refused.swap(true, Ordering::Relaxed) {
            return;
        }
        match self.owner.push_date {
            PushDate::Preferred => tracing::warn!(
                operation = "api_fallback",
                reason = %err.explain(),
                age_from = "created",
                "{message}; REST has no push date, so tags are aged by created_at"
            ),
            _ => tracing::warn!(operation = "api_fallback", reason = %err.explain(), "{message}"),
        }
    }

    /// The refusal of REST as a stand-in, for an entry that needs push dates.
    fn no_push_date(&self, err: &dyn std::fmt::Display) -> ApiError {
        ApiError::Graphql {
            operation: "age_from",
            kind: GraphqlFailure::Field,
            message: format!(
                "\"published\" needs GraphQL, which is not usable ({err}); REST has no publishedAt, so nothing is deleted"
            ),
        }
    }

    /// The entry's container repositories, through the chosen API.
    pub(crate) async fn repositories(&self) -> Result<Vec<Repository>, ApiError> {
        let Owner { kind, target, .. } = self.owner;
        if self.backend.api == ApiMode::Rest {
            return self.client().repositories(kind, target).await;
        }
        let listed = async {
            let path = match target {
                Target::Path(path) => path.clone(),
                Target::Id(id) => self.client().full_path(kind, *id).await?,
            };
            self.client().graphql_repositories(kind, &path).await
        }
        .await;
        match listed {
            Err(err) if self.falls_back(&err) => {
                if self.owner.push_date == PushDate::Required {
                    return Err(self.no_push_date(&err));
                }
                self.fall_back(&err, "GraphQL is not usable for this entry; using the REST API");
                self.client().repositories(kind, target).await
            }
            other => other,
        }
    }

    /// A repository known by its ids (from a plan), addressed as if this
    /// entry had listed it: through GraphQL unless the API is REST.
    pub(crate) fn known_repository(&self, id: u64, project_id: u64, path: &str, location: &str) -> Repository {
        Repository {
            id,
            path: path.to_owned(),
            project_id,
            location: location.to_owned(),
            status: None,
            graphql_id: (self.backend.api != ApiMode::Rest).then(|| format!("gid://gitlab/ContainerRepository/{id}")),
        }
    }

    /// Which API a listed repository goes through, as `check` reports it.
    pub(crate) fn through(&self, repository: &Repository) -> &'static str {
        match repository.graphql_id {
            Some(_) if !self.graphql_refused.load(Ordering::Relaxed) => "GraphQL",
            _ => "REST",
        }
    }

    /// Every tag of a repository. `wanted` is asked once for each distinct
    /// name, as it comes; the names it accepts are handed to `take` with
    /// their dates (through REST only their details are read), as they come,
    /// so the caller keeps only what it needs. The listing is usable only if
    /// `complete` is `Ok`.
    pub(crate) async fn tags(
        &self,
        repository: &Repository,
        wanted: &mut (dyn FnMut(&str) -> bool + Send),
        take: &mut (dyn FnMut(Listed) + Send),
    ) -> TagListing {
        let mut listing = self.list_tags(repository, wanted, take).await;
        if listing.complete.is_ok() {
            listing.complete = self.check_complete(repository, &listing).await;
        }
        listing
    }

    /// GitLab turns a registry error into a short last page without saying
    /// so: a listing with fewer names than GitLab's own count, read before
    /// and after it, is cut short. A count of 0 (GitLab's count call failed)
    /// or of 10,000 (its cap) proves nothing; tags others push or delete
    /// meanwhile move the counts, not the verdict.
    async fn check_complete(&self, repository: &Repository, listing: &TagListing) -> Result<(), ApiError> {
        let Some(before) = listing.count else {
            return Ok(());
        };
        if !count_proves(before) || listing.seen >= before {
            return Ok(());
        }
        let after = match (&repository.graphql_id, listing.push_dates) {
            (Some(gid), true) => self.client().graphql_tags_count(gid).await?,
            _ => self.client().tags_count(repository.id).await?,
        };
        match after {
            Some(after) if is_cut_short(listing.seen, before, after) => Err(ApiError::ListingIncomplete {
                listed: listing.seen,
                before,
                after,
            }),
            _ => Ok(()),
        }
    }

    async fn list_tags(
        &self,
        repository: &Repository,
        wanted: &mut (dyn FnMut(&str) -> bool + Send),
        take: &mut (dyn FnMut(Listed) + Send),
    ) -> TagListing {
        let hasher = RandomState::new();
        let gid = match &repository.graphql_id {
            Some(gid) if !self.graphql_refused.load(Ordering::Relaxed) => gid,
            // Listed through GraphQL, but the entry has fallen back to REST:
            // only where the entry can do without push dates.
            Some(_) if self.owner.push_date == PushDate::Required => {
                return TagListing {
                    seen: 0,
                    push_dates: false,
                    count: None,
                    complete: Err(self.no_push_date(&"GraphQL refused this entry earlier in the pass")),
                };
            }
            _ => return self.tags_rest(repository, wanted, take, &hasher, &HashMap::new()).await,
        };
        let (listing, answers) = self.tags_graphql(gid, wanted, take, &hasher).await;
        match &listing.complete {
            Err(err) if self.falls_back(err) => {
                if self.owner.push_date == PushDate::Required {
                    return TagListing {
                        complete: Err(self.no_push_date(err)),
                        ..listing
                    };
                }
                self.fall_back(err, "GraphQL cannot list this entry's tags; using the REST API");
                take(Listed::Restart);
                self.tags_rest(repository, wanted, take, &hasher, &answers).await
            }
            _ => listing,
        }
    }

    /// GraphQL: the tags come with their dates, twenty a page, a large
    /// repository's pages from several walkers at once (`walk.rs`). Also returns
    /// what `wanted` said of each name, by hash.
    async fn tags_graphql(
        &self,
        gid: &str,
        wanted: &mut (dyn FnMut(&str) -> bool + Send),
        take: &mut (dyn FnMut(Listed) + Send),
        hasher: &RandomState,
    ) -> (TagListing, HashMap<u64, bool>) {
        let mut answers: HashMap<u64, bool> = HashMap::new();
        let mut seen = 0u64;
        let listed = self
            .client()
            .for_each_graphql_tag(gid, self.concurrency(), |node| {
                let std::collections::hash_map::Entry::Vacant(slot) = answers.entry(hasher.hash_one(&node.name)) else {
                    return;
                };
                seen += 1;
                if *slot.insert(wanted(&node.name)) {
                    take(Listed::Record(node.into_record()));
                }
            })
            .await;
        let (count, complete) = match listed {
            Ok(listed) => (listed.count, Ok(())),
            Err(err) => (None, Err(err)),
        };
        (
            TagListing {
                seen,
                push_dates: true,
                count,
                complete,
            },
            answers,
        )
    }

    /// REST: every tag name, then each wanted tag's details for its date.
    /// The details are fetched while later pages are still being listed (on
    /// a real GitLab a page takes long); nothing is decided, let alone
    /// deleted, before the listing is complete. `asked` holds answers
    /// `wanted` gave already.
    async fn tags_rest(
        &self,
        repository: &Repository,
        wanted: &mut (dyn FnMut(&str) -> bool + Send),
        take: &mut (dyn FnMut(Listed) + Send),
        hasher: &RandomState,
        asked: &HashMap<u64, bool>,
    ) -> TagListing {
        let client = self.client();
        let (names_tx, mut names_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let listing = async move {
            client
                .for_each_tag_name(repository.project_id, repository.id, |name| {
                    let _ = names_tx.send(name);
                })
                .await
        };
        // A tag pushed between two page reads shifts offset pages, so a name
        // can come twice; it is one tag. Hashes, not names, are kept; a
        // collision would only leave a tag out of this pass, never delete one.
        let mut seen_names: HashSet<u64> = HashSet::new();
        let mut not_sent: Option<ApiError> = None;
        let fetching = stream::poll_fn(move |cx| names_rx.poll_recv(cx))
            .filter(|name| {
                let hash = hasher.hash_one(name);
                let fetch = seen_names.insert(hash) && asked.get(&hash).copied().unwrap_or_else(|| wanted(name));
                std::future::ready(fetch)
            })
            .map(|name| async move {
                let details = client.tag_details(repository.project_id, repository.id, &name).await;
                (name, details)
            })
            .buffer_unordered(self.concurrency())
            .for_each(|(name, details)| {
                match details {
                    // A record at once: an answer's JSON is not kept a moment longer.
                    Ok(Some(details)) => take(Listed::Record(details.into_record(name))),
                    Ok(None) => tracing::debug!(tag_name = %name, "tag disappeared between listing and details"),
                    Err(err) if err.not_sent() => not_sent = Some(err),
                    Err(err) => take(Listed::Unreadable(name, err)),
                }
                std::future::ready(())
            });
        // GitLab's count, read while the listing starts.
        let count = client.tags_count(repository.id);
        let (listed, (), count) = tokio::join!(listing, fetching, count);
        let (count, listed) = match (count, listed) {
            (Ok(count), listed) => (count, listed),
            (Err(err), Ok(())) => (None, Err(err)),
            (Err(_), Err(err)) => (None, Err(err)),
        };
        TagListing {
            seen: seen_names.len() as u64,
            push_dates: false,
            count,
            // A failed listing says more than a cancelled detail read.
            complete: match listed {
                Ok(()) => not_sent.map_or(Ok(()), Err),
                other => other,
            },
        }
    }

    /// Deletes the named tags of a repository; `done(i, result)` is called
    /// for `names[i]` as soon as its fate is known, once per name.
    pub(crate) async fn delete(
        &self,
        repository: &Repository,
        names: &[&str],
        done: &mut (dyn FnMut(usize, DeleteResult) + Send),
    ) {
        let gid = match &repository.graphql_id {
            Some(gid)
                if !self.graphql_refused.load(Ordering::Relaxed) && !self.deletions_refused.load(Ordering::Relaxed) =>
            {
                gid
            }
            _ => return self.delete_rest(repository, 0..names.len(), names, done).await,
        };
        let batches = names.len().div_ceil(DELETE_BATCH);
        let mut fallen_back: Vec<usize> = Vec::new();
        let refused_here = &AtomicBool::new(false);
        let mut outcomes = stream::iter(0..batches)
            .map(|b| {
                let range = b * DELETE_BATCH..((b + 1) * DELETE_BATCH).min(names.len());
                async move {
                    let outcome = self
                        .delete_batch(repository, gid, &names[range.clone()], refused_here)
                        .await;
                    (range, outcome)
                }
            })
            .buffer_unordered(self.concurrency());
        while let Some((range, outcome)) = outcomes.next().await {
            match outcome {
                BatchOutcome::Done(results) => {
                    for (i, result) in range.zip(results) {
                        match result {
                            Some(result) => done(i, result),
                            None => fallen_back.push(i),
                        }
                    }
                }
                BatchOutcome::UseRest => fallen_back.extend(range),
            }
        }
        if !fallen_back.is_empty() {
            self.delete_rest(repository, fallen_back.into_iter(), names, done).await;
        }
    }

    /// One `destroyContainerRepositoryTags` of up to twenty names. GitLab's
    /// answer names what it deleted; every other name failed — or is
    /// protected, when GitLab says so.
    async fn delete_batch(
        &self,
        repository: &Repository,
        gid: &str,
        batch: &[&str],
        refused_here: &AtomicBool,
    ) -> BatchOutcome {
        if self.graphql_refused.load(Ordering::Relaxed)
            || self.deletions_refused.load(Ordering::Relaxed)
            || refused_here.load(Ordering::Relaxed)
        {
            return BatchOutcome::UseRest;
        }
        match self.client().destroy_tags(gid, batch).await {
            Ok(outcome) => {
                let deleted: HashSet<&str> = outcome.deleted_tag_names.iter().map(String::as_str).collect();
                let why = if outcome.errors.is_empty() {
                    "GitLab did not delete it and gave no reason".to_owned()
                } else {
                    outcome.errors.join("; ")
                };
                // GitLab drops protected names from a mutation silently (and
                // says "cannot delete protected tag(s)" only when it deleted
                // none): REST, authorised tag by tag, tells which they were.
                let silent = outcome.errors.iter().all(|e| e.contains("protected"));
                BatchOutcome::Done(
                    batch
                        .iter()
                        .map(|name| match (deleted.contains(name), silent) {
                            (true, _) => Some(DeleteResult::Deleted),
                            (false, true) => None,
                            (false, false) => Some(DeleteResult::Failed(why.clone())),
                        })
                        .collect(),
                )
            }
            Err(ApiError::Cancelled) => BatchOutcome::Done(vec![Some(DeleteResult::NotSent); batch.len()]),
            Err(ApiError::Deadline) => BatchOutcome::Done(vec![Some(DeleteResult::TimedOut); batch.len()]),
            Err(err) if self.falls_back(&err) => {
                if !self.deletions_refused.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        operation = "api_fallback",
                        reason = %err.explain(),
                        "GraphQL cannot delete this entry's tags; deleting them through the REST API"
                    );
                }
                BatchOutcome::UseRest
            }
            // GitLab refuses the mutation for a whole repository when the
            // project has tag protection rules above the user's role, whatever
            // the names; REST authorises each tag, so the rest can still go.
            Err(err) if err.is_permission_refusal() => {
                if !refused_here.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        operation = "batch_refused",
                        reason = %err,
                        "GitLab refuses batch deletion in this repository (tag protection rules?); deleting tag by tag through REST"
                    );
                }
                BatchOutcome::UseRest
            }
            Err(err) => {
                let ambiguous = mutation_may_have_acted(&err);
                let (err, explained) = (&err, &err.explain());
                let checks = (0..batch.len()).map(|i| async move {
                    let name = batch[i];
                    Some(match ambiguous && self.is_gone(repository, name).await {
                        true => {
                            tracing::debug!(tag_name = %name, error = %err, "the deletion failed, but the tag is gone");
                            DeleteResult::AlreadyGone
                        }
                        false => DeleteResult::Failed(explained.clone()),
                    })
                });
                BatchOutcome::Done(stream::iter(checks).buffered(self.concurrency()).collect().await)
            }
        }
    }

    async fn delete_rest(
        &self,
        repository: &Repository,
        indices: impl Iterator<Item = usize>,
        names: &[&str],
        done: &mut (dyn FnMut(usize, DeleteResult) + Send),
    ) {
        let mut outcomes = stream::iter(indices)
            .map(|i| async move { (i, self.delete_one(repository, names[i]).await) })
            .buffer_unordered(self.concurrency());
        while let Some((i, result)) = outcomes.next().await {
            done(i, result);
        }
    }

    /// One REST DELETE. A failure that may hide a deletion (no answer, a
    /// 5xx), a 404, or a 403 — GitLab's answer for a tag already gone with
    /// the registry metadata database — is checked with one GET.
    async fn delete_one(&self, repository: &Repository, name: &str) -> DeleteResult {
        let err = match self
            .client()
            .delete_tag(repository.project_id, repository.id, name)
            .await
        {
            Ok(()) => return DeleteResult::Deleted,
            Err(ApiError::Cancelled) => return DeleteResult::NotSent,
            Err(ApiError::Deadline) => return DeleteResult::TimedOut,
            Err(err) => err,
        };
        let forbidden = err.status() == Some(403);
        let worth_a_look = err.may_have_acted() || err.status() == Some(404) || (forbidden && !err.is_scope_error());
        if worth_a_look && self.is_gone(repository, name).await {
            tracing::debug!(tag_name = %name, error = %err, "the DELETE failed, but the tag is gone");
            return DeleteResult::AlreadyGone;
        }
        match forbidden && err.says_protected() {
            true => DeleteResult::Protected(err.explain()),
            false => DeleteResult::Failed(err.explain()),
        }
    }

    /// Whether GitLab says the tag is not there (`GET …/tags/:name` is a 404);
    /// a failed check is "not known to be gone".
    async fn is_gone(&self, repository: &Repository, name: &str) -> bool {
        // A deletion already sent is seen through, past the pass's deadline too.
        let client = self.client().with_deadline(None);
        matches!(
            client.tag_details(repository.project_id, repository.id, name).await,
            Ok(None)
        )
    }
}

/// GitLab counts tags up to 10,000, and says 0 when its count call fails.
fn count_proves(count: u64) -> bool {
    (1..10_000).contains(&count)
}

/// Whether a listing of `listed` distinct names is short of both counts.
fn is_cut_short(listed: u64, before: u64, after: u64) -> bool {
    count_proves(before) && count_proves(after) && listed < before && listed < after
}

/// What one deletion mutation came to.
enum BatchOutcome {
    /// A result per name, in order; `None`: ask REST about that name.
    Done(Vec<Option<DeleteResult>>),
    /// GraphQL is not usable for deletions here: these names go through REST.
    UseRest,
}

/// Whether GitLab may have deleted the tags although the mutation failed:
/// no answer, a 5xx, a 200 whose body is broken, or a GraphQL error in place
/// of the payload (GitLab's 30 s GraphQL timeout can strike while its delete
/// service goes on). A permission error is no such case.
fn mutation_may_have_acted(err: &ApiError) -> bool {
    match err {
        ApiError::Decode { .. } => true,
        ApiError::Graphql {
            kind: GraphqlFailure::Field,
            message,
            ..
        } => !message.contains("permission"),
        other => other.may_have_acted(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_listing_is_cut_short_only_below_both_counts_that_prove_something() {
        assert!(is_cut_short(30, 50, 50));
        assert!(
            is_cut_short(0, 5, 5),
            "an empty listing of a repository GitLab counts tags in"
        );
        assert!(!is_cut_short(50, 50, 50));
        assert!(!is_cut_short(30, 50, 30), "others deleted 20 tags meanwhile");
        assert!(!is_cut_short(30, 25, 50), "others pushed 25 tags meanwhile");
        assert!(!is_cut_short(30, 0, 50), "a count of 0 is GitLab's failed count call");
        assert!(!is_cut_short(30, 50, 0));
        assert!(!is_cut_short(9_000, 10_000, 10_000), "10,000 is GitLab's cap");
        assert!(is_cut_short(9_000, 9_999, 9_999));
    }

    proptest! {
        #[test]
        fn a_listing_at_least_as_long_as_either_count_is_never_cut_short(listed in 0u64..20_000, other in 0u64..20_000) {
            prop_assert!(!is_cut_short(listed, listed.min(other), other));
            prop_assert!(!is_cut_short(listed, other, listed.min(other)));
        }
    }
}
