//! The fake's mutable state: registry data, fault configuration, statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::throttle::{ThrottleState, Verdict};
use crate::{
    AccessLevel, Branch, Fault, Faults, MergeRequest, MergeRequestState, Project, RepositoryStatus, RequestRecord,
    Route, Seed, Stats, Tag, TagFields, TagProtectionRule,
};

/// Everything shared by the connections of one server.
pub(crate) struct Shared {
    pub token: String,
    pub read_only_token: Option<String>,
    pub registry: Mutex<Registry>,
    pub faults: Mutex<FaultState>,
    /// `None`: no rate limit.
    pub throttle: Mutex<Option<ThrottleState>>,
    pub stats: Mutex<StatsInner>,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Requests received, by route key, counted when they arrive (the
    /// stats count them when answered).
    pub arrived: Mutex<HashMap<&'static str, u64>>,
}

impl Shared {
    pub fn new(seed: Seed) -> io::Result<Shared> {
        let mut registry = Registry {
            registry_host: seed.registry_host,
            projects: BTreeMap::new(),
            project_by_path: HashMap::new(),
            groups: Vec::new(),
            repos: HashMap::new(),
            deleted: Vec::new(),
            graphql: seed.graphql,
            metadata_database: seed.metadata_database,
            role: seed.role,
            tag_fields: seed.tag_fields,
            branch_keyset_pagination: seed.branch_keyset_pagination,
        };
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let throttle = seed.throttle.map(ThrottleState::checked).transpose().map_err(invalid)?;
        for project in seed.projects {
            registry.add_project(project).map_err(invalid)?;
        }
        for (project_id, rules) in seed.tag_protection_rules {
            registry.set_tag_protection_rules(project_id, rules).map_err(invalid)?;
        }
        for (project_id, role) in seed.project_roles {
            registry.set_role(project_id, Some(role)).map_err(invalid)?;
        }
        for (project_id, branches) in seed.branches {
            let project = registry.project_mut(project_id).map_err(invalid)?;
            project.branches.clear();
            for branch in branches {
                project.add_branch(branch);
            }
        }
        for (project_id, names) in seed.git_tags {
            registry
                .project_mut(project_id)
                .map_err(invalid)?
                .git_tags
                .extend(names);
        }
        for (fork, parent) in seed.forks {
            registry.set_forked_from(fork, parent).map_err(invalid)?;
        }
        for (project_id, merge_requests) in seed.merge_requests {
            let project = registry.project_mut(project_id).map_err(invalid)?;
            for mr in merge_requests {
                project.merge_requests.insert(mr.iid, mr);
            }
        }
        for (repository_id, status) in seed.repository_status {
            registry
                .set_repository_status(repository_id, Some(status))
                .map_err(invalid)?;
        }
        for group in seed.groups {
            registry.groups.push(GroupState {
                id: group.id,
                lower_path: group.path.to_lowercase(),
                path: group.path,
            });
        }
        Ok(Shared {
            token: seed.token,
            read_only_token: seed.read_only_token,
            registry: Mutex::new(registry),
            faults: Mutex::new(FaultState::new(Faults::default())),
            throttle: Mutex::new(throttle),
            stats: Mutex::new(StatsInner::default()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            arrived: Mutex::default(),
        })
    }

    /// Counts a request against the throttle, if there is one and the
    /// request is an authenticated API request GitLab sees.
    pub fn throttle_check(&self, token: Option<&str>, target: &crate::api::Target) -> Option<Verdict> {
        let token = token.filter(|t| !t.is_empty())?;
        let known = token == self.token || self.read_only_token.as_deref() == Some(token);
        if !known {
            // Bad tokens fall under GitLab's unauthenticated throttle, not modelled.
            return None;
        }
        let mut throttle = lock(&self.throttle);
        let state = throttle.as_mut()?;
        // A proxy that blocks GraphQL answers before GitLab counts anything.
        if *target == crate::api::Target::Graphql && self.registry().graphql == crate::GraphqlSupport::Missing {
            return None;
        }
        Some(state.check(token))
    }

    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    pub fn stats_snapshot(&self) -> Stats {
        let inner = lock(&self.stats);
        Stats {
            total: inner.total,
            by_route: inner.by_route.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            by_status: inner.by_status.clone(),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            requests: inner.requests.clone(),
        }
    }

    pub fn reset_stats(&self) {
        let mut inner = lock(&self.stats);
        *inner = StatsInner::default();
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn record(&self, record: RequestRecord) {
        let mut inner = lock(&self.stats);
        inner.total += 1;
        *inner.by_route.entry(record.route.key()).or_insert(0) += 1;
        *inner.by_status.entry(record.status).or_insert(0) += 1;
        inner.requests.push(record);
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not make
/// the server unusable for the others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub(crate) struct StatsInner {
    total: u64,
    by_route: BTreeMap<&'static str, u64>,
    by_status: BTreeMap<u16, u64>,
    requests: Vec<RequestRecord>,
}

/// The fault configuration plus its running budgets.
///
/// A probabilistic rule's draw is a hash of the seed, the rule, the request
/// (method, path and query) and how many times that same request came
/// before, so the same requests meet the same faults whatever order
/// concurrency puts them in: a seeded failure reproduces.
pub(crate) struct FaultState {
    faults: Faults,
    used: Vec<u32>,
    /// Matching requests let through by each rule's `skip`.
    skipped: Vec<u32>,
    seen: std::collections::HashMap<String, u32>,
}

impl FaultState {
    pub fn new(faults: Faults) -> FaultState {
        FaultState {
            used: vec![0; faults.rules.len()],
            skipped: vec![0; faults.rules.len()],
            seen: std::collections::HashMap::new(),
            faults,
        }
    }

    fn draw(&self, rule: usize, request: &str, nth: u32) -> f64 {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() has fixed keys: the same input hashes the same in every run.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.faults.seed, rule, request, nth).hash(&mut hasher);
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The latency to apply and the fault (if any) for `request`
    /// (`"METHOD /path?query"`) of `route`.
    pub fn pick(&mut self, route: Route, request: &str) -> (Duration, Option<Fault>) {
        let latency = self.faults.latency;
        let random = self
            .faults
            .rules
            .iter()
            .any(|r| r.probability > 0.0 && r.probability < 1.0);
        let nth = if random {
            let count = self.seen.entry(request.to_owned()).or_insert(0);
            *count += 1;
            *count
        } else {
            0
        };
        for (i, rule) in self.faults.rules.iter().enumerate() {
            if rule.route != Route::Any && rule.route != route {
                continue;
            }
            if rule.times.is_some_and(|n| self.used[i] >= n) {
                continue;
            }
            if self.skipped[i] < rule.skip {
                self.skipped[i] += 1;
                continue;
            }
            let hit = if rule.probability >= 1.0 {
                true
            } else if rule.probability > 0.0 {
                self.draw(i, request, nth) < rule.probability
            } else {
                false
            };
            if hit {
                self.used[i] += 1;
                return (latency, Some(rule.fault.clone()));
            }
        }
        (latency, None)
    }
}

pub(crate) struct ProjectState {
    pub id: u64,
    /// As given, e.g. `Group/App`.
    pub path: String,
    pub lower_path: String,
    /// Sorted repository ids.
    pub repos: Vec<u64>,
    /// The token user's role here, when it differs from [`Registry::role`].
    pub role: Option<AccessLevel>,
    pub tag_rules: Vec<CompiledRule>,
    /// By name, in byte order (Gitaly sorts refs so).
    pub branches: BTreeMap<String, BranchState>,
    pub merge_requests: BTreeMap<u64, MergeRequest>,
    /// Branch listings end silently after this many branches.
    pub branch_cut: Option<usize>,
    /// Git tag names, in byte order (Gitaly's).
    pub git_tags: BTreeSet<String>,
    /// The project this one was forked from.
    pub forked_from: Option<u64>,
}

pub(crate) struct BranchState {
    pub default: bool,
    pub protected: bool,
}

impl ProjectState {
    /// Adds or replaces a branch; a new default branch takes over from the old one.
    pub fn add_branch(&mut self, branch: Branch) {
        if branch.default {
            for b in self.branches.values_mut() {
                b.default = false;
            }
        }
        self.branches.insert(
            branch.name,
            BranchState {
                default: branch.default,
                protected: branch.protected,
            },
        );
    }

    /// The branch's head commit: 40 hex characters from the project and name.
    pub fn commit_of(&self, branch: &str) -> String {
        let mut id = hex64(4, &format!("{}/{branch}", self.id));
        id.truncate(40);
        id
    }

    /// The commit a Git tag points at: 40 hex characters from the project
    /// and the tag's full ref, so a tag and a branch of one name differ.
    pub fn git_tag_commit(&self, tag: &str) -> String {
        self.commit_of(&format!("refs/tags/{tag}"))
    }
}

/// A tag protection rule with its pattern compiled for whole-name matches.
pub(crate) struct CompiledRule {
    pub rule: TagProtectionRule,
    pub regex: regex::Regex,
}

impl CompiledRule {
    fn new(rule: TagProtectionRule) -> Result<CompiledRule, String> {
        let regex = regex::Regex::new(&format!("^(?:{})$", rule.pattern))
            .map_err(|e| format!("invalid tag protection pattern {:?}: {e}", rule.pattern))?;
        Ok(CompiledRule { rule, regex })
    }

    /// Whether this rule keeps a user with `role` from deleting what it matches.
    fn forbids_delete(&self, role: AccessLevel) -> bool {
        self.rule.immutable
            || self
                .rule
                .minimum_access_level_for_delete
                .is_some_and(|level| role < level)
    }
}

pub(crate) struct GroupState {
    pub id: u64,
    /// As given.
    pub path: String,
    pub lower_path: String,
}

pub(crate) struct RepoState {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub path: String,
    pub location: String,
    pub created_at: String,
    /// Keyed by name in GitLab's order (see [`name_order`]).
    pub tags: BTreeMap<TagName, TagState>,
    pub status: Option<RepositoryStatus>,
}

pub(crate) struct TagState {
    /// The image's build time without the metadata database; its first
    /// push with it.
    pub created_at: Option<String>,
    /// The last push that changed the digest (metadata database only);
    /// `None` means "same as `created_at`".
    pub published_at: Option<String>,
    pub total_size: Option<u64>,
    pub protected: bool,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    /// The config digest's hex (`revision`).
    pub revision: String,
}

impl From<Tag> for (TagName, TagState) {
    fn from(t: Tag) -> Self {
        let (digest, revision) = match t.digest {
            Some(digest) => {
                let revision = hex64(1, &digest);
                (digest, revision)
            }
            None => (digest_for(&t.name), revision_for(&t.name)),
        };
        let state = TagState {
            created_at: t.created_at,
            published_at: t.published_at,
            total_size: t.total_size,
            protected: t.protected,
            digest,
            revision,
        };
        (TagName(t.name), state)
    }
}

/// The order of tag names wherever GitLab sorts or compares them (listings,
/// name cursors, `after`): like a database collation, not byte order.
/// Punctuation is ignored and case folded at the first level (the lowercase
/// alphanumeric key), so `a-b`, `A_b` and `ab` sort together, and `v1.10`
/// before `v1.9`; ties are broken by the full name's bytes, so the order is
/// total and the same in every run.
pub(crate) fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    collation_key(a)
        .cmp(collation_key(b))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The first level of [`name_order`]: the name's letters and digits, lowercase.
fn collation_key(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
}

/// A tag name as a map key, ordered by [`name_order`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TagName(pub String);

impl TagName {
    /// The key for a lookup by name.
    pub fn of(name: &str) -> TagName {
        TagName(name.to_owned())
    }
}

impl Ord for TagName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        name_order(&self.0, &other.0)
    }
}

impl PartialOrd for TagName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How many tags GitLab gets from the registry's v2 tag list (`n=10000`):
/// the cap of every tag count, and of listings without the metadata database.
pub(crate) const V2_TAG_LIST_LIMIT: usize = 10_000;

/// The registry data.
pub(crate) struct Registry {
    pub registry_host: String,
    pub projects: BTreeMap<u64, ProjectState>,
    pub project_by_path: HashMap<String, u64>,
    pub groups: Vec<GroupState>,
    pub repos: HashMap<u64, RepoState>,
    pub deleted: Vec<(u64, String)>,
    pub graphql: crate::GraphqlSupport,
    pub metadata_database: bool,
    /// The token user's role on projects that do not override it.
    pub role: AccessLevel,
    pub tag_fields: TagFields,
    /// [`Seed::branch_keyset_pagination`]
    pub branch_keyset_pagination: bool,
}

impl Registry {
    pub fn add_project(&mut self, project: Project) -> Result<(), String> {
        if self.projects.contains_key(&project.id) {
            return Err(format!("duplicate project id {}", project.id));
        }
        let lower_path = project.path.to_lowercase();
        if self.project_by_path.contains_key(&lower_path) {
            return Err(format!("duplicate project path {}", project.path));
        }
        let mut seen = std::collections::HashSet::new();
        for r in &project.repositories {
            if self.repos.contains_key(&r.id) || !seen.insert(r.id) {
                return Err(format!("duplicate repository id {}", r.id));
            }
        }
        let mut repo_ids = Vec::with_capacity(project.repositories.len());
        for r in project.repositories {
            let path = if r.name.is_empty() {
                lower_path.clone()
            } else {
                format!("{}/{}", project.path, r.name).to_lowercase()
            };
            let location = format!("{}/{}", self.registry_host, path);
            repo_ids.push(r.id);
            self.repos.insert(
                r.id,
                RepoState {
                    id: r.id,
                    project_id: project.id,
                    created_at: repo_created_at(r.id),
                    name: r.name,
                    path,
                    location,
                    tags: r.tags.into_iter().map(Into::into).collect(),
                    status: None,
                },
            );
        }
        repo_ids.sort_unstable();
        self.project_by_path.insert(lower_path.clone(), project.id);
        self.projects.insert(
            project.id,
            ProjectState {
                id: project.id,
                path: project.path,
                lower_path,
                repos: repo_ids,
                role: None,
                tag_rules: Vec::new(),
                branches: [(
                    "main".to_owned(),
                    BranchState {
                        default: true,
                        protected: true,
                    },
                )]
                .into(),
                merge_requests: BTreeMap::new(),
                branch_cut: None,
                git_tags: BTreeSet::new(),
                forked_from: None,
            },
        );
        Ok(())
    }

