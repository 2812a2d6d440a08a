//! # gitlab-registry-cleaner
//!
//! Deletes old container image tags from GitLab container registries, by the
//! rules of a JSON config, through GitLab's GraphQL API (REST where GraphQL is
//! not usable) — once (`once`), or on a schedule as a daemon. It succeeds the
//! Python `gitlab-registry-async-cleaner` and accepts its config file and
//! flags unchanged.
//!
//! ## Bird's-eye view
//!
//! ```text
//!  main.rs: argv ──► cli ──► settings (flag > env > .env > config file > default)
//!                               │        one resolved Settings, config validated
//!                               ▼
//!  commands: once · daemon (cron loop, SIGHUP reload, graceful stop) · check · demo · plan · apply
//!                               │
//!                               ▼
//!  pass::run_pass ── per entry, in its span: backend.entry(..).repositories()
//!        │           per repository, in its span: .tags() → complete TagRecords
//!        │           policy::decide_rules → kept / doomed (tags waiting for
//!        │           their branch or merge request: one lookup, decide again);
//!        │           the max_deletions fuse
//!        │           .delete(names) → a result per name → deleted / delete_failed
//!        ▼
//!  gitlab::Backend ── REST or GraphQL, the auto fallback, batching of 20,
//!        │            "is it gone?" checks after ambiguous failures
//!        ▼
//!  gitlab::GitlabClient ── one reqwest client, one request funnel: the
//!                          traffic governor (rate cap, RateLimit pacing,
//!                          429 pauses), the process-wide request limit,
//!                          retries, pagination
//! ```
//!
//! ## Codemap
//!
//! Floors, bottom up; a module uses only its own floor and those below, and
//! `tests/architecture.rs` checks it (docs/development.md draws the floors).
//!
//! 1. Leaves: [`policy`] — the pure function that decides which tags go
//!    (`policy/refs.rs`: the branch or merge request a tag names, GitLab's
//!    `CI_COMMIT_REF_SLUG`);
//!    [`duration`] reads `delete_older_than`; [`schedule`] — cron (croner),
//!    in UTC; [`secret`] — the token whose `Debug` is masked; [`logging`] —
//!    JSON lines (span fields on top) or text; [`metrics`] — Prometheus
//!    counters fed plain values, and the `/metrics` server; [`notify`] —
//!    systemd's notify protocol; [`signals`] — SIGHUP, SIGTERM, SIGINT as events;
//!    [`summary`] — the summary table, plain text.
//! 2. [`config`] — the JSON file in two typed stages: its shape (serde, both
//!    forms, JSON paths in errors), then validation into domain types;
//!    [`plan`] — the plan document `plan` writes and `apply` reads.
//! 3. [`gitlab`] — everything that knows GitLab's wire format: the client and
//!    its funnel (with the traffic governor, `gitlab/traffic.rs`), REST,
//!    GraphQL (one large repository listed by several walkers that meet by
//!    names seen, `gitlab/walk.rs`), a project's branches and merge requests
//!    read once a pass (`gitlab/refs.rs`), and the [`gitlab::Backend`] seam.
//! 4. [`pass`] — one cleanup pass: which repositories, the policy, the fuse,
//!    the events and the counts. It never knows which API did the work. Also
//!    `apply` of a plan, through the same deletion code.
//! 5. [`cli`] — clap definitions; [`settings`] — everything resolved once.
//! 6. [`commands`] — `once`, `daemon`, `check`, `plan`, `apply`, and `demo`
//!    (cargo feature).
//!
//! ## Invariants
//!
//! - **Only `policy::decide` chooses deletions** (per rule, through
//!   `policy::decide_rules`), and only for a tag with a usable date older than
//!   the limit that no keep rule protects and that GitLab does not call
//!   protected; a tag no rule governs is kept. Younger than the limit, only
//!   past `delete_when_ref_gone.grace` with its branch or merge request
//!   known to be gone: a failed, cut-short or empty branch list, a failed
//!   or silent merge-request read all keep (`ref_unknown`). Every other
//!   path — an error, an odd date, a tripped fuse, a dry run — keeps the tag.
//!   `apply` deletes only what a plan (made by `policy::decide`) names, and
//!   only while the tag still has the digest the plan recorded.
//! - **All tags of a repository are listed before any of them is deleted**,
//!   and a listing that did not reach its end, or that falls short of
//!   GitLab's own count of the repository's tags, deletes nothing. Deleting while
//!   paging by offset would shift pages and skip tags. A GraphQL tag page is
//!   never asked for more than 20 tags (GitLab skips tags past 20 silently),
//!   and an answer with `errors` is never half-trusted. Walkers listing one
//!   repository in parallel meet by names they have seen, never by comparing
//!   names (GitLab's collation is not byte order).
//! - **The API is invisible to the pass.** Both hand the same
//!   typed tag records ([`gitlab::Listed`]) through the [`gitlab::Backend`]; a test compares
//!   every decision of both on the same data.
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
//! - **JSON shapes stay where they are read**: the file's in [`config`],
//!   GitLab's in [`gitlab`]; everything else works on domain types.
//! - **Only `main` ends the process**: every command returns its exit code,
//!   so the log file's buffered lines are flushed on every path.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
// The crate map links private modules: these docs are for maintainers, built
// with `--document-private-items` (as CI does), where the links resolve.
#![allow(rustdoc::private_intra_doc_links)]

// What `main.rs` uses is public; everything else is the crate's own
// (`cargo doc --document-private-items` shows it all).

pub mod cli;
pub mod commands;
mod config;
mod duration;
mod gitlab;
pub mod logging;
mod metrics;
mod notify;
mod pass;
mod plan;
mod policy;
mod schedule;
mod secret;
mod settings;
mod signals;
mod summary;
