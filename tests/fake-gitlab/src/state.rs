//! The fake's mutable state: registry data, fault configuration, statistics.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{Fault, Faults, Project, RequestRecord, Route, Seed, Stats, Tag};

/// Everything shared by the connections of one server.
pub(crate) struct Shared {
    pub token: String,
    pub read_only_token: Option<String>,
    pub registry: Mutex<Registry>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<StatsInner>,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
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
        };
        for project in seed.projects {
            registry
                .add_project(project)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
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
            stats: Mutex::new(StatsInner::default()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        })
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
    /// Keyed by name: iteration order is GitLab's byte-wise sort.
    pub tags: BTreeMap<String, TagState>,
}

pub(crate) struct TagState {
    pub created_at: Option<String>,
    pub published_at: Option<String>,
    pub total_size: Option<u64>,
    pub protected: bool,
}

impl From<Tag> for (String, TagState) {
    fn from(t: Tag) -> Self {
        (
            t.name,
            TagState {
                created_at: t.created_at,
                published_at: t.published_at,
                total_size: t.total_size,
                protected: t.protected,
            },
        )
    }
}

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
            },
        );
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