    pub fn project_mut(&mut self, project_id: u64) -> Result<&mut ProjectState, String> {
        self.projects
            .get_mut(&project_id)
            .ok_or_else(|| format!("no project with id {project_id}"))
    }

    /// Makes `fork` a fork of `parent`; both must exist, and differ.
    pub fn set_forked_from(&mut self, fork: u64, parent: u64) -> Result<(), String> {
        if fork == parent {
            return Err(format!("project {fork} cannot be forked from itself"));
        }
        if !self.projects.contains_key(&parent) {
            return Err(format!("project {fork} is forked from {parent}, which is no project"));
        }
        self.project_mut(fork)?.forked_from = Some(parent);
        Ok(())
    }

    pub fn set_merge_request_state(
        &mut self,
        project_id: u64,
        iid: u64,
        state: MergeRequestState,
    ) -> Result<(), String> {
        let mr = self
            .project_mut(project_id)?
            .merge_requests
            .get_mut(&iid)
            .ok_or_else(|| format!("no merge request !{iid} in project {project_id}"))?;
        mr.state = state;
        Ok(())
    }

    pub fn set_tag_protection_rules(&mut self, project_id: u64, rules: Vec<TagProtectionRule>) -> Result<(), String> {
        if !rules.is_empty() && !self.metadata_database {
            return Err("tag protection rules need the metadata database (Seed.metadata_database)".to_owned());
        }
        let compiled = rules
            .into_iter()
            .map(CompiledRule::new)
            .collect::<Result<Vec<_>, _>>()?;
        let project = self
            .projects
            .get_mut(&project_id)
            .ok_or_else(|| format!("no project with id {project_id}"))?;
        project.tag_rules = compiled;
        Ok(())
    }

