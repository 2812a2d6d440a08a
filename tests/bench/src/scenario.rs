//! The generated data set: projects × repositories × tags, a share of them
//! expired, and what a correct pass leaves behind.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use fake_gitlab::{FakeGitlab, Project, Repository, Route, Seed, Stats, Tag};

/// The token the fake accepts.
pub const TOKEN: &str = "glpat-bench-token";
/// Age of an expired tag (plus its index in seconds): far past the limit.
pub const EXPIRED_AGE: Duration = Duration::from_secs(30 * 86_400);
/// Age of a young tag (plus its index in seconds, at most ~28 h for 100k
/// tags): far below the limit.
pub const YOUNG_AGE: Duration = Duration::from_secs(3_600);
/// `delete_older_than` in the config, in days.
pub const LIMIT_DAYS: u64 = 7;
/// GitLab's largest page, which our cleaner asks for.
const PER_PAGE: u64 = 100;

/// The shape of one benchmark data set and server.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub projects: u64,
    /// Repositories per project.
    pub repos: u64,
    /// Tags per repository.
    pub tags: u64,
    /// Share of each repository's tags that is expired, `0.0..=1.0`.
    pub expired: f64,
    /// Slept by the fake before every response.
    pub latency: Duration,
    /// `--concurrency` given to our cleaner (the Python tool has no limit).
    pub concurrency: usize,
}

impl Scenario {
    pub fn repositories(&self) -> u64 {
        self.projects * self.repos
    }

    /// Expired tags in each repository.
    pub fn expired_per_repo(&self) -> u64 {
        (0..self.tags).filter(|&i| is_expired(i, self.expired)).count() as u64
    }

    pub fn total_tags(&self) -> u64 {
        self.repositories() * self.tags
    }

    pub fn total_expired(&self) -> u64 {
        self.repositories() * self.expired_per_repo()
    }

    /// The fewest requests a pass can make with 100-item pages and no
    /// repeats: per entry one repository page per 100 repositories, per
    /// repository one tag page per 100 tags (an empty list is one page),
    /// one detail per tag, one DELETE per expired tag.
    pub fn minimum_requests(&self) -> BTreeMap<String, u64> {
        let pages = |n: u64| n.div_ceil(PER_PAGE).max(1);
        BTreeMap::from([
            ("GET project_repositories".to_owned(), self.projects * pages(self.repos)),
            ("GET tags".to_owned(), self.repositories() * pages(self.tags)),
            ("GET tag_detail".to_owned(), self.total_tags()),
            ("DELETE tag".to_owned(), self.total_expired()),
        ])
    }

    pub fn minimum_total(&self) -> u64 {
        self.minimum_requests().values().sum()
    }

    /// The request-latency bound: every request waits `latency` and at most
    /// `concurrency` wait at once, so no pass can be faster than
    /// `requests × latency ÷ concurrency`.
    pub fn latency_bound(&self, requests: u64) -> Duration {
        self.latency.mul_f64(requests as f64 / self.concurrency.max(1) as f64)
    }

