//! A stateful fake of GitLab's container registry API: REST (API v4) and GraphQL.
//!
//! `fake-gitlab` is an in-process HTTP/1.1 server (hyper 1, its own tokio
//! runtime on a background thread) that answers the handful of endpoints a
//! tag-cleanup tool uses, the way GitLab 17.9+ answers them. By default
//! ([`Seed::default`]) its registry has the metadata database, as on
//! GitLab.com and the self-managed instances that enabled it;
//! `metadata_database: false` models the legacy registry (see
//! [Two registries](#two-registries)). A test that depends on the mode says which.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v4/version` | `{"version":"17.5.0-ee","revision":"abc123"}` |
//! | `GET /api/v4/projects/:id/registry/repositories` | repository entities (with `status`), offset-paginated (`tags`, `tags_count` options supported) |
//! | `GET /api/v4/registry/repositories/:id` | one repository entity (`tags`, `tags_count`, `size` options); 404 `{"message":"404 Not found"}` |
//! | `GET /api/v4/groups/:id/registry/repositories` | repositories of every project under the group, offset-paginated |
//! | `GET /api/v4/projects/:id/registry/repositories/:repository_id/tags` | `[{name,path,location}]` sorted by name (the collation below), offset-paginated |
//! | `GET .../tags/:tag_name` | tag details (`revision`, `short_revision`, `digest`, `created_at`, `total_size`) |
//! | `DELETE .../tags/:tag_name` | `200` with the literal JSON body `200`; 403 for protected tags (and, with the metadata database, missing ones) |
//! | `GET /api/v4/projects/:id`, `GET /api/v4/groups/:id` | the entity's `path_with_namespace` / `full_path`; a fork's project entity has `forked_from_project` ([`Seed::forks`]), others none; a group's own `projects` unless `with_projects=false` |
//! | `GET /api/v4/projects/:id/repository/branches` | branch entities by name (byte order); offset pages, or Gitaly's keyset pages with `pagination=keyset` (see [Branches, merge requests, Git tags and forks](#branches-merge-requests-git-tags-and-forks)) |
//! | `GET /api/v4/projects/:id/repository/tags` | Git tags ([`Seed::git_tags`], not the registry's) by name (byte order), paged exactly like the branches; each `{name, message: null, target, commit: {id, short_id, …}, release: null, protected: false, created_at: null}` |
//! | `GET /api/v4/projects/:id/merge_requests` | merge requests newest first, filtered by `iids[]` and `state`, `view=simple` or the fuller entity, offset-paginated |
//! | `POST /api/graphql` | `project`/`group` → `containerRepositories`, `containerRepository(id:)` → `tags`, `destroyContainerRepositoryTags`; validated against GitLab's schema (see the `graphql` module) |
//!
//! The state is real: a deleted tag is gone from later lists and details,
//! and tests can inspect it ([`FakeGitlab::tag_names`],
//! [`FakeGitlab::deleted`], [`FakeGitlab::tag_digest`]) or change it while
//! the server runs ([`FakeGitlab::add_tag`], [`FakeGitlab::push_tag`],
//! [`FakeGitlab::remove_tag`],
//! [`FakeGitlab::add_project`], [`FakeGitlab::set_tag_protection_rules`],
//! [`FakeGitlab::set_role`], [`FakeGitlab::set_repository_status`],
//! [`FakeGitlab::add_branch`], [`FakeGitlab::delete_branch`],
//! [`FakeGitlab::add_merge_request`], [`FakeGitlab::set_merge_request_state`],
//! [`FakeGitlab::set_branch_listing_cut`], [`FakeGitlab::add_git_tag`],
//! [`FakeGitlab::delete_git_tag`], [`FakeGitlab::git_tag_names`]).
//! It can also throttle like GitLab does (see [Rate limits](#rate-limits)).
//!
//! # What it imitates
//!
//! * Routing is done on the raw path, split on `/`, each segment then
//!   percent-decoded: `:id` may be a numeric id or a URL-encoded full path
//!   (`group%2Fsub%2Fapp`, matched case-insensitively); an unencoded
//!   `group/app` matches no route and gets GitLab's catch-all
//!   404 `{"error":"404 Not Found"}`. A known path with another method gets
//!   405 `{"message":"405 Method Not Allowed"}`.
//! * Authentication: `PRIVATE-TOKEN: <token>` or `Authorization: Bearer
//!   <token>`; anything else is 401 `{"message":"401 Unauthorized"}`. A
//!   read-only (`read_api`) token may `GET` but a `DELETE` gets 403
//!   `insufficient_scope`.
//! * The order of checks follows Grape: route → authentication → project or
//!   group lookup (404 `Project Not Found` / `Group Not Found`) → parameter
//!   validation (400 `{"error":"page is invalid"}`) → repository lookup
//!   (404 `Repository Not Found`) → tag lookup (404 `Tag Not Found`).
//! * Offset pagination like Kaminari: `page` (default 1, values below 1 mean
//!   1), `per_page` (default 20, clamped to `1..=100`); headers `X-Page`,
//!   `X-Per-Page`, `X-Total`, `X-Total-Pages` (at least 1), `X-Next-Page` and
//!   `X-Prev-Page` (empty when there is none, also past the end) and `Link`
//!   (`prev`, `next` if any, `first` and `last` always). Link URLs are the
//!   request URL (`http://` + the `Host` header + raw path) with `page` and
//!   `per_page` replaced, the other query parameters kept, and the query
//!   sorted like Ruby's `Hash#to_query`. A page past the end is `[]`.
//! * `pagination=keyset` on the tags list gets 405, as on a GitLab whose
//!   registry has no metadata database.
//! * Deleting a tag that does not exist answers `200` (the legacy
//!   registry path treats the registry's 404 as success), 403
//!   `{"message":"403 Forbidden"}` with the metadata database.
//! * Lists of 10,000 items or more have no `X-Total`, no `X-Total-Pages`
//!   and no `last` link, as GitLab does not count them.
//! * A repository's `status` is `null`, or `delete_scheduled`,
//!   `delete_failed`, `delete_ongoing` ([`Seed::repository_status`]);
//!   GraphQL's is `DELETE_SCHEDULED` etc.
//! * `GET /groups/:id` lists the projects directly in the group (not its
//!   subgroups') as `projects`, with `shared_projects: []`, unless
//!   `with_projects=false`. [`RequestRecord::query_param`] shows what a
//!   client asked.
//!
//! # Two registries
//!
//! | | legacy | metadata database (default) |
//! |---|---|---|
//! | `createdAt` (GraphQL), `created_at` (REST details) | the image's build time ([`Tag::created_at`], may be null) | the tag's first push ([`Tag::created_at`]) |
//! | `publishedAt` (GraphQL) | null | the last push that changed the digest ([`Tag::published_at`], else `created_at`) |
//! | [`FakeGitlab::push_tag`] of a new digest | moves the digest and `created_at` (a new build) | moves the digest and `publishedAt` only |
//! | GraphQL tag pages | offset cursors over the whole list, `first` capped at 20 | the registry's keyset pages: `first > 20` skips tags, no `first` lists nothing (see the `graphql` module) |
//! | tag cursors, name sort | opaque | the raw name of the page's last tag; `after` may be any string (tags whose name sorts after it); an `after` without a word character (`""`, `"-"`) is an empty last page, no error |
//! | tag listings (REST and GraphQL) | only the first 10,000 tags by name | all tags |
//! | REST `DELETE` of a missing tag | 200 | 403 |
//! | tag protection rules | refused at start | see below |
//!
//! Names sort like a database collation, not byte-wise, everywhere (REST
//! and GraphQL listings, name cursors, `after`, the legacy registry's first
//! 10,000): punctuation is ignored and case folded first — the lowercase
//! letters and digits are compared, so `a-b`, `A_b` and `ab` sort together
//! and `v1.10` comes before `v1.9` — and ties are broken by the full name's
//! bytes, so the order is total. `after: X` lists the names that sort after
//! `X` in this order, whether or not a tag `X` exists. A client that compares
//! names itself (byte order) to decide where a listing stands gets it wrong
//! here, as it would against GitLab. [`FakeGitlab::tag_names`] returns this order.
//!
//! Counts (GraphQL `tagsCount` on both repository types, REST `tags_count`)
//! come from another registry call: `min(tags, 10000)`, and 0 when that call
//! fails ([`Fault::TagsCountFails`]).
//!
//! # Protected and immutable tags
//!
//! [`Seed::tag_protection_rules`] gives a project [`TagProtectionRule`]s
//! (GitLab 17.9+, metadata database only); [`Seed::role`] and
//! [`Seed::project_roles`] the token user's [`AccessLevel`] (Developer by
//! default). A tag is protected for the user when a rule matches its whole
//! name and the user's role is below the rule's delete level, or the rule
//! is immutable (then for everyone). Then:
//!
//! * GraphQL `userPermissions { destroyContainerRepositoryTag }` is false;
//!   `protection { minimumAccessLevelForDelete minimumAccessLevelForPush
//!   immutable }` is the most restrictive matching rule (null when none
//!   matches, whatever the role);
//! * REST `DELETE` is authorised per tag: 403 `{"message":"403 Forbidden -
//!   cannot delete protected tag(s)"}` for a protected one, 200 for another
//!   tag of the same repository;
//! * `destroyContainerRepositoryTags` is refused for the **whole
//!   repository** (top-level error "The resource that you are attempting to
//!   access does not exist or you don't have permission to perform this
//!   action", the field null, nothing deleted) when any rule of the project
//!   is above the user's role or immutable and the repository has tags,
//!   whatever names are sent.
//!
//! [`Tag::protected`] is older and simpler: a tag this token can never
//! delete (REST 403, dropped from mutations, `userPermissions` false,
//! `protection` null), without refusing the whole repository.
//!
//! [`Seed::tag_fields`] imitates an older GitLab whose schema lacks the
//! experiment fields ([`TagFields`]): a query asking for `protection`
//! (before 17.9) or the tag's `userPermissions` (before 16.7) is rejected at
//! validation, with no `data`.
//!
//! # Branches, merge requests, Git tags and forks
//!
//! Each project has branches ([`Seed::branches`]; none seeded: `main`,
//! default and protected) and merge requests ([`Seed::merge_requests`],
//! with a [`MergeRequestState`]), and may have Git tags and a parent it
//! was forked from. Each route checks like the others (authentication,
//! then 404 `Project Not Found`, then parameters).
//!
//! * **Branches** are listed by name in byte order, as Gitaly sorts refs
//!   (`Zeta` < `feature/a` < `main`). Each is `{name, commit: {id (40 hex),
//!   short_id, …}, merged: false, protected, developers_can_push: false,
//!   developers_can_merge: false, can_push: true, default, web_url}`.
//! * With GitLab's `branch_list_keyset_pagination` flag
//!   ([`Seed::branch_keyset_pagination`], on by default) and
//!   `pagination=keyset`: Gitaly's pager. `per_page` (default 20, at most
//!   100) branches after `page_token` (a branch name; the first page without
//!   it); a `Link: <…page_token=LAST…>; rel="next"` (the request's other
//!   parameters kept, sorted like `Hash#to_query`) **whenever the page is
//!   full**, so an exactly full last page is followed by an empty one; no
//!   `X-Total`, `X-Page` or `X-Next-Page`. A `page_token` naming no branch
//!   (e.g. deleted since the last page) is 422 `{"message":"Invalid page
//!   token: refs/heads/NAME"}`, as Gitaly cannot find where to start.
//! * Otherwise offset pages (Kaminari headers, as above), except that with
//!   the flag on GitLab serves page 1 from Gitaly too: its `X-Next-Page` is
//!   always `2` and `X-Total-Pages` is `total / per_page + 1` (3 for 200
//!   branches by 100). Without the flag, `pagination=keyset` is ignored.
//! * **Merge requests** are listed newest first (a higher `iid` is newer);
//!   `iids[]` (repeated, or `iids=12,13`; unknown iids are simply absent;
//!   none given: all), `state` (`opened`, `closed`, `locked`, `merged`,
//!   `all`, default `all`; else 400 `state does not have a valid value`),
//!   `view=simple` (`id, iid, project_id, title, description, state,
//!   created_at, updated_at, web_url`) or the fuller entity (with
//!   `source_branch`, `target_branch`, `merged_at`, `closed_at`, `sha`,
//!   `references` …). A non-integer iid is 400 `{"error":"iids is
//!   invalid"}`.
//! * **Git tags** ([`Seed::git_tags`]; none seeded: none) are lightweight
//!   tags (`message` null, `target` the commit id), listed and paged by the
//!   branches' pager: the same flag, keyset pages, first-offset-page quirk
//!   and 422, whose message names `refs/tags/NAME` (the cut knob is the
//!   branches' only). [`Route::GitTags`] (`GET
//!   /projects/:id/repository/tags`) is not [`Route::Tags`] (the
//!   registry's tags).
//! * **Forks** ([`Seed::forks`]: fork → a seeded parent, else
//!   [`FakeGitlab::start`] fails): the fork's project entity has
//!   `forked_from_project` `{id, name, path, path_with_namespace,
//!   name_with_namespace, default_branch}`; other projects have no such key.
//! * [`Route::Branches`], [`Route::GitTags`] and [`Route::MergeRequests`]
//!   take fault rules and are counted in [`Stats`].
//!   [`FakeGitlab::set_branch_listing_cut`] cuts
//!   a project's branch listing short **without an error**: after the n-th
//!   branch nothing more is listed; offset pages name no next page from the
//!   page holding it on (`X-Total`, `X-Total-Pages` still count every
//!   branch), keyset pages have no `next` link from that page on.
//!
//! # Fault model
//!
//! [`FakeGitlab::set_faults`] installs a [`Faults`] configuration:
//!
//! * `latency` is slept before *every* response (faulted ones included;
//!   for [`Fault::Drop`] the connection is closed after the latency),
//!   counted from the request's arrival and kept to within tens of
//!   microseconds by a dedicated timer thread (tokio's timer would add
//!   0.5–1.5 ms to each request).
//! * `rules` are checked in order for each request; the first rule whose
//!   [`Route`] matches, whose `times` budget is not used up and whose
//!   probability draw succeeds applies. A draw is a hash of `seed`, the rule,
//!   the request (method, path, query) and how many times that same request
//!   came before, so a seeded run meets the same faults whatever order
//!   concurrency gives the requests (no draw is made for probabilities `>= 1`
//!   or `<= 0`). Installing a configuration resets the budgets and counts.
//! * What the faults do:
//!   * [`Fault::Status`]: answer that status, body, content type and optional
//!     `Retry-After`; the request is **not** performed (no authentication, no
//!     state change), as if a proxy or rate limiter in front of GitLab
//!     answered.
//!   * [`Fault::DeleteThen502`]: perform the request (for a `DELETE`, the tag
//!     is deleted), then answer 502 `text/html` "Bad Gateway".
//!   * [`Fault::MalformedJson`] / [`Fault::WrongShapeJson`]: perform the
//!     request, then answer 200 `application/json` with the real body cut
//!     in half (always invalid JSON) / with `{"unexpected":true}`. The real
//!     response's headers (pagination) are kept.
//!   * [`Fault::Drop`]: close the TCP connection without writing anything;
//!     the request is not performed.
//!   * [`Fault::Delay`]: answer normally, after the extra delay.
//!   * [`Fault::LinkElsewhere`]: answer normally, but with the next page
//!     announced only by a `Link` to another host.
//!   * [`Fault::RegistryCut`]: perform the request with every tag listing in
//!     it cut short *silently*, as GitLab hides a registry failure: GraphQL
//!     `tags` is an empty page with `hasNextPage: false` and no error; a REST
//!     tags page is `[]` with no next page and totals that count only the
//!     pages before. Counts stay whole. `FaultRule::always(Route::Tags,
//!     Fault::RegistryCut).after(2)` ends a listing after two pages.
//!   * [`Fault::TagsCountFails`]: perform the request with every tag count
//!     in it 0.
//!
//! State changes take effect when the request arrives; latency and delays
//! only hold back the *response*. So a client that times out on a slow
//! `DELETE` will find the tag gone, just as with a slow real server.
//!
//! Every request, including 401s, faulted and dropped ones, is recorded in
//! [`Stats`] together with the number of requests in flight at once.
//!
//! # Rate limits
//!
//! [`Seed::throttle`] (or [`FakeGitlab::set_throttle`] while it runs)
//! imitates GitLab's authenticated API throttle (Rack::Attack,
//! `throttle_authenticated_api`); there is none by default, as on a
//! self-managed GitLab. A [`Throttle`] allows `limit` requests per token in
//! each **fixed** window:
//!
//! * Windows of whole seconds are aligned to Unix time, as Rack::Attack's
//!   (`floor(unix_seconds / period)`): an hour's window ends on the clock
//!   hour, whenever the fake started. Shorter or fractional windows (e.g.
//!   300 ms, for fast tests) count from when the throttle was set, on the
//!   monotonic clock. [`FakeGitlab::throttle_window_remaining`] says how
//!   long the current window lasts, so a test can wait for a fresh one.
//! * Counted: every request presenting a valid token (the token and the
//!   read-only token count separately, as two users), REST and GraphQL
//!   together, as GitLab.com counts them; a throttled request counts too,
//!   as in Rack::Attack. Not counted: 401s (bad or no token; GitLab's
//!   unauthenticated throttle is not modelled), requests a fault answers in
//!   GitLab's place ([`Fault::Status`], [`Fault::Drop`]) and GraphQL behind
//!   [`GraphqlSupport::Missing`]. Faults that let the request through count it.
//! * The request over the limit is **not** performed (no state change) and
//!   gets 429 `text/plain` `Retry later` (only the latency is added), with
//!   these headers, as GitLab computes them:
//!
//!   | header | value |
//!   |---|---|
//!   | `RateLimit-Name` | `throttle_authenticated_api` |
//!   | `RateLimit-Limit` | `limit` per minute, rounded up: `ceil(limit * 60 / window_seconds)` |
//!   | `RateLimit-Observed` | requests of the token in this window, this one included |
//!   | `RateLimit-Remaining` | `limit - observed`, at least 0 (the real limit, not per minute) |
//!   | `RateLimit-Reset` | the window's end, Unix seconds |
//!   | `RateLimit-ResetTime` | the same as an HTTP date (`Tue, 05 Jan 2021 11:00:00 GMT`) |
//!   | `Retry-After` | whole seconds to the window's end, at least 1 (up to 3,600 for an hour's window) |
//!
//! * [`ThrottleHeaders`] says which answers carry them: `Full` (GitLab 18.6's
//!   `rate_limiting_headers_for_unthrottled_requests`) also puts the first
//!   five on every other answer of a counted request, so a client can pace
//!   itself; `OnlyOnThrottle` only on 429s; `None` never (a bare 429, as
//!   application-level limits and some proxies answer).
//!
//! [`Stats`] tells what rate a client really kept: [`Stats::throttled`]
//! (429s answered), [`Stats::max_requests_in_any`] (the most arrivals within
//! any sliding interval, e.g. a second) and [`Stats::arrivals`]; throttled
//! requests are recorded with status 429.
//!
//! # Example
//!
//! ```
//! use fake_gitlab::{FakeGitlab, Project, Repository, Seed, Tag};
//! use std::time::Duration;
//!
//! let fake = FakeGitlab::start(Seed {
//!     token: "secret".into(),
//!     registry_host: "registry.example.com:5005".into(),
//!     projects: vec![Project {
//!         id: 7,
//!         path: "group/app".into(),
//!         repositories: vec![Repository {
//!             id: 1,
//!             name: String::new(),
//!             tags: vec![Tag::aged("v1", Duration::from_secs(3600)), Tag::new("latest", None)],
//!         }],
//!     }],
//!     ..Seed::default()
//! })
//! .unwrap();
//! assert!(fake.url().starts_with("http://127.0.0.1:"));
//! assert_eq!(fake.tag_names(1), ["latest", "v1"]);
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod api;
mod graphql;
mod server;
mod state;
mod throttle;
mod timer;