    pub fn set_role(&mut self, project_id: u64, role: Option<AccessLevel>) -> Result<(), String> {
        let project = self
            .projects
            .get_mut(&project_id)
            .ok_or_else(|| format!("no project with id {project_id}"))?;
        project.role = role;
        Ok(())
    }

    pub fn set_repository_status(
        &mut self,
        repository_id: u64,
        status: Option<RepositoryStatus>,
    ) -> Result<(), String> {
        let repo = self
            .repos
            .get_mut(&repository_id)
            .ok_or_else(|| format!("no repository with id {repository_id}"))?;
        repo.status = status;
        Ok(())
    }

    fn role_on(&self, project: &ProjectState) -> AccessLevel {
        project.role.unwrap_or(self.role)
    }

    /// The most restrictive rule of the repository's project that matches
    /// the tag name (immutable first, then the highest delete level).
    pub fn tag_protection(&self, repo: &RepoState, name: &str) -> Option<&TagProtectionRule> {
        let project = self.projects.get(&repo.project_id)?;
        project
            .tag_rules
            .iter()
            .filter(|r| r.regex.is_match(name))
            .map(|r| &r.rule)
            .max_by_key(|r| {
                (
                    r.immutable,
                    r.minimum_access_level_for_delete,
                    r.minimum_access_level_for_push,
                )
            })
    }

