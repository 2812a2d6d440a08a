//! Benchmark (b): one repository of 20,000 tags at 50 ms, `--api graphql
//! --concurrency 32`, listed by several walkers at once against one page
//! after another (`--big-repo`, `--big-repo-only`).
//!
//! One page after another is forced with `GITLAB_REGISTRY_CLEANER_MAX_WALKERS=1`,
//! a hidden knob of the binary for this comparison only (not a setting):
//! everything else — the binary, its flags, the data — is the same.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_gitlab::{FakeGitlab, Faults, Project, Repository, Route, Seed, Tag};

use crate::report::median;
use crate::scenario::{EXPIRED_AGE, LIMIT_DAYS, TOKEN, YOUNG_AGE};
use crate::{Args, TOOL_VARS};

/// The binary's hidden walker limit.
const MAX_WALKERS: &str = "GITLAB_REGISTRY_CLEANER_MAX_WALKERS";
const REPO: u64 = 1;

/// One repository's realistic CI tags: mostly `main-<sha>`, merge requests,
/// feature branches, releases, spelled as CI does; every third expired.
struct BigRepo {
    seed: Seed,
    expired: BTreeSet<String>,
    config: String,
}

impl BigRepo {
    fn generate(tags: u64) -> BigRepo {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut names = BTreeSet::new();
        while (names.len() as u64) < tags {
            let sha = format!("{:08x}", next() as u32);
            let name = match next() % 20 {
                0..=10 => format!("main-{sha}"),
                11..=14 => format!("mr-{}-{sha}", next() % 600),
                15 | 16 => format!(
                    "feature-{}-{sha}",
                    ["login", "cache", "search", "x"][(next() % 4) as usize]
                ),
                17 => format!("v{}.{}.{}", next() % 4, next() % 30, next() % 40),
                18 => format!("Main_{sha}"),
                _ => format!("MR-{}-{sha}", next() % 600),
            };
            names.insert(name);
        }
        let mut expired = BTreeSet::new();
        let tags = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let offset = Duration::from_secs(i as u64);
                if i % 3 == 0 {
                    expired.insert(name.clone());
                    Tag::aged(name, EXPIRED_AGE + offset)
                } else {
                    Tag::aged(name, YOUNG_AGE + offset)
                }
            })
            .collect();
        let seed = Seed {
            token: TOKEN.to_owned(),
            read_only_token: None,
            registry_host: "registry.bench.local:5005".to_owned(),
            projects: vec![Project {
                id: 1,
                path: "bench/big".to_owned(),
                repositories: vec![Repository {
                    id: REPO,
                    name: "ci".to_owned(),
                    tags,
                }],
            }],
            groups: Vec::new(),
            ..Seed::default()
        };
        let config = serde_json::json!({"big": {"id": 1, "delete_older_than": {"days": LIMIT_DAYS}}}).to_string();
        BigRepo { seed, expired, config }
    }
}

/// One pass.
struct WalkRun {
    parallel: bool,
    wall: Duration,
    exit: Option<i32>,
    total: u64,
    pages: u64,
    mutations: u64,
    exact: bool,
}

fn run_once(binary: &Path, data: &BigRepo, dir: &Path, args: &Args, parallel: bool) -> Result<WalkRun, String> {
    let fake = FakeGitlab::start(data.seed.clone()).map_err(|e| format!("cannot start the fake GitLab: {e}"))?;
    fake.set_faults(Faults {
        latency: Duration::from_secs_f64(args.big_repo_latency_ms / 1000.0),
        ..Faults::default()
    });
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("config.json");
    fs::write(&config, &data.config).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("once")
        .args(["-u", &fake.url(), "-t", TOKEN, "-c"])
        .arg(&config)
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--api", "graphql", "--log-level", "warn"]);
    for var in TOOL_VARS {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    cmd.env_remove(MAX_WALKERS);
    if !parallel {
        cmd.env(MAX_WALKERS, "1");
    }
    let log = |name: &str| fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log("stdout.log")?)
        .stderr(log("stderr.log")?);
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let wall = started.elapsed();
    let stats = fake.stats();
    let deleted = fake.deleted();
    let distinct: BTreeSet<&String> = deleted.iter().map(|(_, n)| n).collect();
    let exact = distinct.len() == deleted.len() && distinct.into_iter().eq(data.expired.iter());
    let run = WalkRun {
        parallel,
        wall,
        exit: status.code(),
        total: stats.total,
        pages: stats.count(Route::Graphql),
        mutations: stats.count(Route::GraphqlMutation),
        exact,
    };
    eprintln!(
        "bench: big repository, {}: {:.2} s, {} requests ({} queries, {} mutations), exact {}, exit {:?}",
        label(parallel),
        run.wall.as_secs_f64(),
        run.total,
        run.pages,
        run.mutations,
        run.exact,
        run.exit
    );
    Ok(run)
}