pub use server::FakeGitlab;

/// The data a fake starts with.
///
/// `Seed::default()` models GitLab.com's setup: a registry with the metadata
/// database (`metadata_database: true`), GraphQL available, a Developer
/// token, no protection rules. Tests that depend on the mode say which.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The valid token (`PRIVATE-TOKEN` header or `Authorization: Bearer`).
    pub token: String,
    /// A `read_api` token: `GET`s work, `DELETE` gets 403 `insufficient_scope`.
    pub read_only_token: Option<String>,
    /// Registry `host:port`, e.g. `registry.example.com:5005`; used to build `location`.
    pub registry_host: String,
    pub projects: Vec<Project>,
    pub groups: Vec<Group>,
    /// Whether `POST /api/graphql` exists (it does on every GitLab since 12.0;
    /// [`GraphqlSupport::Missing`] imitates a proxy that blocks it).
    pub graphql: GraphqlSupport,
    /// Whether the registry has GitLab's metadata database: then GraphQL's
    /// `publishedAt` is set and tag pages are the registry's keyset pages
    /// (with their `first > 20` pitfall); without it `publishedAt` is null
    /// and tags are paged by offset over the whole list.
    ///
    /// With it, `createdAt`/`created_at` is the tag's first push and
    /// `publishedAt` its last push that changed the digest; tag cursors with
    /// name sort are raw names; a REST `DELETE` of a missing tag is 403; tag
    /// protection rules are allowed. Without it, tag listings show only the
    /// first 10,000 tags.
    pub metadata_database: bool,
    /// Tag protection rules, by project id (GitLab 17.9+; they need the
    /// metadata database: [`FakeGitlab::start`] refuses them without it).
    pub tag_protection_rules: BTreeMap<u64, Vec<TagProtectionRule>>,
    /// The token user's role on every project (default Developer).
    pub role: AccessLevel,
    /// The token user's role on some projects, by project id, overriding `role`.
    pub project_roles: BTreeMap<u64, AccessLevel>,
    /// Repository status by repository id; a repository not listed has none (`null`).
    pub repository_status: BTreeMap<u64, RepositoryStatus>,
    /// Which tag fields GitLab's GraphQL schema has (default: both
    /// `userPermissions` and `protection`, as GitLab 17.9+).
    pub tag_fields: TagFields,
    /// GitLab's authenticated API rate limit (default none, as on a
    /// self-managed GitLab); see [Rate limits](crate#rate-limits).
    pub throttle: Option<Throttle>,
    /// Branches by project id; a project not listed has one branch, `main`
    /// ([`Branch::default_branch`]), an empty list none. See
    /// [Branches, merge requests, Git tags and forks](crate#branches-merge-requests-git-tags-and-forks).
    pub branches: BTreeMap<u64, Vec<Branch>>,
    /// Merge requests by project id (none by default).
    pub merge_requests: BTreeMap<u64, Vec<MergeRequest>>,
    /// GitLab's `branch_list_keyset_pagination` feature flag: on (default,
    /// as on GitLab.com), `pagination=keyset` pages branches by name and
    /// the first offset page comes from Gitaly; off (self-managed's
    /// default), the branch list is offset-paginated whatever is asked.
    pub branch_keyset_pagination: bool,
    /// Git tags by project id (`refs/tags/…`, not the registry's); a
    /// project not listed has none. Listed by name (byte order) and paged
    /// like the branches.
    pub git_tags: BTreeMap<u64, Vec<String>>,
    /// Forks: project id → the seeded project it was forked from, shown
    /// as `forked_from_project` by `GET /projects/:id`.
    pub forks: BTreeMap<u64, u64>,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            token: String::new(),
            read_only_token: None,
            registry_host: String::new(),
            projects: Vec::new(),
            groups: Vec::new(),
            graphql: GraphqlSupport::default(),
            metadata_database: true,
            tag_protection_rules: BTreeMap::new(),
            role: AccessLevel::default(),
            project_roles: BTreeMap::new(),
            repository_status: BTreeMap::new(),
            tag_fields: TagFields::default(),
            throttle: None,
            branches: BTreeMap::new(),
            merge_requests: BTreeMap::new(),
            branch_keyset_pagination: true,
            git_tags: BTreeMap::new(),
            forks: BTreeMap::new(),
        }
    }
}

