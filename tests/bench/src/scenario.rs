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
/// Repositories per GraphQL repository-list query (`first: 100`).
const GRAPHQL_REPOS_PER_PAGE: u64 = 100;
/// Tags per GraphQL tag query (`first: 20`, GitLab's limit for tags with dates).
const GRAPHQL_TAGS_PER_PAGE: u64 = 20;
/// Tags per `destroyContainerRepositoryTags` mutation (GitLab's limit).
const GRAPHQL_DELETE_BATCH: u64 = 20;

/// Which GitLab API a pass of ours goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Rest,
    Graphql,
}

impl Api {
    /// The value of our `--api`.
    pub fn flag(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::Graphql => "graphql",
        }
    }
}

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

    /// The fewest requests a pass through `api` can make, by route key.
    ///
    /// REST, with 100-item pages and no repeats: per entry one repository
    /// page per 100 repositories, per repository one tag page per 100 tags
    /// (an empty list is one page), one detail per tag, one DELETE per
    /// expired tag.
    ///
    /// GraphQL: per entry one project lookup (`GET /projects/:id`: the
    /// legacy config names projects by id, GraphQL needs the full path) and
    /// one repository-list query per 100 repositories, per repository one
    /// tag query per 20 tags (an empty list is one query) and one destroy
    /// mutation per 20 expired tags.
    pub fn minimum_requests(&self, api: Api) -> BTreeMap<String, u64> {
        let pages = |n: u64, per_page: u64| n.div_ceil(per_page).max(1);
        let mut m = match api {
            Api::Rest => BTreeMap::from([
                (
                    "GET project_repositories".to_owned(),
                    self.projects * pages(self.repos, PER_PAGE),
                ),
                ("GET tags".to_owned(), self.repositories() * pages(self.tags, PER_PAGE)),
                ("GET tag_detail".to_owned(), self.total_tags()),
                ("DELETE tag".to_owned(), self.total_expired()),
                // GitLab's own count of each repository's tags, for the
                // completeness check (GraphQL has it with the first page).
                ("GET repository".to_owned(), self.repositories()),
            ]),
            Api::Graphql => BTreeMap::from([
                ("GET project".to_owned(), self.projects),
                (
                    "POST graphql".to_owned(),
                    self.projects * pages(self.repos, GRAPHQL_REPOS_PER_PAGE)
                        + self.repositories() * pages(self.tags, GRAPHQL_TAGS_PER_PAGE),
                ),
                (
                    "POST graphql_mutation".to_owned(),
                    self.repositories() * self.expired_per_repo().div_ceil(GRAPHQL_DELETE_BATCH),
                ),
            ]),
        };
        // A route never used is absent from the fake's counts.
        m.retain(|_, n| *n > 0);
        m
    }

    pub fn minimum_total(&self, api: Api) -> u64 {
        self.minimum_requests(api).values().sum()
    }

    /// `1 GET project + 501 POST graphql + …`: the minimum, spelled out.
    pub fn describe_minimum(&self, api: Api) -> String {
        self.minimum_requests(api)
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The request-latency bound: every request waits `latency` and at most
    /// `concurrency` wait at once, so no pass can be faster than
    /// `requests × latency ÷ concurrency`.
    pub fn latency_bound(&self, requests: u64) -> Duration {
        self.latency.mul_f64(requests as f64 / self.concurrency.max(1) as f64)
    }

    /// The GraphQL bound: the request-latency bound, or, when longer, the
    /// chain of requests that must wait for one another: the project
    /// lookup, the repository-list queries, one repository's tag queries
    /// (each needs the previous page's cursor) and, when its last page
    /// holds an expired tag, the mutation that deletes it.
    pub fn graphql_bound(&self) -> Duration {
        let requests = self.latency_bound(self.minimum_total(Api::Graphql));
        let pages = self.tags.div_ceil(GRAPHQL_TAGS_PER_PAGE).max(1);
        let last_page_expired = ((pages - 1) * GRAPHQL_TAGS_PER_PAGE..self.tags).any(|i| is_expired(i, self.expired));
        let chain = 1 + self.repos.div_ceil(GRAPHQL_REPOS_PER_PAGE).max(1) + pages + u64::from(last_page_expired);
        requests.max(self.latency * chain as u32)
    }

    /// `10 repositories × 1000 tags (50 % expired), 5 ms latency, concurrency 32`
    pub fn describe(&self) -> String {
        format!(
            "{}, {} latency, concurrency {}",
            self.describe_data(),
            self.latency_label(),
            self.concurrency
        )
    }

    /// `10 repositories × 1000 tags (50 % expired)`
    pub fn describe_data(&self) -> String {
        let projects = if self.projects == 1 {
            String::new()
        } else {
            format!("{} projects × ", self.projects)
        };
        let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{projects}{} × {} ({} % expired)",
            plural(self.repos, "repository", "repositories"),
            plural(self.tags, "tag", "tags"),
            fmt_num(self.expired * 100.0),
        )
    }

    /// `5 ms`
    pub fn latency_label(&self) -> String {
        fmt_duration_ms(self.latency)
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
    /// Requests whose method, path-and-query and body had been seen before
    /// (the body tells GraphQL requests, all to one path, apart).
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
    /// (REST repository and tag pages, GraphQL queries), s.
    pub listing_s: f64,
}

