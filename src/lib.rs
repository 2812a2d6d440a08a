//! # gitlab-registry-cleaner
//!
//! Deletes old container image tags from GitLab container registries, by the
//! rules of a JSON config, through GitLab's GraphQL API (REST where GraphQL is
//! not usable) — once (`once`), or on a schedule as a daemon. It succeeds the Python `gitlab-registry-async-cleaner`
//! and accepts its config file and flags unchanged.
//!
//! ## Bird's-eye view
//!
//! ```text
//!  argv/env/.env ──► cli ──► app ──► config::Config::load ──► validated Config
//!                                │
//!                                ├─► gitlab::GitlabClient (one reqwest client, one request funnel)
//!                                │
//!                                ├─► pass::run_pass ──► per entry: list repositories (GraphQL, or REST:
//!                                │        │              api auto falls back per entry / repository)
//!                                │        │              per repository: list ALL tag pages — GraphQL:
//!                                │        │              20 tags with dates a page; REST: names, and the
//!                                │        │              candidates' details as pages arrive;
//!                                │        │              then policy::decide (it never knows which API)
//!                                │        └──────────────► delete (or dry_run log): 20 a GraphQL mutation
//!                                │                         or one REST DELETE a tag; per repository,
//!                                │                         or after the entry's max_deletions fuse
//!                                └─► daemon::run ──► the same pass on a cron schedule,
//!                                                   SIGHUP reload, graceful stop, systemd notify
//! ```
//!
//! ## Codemap
//!
//! - `main.rs` — parse, logging, runtime, [`commands::run`], exit code; the
//!   only place that ends the process or prints errors to stderr.
//! - [`settings`] — resolves settings (flag > env > `.env` > config >
//!   default) into one [`settings::Settings`]; its errors are exit 2.
//! - [`commands`] — `once`, `daemon`, `check`, `demo`: settings in, work
//!   done, exit code out (0/1/2).
//! - [`cli`] — clap definitions of commands, flags and environment variables.
//! - [`config`] — the JSON config, both forms, validated into domain types;
//!   errors name the JSON path. [`duration`] reads `delete_older_than`.
//! - [`policy`] — the pure function that decides which tags go.
//! - [`gitlab`] — the GitLab client: REST pagination, GraphQL queries and
//!   the delete mutation (`gitlab/graphql.rs`), the one request funnel with
//!   retries, error mapping. The only module that knows GitLab's wire format.
//! - [`pass`] — one cleanup pass: orchestration, bounded concurrency, logging
//!   of every decision.
//! - [`logging`] — JSON-lines or text output through `tracing`.
//! - [`schedule`] — cron expressions (croner), evaluated in UTC.
//! - [`commands::daemon`] — the resident mode: one event loop over ticks,
//!   finished passes, signals and the watchdog; reload and graceful stop.
//!   Clock, signals, reload and passes are injected, for tests in paused time.
//! - [`signals`] — SIGHUP reload, SIGTERM/SIGINT stop, as a channel of events.
//! - [`notify`] — systemd's notify protocol. [`metrics`] — Prometheus
//!   counters and the `/metrics` + `/healthz` server; a leaf that records
//!   plain values.
//! - `commands::demo` — the `demo` command (cargo feature `demo`, on by
//!   default), against the fake GitLab of `tests/fake-gitlab`.
//! - [`secret`] — the token type whose `Debug` is masked.
//!
//! ## Invariants
//!
//! - **Only `policy::decide` chooses deletions**, and only for a tag with a
//!   usable date older than the limit that no keep rule protects. Every other
//!   path — an error, an odd date, a tripped fuse, a dry run — keeps the tag.
//! - **All tags of a repository are listed before any of them is deleted.**
//!   Deleting while paging by offset would shift pages and skip tags. A
//!   GraphQL tag page is never asked for more than 20 tags (GitLab skips tags
//!   past 20 silently), and an answer with `errors` is never half-trusted.
//! - **The API is invisible to the policy.** Both paths hand the same
//!   [`policy::TagFacts`] to [`policy::decide`]; a test compares every
//!   decision of both on the same data.
//! - **One HTTP client and one request funnel.** Every request holds one
//!   permit of the process-wide limit (`--concurrency`) while in flight, and
//!   none while backing off; work is driven by bounded streams, not a task
//!   per tag.
//! - **The token goes only to the configured GitLab** (no redirects; a
//!   `Link` to another host is refused) and never into any log or message:
//!   it lives in a [`secret::Secret`] whose `Debug` is masked, and its header
//!   is marked sensitive.
//! - **A failure is local.** A tag, repository or entry that fails is logged
//!   and counted; the pass goes on and its exit code says it was incomplete.
//! - Only [`config`] and [`gitlab`] know JSON shapes; everything else works on
//!   validated domain types.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod duration;
pub mod gitlab;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pass;
pub mod policy;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod signals;