/// GitLab's authenticated API throttle: at most `limit` requests per token
/// in each fixed `window`; see [Rate limits](crate#rate-limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// Requests a token may make in one window; the next one gets 429.
    pub limit: u32,
    /// The window's length, from a fraction of a second to hours. Not zero.
    pub window: Duration,
    /// Which answers carry `RateLimit-*` headers.
    pub headers: ThrottleHeaders,
}

impl Throttle {
    /// `limit` requests per `window`, with [`ThrottleHeaders::Full`].
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            limit,
            window,
            headers: ThrottleHeaders::Full,
        }
    }

    /// GitLab.com's authenticated API limit: 2,000 requests a minute, with
    /// headers on every answer.
    pub fn gitlab_com() -> Throttle {
        Throttle::new(2000, Duration::from_secs(60))
    }

    /// The same throttle, with these headers.
    pub fn with_headers(mut self, headers: ThrottleHeaders) -> Throttle {
        self.headers = headers;
        self
    }

    /// `limit` normalised to a minute and rounded up, as GitLab's
    /// `RateLimit-Limit` shows it (e.g. 7,200 per hour is 120).
    pub fn limit_per_minute(&self) -> u64 {
        throttle::per_minute(self.limit, self.window)
    }
}

/// Which answers of a throttled GitLab carry rate-limit headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThrottleHeaders {
    /// GitLab 18.6+ with `rate_limiting_headers_for_unthrottled_requests`:
    /// `RateLimit-Name`, `-Limit`, `-Observed`, `-Remaining`, `-Reset` on
    /// every answer, plus `RateLimit-ResetTime` and `Retry-After` on a 429.
    #[default]
    Full,
    /// Older GitLab: the headers on 429s only.
    OnlyOnThrottle,
    /// A bare 429 without any header, as application-level limits and some
    /// proxies answer.
    None,
}