impl Traffic {
    pub fn from_stats(stats: &Stats) -> Traffic {
        let mut seen = HashSet::with_capacity(stats.requests.len());
        let repeats = stats
            .requests
            .iter()
            .filter(|r| !seen.insert((r.method.as_str(), normalize(&r.path_and_query), r.body.as_str())))
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
                    Route::ProjectRepositories | Route::GroupRepositories | Route::Tags | Route::Graphql
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

    /// REST: `repository pages / tag pages / details / DELETEs`; GraphQL:
    /// `queries / mutations (GraphQL)`; plus anything else by route
    /// (e.g. `+ 1 GET project`, the lookups GraphQL needs).
    pub fn split(&self) -> String {
        const REST: [&str; 4] = ["GET project_repositories", "GET tags", "GET tag_detail", "DELETE tag"];
        const GRAPHQL: [&str; 2] = ["POST graphql", "POST graphql_mutation"];
        let rest = REST.iter().any(|k| self.route(k) > 0);
        let graphql = GRAPHQL.iter().any(|k| self.route(k) > 0);
        let mut parts = Vec::new();
        let mut known: Vec<&str> = Vec::new();
        if rest || !graphql {
            parts.push(REST.map(|k| self.route(k).to_string()).join(" / "));
            known.extend(REST);
        }
        if graphql {
            parts.push(format!(
                "{} / {} (GraphQL)",
                self.route("POST graphql"),
                self.route("POST graphql_mutation")
            ));
            known.extend(GRAPHQL);
        }
        let mut s = parts.join(" + ");
        for (route, n) in &self.by_route {
            if !known.contains(&route.as_str()) {
                s.push_str(&format!(" + {n} {route}"));
            }
        }
        s
    }

    /// Exactly the minimum through `api`: the same count on every route,
    /// nothing else, nothing asked twice.
    pub fn is_minimal(&self, scenario: &Scenario, api: Api) -> bool {
        self.by_route == scenario.minimum_requests(api) && self.repeats == 0
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
        let m = s.minimum_requests(Api::Rest);
        assert_eq!(m["GET project_repositories"], 2);
        assert_eq!(m["GET tags"], 6 * 10);
        assert_eq!(m["GET tag_detail"], 6000);
        assert_eq!(m["DELETE tag"], 3000);
        assert_eq!(m["GET repository"], 6);
        assert_eq!(s.minimum_total(Api::Rest), 2 + 60 + 6000 + 3000 + 6);
        // 1001 tags: 11 pages; none: still one page.
        assert_eq!(scenario(1001, 0.5).minimum_requests(Api::Rest)["GET tags"], 66);
        assert_eq!(scenario(0, 0.5).minimum_requests(Api::Rest)["GET tags"], 6);
        // Nothing expired: no DELETE route at all, as the fake counts it.
        assert!(!scenario(10, 0.0).minimum_requests(Api::Rest).contains_key("DELETE tag"));
    }

    #[test]
    fn minimum_graphql_requests() {
        let s = scenario(1000, 0.5);
        let m = s.minimum_requests(Api::Graphql);
        assert_eq!(m["GET project"], 2);
        // Per project one repository list, per repository 1000 / 20 tag pages.
        assert_eq!(m["POST graphql"], 2 + 6 * 50);
        // 500 expired per repository, 20 per mutation.
        assert_eq!(m["POST graphql_mutation"], 6 * 25);
        assert_eq!(m.len(), 3);
        assert_eq!(s.minimum_total(Api::Graphql), 2 + 302 + 150);
        // The issue's scenario: 20× fewer than REST's 15101.
        let issue = Scenario {
            projects: 1,
            repos: 10,
            ..s.clone()
        };
        assert_eq!(issue.minimum_total(Api::Graphql), 1 + 1 + 500 + 250);
        // 21 tags, 11 expired: 2 pages, 1 mutation; none: one page, no mutation.
        let odd = scenario(21, 0.5);
        assert_eq!(odd.expired_per_repo(), 10);
        assert_eq!(odd.minimum_requests(Api::Graphql)["POST graphql"], 2 + 6 * 2);
        assert_eq!(odd.minimum_requests(Api::Graphql)["POST graphql_mutation"], 6);
        assert_eq!(
            scenario(41, 1.0).minimum_requests(Api::Graphql)["POST graphql_mutation"],
            6 * 3
        );
        let empty = scenario(0, 0.5).minimum_requests(Api::Graphql);
        assert_eq!(empty["POST graphql"], 2 + 6);
        assert!(!empty.contains_key("POST graphql_mutation"));
        assert_eq!(
            s.describe_minimum(Api::Graphql),
            "2 GET project + 302 POST graphql + 150 POST graphql_mutation"
        );
    }

    fn record(method: &str, path: &str, body: &str, route: Route) -> fake_gitlab::RequestRecord {
        let now = Instant::now();
        fake_gitlab::RequestRecord {
            method: method.to_owned(),
            path_and_query: path.to_owned(),
            body: body.to_owned(),
            route,
            status: 200,
            auth: None,
            user_agent: None,
            started: now,
            finished: now + Duration::from_millis(5),
        }
    }

    fn stats(requests: Vec<fake_gitlab::RequestRecord>) -> Stats {
        let mut by_route = BTreeMap::new();
        for r in &requests {
            *by_route.entry(r.route.key().to_owned()).or_insert(0) += 1;
        }
        Stats {
            total: requests.len() as u64,
            by_route,
            by_status: BTreeMap::from([(200, requests.len() as u64)]),
            max_in_flight: 1,
            requests,
        }
    }

    #[test]
    fn graphql_requests_differ_by_their_body() {
        let q = |after: &str| format!(r#"{{"query":"query RepositoryTags","variables":{{"after":{after}}}}}"#);
        let t = Traffic::from_stats(&stats(vec![
            record("GET", "/api/v4/projects/1", "", Route::Project),
            record("POST", "/api/graphql", &q("null"), Route::Graphql),
            record("POST", "/api/graphql", &q("\"c1\""), Route::Graphql),
            record("POST", "/api/graphql", &q("\"c1\""), Route::Graphql),
            record(
                "POST",
                "/api/graphql",
                r#"{"query":"mutation DestroyTags"}"#,
                Route::GraphqlMutation,
            ),
        ]));
        assert_eq!(t.repeats, 1);
        assert_eq!(t.split(), "3 / 1 (GraphQL) + 1 GET project");
        // The listing ends with the last query's answer, not the mutation's.
        assert!(t.listing_s > 0.0);
        let rest = Traffic::from_stats(&stats(vec![
            record("GET", "/api/v4/x/tags", "", Route::Tags),
            record("GET", "/api/v4/x/tags?page=1&per_page=20", "", Route::Tags),
        ]));
        assert_eq!(rest.repeats, 1);
        assert_eq!(rest.split(), "0 / 2 / 0 / 0");
        assert_eq!(Traffic::default().split(), "0 / 0 / 0 / 0");
    }

    #[test]
    fn minimal_graphql_traffic() {
        let s = Scenario {
            projects: 1,
            repos: 1,
            tags: 30,
            ..scenario(30, 0.5)
        };
        let mut requests = vec![
            record("GET", "/api/v4/projects/1", "", Route::Project),
            record("POST", "/api/graphql", "repos", Route::Graphql),
            record("POST", "/api/graphql", "tags 1", Route::Graphql),
            record("POST", "/api/graphql", "tags 2", Route::Graphql),
        ];
        assert!(!Traffic::from_stats(&stats(requests.clone())).is_minimal(&s, Api::Graphql));
        requests.push(record("POST", "/api/graphql", "destroy", Route::GraphqlMutation));
        let t = Traffic::from_stats(&stats(requests.clone()));
        assert!(t.is_minimal(&s, Api::Graphql));
        assert!(!t.is_minimal(&s, Api::Rest));
        requests.push(record("POST", "/api/graphql", "tags 2", Route::Graphql));
        assert!(!Traffic::from_stats(&stats(requests)).is_minimal(&s, Api::Graphql));
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
    fn graphql_bound() {
        // 1 lookup + 1 list + 50 pages + 1 mutation after the last page.
        let s = Scenario {
            projects: 1,
            repos: 10,
            ..scenario(1000, 0.5)
        };
        assert_eq!(s.graphql_bound(), Duration::from_millis(5 * 53));
        // Nothing expired: no mutation to wait for.
        assert_eq!(
            Scenario {
                expired: 0.0,
                ..s.clone()
            }
            .graphql_bound(),
            Duration::from_millis(5 * 52)
        );
        // Many repositories: the requests themselves, 32 at a time.
        let wide = Scenario {
            repos: 1000,
            ..s.clone()
        };
        assert_eq!(
            wide.graphql_bound(),
            wide.latency_bound(wide.minimum_total(Api::Graphql))
        );
        assert!(wide.graphql_bound() > Duration::from_millis(5 * 53));
    }

    #[test]
    fn describes() {
        let s = scenario(1000, 0.5);
        assert_eq!(
            s.describe_data(),
            "2 projects × 3 repositories × 1000 tags (50 % expired)"
        );
        assert_eq!(
            s.describe(),
            format!("{}, 5 ms latency, concurrency 32", s.describe_data())
        );
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