    /// Whether the token's user may delete this tag, as far as protection
    /// goes (the token's scope is checked elsewhere).
    pub fn may_delete_tag(&self, repo: &RepoState, name: &str, tag: &TagState) -> bool {
        if tag.protected {
            return false;
        }
        let Some(project) = self.projects.get(&repo.project_id) else {
            return true;
        };
        let role = self.role_on(project);
        !project
            .tag_rules
            .iter()
            .any(|r| r.forbids_delete(role) && r.regex.is_match(name))
    }

    /// GitLab's `ContainerRepositoryPolicy`: bulk deletion of a repository's
    /// tags is refused outright when any rule of its project is above the
    /// user's role (or immutable) and the repository has tags, whatever
    /// names are asked.
    pub fn refuses_bulk_delete(&self, repo: &RepoState) -> bool {
        let Some(project) = self.projects.get(&repo.project_id) else {
            return false;
        };
        let role = self.role_on(project);
        !repo.tags.is_empty() && project.tag_rules.iter().any(|r| r.forbids_delete(role))
    }

    /// GitLab's count of a repository's tags (the v2 list's, capped).
    pub fn tags_count(repo: &RepoState, count_fails: bool) -> usize {
        if count_fails {
            0
        } else {
            repo.tags.len().min(V2_TAG_LIST_LIMIT)
        }
    }