/// A role on a project, as far as deleting tags goes (GitLab's access
/// levels from Developer up; rules only use Maintainer, Owner and Admin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    /// May delete tags that no rule protects.
    #[default]
    Developer,
    Maintainer,
    Owner,
    /// An instance administrator.
    Admin,
}

impl AccessLevel {
    /// GraphQL's `ContainerProtectionTagRuleAccessLevel` value.
    pub fn graphql_name(self) -> &'static str {
        match self {
            AccessLevel::Developer => "DEVELOPER",
            AccessLevel::Maintainer => "MAINTAINER",
            AccessLevel::Owner => "OWNER",
            AccessLevel::Admin => "ADMIN",
        }
    }
}

/// A project's container tag protection rule (GitLab 17.9+; immutable
/// rules 18.1+ Ultimate).
///
/// A tag is protected *for the token's user* when a rule's `pattern`
/// matches its whole name and the user's role is below the rule's
/// `minimum_access_level_for_delete`, or the rule is `immutable` (then for
/// everyone, administrators included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagProtectionRule {
    /// A regex (Rust `regex` syntax, close to GitLab's RE2) that must match the whole tag name.
    pub pattern: String,
    /// `None` for immutable rules.
    pub minimum_access_level_for_delete: Option<AccessLevel>,
    /// `None` for immutable rules.
    pub minimum_access_level_for_push: Option<AccessLevel>,
    pub immutable: bool,
}

