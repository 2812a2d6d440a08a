//! A project's branches and merge requests, read at most once a pass
//! (`delete_when_ref_gone`, spec §3b).
//!
//! Several repositories of one project, in one entry or several, share one
//! read: the first to ask for a project's branches reads them, the others
//! wait for that answer (a failure included, so that one pass never sees a
//! project's branches both ways). A merge request is read once a pass too;
//! only those not known yet are asked for, a page of iids at a time.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use super::backend::EntryApi;
use super::client::PER_PAGE;
use super::error::ApiError;
use crate::policy::slug;

/// The slugs (`CI_COMMIT_REF_SLUG`) of a project's branches.
pub(crate) type BranchSlugs = HashSet<String>;

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

type Branches = Arc<OnceCell<Result<Arc<BranchSlugs>, ApiError>>>;

/// What one pass has read of projects' branches and merge requests.
#[derive(Default)]
pub(super) struct RefCache {
    /// By project id.
    branches: Mutex<HashMap<u64, Branches>>,
    /// By project id and iid.
    merge_requests: Mutex<HashMap<(u64, u64), MergeRequestState>>,
}

impl EntryApi<'_> {
    /// The slugs of every branch of a project: all pages, read once a pass.
    /// An error (also a list GitLab cut short, or one that names no branch)
    /// means nothing may be taken as gone.
    pub(crate) async fn branch_slugs(&self, project_id: u64) -> Result<Arc<BranchSlugs>, ApiError> {
        let cell = {
            let mut branches = self.refs().branches.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(branches.entry(project_id).or_default())
        };
        cell.get_or_init(|| async {
            let names = self.client().branch_names(project_id).await?;
            Ok(Arc::new(names.iter().map(|name| slug(name)).collect()))
        })
        .await
        .clone()
    }

    /// The state of each of a project's merge requests named by `iids`;
    /// those not read earlier in the pass are asked for, a page of iids a
    /// request.
    pub(crate) async fn merge_requests(
        &self,
        project_id: u64,
        iids: &BTreeSet<u64>,
    ) -> Result<HashMap<u64, MergeRequestState>, ApiError> {
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
