//! Benchmark (c), issue 16: what `delete_when_ref_gone` costs in requests
//! and time (`--refs`, `--refs-only`).
//!
//! The same data, passed once with the rule and once with the age rule
//! alone, through REST and through GraphQL: projects of repositories whose
//! tags are named after branches (`<slug>-<8 hex>`, half of the branches
//! gone) and merge requests (`mr-<iid>-<8 hex>`, half of them merged or
//! closed), all inside the rule's window (older than the grace, younger
//! than `delete_older_than`), plus a few tags past the age limit. Ours
//! only: the Python tool has no such rule.
//!
//! Per run: wall time, the requests the fake saw by route, the tags deleted
//! and whether they are exactly the expected ones. Derived: the branch and
//! merge-request requests against their minimum and against a naive
//! client, and the wall-time ratio of the pass with the rule to the pass
//! without.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fake_gitlab::{Branch, FakeGitlab, Faults, MergeRequest, MergeRequestState, Project, Repository, Route, Seed, Tag};

use crate::report::median;
use crate::scenario::{Api, TOKEN};
use crate::{Args, TOOL_VARS};

/// The rule's `tag_regex`: a merge request's iid, else a branch's slug.
pub const TAG_REGEX: &str = r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}";
/// GitLab's largest page, which our cleaner asks for (branches, and iids
/// per merge-request request).
const PER_PAGE: u64 = 100;
/// Age of a tag in the rule's window: past the 1-day grace, far below 30 days.
const WINDOW_AGE: Duration = Duration::from_secs(2 * 86_400);
/// Age of a tag past the 30-day limit.
const EXPIRED_AGE: Duration = Duration::from_secs(31 * 86_400);

/// The shape of the data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub projects: u64,
    /// Repositories per project.
    pub repos: u64,
    /// Tags per repository inside the rule's window: the first half named
    /// after branches, the rest after merge requests.
    pub tags: u64,
    /// Branch names per project the tags use; every second one (odd index)
    /// is gone, i.e. not seeded. Index 0 is `main`.
    pub branches: u64,
    /// Merge requests per project (iids 1..); an even iid is merged or closed.
    pub merge_requests: u64,
}

impl Shape {
    pub fn from_args(args: &Args) -> Shape {
        Shape {
            projects: args.refs_projects,
            repos: args.refs_repos,
            tags: args.refs_tags,
            branches: args.refs_branches,
            merge_requests: args.refs_mrs,
        }
    }

    fn branch_tags(&self) -> u64 {
        if self.branches == 0 { 0 } else { self.tags / 2 }
    }

    fn mr_tags(&self) -> u64 {
        if self.merge_requests == 0 {
            0
        } else {
            self.tags - self.branch_tags()
        }
    }

    /// Tags per repository past the age limit (a tenth of `tags`), named
    /// after branches that are there.
    fn expired_tags(&self) -> u64 {
        self.tags / 10
    }

    /// Branches each project has (the even indices).
    pub fn present_branches(&self) -> u64 {
        self.branches.div_ceil(2)
    }

    /// Distinct merge requests a project's tags name.
    pub fn named_mrs(&self) -> u64 {
        self.mr_tags().min(self.merge_requests)
    }

    /// The fewest branch-list requests per project: one keyset page per
    /// 100 branches, and one more (empty) when the last page is exactly
    /// full; and GitLab's count before and after, which keyset pages do
    /// not carry.
    pub fn branch_pages(&self) -> u64 {
        self.branch_pages_for(self.present_branches())
    }

    fn branch_pages_for(&self, present: u64) -> u64 {
        if self.branch_tags() == 0 {
            0
        } else {
            present / PER_PAGE + 1 + 2
        }
    }

    /// The git tag list's requests per project (the data has no git tags):
    /// one empty keyset page and the counts.
    pub fn git_tag_pages(&self) -> u64 {
        if self.branch_tags() == 0 { 0 } else { 3 }
    }

    /// The fewest branch and merge-request requests of (c), where every
    /// branch is there: the branch list may be a page longer.
    pub fn minimum_lookups_nothing_gone(&self) -> u64 {
        self.projects
            * (self.branch_pages_for(self.branches) + self.git_tag_pages() + self.named_mrs().div_ceil(PER_PAGE))
    }