impl TagProtectionRule {
    /// Tags matching `pattern` may be pushed and deleted only from `level` up.
    pub fn at_least(pattern: impl Into<String>, level: AccessLevel) -> Self {
        TagProtectionRule {
            pattern: pattern.into(),
            minimum_access_level_for_delete: Some(level),
            minimum_access_level_for_push: Some(level),
            immutable: false,
        }
    }

    /// Tags matching `pattern` may not be deleted or overwritten by anyone.
    pub fn immutable(pattern: impl Into<String>) -> Self {
        TagProtectionRule {
            pattern: pattern.into(),
            minimum_access_level_for_delete: None,
            minimum_access_level_for_push: None,
            immutable: true,
        }
    }
}

/// A container repository's `status`: GitLab is removing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepositoryStatus {
    DeleteScheduled,
    DeleteFailed,
    DeleteOngoing,
}

impl RepositoryStatus {
    /// REST's value, e.g. `delete_scheduled`.
    pub fn rest_name(self) -> &'static str {
        match self {
            RepositoryStatus::DeleteScheduled => "delete_scheduled",
            RepositoryStatus::DeleteFailed => "delete_failed",
            RepositoryStatus::DeleteOngoing => "delete_ongoing",
        }
    }

    /// GraphQL's `ContainerRepositoryStatus` value, e.g. `DELETE_SCHEDULED`.
    pub fn graphql_name(self) -> &'static str {
        match self {
            RepositoryStatus::DeleteScheduled => "DELETE_SCHEDULED",
            RepositoryStatus::DeleteFailed => "DELETE_FAILED",
            RepositoryStatus::DeleteOngoing => "DELETE_ONGOING",
        }
    }
}

/// Which per-tag permission fields GitLab's GraphQL schema has. A query
/// asking for a field the schema lacks is rejected at validation (no `data`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagFields {
    /// GitLab 17.9+: `userPermissions` and `protection`.
    #[default]
    PermissionsAndProtection,
    /// GitLab 16.7 to 17.8: `userPermissions` only.
    PermissionsOnly,
    /// Before 16.7: neither.
    Neither,
}

/// Whether the fake answers GraphQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GraphqlSupport {
    /// `POST /api/graphql` is served.
    #[default]
    Available,
    /// `POST /api/graphql` is a 404, as behind a proxy that only lets `/api/v4` through.
    Missing,
}

/// A project and its container repositories.
#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    /// Full path, e.g. `group/sub/app`.
    pub path: String,
    pub repositories: Vec<Repository>,
}

/// A container repository (an image) of a project.
#[derive(Clone, Debug)]
pub struct Repository {
    /// Globally unique id.
    pub id: u64,
    /// `""` is the project's root image.
    pub name: String,
    pub tags: Vec<Tag>,
}

/// A tag of a repository.
#[derive(Clone, Debug)]
pub struct Tag {
    pub name: String,
    /// Sent as-is in the tag details; `None` is JSON `null`. GraphQL's
    /// `createdAt` is the same instant in GraphQL's `Time` format.
    pub created_at: Option<String>,
    /// GraphQL's `publishedAt` (last push) when the registry has the
    /// metadata database; `None` there means "same as `created_at`".
    pub published_at: Option<String>,
    pub total_size: Option<u64>,
    /// A tag this token can never delete, whatever the rules and the role:
    /// REST `DELETE` is 403, mutations drop it, GraphQL's
    /// `userPermissions.destroyContainerRepositoryTag` is false, and its
    /// `protection` is null (no rule). Unlike a [`TagProtectionRule`], it
    /// never makes GitLab refuse a whole `destroyContainerRepositoryTags`.
    pub protected: bool,
    /// The manifest digest (`sha256:…`); `None` derives one from the name.
    pub digest: Option<String>,
}

/// A branch of a project's Git repository. Its commit id is derived from
/// the project and the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    pub name: String,
    /// The project's default branch (`"default": true`).
    pub default: bool,
    pub protected: bool,
}

impl Branch {
    /// An unprotected branch that is not the default.
    pub fn new(name: impl Into<String>) -> Branch {
        Branch {
            name: name.into(),
            default: false,
            protected: false,
        }
    }

    /// The default branch, protected as GitLab protects it by default.
    pub fn default_branch(name: impl Into<String>) -> Branch {
        Branch {
            name: name.into(),
            default: true,
            protected: true,
        }
    }

    /// The same branch, protected.
    pub fn protected(mut self) -> Branch {
        self.protected = true;
        self
    }
}

/// A merge request's `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergeRequestState {
    Opened,
    Closed,
    Merged,
    /// Being merged right now (GitLab's transient state).
    Locked,
}

impl MergeRequestState {
    /// REST's value, e.g. `opened`.
    pub fn rest_name(self) -> &'static str {
        match self {
            MergeRequestState::Opened => "opened",
            MergeRequestState::Closed => "closed",
            MergeRequestState::Merged => "merged",
            MergeRequestState::Locked => "locked",
        }
    }
}

/// A merge request of a project. Its global `id`, title, description and
/// times are derived from the project and the `iid`: a higher `iid` was
/// created later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeRequest {
    /// The number within the project (`!12`, `$CI_MERGE_REQUEST_IID`).
    pub iid: u64,
    pub state: MergeRequestState,
    /// `None`: `mr-<iid>`.
    pub source_branch: Option<String>,
}

impl MergeRequest {
    /// A merge request from `mr-<iid>` into the default branch.
    pub fn new(iid: u64, state: MergeRequestState) -> MergeRequest {
        MergeRequest {
            iid,
            state,
            source_branch: None,
        }
    }