fn label(parallel: bool) -> &'static str {
    if parallel { "walkers" } else { "page after page" }
}

/// Runs the comparison `args.rounds` times; the report's section, and
/// whether every run was exact with exit 0.
pub fn run(binary: &Path, runs_dir: &Path, args: &Args) -> Result<(String, bool), String> {
    let data = BigRepo::generate(args.big_repo_tags);
    eprintln!(
        "bench: big repository: {} tags ({} expired), {} ms, --concurrency {}",
        args.big_repo_tags,
        data.expired.len(),
        args.big_repo_latency_ms,
        args.concurrency
    );
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        for parallel in [true, false] {
            let dir = runs_dir.join(format!("big-repo-{}", if parallel { "walkers" } else { "sequential" }));
            runs.push((round, run_once(binary, &data, &dir, args, parallel)?));
        }
    }
    let ok = runs.iter().all(|(_, r)| r.exact && r.exit == Some(0));
    let of = |parallel: bool| runs.iter().filter(move |(_, r)| r.parallel == parallel).map(|(_, r)| r);
    let wall = |parallel| median(of(parallel).map(|r| r.wall.as_secs_f64()).collect());
    let pages = |parallel| median(of(parallel).map(|r| r.pages as f64).collect());
    let total = |parallel| median(of(parallel).map(|r| r.total as f64).collect());
    let mut s = String::new();
    s.push_str(&format!(
        "\n## One large repository: walkers vs one page after another\n\n\
         One repository of {} tags (CI names: `main-<sha>`, `mr-<n>-<sha>`, `feature-<x>-<sha>`, `v1.2.3`, \
         `Main_<sha>`, `MR-<n>-<sha>`; {} expired), the fake's metadata database (name cursors), {} ms latency, \
         `once --api graphql --concurrency {}`; page after page is the same binary with \
         `{MAX_WALKERS}=1` (a hidden knob for this comparison). {} round(s).\n\n",
        args.big_repo_tags,
        data.expired.len(),
        args.big_repo_latency_ms,
        args.concurrency,
        args.rounds
    ));
    s.push_str("| | wall (median) | GraphQL queries | all requests |\n|---|---|---|---|\n");
    for parallel in [true, false] {
        s.push_str(&format!(
            "| {} | {:.2} s | {:.0} | {:.0} |\n",
            label(parallel),
            wall(parallel),
            pages(parallel),
            total(parallel)
        ));
    }
    s.push_str(&format!(
        "\n**{:.1}× faster**; queries {:+.1}%, all requests {:+.1}%; exact with exit 0: {}.\n\n",
        wall(false) / wall(true),
        (pages(true) / pages(false) - 1.0) * 100.0,
        (total(true) / total(false) - 1.0) * 100.0,
        if ok { "every run" } else { "NOT every run" }
    ));
    s.push_str("| round | listing | wall | queries | mutations | all requests | exact | exit |\n|---|---|---|---|---|---|---|---|\n");
    for (round, r) in &runs {
        s.push_str(&format!(
            "| {round} | {} | {:.2} s | {} | {} | {} | {} | {:?} |\n",
            label(r.parallel),
            r.wall.as_secs_f64(),
            r.pages,
            r.mutations,
            r.total,
            r.exact,
            r.exit
        ));
    }
    Ok((s, ok))
}
