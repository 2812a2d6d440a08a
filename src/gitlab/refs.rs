//! A project's branches, git tags and merge requests, read at most once a
//! pass (`delete_when_ref_gone`, spec §3b).
//!
//! Several repositories of one project, in one entry or several, share one
//! read: the first to ask for a project's branches reads them, the others
//! wait for that answer (a failure included, so that one pass never sees a
//! project's branches both ways). Git tags count as refs too: a tag
//! pipeline's `CI_COMMIT_REF_SLUG` is its git tag's. A merge request is read
//! once a pass too; only those not known yet are asked for, a page of iids
//! at a time.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::backend::EntryApi;
use super::client::PER_PAGE;
use super::error::ApiError;
use super::rest::RefKind;
use crate::policy::slug;

/// A merge request as far as `delete_when_ref_gone` cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MergeRequestState {
    /// `opened`, or `locked` (being merged): its images are still in use.
    Open,
    /// `merged` or `closed`.
    Done,
    /// GitLab lists no merge request with this iid (deleted, or never was).
    NotFound,
    /// A state this version does not know; never taken for done.
    Other(String),
}

impl MergeRequestState {
    fn from_gitlab(state: String) -> MergeRequestState {
        match state.as_str() {
            "opened" | "locked" => MergeRequestState::Open,
            "merged" | "closed" => MergeRequestState::Done,
            _ => MergeRequestState::Other(state),
        }
    }
}

/// A project's branches or git tags, as slugs, and how recent the list is.
#[derive(Debug)]
pub(crate) struct RefList {
    /// The slugs (`CI_COMMIT_REF_SLUG`) of every name listed.
    pub slugs: HashSet<String>,
    /// The list tells nothing of a ref created after this instant: when it
    /// was asked for, less the 30 seconds GitLab may serve a cached list.
    pub as_of: Timestamp,
    /// When it was asked for, on this process's monotonic clock.
    pub requested: Instant,
}

/// GitLab caches the answers of its branch and tag lists this long.
const GITLAB_CACHE: SignedDuration = SignedDuration::from_secs(30);

type Cell<T> = Arc<OnceCell<Result<T, ApiError>>>;
type Cells<K, T> = Mutex<HashMap<K, Cell<T>>>;
/// The latest reading of a ref list, one reader at a time.
type Latest = Arc<tokio::sync::Mutex<Option<Result<Arc<RefList>, ApiError>>>>;

/// What one pass has read of projects' refs and merge requests.
#[derive(Default)]
pub(super) struct RefCache {
    /// By project id and kind.
    refs: Mutex<HashMap<(u64, RefKind), Latest>>,
    /// Whether each project is a fork, by project id.
    forks: Cells<u64, bool>,
    /// By project id and iid.
    merge_requests: Mutex<HashMap<(u64, u64), MergeRequestState>>,
    /// One lookup of a project's merge requests at a time, so that
    /// repositories of one project decided at once ask each iid once.
    merge_request_turns: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// The failures already reported, by project id and what failed.
    reported: Mutex<HashSet<(u64, &'static str)>>,
}

/// The one cell of `key` in `map`, made on first use.
fn cell<K: std::hash::Hash + Eq, T>(map: &Cells<K, T>, key: K) -> Cell<T> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(map.entry(key).or_default())
}