    /// The same merge request, from this branch.
    pub fn from_branch(mut self, source_branch: impl Into<String>) -> MergeRequest {
        self.source_branch = Some(source_branch.into());
        self
    }
}

/// A group; it covers every project whose path starts with `"<path>/"`
/// (case-insensitively), subgroups included.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: u64,
    pub path: String,
}

impl Tag {
    /// A tag with the given raw `created_at`, a size derived from the name,
    /// not protected.
    pub fn new(name: impl Into<String>, created_at: Option<String>) -> Tag {
        let name = name.into();
        let total_size = Some(state::size_for(&name));
        Tag {
            name,
            created_at,
            published_at: None,
            total_size,
            protected: false,
            digest: None,
        }
    }

    /// A tag created `age` ago, `created_at` formatted like GitLab
    /// (`2019-01-06T16:49:51.272+00:00`).
    pub fn aged(name: impl Into<String>, age: Duration) -> Tag {
        let age = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
        let ts = jiff::Timestamp::now().checked_sub(age).unwrap_or(jiff::Timestamp::MIN);
        Tag::new(name, Some(gitlab_time(ts)))
    }

    /// The same tag, last pushed `age` ago (GraphQL's `publishedAt`).
    pub fn published(mut self, age: Duration) -> Tag {
        let age = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
        let ts = jiff::Timestamp::now().checked_sub(age).unwrap_or(jiff::Timestamp::MIN);
        self.published_at = Some(gitlab_time(ts));
        self
    }

    /// The same tag, protected: this token may never delete it (REST 403
    /// "cannot delete protected tag(s)", dropped from mutations,
    /// `userPermissions.destroyContainerRepositoryTag` false), and GraphQL's
    /// `protection` shows a Maintainer rule. Unlike a project's
    /// [`TagProtectionRule`]s it never makes GitLab refuse a whole
    /// repository's batch deletion.
    pub fn protected(mut self) -> Tag {
        self.protected = true;
        self
    }

    /// The same tag, pointing at this manifest digest.
    pub fn with_digest(mut self, digest: impl Into<String>) -> Tag {
        self.digest = Some(digest.into());
        self
    }
}

/// The manifest digest a tag gets when none is given: derived from its name.
pub fn default_digest(name: &str) -> String {
    state::digest_for(name)
}

/// Formats a timestamp the way GitLab's tag details show `created_at`:
/// `2019-01-06T16:49:51.272+00:00` (UTC, milliseconds).
pub fn gitlab_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// Fault injection configuration. A request that matches a rule gets that
/// rule's fault; see the crate docs for the model.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Slept before every response.
    pub latency: Duration,
    /// Seeds the RNG used for probabilities.
    pub seed: u64,
    pub rules: Vec<FaultRule>,
}

/// One fault rule.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// Which requests it applies to ([`Route::Any`] for all).
    pub route: Route,
    pub fault: Fault,
    /// `1.0` = every matching request.
    pub probability: f64,
    /// At most this many injections in total (`None` = unlimited).
    pub times: Option<u32>,
    /// The first this many matching requests pass untouched.
    pub skip: u32,
}

impl FaultRule {
    /// Every matching request, forever.
    pub fn always(route: Route, fault: Fault) -> Self {
        FaultRule {
            route,
            fault,
            probability: 1.0,
            times: None,
            skip: 0,
        }
    }

    /// The first `n` matching requests.
    pub fn times(route: Route, fault: Fault, n: u32) -> Self {
        FaultRule {
            route,
            fault,
            probability: 1.0,
            times: Some(n),
            skip: 0,
        }
    }

    /// Each matching request with probability `p`.
    pub fn sometimes(route: Route, fault: Fault, p: f64) -> Self {
        FaultRule {
            route,
            fault,
            probability: p,
            times: None,
            skip: 0,
        }
    }

    /// The same rule, leaving the first `n` matching requests alone
    /// (e.g. a failure on the second page of a listing).
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
}

/// The kind of request, for fault rules and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Matches every request in a [`FaultRule`]; never recorded.
    Any,
    /// `GET /version`
    Version,
    /// `GET /projects/:id/registry/repositories`
    ProjectRepositories,
    /// `GET /groups/:id/registry/repositories`
    GroupRepositories,
    /// `GET .../repositories/:repository_id/tags`
    Tags,
    /// `GET .../tags/:tag_name`
    TagDetail,
    /// `DELETE .../tags/:tag_name`
    DeleteTag,
    /// `GET /projects/:id`
    Project,
    /// `GET /groups/:id`
    Group,
    /// `GET /registry/repositories/:id`
    Repository,
    /// `POST /api/graphql` with a query
    Graphql,
    /// `POST /api/graphql` with a mutation
    GraphqlMutation,
    /// `GET /projects/:id/repository/branches`
    Branches,
    /// `GET /projects/:id/merge_requests`
    MergeRequests,
    /// `GET /projects/:id/repository/tags` (Git tags, not the registry's)
    GitTags,
    /// Anything else (404 or 405).
    Unknown,
}

impl Route {
    /// The key used in [`Stats::by_route`].
    pub fn key(self) -> &'static str {
        match self {
            Route::Any => "any",
            Route::Version => "GET version",
            Route::ProjectRepositories => "GET project_repositories",
            Route::GroupRepositories => "GET group_repositories",
            Route::Tags => "GET tags",
            Route::TagDetail => "GET tag_detail",
            Route::DeleteTag => "DELETE tag",
            Route::Project => "GET project",
            Route::Group => "GET group",
            Route::Repository => "GET repository",
            Route::Graphql => "POST graphql",
            Route::GraphqlMutation => "POST graphql_mutation",
            Route::Branches => "GET branches",
            Route::MergeRequests => "GET merge_requests",
            Route::GitTags => "GET git_tags",
            Route::Unknown => "unknown",
        }
    }
}