    /// The fewest branch and merge-request requests of a pass, by route key:
    /// per project its branch pages and one request per 100 named merge
    /// requests; a second repository of the same project asks nothing new.
    pub fn minimum_lookups(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            (Route::Branches.key(), self.projects * self.branch_pages()),
            (Route::GitTags.key(), self.projects * self.git_tag_pages()),
            (
                Route::MergeRequests.key(),
                self.projects * self.named_mrs().div_ceil(PER_PAGE),
            ),
        ])
    }

    /// A naive client: per repository the whole branch list (no count, no
    /// git tags), per project `GET /projects/:id/merge_requests/:iid` once
    /// per named merge request.
    pub fn naive_lookups(&self) -> u64 {
        self.projects * (self.repos * (self.branch_pages() - 2) + self.named_mrs())
    }

    pub fn describe(&self) -> String {
        format!(
            "{} projects (one config entry each) × {} repositories × ({} tags in the rule's window + {} past the age \
             limit); per project {} branch names in tags ({} of them gone) and {} merge requests ({} merged or closed)",
            self.projects,
            self.repos,
            self.tags,
            self.expired_tags(),
            self.branches,
            self.branches - self.present_branches(),
            self.merge_requests,
            self.merge_requests / 2
        )
    }
}

/// A branch's name (index 0: `main`), as Git has it, and its slug.
fn branch(i: u64) -> (String, String) {
    if i == 0 {
        ("main".to_owned(), "main".to_owned())
    } else {
        (format!("feature/Topic-{i:03}"), format!("feature-topic-{i:03}"))
    }
}

fn branch_gone(i: u64) -> bool {
    i % 2 == 1
}

fn mr_state(iid: u64) -> MergeRequestState {
    match iid % 4 {
        0 => MergeRequestState::Merged,
        2 => MergeRequestState::Closed,
        _ => MergeRequestState::Opened,
    }
}

fn mr_done(iid: u64) -> bool {
    matches!(mr_state(iid), MergeRequestState::Merged | MergeRequestState::Closed)
}

/// Eight hex digits, unique within a repository: kind, repository, index.
fn hex(kind: u64, repo: u64, j: u64) -> String {
    format!("{:01x}{:03x}{:04x}", kind % 16, repo % 4096, j % 65_536)
}

/// A generated data set and what each pass must delete.
pub struct RefsData {
    seed: Seed,
    /// The expired tags, `(repository id, name)`.
    expired: BTreeSet<(u64, String)>,
    /// The tags of gone branches and finished merge requests.
    gone: BTreeSet<(u64, String)>,
}

impl RefsData {
    /// With `nothing_gone`, the same tags, but every branch is there and
    /// every merge request open.
    pub fn generate(shape: &Shape, nothing_gone: bool) -> RefsData {
        let branch_gone = |b: u64| !nothing_gone && branch_gone(b);
        let mr_state = |iid: u64| {
            if nothing_gone {
                MergeRequestState::Opened
            } else {
                mr_state(iid)
            }
        };
        let mr_done = |iid: u64| !nothing_gone && mr_done(iid);
        let (mut projects, mut expired, mut gone) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
        let (mut branches, mut merge_requests) = (BTreeMap::new(), BTreeMap::new());
        let mut repo_id = 0u64;
        for p in 1..=shape.projects {
            let mut repositories = Vec::new();
            for r in 1..=shape.repos {
                repo_id += 1;
                let mut tags = Vec::new();
                for j in 0..shape.branch_tags() {
                    let b = j % shape.branches;
                    let name = format!("{}-{}", branch(b).1, hex(1, r, j));
                    if branch_gone(b) {
                        gone.insert((repo_id, name.clone()));
                    }
                    tags.push(Tag::aged(name, WINDOW_AGE + Duration::from_secs(j)));
                }
                for j in 0..shape.mr_tags() {
                    let iid = j % shape.merge_requests + 1;
                    let name = format!("mr-{iid}-{}", hex(2, r, j));
                    if mr_done(iid) {
                        gone.insert((repo_id, name.clone()));
                    }
                    tags.push(Tag::aged(name, WINDOW_AGE + Duration::from_secs(j)));
                }
                for j in 0..shape.expired_tags() {
                    // Branches that are there: by age alone.
                    let b = (2 * j) % shape.branches.max(1);
                    let name = format!("{}-{}", branch(b).1, hex(3, r, j));
                    expired.insert((repo_id, name.clone()));
                    tags.push(Tag::aged(name, EXPIRED_AGE + Duration::from_secs(j)));
                }
                repositories.push(Repository {
                    id: repo_id,
                    name: format!("image-{r}"),
                    tags,
                });
            }
            projects.push(Project {
                id: p,
                path: format!("bench/refs-{p}"),
                repositories,
            });
            let mut list: Vec<Branch> = (1..shape.branches)
                .filter(|&b| !branch_gone(b))
                .map(|b| Branch::new(branch(b).0))
                .collect();
            list.push(Branch::default_branch("main"));
            branches.insert(p, list);
            merge_requests.insert(
                p,
                (1..=shape.merge_requests)
                    .map(|iid| MergeRequest::new(iid, mr_state(iid)))
                    .collect(),
            );
        }
        let seed = Seed {
            token: TOKEN.to_owned(),
            read_only_token: None,
            registry_host: "registry.bench.local:5005".to_owned(),
            projects,
            groups: Vec::new(),
            branches,
            merge_requests,
            ..Seed::default()
        };
        RefsData { seed, expired, gone }
    }