    /// The names GitLab's tag listings see, sorted by [`name_order`]:
    /// without the metadata database, only the first 10,000 (the v2 list).
    pub fn listed_names<'r>(&self, repo: &'r RepoState) -> Vec<(&'r str, &'r TagState)> {
        // The map iterates in this order already: no sort per page request.
        let mut tags: Vec<(&str, &TagState)> = repo.tags.iter().map(|(n, t)| (n.0.as_str(), t)).collect();
        if !self.metadata_database {
            tags.truncate(V2_TAG_LIST_LIMIT);
        }
        tags
    }

    /// Pushes `digest` as tag `name` at `at` (see [`crate::FakeGitlab::push_tag`]).
    pub fn push_tag(
        &mut self,
        repository_id: u64,
        name: &str,
        digest: &str,
        at: jiff::Timestamp,
    ) -> Result<(), String> {
        let metadata_database = self.metadata_database;
        let repo = self
            .repos
            .get_mut(&repository_id)
            .ok_or_else(|| format!("no repository with id {repository_id}"))?;
        let when = crate::gitlab_time(at);
        match repo.tags.get_mut(&TagName::of(name)) {
            None => {
                let (name, state) = Tag::new(name, Some(when)).with_digest(digest).into();
                repo.tags.insert(name, state);
            }
            Some(tag) if tag.digest == digest => {}
            Some(tag) => {
                tag.digest = digest.to_owned();
                tag.revision = hex64(1, digest);
                tag.total_size = Some(size_for(digest));
                if metadata_database {
                    // The registry's `updated_at`: the first push stays `created_at`.
                    tag.published_at = Some(when);
                } else {
                    // A new image, built now.
                    tag.created_at = Some(when);
                }
            }
        }
        Ok(())
    }