/// An injected fault.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status and body instead of performing the request.
    Status {
        status: u16,
        retry_after: Option<String>,
        body: String,
        content_type: &'static str,
    },
    /// Perform the request (delete the tag), then answer 502 `text/html`.
    DeleteThen502,
    /// Perform the request, answer 200 `application/json` with the body cut in half.
    MalformedJson,
    /// Perform the request, answer 200 with `{"unexpected":true}`.
    WrongShapeJson,
    /// Close the connection without any response (request not performed).
    Drop,
    /// Answer normally after this extra delay.
    Delay(Duration),
    /// Perform the request and answer normally, but without `X-Next-Page`
    /// and with `Link: <{base}{path}?page=2>; rel="next"`: a proxy or a
    /// compromised server pointing the client at another host.
    LinkElsewhere(String),
    /// GraphQL: answer 200 `{"errors":[{"message": …}]}` without running
    /// the request, as GitLab does for a complexity or timeout error.
    GraphqlError(String),
    /// GraphQL: run the request (a mutation deletes), then answer with every
    /// top-level field of `data` null and this error at its path, as GitLab
    /// does when its 30 s timeout strikes while the resolver goes on.
    RunThenGraphqlError(String),
    /// GraphQL `destroyContainerRepositoryTags`: delete only the first half
    /// of the names asked (none of one), then answer like GitLab's service
    /// when the registry fails midway: `errors: ["error while deleting
    /// tags"]` with the partial `deletedTagNames`.
    PartialDelete,
    /// The registry fails GitLab's tag listing, which GitLab hides: the
    /// request is performed, but every tag listing in it comes back short
    /// with no error. GraphQL: each `tags` connection is an empty page,
    /// `hasNextPage: false`. REST tags list: `[]`, no next page, and
    /// `X-Total`/`X-Total-Pages` count only the pages before this one.
    /// Counts (`tagsCount`, `tags_count`) stay whole. With
    /// [`FaultRule::after`], the listing stops after that many pages.
    RegistryCut,
    /// The registry fails GitLab's count call: the request is performed,
    /// and every `tagsCount` (GraphQL) or `tags_count` (REST) in the answer is 0.
    TagsCountFails,
}

impl Fault {
    /// A JSON error like GitLab's for that status, e.g. 500
    /// `{"message":"500 Internal Server Error"}`. 429 is
    /// [`Fault::too_many_requests`] without `Retry-After`.
    pub fn status(code: u16) -> Fault {
        if code == 429 {
            return Fault::too_many_requests(None);
        }
        let reason = match code {
            400 => "Bad request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            422 => "Unprocessable Entity",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Error",
        };
        Fault::Status {
            status: code,
            retry_after: None,
            body: serde_json::json!({ "message": format!("{code} {reason}") }).to_string(),
            content_type: "application/json",
        }
    }

    /// GitLab's throttle answer: 429, `text/plain` body `Retry later`,
    /// with `Retry-After` when given.
    pub fn too_many_requests(retry_after: Option<&str>) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: retry_after.map(str::to_owned),
            body: "Retry later\n".to_owned(),
            content_type: "text/plain",
        }
    }

    /// A 502 with an HTML page, as a reverse proxy in front of GitLab gives it.
    pub fn html_502() -> Fault {
        Fault::Status {
            status: 502,
            retry_after: None,
            body: HTML_502.to_owned(),
            content_type: "text/html; charset=utf-8",
        }
    }
}

pub(crate) const HTML_502: &str = "<!DOCTYPE html>\n<html>\n<head>\n  <meta content=\"width=device-width, initial-scale=1, maximum-scale=1\" name=\"viewport\">\n  <title>GitLab is not responding (502)</title>\n</head>\n<body>\n  <h1>502</h1>\n  <h3>GitLab is not responding.</h3>\n  <p>Please contact your GitLab administrator if this problem persists.</p>\n</body>\n</html>\n";

/// A snapshot of what the server has seen.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub total: u64,
    /// Keyed by [`Route::key`]: `"GET tags"`, `"GET tag_detail"`,
    /// `"DELETE tag"`, `"GET project_repositories"`,
    /// `"GET group_repositories"`, `"GET version"`, `"GET project"`,
    /// `"GET group"`, `"GET repository"`, `"POST graphql"`,
    /// `"POST graphql_mutation"`, `"GET branches"`, `"GET merge_requests"`,
    /// `"GET git_tags"`, `"unknown"`.
    pub by_route: BTreeMap<String, u64>,
    /// Keyed by the status answered; `0` for dropped connections.
    pub by_status: BTreeMap<u16, u64>,
    /// The most requests in flight at once.
    pub max_in_flight: u64,
    /// Every request, in the order they finished.
    pub requests: Vec<RequestRecord>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    pub path_and_query: String,
    /// The request body: the GraphQL request (query and variables); empty for REST.
    pub body: String,
    pub route: Route,
    /// `0` if the connection was dropped.
    pub status: u16,
    /// The token it presented, if any.
    pub auth: Option<String>,
    pub user_agent: Option<String>,
    pub started: Instant,
    pub finished: Instant,
}

impl RequestRecord {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(&self.path_and_query, |(p, _)| p)
    }

    /// A query parameter's raw (still percent-encoded) value; the last one
    /// if repeated, `Some("")` for `?name` or `?name=`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path_and_query.split_once('?')?;
        query.split('&').rev().find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

impl Stats {
    /// Requests of that route ([`Route::Any`]: all requests).
    pub fn count(&self, route: Route) -> u64 {
        match route {
            Route::Any => self.total,
            r => self.by_route.get(r.key()).copied().unwrap_or(0),
        }
    }

    /// `DELETE` tag requests, whatever they answered.
    pub fn deletes(&self) -> u64 {
        self.count(Route::DeleteTag)
    }

    /// Requests answered 429, by the throttle or by a fault.
    pub fn throttled(&self) -> u64 {
        self.by_status.get(&429).copied().unwrap_or(0)
    }

    /// When each request arrived, earliest first.
    pub fn arrivals(&self) -> Vec<Instant> {
        let mut arrivals: Vec<Instant> = self.requests.iter().map(|r| r.started).collect();
        arrivals.sort();
        arrivals
    }