    /// One entry per project: the age rule, and with `rule` the ref rule.
    fn config(&self, rule: bool) -> String {
        let entries: serde_json::Map<String, serde_json::Value> = self
            .seed
            .projects
            .iter()
            .map(|p| {
                let mut entry = serde_json::json!({"id": p.id, "delete_older_than": "30d"});
                if rule {
                    entry["delete_when_ref_gone"] = serde_json::json!({"tag_regex": TAG_REGEX, "grace": "1d"});
                }
                (format!("refs-{}", p.id), entry)
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::Value::Object(entries)).expect("a JSON object serializes")
    }

    fn expected(&self, rule: bool) -> BTreeSet<(u64, String)> {
        let mut expected = self.expired.clone();
        if rule {
            expected.extend(self.gone.iter().cloned());
        }
        expected
    }
}

/// Which configuration and data a pass runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// (a) `delete_when_ref_gone`, half of the branches and merge requests gone.
    Rule,
    /// (b) The age rule alone, the same data.
    Age,
    /// (c) `delete_when_ref_gone`, every branch there and every merge
    /// request open: the lookups without the deletions they lead to.
    RuleNothingGone,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Rule, Variant::Age, Variant::RuleNothingGone];

    fn rule(self) -> bool {
        self != Variant::Age
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Rule => "(a) rule",
            Variant::Age => "(b) age alone",
            Variant::RuleNothingGone => "(c) rule, nothing gone",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Variant::Rule => "rule",
            Variant::Age => "age",
            Variant::RuleNothingGone => "rule-nothing-gone",
        }
    }
}

/// One pass of ours.
#[derive(Debug, Clone)]
pub struct RefsRun {
    pub latency_ms: f64,
    pub api: Api,
    pub variant: Variant,
    pub round: usize,
    pub wall: Duration,
    pub exit: Option<i32>,
    pub by_route: BTreeMap<String, u64>,
    pub total: u64,
    /// Branch and merge-request requests asked before in the same pass
    /// (the same path and query).
    pub lookup_repeats: u64,
    pub deleted: u64,
    pub expected: u64,
    pub exact: bool,
}

impl RefsRun {
    fn route(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }

    pub fn branches(&self) -> u64 {
        self.route(Route::Branches.key())
    }

    pub fn merge_requests(&self) -> u64 {
        self.route(Route::MergeRequests.key())
    }

    /// Branch, git tag and merge-request requests.
    pub fn lookups(&self) -> u64 {
        self.branches() + self.route(Route::GitTags.key()) + self.merge_requests()
    }

    /// `DELETE tag` (REST) or destroy mutations (GraphQL).
    pub fn deletes(&self) -> u64 {
        self.route(Route::DeleteTag.key()) + self.route(Route::GraphqlMutation.key())
    }

    /// Everything else: repository lists, tag pages, details, lookups of
    /// the project's path, GitLab's tag counts.
    pub fn tag_routes(&self) -> u64 {
        self.total - self.lookups() - self.deletes()
    }

    pub fn ok(&self) -> bool {
        self.exact && self.exit == Some(0)
    }
}

/// Which pass: latency, API, with the rule or not, round.
#[derive(Debug, Clone, Copy)]
struct Which {
    latency_ms: f64,
    api: Api,
    variant: Variant,
    round: usize,
}

