//! Everything that knows GitLab: its two APIs, their JSON, and the one HTTP
//! client they share.
//!
//! - `client` — the one `reqwest::Client` and its request funnel: the
//!   process-wide request limit, retries with backoff or `Retry-After`,
//!   pagination by `X-Next-Page`/`Link` on the same host only.
//! - `rest` and `graphql` — the two protocols, over that funnel.
//! - `backend` — the seam the pass uses: [`Backend`] and one [`EntryApi`] per
//!   config entry hand out repositories, complete tag listings as
//!   [`record::TagRecord`]s, and per-name deletion results. REST vs GraphQL, the
//!   `auto` fallback, batching and the "is it gone?" checks are decided there
//!   and nowhere else.
//! - `walk` — one repository's tags listed by several walkers at once.
//! - `refs` — a project's branches and merge requests, read once a pass.
//! - `wire` — JSON shapes; `error` — [`ApiError`] and its operator hints.
//!
//! The facts about GitLab this relies on are in `docs/gitlab-api.md`. No JSON
//! shape leaves this module.

mod backend;
mod client;
mod error;
mod graphql;
mod record;
mod refs;
mod rest;
mod retry;
mod traffic;
mod walk;
mod wire;

pub(crate) use backend::{Backend, DeleteResult, EntryApi, Listed, Owner, PushDate};
pub(crate) use client::{ClientBuildError, ClientOptions, GitlabClient};
pub(crate) use error::ApiError;
pub(crate) use record::Digest;
pub(crate) use refs::{MergeRequestState, RefList};
pub(crate) use rest::RefKind;
pub(crate) use retry::RetryPolicy;
pub(crate) use wire::Repository;

#[cfg(test)]
mod tests;