impl EntryApi<'_> {
    /// A project's branches or git tags, all pages, read once a pass — or,
    /// given `not_before` (the end of the listing of the tags they will
    /// judge, when those tags' dates are not push dates), asked for at or
    /// after it, so that the branch of every tag listed is in the list
    /// unless it is gone: a reading that recent is shared, an older one
    /// read again. An error (also a list cut short or changed while read,
    /// or a project without any branch) is kept for the pass, and means
    /// nothing may be taken as gone.
    pub(crate) async fn refs_of(
        &self,
        project_id: u64,
        kind: RefKind,
        not_before: Option<Instant>,
    ) -> Result<Arc<RefList>, ApiError> {
        let latest = {
            let mut refs = self.refs().refs.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(refs.entry((project_id, kind)).or_default())
        };
        let mut latest = latest.lock().await;
        match &*latest {
            Some(Err(err)) => return Err(err.clone()),
            Some(Ok(list)) if not_before.is_none_or(|not_before| list.requested >= not_before) => {
                return Ok(Arc::clone(list));
            }
            _ => {}
        }
        let mut attempts = 0;
        let read = loop {
            attempts += 1;
            let requested = Instant::now();
            let as_of = Timestamp::now() - GITLAB_CACHE;
            match self.client().ref_names(project_id, kind).await {
                Ok(names) => {
                    break Ok(Arc::new(RefList {
                        slugs: names.iter().map(|name| slug(name)).collect(),
                        as_of,
                        requested,
                    }));
                }
                // A list that changed while it was read (a 422 for a page
                // token whose branch was deleted meanwhile, counts that
                // moved) is read once more before the pass gives up on it.
                Err(err) if attempts < 2 && changed_while_read(&err) => {
                    tracing::debug!(project_id, error = %err, "the ref list changed while it was read; reading it again");
                }
                Err(err) => break Err(err),
            }
        };
        *latest = Some(read.clone());
        read
    }

    /// Whether a project is a fork: its merge requests' iids may not be
    /// the ones its tags name (a fork's pipeline for an upstream merge
    /// request carries the upstream's iid). Read once a pass.
    pub(crate) async fn is_fork(&self, project_id: u64) -> Result<bool, ApiError> {
        cell(&self.refs().forks, project_id)
            .get_or_init(|| self.client().is_fork(project_id))
            .await
            .clone()
    }

    /// Whether this is the first report of `what` failing for a project in
    /// this pass (each is logged and counted once).
    pub(crate) fn first_report(&self, project_id: u64, what: &'static str) -> bool {
        let mut reported = self.refs().reported.lock().unwrap_or_else(PoisonError::into_inner);
        reported.insert((project_id, what))
    }

    /// The state of each of a project's merge requests named by `iids`;
    /// those not read earlier in the pass are asked for, a page of iids a
    /// request.
    pub(crate) async fn merge_requests(
        &self,
        project_id: u64,
        iids: &BTreeSet<u64>,
    ) -> Result<HashMap<u64, MergeRequestState>, ApiError> {
        let turn = {
            let mut turns = self
                .refs()
                .merge_request_turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(turns.entry(project_id).or_default())
        };
        let _turn = turn.lock().await;
        let known = |iid: &u64| -> Option<MergeRequestState> {
            let cache = self
                .refs()
                .merge_requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache.get(&(project_id, *iid)).cloned()
        };
        let missing: Vec<u64> = iids.iter().copied().filter(|iid| known(iid).is_none()).collect();
        for batch in missing.chunks(PER_PAGE as usize) {
            let mut states: HashMap<u64, MergeRequestState> =
                batch.iter().map(|&iid| (iid, MergeRequestState::NotFound)).collect();
            for (iid, state) in self.client().merge_request_states(project_id, batch).await? {
                // Only what was asked: an answer that ignored the filter
                // must not fill in other merge requests.
                if let Some(slot) = states.get_mut(&iid) {
                    *slot = MergeRequestState::from_gitlab(state);
                }
            }
            let mut cache = self
                .refs()
                .merge_requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache.extend(states.into_iter().map(|(iid, state)| ((project_id, iid), state)));
        }
        Ok(iids
            .iter()
            .map(|iid| (*iid, known(iid).unwrap_or(MergeRequestState::NotFound)))
            .collect())
    }
}

/// Whether a ref list failed in a way a second reading may not.
fn changed_while_read(err: &ApiError) -> bool {
    matches!(err, ApiError::Untrusted { .. } | ApiError::Status { status: 422, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_merged_and_closed_are_done() {
        for (state, expected) in [
            ("opened", MergeRequestState::Open),
            ("locked", MergeRequestState::Open),
            ("merged", MergeRequestState::Done),
            ("closed", MergeRequestState::Done),
            ("reopened", MergeRequestState::Other("reopened".to_owned())),
            ("", MergeRequestState::Other(String::new())),
        ] {
            assert_eq!(MergeRequestState::from_gitlab(state.to_owned()), expected, "{state}");
        }
    }
}