fn run_once(binary: &Path, data: &RefsData, runs_dir: &Path, args: &Args, which: Which) -> Result<RefsRun, String> {
    let Which {
        latency_ms,
        api,
        variant,
        round,
    } = which;
    let rule = variant.rule();
    let fake = FakeGitlab::start(data.seed.clone()).map_err(|e| format!("cannot start the fake GitLab: {e}"))?;
    fake.set_faults(Faults {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        ..Faults::default()
    });
    let dir = runs_dir.join(format!("refs-{}-{}", api.flag(), variant.dir()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("config.json");
    fs::write(&config, data.config(rule)).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("once")
        .args(["-u", &fake.url(), "-t", TOKEN, "-c"])
        .arg(&config)
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--api", api.flag(), "--log-level", "warn"]);
    for var in TOOL_VARS {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    let log = |name: &str| fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    cmd.current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log("stdout.log")?)
        .stderr(log("stderr.log")?);
    let (exit, wall) = crate::measure::spawn_and_wait(&mut cmd, args.timeout)?;
    let stats = fake.stats();
    let mut seen = BTreeSet::new();
    let lookup_repeats = stats
        .requests
        .iter()
        .filter(|r| matches!(r.route, Route::Branches | Route::GitTags | Route::MergeRequests))
        .filter(|r| !seen.insert(r.path_and_query.as_str()))
        .count() as u64;
    let deleted = fake.deleted();
    let distinct: BTreeSet<(u64, String)> = deleted.iter().cloned().collect();
    let expected = data.expected(rule);
    let exact = distinct.len() == deleted.len() && distinct == expected;
    if !exact {
        let wrong: Vec<&(u64, String)> = distinct.difference(&expected).take(5).collect();
        let missing: Vec<&(u64, String)> = expected.difference(&distinct).take(5).collect();
        eprintln!(
            "bench: refs: WRONG TAGS DELETED ({} deleted, {} distinct, {} expected); e.g. deleted but not expected \
             {wrong:?}, expected but left {missing:?}; see {}",
            deleted.len(),
            distinct.len(),
            expected.len(),
            dir.display()
        );
    }
    let run = RefsRun {
        latency_ms,
        api,
        variant,
        round,
        wall,
        exit,
        by_route: stats.by_route.clone(),
        total: stats.total,
        lookup_repeats,
        deleted: deleted.len() as u64,
        expected: expected.len() as u64,
        exact,
    };
    eprintln!(
        "bench: refs, {latency_ms} ms, {}, {}, round {round}: {:.2} s, {} requests ({} branches, {} merge_requests \
         ({} repeated), {} deletes), {} deleted, exact {}, exit {:?}",
        api.flag(),
        variant.label(),
        run.wall.as_secs_f64(),
        run.total,
        run.branches(),
        run.merge_requests(),
        run.lookup_repeats,
        run.deletes(),
        run.deleted,
        run.exact,
        run.exit
    );
    Ok(run)
}

/// Every run: per latency and round, REST then GraphQL, each with the rule
/// and without. The report's section, and whether every run was exact with
/// exit 0.
pub fn run(binary: &Path, runs_dir: &Path, args: &Args) -> Result<(String, bool), String> {
    let shape = Shape::from_args(args);
    let data = RefsData::generate(&shape, false);
    let nothing_gone = RefsData::generate(&shape, true);
    eprintln!("bench: refs: {}", shape.describe());
    let mut runs = Vec::new();
    for &latency_ms in &args.refs_latencies {
        for round in 1..=args.rounds {
            for api in [Api::Rest, Api::Graphql] {
                for variant in Variant::ALL {
                    let which = Which {
                        latency_ms,
                        api,
                        variant,
                        round,
                    };
                    let data = if variant == Variant::RuleNothingGone {
                        &nothing_gone
                    } else {
                        &data
                    };
                    runs.push(run_once(binary, data, runs_dir, args, which)?);
                }
            }
        }
    }
    let ok = runs.iter().all(RefsRun::ok);
    if !ok {
        eprintln!("bench: refs: SOME RUN DELETED THE WRONG TAGS OR FAILED (see the table)");
    }
    Ok((render(&shape, &data, args, &runs), ok))
}

/// The report's section.
pub fn render(shape: &Shape, data: &RefsData, args: &Args, runs: &[RefsRun]) -> String {
    let min = shape.minimum_lookups();
    let min_total: u64 = min.values().sum();
    let naive = shape.naive_lookups();
    let mut s = String::new();
    s.push_str("\n## Tags of gone branches and merge requests (`delete_when_ref_gone`, issue 16)\n\n");
    s.push_str(&format!(
        "{}. Tags in the window are 2 days old (grace `1d`, `delete_older_than` `30d`), the others 31 days. \
         (a) `delete_when_ref_gone` `{{\"tag_regex\": \"{}\", \"grace\": \"1d\"}}`; (b) the age rule alone; \
         (c) the rule on the same tags with every branch there and every merge request open (the lookups \
         without the deletions they lead to). `once --concurrency {} --api rest|graphql --log-level warn`, {} \
         round(s). Ours only: the Python tool has no such rule.\n\n",
        shape.describe(),
        TAG_REGEX.replace('\\', "\\\\"),
        args.concurrency,
        args.rounds
    ));
    s.push_str(&format!(
        "Expected: (b) and (c) delete the {} expired tags; (a) also the {} tags of gone branches and merged or \
         closed merge requests, {} in all. Minimum branch, git tag and merge-request requests of (a) and (c): {} \
         ({} `GET branches` + {} `GET git_tags` + {} `GET merge_requests`: per project {} requests for {} branches \
         (keyset pages and GitLab's count before and after), an empty git tag page and its counts, and ⌈{} named \
         merge requests ÷ 100⌉); plus one `GET /projects/:id` per project to tell a fork (not counted here). That \
         is one reading per project, as where tags have push dates (GraphQL with the metadata database); through \
         REST a tag's date may be a build date, and a repository listed after the last reading of its project's \
         refs reads them again. A naive client (the branch list once per repository, `GET \
         /projects/:id/merge_requests/:iid` once per merge request): {naive}, {:.0}× the minimum.\n\n",
        data.expired.len(),
        data.gone.len(),
        data.expired.len() + data.gone.len(),
        min_total,
        min[Route::Branches.key()],
        min[Route::GitTags.key()],
        min[Route::MergeRequests.key()],
        shape.branch_pages(),
        shape.present_branches(),
        shape.named_mrs(),
        naive as f64 / min_total.max(1) as f64
    ));
    let mut latencies: Vec<f64> = runs.iter().map(|r| r.latency_ms).collect();
    latencies.dedup();
    s.push_str(
        "| latency | API | wall (a) | wall (b) | wall (c) | (a) ÷ (b) | (c) ÷ (b) | requests (a) / (b) / (c) | \
         branches + MRs (a) / (c) | of them repeated | minimum (a) / (c) | naive ÷ ours (a) | extra deletes (a) | \
         exact, exit 0 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for &latency in &latencies {
        for api in [Api::Rest, Api::Graphql] {
            let of = |v: Variant| {
                runs.iter()
                    .filter(move |r| r.latency_ms == latency && r.api == api && r.variant == v)
            };
            let med = |v: Variant, f: &dyn Fn(&RefsRun) -> f64| median(of(v).map(f).collect());
            let wall = |v| med(v, &|r| r.wall.as_secs_f64());
            let total = |v| med(v, &|r| r.total as f64);
            let lookups = med(Variant::Rule, &|r| r.lookups() as f64);
            let lookups_c = med(Variant::RuleNothingGone, &|r| r.lookups() as f64);
            let repeats = med(Variant::Rule, &|r| r.lookup_repeats as f64);
            let deletes = med(Variant::Rule, &|r| r.deletes() as f64) - med(Variant::Age, &|r| r.deletes() as f64);
            let all_ok = Variant::ALL.iter().all(|&v| of(v).all(RefsRun::ok));
            s.push_str(&format!(
                "| {latency} ms | {} | {:.2} s | {:.2} s | {:.2} s | **{:.2}×** | **{:.2}×** | {:.0} / {:.0} / {:.0} | \
                 {:.0} / {:.0} | {:.0} | {min_total} / {} | {:.0}× | {:+.0} | {} |\n",
                api.flag(),
                wall(Variant::Rule),
                wall(Variant::Age),
                wall(Variant::RuleNothingGone),
                wall(Variant::Rule) / wall(Variant::Age),
                wall(Variant::RuleNothingGone) / wall(Variant::Age),
                total(Variant::Rule),
                total(Variant::Age),
                total(Variant::RuleNothingGone),
                lookups,
                lookups_c,
                repeats,
                shape.minimum_lookups_nothing_gone(),
                naive as f64 / lookups,
                deletes,
                if all_ok { "every run" } else { "**NO**" }
            ));
        }
    }
    s.push_str(
        "\n(medians; branches + MRs = `GET branches` + `GET git_tags` + `GET merge_requests`; repeated = the same path and query \
         asked before in the pass; extra deletes = `DELETE tag` or destroy mutations, (a) − (b).)\n\n",
    );
    s.push_str(
        "| latency | API | run | round | wall | branches | merge_requests (repeated) | tag routes | deletes | total | \
         deleted | exact | exit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {} ms | {} | {} | {} | {:.2} s | {} | {} ({}) | {} | {} | {} | {} of {} | {} | {:?} |\n",
            r.latency_ms,
            r.api.flag(),
            r.variant.label(),
            r.round,
            r.wall.as_secs_f64(),
            r.branches(),
            r.merge_requests(),
            r.lookup_repeats,
            r.tag_routes(),
            r.deletes(),
            r.total,
            r.deleted,
            r.expected,
            if r.exact { "yes" } else { "**NO**" },
            r.exit
        ));
    }
    s.push_str(
        "\n(tag routes: everything but branches, merge requests and deletes — repository lists, tag pages and \
         details, GitLab's tag counts, project lookups, GraphQL queries.)\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            projects: 20,
            repos: 2,
            tags: 500,
            branches: 100,
            merge_requests: 250,
        }
    }

    #[test]
    fn minimum_and_naive() {
        let s = shape();
        assert_eq!(s.present_branches(), 50);
        assert_eq!(s.branch_pages(), 3);
        assert_eq!(s.named_mrs(), 250);
        let min = s.minimum_lookups();
        assert_eq!(min["GET branches"], 20 * 3);
        assert_eq!(min["GET git_tags"], 20 * 3);
        assert_eq!(min["GET merge_requests"], 20 * 3);
        assert_eq!(s.naive_lookups(), 20 * (2 + 250));
        // (c): all 100 branches there, a full keyset page, an empty one and the counts.
        assert_eq!(s.minimum_lookups_nothing_gone(), 20 * (4 + 3 + 3));
        // 200 branches, 100 there: one full keyset page, then an empty one.
        let full = Shape {
            branches: 200,
            ..s.clone()
        };
        assert_eq!(full.branch_pages(), 4);
        let more = Shape { branches: 202, ..s };
        assert_eq!(more.branch_pages(), 4);
    }

    #[test]
    fn data_and_expectations() {
        let s = Shape {
            projects: 2,
            repos: 2,
            tags: 20,
            branches: 4,
            merge_requests: 10,
        };
        let data = RefsData::generate(&s, false);
        let repo = &data.seed.projects[0].repositories[0];
        assert_eq!(repo.tags.len(), 22);
        let names: BTreeSet<&str> = repo.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 22, "unique names");
        let re = regex_lite(TAG_REGEX);
        assert!(names.iter().all(|n| re(n)), "every tag matches the rule's regex");
        assert!(names.contains("main-10010000"));
        assert!(names.contains("feature-topic-001-10010001"));
        assert!(names.contains("mr-1-20010000"));
        // Branches 1 and 3 gone: 10 branch tags, indices 1, 3, 5, 7, 9 gone;
        // merge requests 2, 4, 6, 8, 10 done; per repository 10 of 20.
        assert_eq!(data.gone.len(), 2 * 2 * 10);
        assert_eq!(data.expired.len(), 2 * 2 * 2);
        let branches: Vec<&str> = data.seed.branches[&1].iter().map(|b| b.name.as_str()).collect();
        assert_eq!(branches, ["feature/Topic-002", "main"]);
        assert_eq!(data.seed.merge_requests[&2].len(), 10);
        let config: serde_json::Value = serde_json::from_str(&data.config(true)).unwrap();
        assert_eq!(config["refs-2"]["delete_when_ref_gone"]["grace"], "1d");
        let config: serde_json::Value = serde_json::from_str(&data.config(false)).unwrap();
        assert!(config["refs-1"].get("delete_when_ref_gone").is_none());
        assert_eq!(data.expected(true).len(), 48);
        // Nothing gone: the same tags, every branch there, every merge request open.
        let all = RefsData::generate(&s, true);
        assert!(all.gone.is_empty());
        assert_eq!(all.expired, data.expired);
        assert_eq!(all.seed.branches[&1].len(), 4);
        assert!(
            all.seed.merge_requests[&1]
                .iter()
                .all(|mr| mr.state == MergeRequestState::Opened)
        );
        assert_eq!(all.expected(true), all.expired);
    }

    /// Just enough of the rule's regex to check the generated names.
    fn regex_lite(_: &str) -> impl Fn(&str) -> bool {
        |name: &str| {
            let Some((head, hex)) = name.rsplit_once('-') else {
                return false;
            };
            hex.len() == 8
                && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && !head.is_empty()
                && head
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
    }
}