    /// `:id` as GitLab resolves it: all digits → numeric id, else full path
    /// (case-insensitive).
    pub fn find_project(&self, id: &str) -> Option<&ProjectState> {
        if is_integer_id(id) {
            id.parse().ok().and_then(|n: u64| self.projects.get(&n))
        } else {
            self.project_by_path
                .get(&id.to_lowercase())
                .and_then(|n| self.projects.get(n))
        }
    }

    /// A full path, as GraphQL's `fullPath` (case-insensitive, never an id).
    pub fn find_project_by_path(&self, path: &str) -> Option<&ProjectState> {
        self.project_by_path
            .get(&path.to_lowercase())
            .and_then(|n| self.projects.get(n))
    }

    /// A full path, as GraphQL's `fullPath`.
    pub fn find_group_by_path(&self, path: &str) -> Option<&GroupState> {
        let lower = path.to_lowercase();
        self.groups.iter().find(|g| g.lower_path == lower)
    }

    pub fn find_group(&self, id: &str) -> Option<&GroupState> {
        if is_integer_id(id) {
            let n: u64 = id.parse().ok()?;
            self.groups.iter().find(|g| g.id == n)
        } else {
            let lower = id.to_lowercase();
            self.groups.iter().find(|g| g.lower_path == lower)
        }
    }

    /// Sorted ids of every repository of the projects under the group.
    pub fn group_repo_ids(&self, group: &GroupState) -> Vec<u64> {
        let prefix = format!("{}/", group.lower_path);
        let mut ids: Vec<u64> = self
            .projects
            .values()
            .filter(|p| p.lower_path.starts_with(&prefix))
            .flat_map(|p| p.repos.iter().copied())
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn is_integer_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// A fixed, distinct creation time per repository, in the repository
/// entity's format (`2019-01-10T13:38:57.391Z`).
fn repo_created_at(id: u64) -> String {
    let base = jiff::Timestamp::from_millisecond(1_547_127_537_391).expect("valid timestamp");
    let ts = base
        .checked_add(jiff::SignedDuration::from_secs((id % 100_000_000) as i64 * 61))
        .unwrap_or(base);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// FNV-1a, 64 bits, with a salt; for deterministic fake digests and sizes.
fn fnv(salt: u64, data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser for better bit spread
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// 64 lowercase hex characters derived from `name`.
pub(crate) fn hex64(salt: u64, name: &str) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64);
    for i in 0..4 {
        let _ = write!(s, "{:016x}", fnv(salt * 4 + i, name.as_bytes()));
    }
    s
}

/// The tag's config digest hex (`revision`).
pub(crate) fn revision_for(name: &str) -> String {
    hex64(1, name)
}

/// The tag's manifest digest (`digest`).
pub(crate) fn digest_for(name: &str) -> String {
    format!("sha256:{}", hex64(2, name))
}

/// A plausible image size, 5 MB to about 400 MB.
pub(crate) fn size_for(name: &str) -> u64 {
    5_000_000 + fnv(3, name.as_bytes()) % 395_000_000
}