    /// `10 repos × 1000 tags (50 % expired), 5 ms`
    pub fn describe(&self) -> String {
        let projects = if self.projects == 1 {
            String::new()
        } else {
            format!("{} projects × ", self.projects)
        };
        let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{projects}{} × {} ({} % expired), {} latency, concurrency {}",
            plural(self.repos, "repository", "repositories"),
            plural(self.tags, "tag", "tags"),
            fmt_num(self.expired * 100.0),
            fmt_duration_ms(self.latency),
            self.concurrency
        )
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

fn fmt_duration_ms(d: Duration) -> String {
    format!("{} ms", fmt_num(d.as_secs_f64() * 1000.0))
}

/// Spreads the expired tags evenly through the (sorted) names: tag `i` is
/// expired when `floor((i + 1) × share)` steps past `floor(i × share)`,
/// which makes exactly `floor(tags × share)` of them expired.
pub fn is_expired(i: u64, share: f64) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

/// One repository of the data set and what must be left of it.
#[derive(Debug, Clone)]
pub struct RepoPlan {
    pub project_id: u64,
    pub repo_id: u64,
    /// Sorted.
    pub young: Vec<String>,
    /// Sorted.
    pub expired: Vec<String>,
}

/// A generated data set.
pub struct DataSet {
    pub seed: Seed,
    pub repos: Vec<RepoPlan>,
    pub config: String,
}

impl DataSet {
    pub fn generate(scenario: &Scenario) -> DataSet {
        let width = scenario.tags.max(1).to_string().len().max(4);
        let mut projects = Vec::new();
        let mut plans = Vec::new();
        let mut next_repo = 0u64;
        let mut config = serde_json::Map::new();
        for p in 1..=scenario.projects {
            let mut repositories = Vec::new();
            for r in 1..=scenario.repos {
                next_repo += 1;
                let mut tags = Vec::with_capacity(scenario.tags as usize);
                let (mut young, mut expired) = (Vec::new(), Vec::new());
                for i in 0..scenario.tags {
                    let name = format!("v{i:0width$}");
                    let offset = Duration::from_secs(i);
                    if is_expired(i, scenario.expired) {
                        tags.push(Tag::aged(name.clone(), EXPIRED_AGE + offset));
                        expired.push(name);
                    } else {
                        tags.push(Tag::aged(name.clone(), YOUNG_AGE + offset));
                        young.push(name);
                    }
                }
                young.sort();
                expired.sort();
                plans.push(RepoPlan {
                    project_id: p,
                    repo_id: next_repo,
                    young,
                    expired,
                });
                repositories.push(Repository {
                    id: next_repo,
                    name: format!("image-{r}"),
                    tags,
                });
            }
            projects.push(Project {
                id: p,
                path: format!("bench/project-{p}"),
                repositories,
            });
            // The legacy form: the only one the Python tool reads.
            config.insert(
                format!("project-{p}"),
                serde_json::json!({"id": p, "delete_older_than": {"days": LIMIT_DAYS}}),
            );
        }
        DataSet {
            seed: Seed {
                token: TOKEN.to_owned(),
                read_only_token: None,
                registry_host: "registry.bench.local:5005".to_owned(),
                projects,
                groups: Vec::new(),
                ..Seed::default()
            },
            repos: plans,
            config: serde_json::to_string_pretty(&serde_json::Value::Object(config)).expect("a JSON object serializes"),
        }
    }

    /// Whether exactly the expired tags are gone: every young tag is left,
    /// no expired tag is left, and each expired tag was deleted once.
    pub fn verify(&self, fake: &FakeGitlab) -> Verdict {
        let mut young_deleted = 0u64;
        let mut expired_left = 0u64;
        let mut deleted_expected = 0u64;
        for repo in &self.repos {
            let left: BTreeSet<String> = fake.tag_names(repo.repo_id).into_iter().collect();
            young_deleted += repo.young.iter().filter(|n| !left.contains(*n)).count() as u64;
            expired_left += repo.expired.iter().filter(|n| left.contains(*n)).count() as u64;
            deleted_expected += repo.expired.len() as u64;
        }
        let deleted = fake.deleted();
        let distinct: HashSet<&(u64, String)> = deleted.iter().collect();
        let deletions = deleted.len() as u64;
        let exact =
            young_deleted == 0 && expired_left == 0 && deletions == deleted_expected && distinct.len() == deleted.len();
        Verdict {
            exact,
            young_deleted,
            expired_left,
            deletions,
        }
    }
}

/// What a pass left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub exact: bool,
    pub young_deleted: u64,
    pub expired_left: u64,
    /// Tags the fake actually removed.
    pub deletions: u64,
}

impl Verdict {
    pub fn describe(&self) -> String {
        if self.exact {
            "yes".to_owned()
        } else {
            format!(
                "**no**: {} young deleted, {} expired left",
                self.young_deleted, self.expired_left
            )
        }
    }
}

/// A request's path and query with GitLab's paging defaults made explicit
/// (`page=1`, `per_page=20` on lists) and the query sorted, so that asking
/// for `…/tags` and then `…/tags?page=1` counts as asking twice.
pub fn normalize(path_and_query: &str) -> String {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut pairs: BTreeMap<&str, &str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    if path.ends_with("/tags") || path.ends_with("/registry/repositories") {
        pairs.entry("page").or_insert("1");
        pairs.entry("per_page").or_insert("20");
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", query.join("&"))
}

/// What the server saw during one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub total: u64,
    pub by_route: BTreeMap<String, u64>,
    pub max_in_flight: u64,
    /// Requests whose method and path-and-query had been seen before.
    pub repeats: u64,
    /// Requests answered with something else than 2xx.
    pub non_2xx: u64,
    /// Mean time the fake held a request, arrival to response (latency included), ms.
    pub server_ms: f64,
    /// Sum of the times the fake held requests, s; divided by a wall time,
    /// the mean number of requests in flight.
    pub held_s: f64,
    /// The first request's arrival and the last request's answer.
    pub span: Option<(Instant, Instant)>,
    /// From the first request's arrival to the last list page's answer
    /// (repository and tag pages), s.
    pub listing_s: f64,
}