    /// The most requests that arrived within any `window` (a sliding one:
    /// arrivals less than `window` apart): the rate a client really kept,
    /// e.g. at most 10 in any second. Counts every recorded request,
    /// throttled ones included.
    pub fn max_requests_in_any(&self, window: Duration) -> u64 {
        if window.is_zero() {
            return 0;
        }
        let arrivals = self.arrivals();
        let mut first = 0;
        let mut most = 0;
        for (last, &at) in arrivals.iter().enumerate() {
            while at.duration_since(arrivals[first]) >= window {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        most as u64
    }
}

/// The demo data set (the scenario of the Python tool's article), relative
/// to now. Token `demo-token`, registry `registry.demo.local:5005`:
///
/// * project 1 `root/repo_1`: `app`, `worker`, `cache` with one tag aged
///   about 5 minutes each, `legacy` with two tags aged 1 day;
/// * project 2 `root/repo_2`: `api`, `web`, `jobs` with one tag aged about
///   an hour each, `test_image_repo_2` with tags `0`..`10` aged about
///   5 minutes (3 s apart);
/// * project 3 `root/repo_3`: `test_image_repo_3` with tags `0`..`10` aged
///   5 to 6 minutes.
///
/// No `latest` tag, no protected tag.
pub fn demo_seed() -> Seed {
    const MIN: u64 = 60;
    let secs = Duration::from_secs;
    let mut next_repo = 0u64;
    let mut repo = |name: &str, tags: Vec<Tag>| {
        next_repo += 1;
        Repository {
            id: next_repo,
            name: name.to_owned(),
            tags,
        }
    };
    let numbered = |oldest: u64, step: u64| -> Vec<Tag> {
        (0..=10u64)
            .map(|i| Tag::aged(i.to_string(), secs(oldest - i * step)))
            .collect()
    };
    let repo_1 = vec![
        repo("app", vec![Tag::aged("1.4.2", secs(5 * MIN))]),
        repo("worker", vec![Tag::aged("1.4.2", secs(5 * MIN + 4))]),
        repo("cache", vec![Tag::aged("7.2", secs(5 * MIN + 9))]),
        repo(
            "legacy",
            vec![
                Tag::aged("2023.12", secs(24 * 60 * MIN + 120)),
                Tag::aged("2024.01", secs(24 * 60 * MIN)),
            ],
        ),
    ];
    let repo_2 = vec![
        repo("api", vec![Tag::aged("2.0.0", secs(60 * MIN))]),
        repo("web", vec![Tag::aged("2.0.0", secs(60 * MIN + 7))]),
        repo("jobs", vec![Tag::aged("0.9.1", secs(61 * MIN))]),
        // "0" is the oldest (5 min 30 s), "10" the newest (5 min).
        repo("test_image_repo_2", numbered(5 * MIN + 30, 3)),
    ];
    // "0" is 6 minutes old, "10" 5 minutes.
    let repo_3 = vec![repo("test_image_repo_3", numbered(6 * MIN, 6))];
    Seed {
        token: "demo-token".to_owned(),
        read_only_token: None,
        registry_host: "registry.demo.local:5005".to_owned(),
        projects: vec![
            Project {
                id: 1,
                path: "root/repo_1".to_owned(),
                repositories: repo_1,
            },
            Project {
                id: 2,
                path: "root/repo_2".to_owned(),
                repositories: repo_2,
            },
            Project {
                id: 3,
                path: "root/repo_3".to_owned(),
                repositories: repo_3,
            },
        ],
        groups: Vec::new(),
        ..Seed::default()
    }
}

/// Today's GitLab.com, to try by hand (`fake-gitlab --scenario modern`):
/// project 1 `acme/web`, whose tags `v*` a rule protects from Developers
/// (the token's role); repository `app` holds old builds, two old releases,
/// `staging` (first pushed 60 days ago, pushed again an hour ago) and
/// `latest`; repository `cache` (id 2) holds 150 old tags, and
/// [`modern_faults`] makes the registry cut its listing short.
pub fn modern_seed() -> Seed {
    let day = Duration::from_secs(86_400);
    let mut app: Vec<Tag> = (1..=5).map(|i| Tag::aged(format!("build-{i}"), 40 * day)).collect();
    app.push(Tag::aged("v1.0.0", 300 * day));
    app.push(Tag::aged("v1.1.0", 200 * day));
    app.push(Tag::aged("staging", 60 * day).published(Duration::from_secs(3_600)));
    app.push(Tag::aged("latest", 40 * day));
    let cache = (0..150).map(|i| Tag::aged(format!("cache-{i:03}"), 10 * day)).collect();
    Seed {
        token: "demo-token".into(),
        registry_host: "registry.acme.test:5005".into(),
        projects: vec![Project {
            id: 1,
            path: "acme/web".into(),
            repositories: vec![
                Repository {
                    id: 1,
                    name: "app".into(),
                    tags: app,
                },
                Repository {
                    id: 2,
                    name: "cache".into(),
                    tags: cache,
                },
            ],
        }],
        tag_protection_rules: [(1, vec![TagProtectionRule::at_least("v.*", AccessLevel::Maintainer)])].into(),
        ..Seed::default()
    }
}

/// The registry of [`modern_seed`] fails tag listings after a few requests,
/// and GitLab hides it. Listed one request at a time (`--concurrency 1`),
/// that is `cache`'s second page: through GraphQL after the repository
/// list, `app`'s page and `cache`'s first; through REST after two pages.
pub fn modern_faults() -> Faults {
    Faults {
        rules: vec![
            FaultRule::always(Route::Graphql, Fault::RegistryCut).after(3),
            FaultRule::always(Route::Tags, Fault::RegistryCut).after(2),
        ],
        ..Faults::default()
    }
}

/// Per-branch and per-merge-request CI images (`fake-gitlab --scenario
/// branches`): project 1 `acme/shop` has branches `main` (default) and
/// `feature/login`, merge request 12 (`merged`, from `feature/checkout`)
/// and 13 (`opened`); its repository `app` (id 1) holds `main-…`,
/// `feature-login-…`, `feature-gone-…`, `mr-12-…` and `mr-13-…` (each with
/// an 8-hex commit suffix) and `latest`, all two days old. So only
/// `feature-gone-*` (no such branch) and `mr-12-*` (merged) name refs that
/// are gone.
pub fn branches_seed() -> Seed {
    let two_days = Duration::from_secs(2 * 86_400);
    let tags = [
        "main-3f2a9c1d",
        "feature-login-8b41e7a0",
        "feature-gone-c09d5e62",
        "mr-12-5a7f3b94",
        "mr-13-e1c28d07",
        "latest",
    ]
    .into_iter()
    .map(|name| Tag::aged(name, two_days))
    .collect();
    Seed {
        token: "demo-token".into(),
        registry_host: "registry.acme.test:5005".into(),
        projects: vec![Project {
            id: 1,
            path: "acme/shop".into(),
            repositories: vec![Repository {
                id: 1,
                name: "app".into(),
                tags,
            }],
        }],
        branches: [(1, vec![Branch::default_branch("main"), Branch::new("feature/login")])].into(),
        merge_requests: [(
            1,
            vec![
                MergeRequest::new(12, MergeRequestState::Merged).from_branch("feature/checkout"),
                MergeRequest::new(13, MergeRequestState::Opened).from_branch("feature/login"),
            ],
        )]
        .into(),
        ..Seed::default()
    }
}

/// The article's config for [`demo_seed`] (the legacy form): keep 2 days in
/// `repo_1`, 50 minutes in `repo_2`, 2 minutes in `repo_3`. So a pass
/// deletes repo_2's hour-old tags and all of repo_3, and keeps repo_1.
pub fn demo_config() -> serde_json::Value {
    serde_json::json!({
        "repo_1": {"id": 1, "delete_older_than": {"days": 2}},
        "repo_2": {"id": 2, "delete_older_than": {"minutes": 50}},
        "repo_3": {"id": 3, "delete_older_than": {"minutes": 2}}
    })
}