impl Traffic {
    pub fn from_stats(stats: &Stats) -> Traffic {
        let mut seen = HashSet::with_capacity(stats.requests.len());
        let repeats = stats
            .requests
            .iter()
            .filter(|r| !seen.insert((r.method.as_str(), normalize(&r.path_and_query))))
            .count() as u64;
        let non_2xx = stats
            .by_status
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum();
        let held: f64 = stats
            .requests
            .iter()
            .map(|r| (r.finished - r.started).as_secs_f64())
            .sum();
        let first = stats.requests.iter().map(|r| r.started).min();
        let last = stats.requests.iter().map(|r| r.finished).max();
        let listed = stats
            .requests
            .iter()
            .filter(|r| {
                matches!(
                    r.route,
                    Route::ProjectRepositories | Route::GroupRepositories | Route::Tags
                )
            })
            .map(|r| r.finished)
            .max();
        let listing_s = first
            .zip(listed)
            .map_or(0.0, |(f, l)| l.saturating_duration_since(f).as_secs_f64());
        Traffic {
            server_ms: held * 1000.0 / stats.requests.len().max(1) as f64,
            held_s: held,
            span: first.zip(last),
            listing_s,
            total: stats.total,
            by_route: stats.by_route.clone(),
            max_in_flight: stats.max_in_flight,
            repeats,
            non_2xx,
        }
    }

    pub fn route(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }

    /// `repository pages / tag pages / details / DELETEs`, plus anything else.
    pub fn split(&self) -> String {
        let mut s = format!(
            "{} / {} / {} / {}",
            self.route("GET project_repositories"),
            self.route("GET tags"),
            self.route("GET tag_detail"),
            self.route("DELETE tag")
        );
        let known = ["GET project_repositories", "GET tags", "GET tag_detail", "DELETE tag"];
        for (route, n) in &self.by_route {
            if !known.contains(&route.as_str()) {
                s.push_str(&format!(" + {n} {route}"));
            }
        }
        s
    }

    /// Exactly the minimum: the same count on every route, nothing else,
    /// nothing asked twice.
    pub fn is_minimal(&self, scenario: &Scenario) -> bool {
        self.by_route == scenario.minimum_requests() && self.repeats == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(tags: u64, expired: f64) -> Scenario {
        Scenario {
            projects: 2,
            repos: 3,
            tags,
            expired,
            latency: Duration::from_millis(5),
            concurrency: 32,
        }
    }

    #[test]
    fn expired_share_is_exact_and_spread() {
        let s = scenario(1000, 0.5);
        assert_eq!(s.expired_per_repo(), 500);
        assert!(!is_expired(0, 0.5) && is_expired(1, 0.5));
        assert_eq!(scenario(10, 0.3).expired_per_repo(), 3);
        assert_eq!(scenario(10, 0.0).expired_per_repo(), 0);
        assert_eq!(scenario(10, 1.0).expired_per_repo(), 10);
    }

    #[test]
    fn minimum_requests() {
        let s = scenario(1000, 0.5);
        let m = s.minimum_requests();
        assert_eq!(m["GET project_repositories"], 2);
        assert_eq!(m["GET tags"], 6 * 10);
        assert_eq!(m["GET tag_detail"], 6000);
        assert_eq!(m["DELETE tag"], 3000);
        assert_eq!(s.minimum_total(), 2 + 60 + 6000 + 3000);
        // 1001 tags: 11 pages; none: still one page.
        assert_eq!(scenario(1001, 0.5).minimum_requests()["GET tags"], 66);
        assert_eq!(scenario(0, 0.5).minimum_requests()["GET tags"], 6);
    }

    #[test]
    fn normalizes_paging_defaults() {
        let n = normalize;
        assert_eq!(n("/api/v4/x/tags"), n("/api/v4/x/tags?page=1"));
        assert_eq!(n("/api/v4/x/tags?per_page=20&page=1"), n("/api/v4/x/tags?page=1"));
        assert_ne!(n("/api/v4/x/tags?page=2"), n("/api/v4/x/tags?page=1"));
        assert_eq!(n("/api/v4/x/tags/v1"), "/api/v4/x/tags/v1?");
    }

    #[test]
    fn latency_bound() {
        let s = scenario(1000, 0.5);
        assert_eq!(s.latency_bound(3200), Duration::from_millis(500));
    }

    #[test]
    fn data_set_and_config() {
        let s = scenario(20, 0.5);
        let data = DataSet::generate(&s);
        assert_eq!(data.repos.len(), 6);
        assert_eq!(data.repos[0].young.len(), 10);
        assert_eq!(data.repos[0].expired[0], "v0001");
        let config: serde_json::Value = serde_json::from_str(&data.config).unwrap();
        assert_eq!(
            config["project-2"],
            serde_json::json!({"id": 2, "delete_older_than": {"days": 7}})
        );
    }
}
