//! `bench`: gitlab-registry-cleaner against the Python tool it replaces.
//!
//! ```text
//! cargo run --release -p bench -- [--rounds 3] [--python-rounds N] [--projects 1] [--repos 10]
//!     [--tags 1000] [--expired 0.5] [--latency-ms 5 | --latencies 5,50] [--concurrency 32]
//!     [--skip-python] [--scale] [--traffic | --traffic-only] [--big-repo | --big-repo-only]
//!     [--refs | --refs-only]
//! ```
//!
//! Builds the release binary (`cargo build --release --bin
//! gitlab-registry-cleaner`, wherever `CARGO_TARGET_DIR` or the Cargo
//! config puts it), creates a virtualenv with the Python
//! `gitlab-registry-async-cleaner` 1.0.6 under the target directory, then
//! for each latency and each round: the fake alone with a trivial client,
//! one pass of ours through REST (`--api rest`), one through GraphQL
//! (`--api graphql`), one of the Python tool, one of ours (REST) with
//! `info` logs, each against a fresh in-process fake GitLab with the same
//! generated data. It prints (and with `--out` writes) a markdown report:
//! a summary across latencies, then per latency ratios, medians and every
//! run. See `tests/bench/README.md`.

mod measure;
mod probe;
mod python;
mod refs;
mod report;
mod scenario;
mod traffic;
mod walk;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use fake_gitlab::{FakeGitlab, Faults};

use crate::measure::{Measured, Outcome};
use crate::python::PythonTool;
use crate::scenario::{Api, DataSet, Scenario, TOKEN, Traffic, Verdict};

const USAGE: &str = "\
usage: cargo run --release -p bench -- [options]

Benchmarks gitlab-registry-cleaner (through REST and through GraphQL) against the
Python gitlab-registry-async-cleaner 1.0.6 on the fake GitLab (tests/fake-gitlab),
and prints a markdown report.

  --rounds N            rounds; each runs every tool once on fresh data (default 3)
  --python-rounds N     run the Python tool in the first N rounds only (default: --rounds)
  --projects N          projects, one config entry each (default 1)
  --repos N             repositories per project (default 10)
  --tags N              tags per repository (default 1000)
  --expired F           share of tags that is expired, 0..1 (default 0.5)
  --latency-ms MS       the fake's delay before every response (default 5)
  --latencies LIST      run the whole main series once per latency, e.g. 5,50
                        (default: just --latency-ms)
  --concurrency N       our --concurrency (default 32)
  --skip-python         do not run the Python tool
  --no-graphql          do not run ours with --api graphql
  --no-info-logs        do not also run ours with the default info logs
  --no-probe            do not measure the fake alone
  --scale               also run the scale series (ours only, one repository)
  --scale-only          run only the scale series
  --scale-tags LIST     tag counts of the scale series (default 1000,10000,100000)
  --scale-latency-ms MS latency in the scale series (default 0)
  --traffic             also run the traffic series (ours only: ~3,000 REST requests
                        against a fake throttled at 3,000/min, with and without headers)
  --traffic-only        run only the traffic series
  --big-repo            also compare, on one repository of many tags (GraphQL), the
                        parallel listing with one page after another
  --big-repo-only       run only that comparison
  --big-repo-tags N     its tags (default 20000)
  --big-repo-latency-ms MS  its latency (default 50)
  --refs                also measure delete_when_ref_gone (issue 16, ours only): the same
                        data with the rule and with the age rule alone, REST and GraphQL
  --refs-only           run only that
  --refs-projects N     its projects, one config entry each (default 20)
  --refs-repos N        its repositories per project (default 2)
  --refs-tags N         its tags per repository in the rule's window (default 500; half
                        named after branches, half after merge requests; a tenth more expired)
  --refs-branches N     branch names per project in tags, every second one gone (default 100)
  --refs-mrs N          merge requests per project, every second one merged or closed (default 250)
  --refs-latencies LIST its latencies, ms (default 5)
  --binary PATH         use this gitlab-registry-cleaner instead of building it
  --python CMD          interpreter that creates the virtualenv (default $BENCH_PYTHON or python3)
  --python-timeout S    seconds before the Python tool is killed (default 900)
  --timeout S           seconds before our cleaner is killed (default 300)
  --out FILE            also write the report to FILE
  -h, --help            this help
";

/// Environment variables either tool reads; never passed on to the children.
pub(crate) const TOOL_VARS: [&str; 22] = [
    "GITLAB_TOKEN",
    "GITLAB_TOKEN_FILE",
    "GITLAB_URL",
    "REPOSITORY_CONFIG_PATH",
    "DRY_RUN",
    "SSL_PATH",
    "TIMEOUT",
    "CONCURRENCY",
    "SCHEDULE",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "LOG_FILE",
    "INSECURE",
    "METRICS_LISTEN",
    "GITLAB_API",
    "PASS_TIMEOUT",
    "MAX_REQUESTS_PER_MINUTE",
    "RETRY_BASE_MS",
    "RUST_LOG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Args {
    rounds: usize,
    /// `None`: as many as `rounds`.
    python_rounds: Option<usize>,
    projects: u64,
    repos: u64,
    tags: u64,
    expired: f64,
    latency_ms: f64,
    /// `None`: just `latency_ms`.
    latencies: Option<Vec<f64>>,
    concurrency: usize,
    skip_python: bool,
    graphql: bool,
    info_logs: bool,
    probe: bool,
    scale: bool,
    scale_only: bool,
    scale_tags: Vec<u64>,
    scale_latency_ms: f64,
    traffic: bool,
    traffic_only: bool,
    big_repo: bool,
    big_repo_only: bool,
    big_repo_tags: u64,
    big_repo_latency_ms: f64,
    refs: bool,
    refs_only: bool,
    refs_projects: u64,
    refs_repos: u64,
    refs_tags: u64,
    refs_branches: u64,
    refs_mrs: u64,
    refs_latencies: Vec<f64>,
    binary: Option<PathBuf>,
    python: String,
    python_timeout: Duration,
    timeout: Duration,
    out: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            rounds: 3,
            python_rounds: None,
            projects: 1,
            repos: 10,
            tags: 1000,
            expired: 0.5,
            latency_ms: 5.0,
            latencies: None,
            concurrency: 32,
            skip_python: false,
            graphql: true,
            info_logs: true,
            probe: true,
            scale: false,
            scale_only: false,
            scale_tags: vec![1_000, 10_000, 100_000],
            scale_latency_ms: 0.0,
            traffic: false,
            traffic_only: false,
            big_repo: false,
            big_repo_only: false,
            big_repo_tags: 20_000,
            big_repo_latency_ms: 50.0,
            refs: false,
            refs_only: false,
            refs_projects: 20,
            refs_repos: 2,
            refs_tags: 500,
            refs_branches: 100,
            refs_mrs: 250,
            refs_latencies: vec![5.0],
            binary: None,
            python: std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            python_timeout: Duration::from_secs(900),
            timeout: Duration::from_secs(300),
            out: None,
        }
    }
}

impl Args {
    /// The main series' latencies, ms: `--latencies`, else `--latency-ms`.
    fn latencies(&self) -> Vec<f64> {
        self.latencies.clone().unwrap_or_else(|| vec![self.latency_ms])
    }

    /// Rounds in which the Python tool runs (the first ones).
    fn python_rounds(&self) -> usize {
        self.python_rounds.unwrap_or(self.rounds)
    }

    /// The main series, one scenario per latency.
    fn scenarios(&self) -> Vec<Scenario> {
        self.latencies().into_iter().map(|l| self.scenario_at(l)).collect()
    }

    fn scenario_at(&self, latency_ms: f64) -> Scenario {
        Scenario {
            projects: self.projects,
            repos: self.repos,
            tags: self.tags,
            expired: self.expired,
            latency: ms(latency_ms),
            concurrency: self.concurrency,
        }
    }

    fn scale_scenario(&self, tags: u64) -> Scenario {
        Scenario {
            projects: 1,
            repos: 1,
            tags,
            expired: self.expired,
            latency: ms(self.scale_latency_ms),
            concurrency: self.concurrency,
        }
    }
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64(x / 1000.0)
}

/// `Ok(None)`: help was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
    }
    let mut a = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--rounds" => a.rounds = num(&name, &value()?)?,
            "--python-rounds" => a.python_rounds = Some(num(&name, &value()?)?),
            "--projects" => a.projects = num(&name, &value()?)?,
            "--repos" => a.repos = num(&name, &value()?)?,
            "--tags" => a.tags = num(&name, &value()?)?,
            "--expired" => a.expired = num(&name, &value()?)?,
            "--latency-ms" => a.latency_ms = num(&name, &value()?)?,
            "--latencies" => {
                a.latencies = Some(
                    value()?
                        .split(',')
                        .map(|t| num(&name, t.trim()))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--concurrency" => a.concurrency = num(&name, &value()?)?,
            "--skip-python" => a.skip_python = true,
            "--no-graphql" => a.graphql = false,
            "--no-info-logs" => a.info_logs = false,
            "--no-probe" => a.probe = false,
            "--scale" => a.scale = true,
            "--scale-only" => a.scale_only = true,
            "--traffic" => a.traffic = true,
            "--traffic-only" => a.traffic_only = true,
            "--scale-tags" => {
                a.scale_tags = value()?
                    .split(',')
                    .map(|t| num(&name, t.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--scale-latency-ms" => a.scale_latency_ms = num(&name, &value()?)?,
            "--big-repo" => a.big_repo = true,
            "--big-repo-only" => a.big_repo_only = true,
            "--big-repo-tags" => a.big_repo_tags = num(&name, &value()?)?,
            "--big-repo-latency-ms" => a.big_repo_latency_ms = num(&name, &value()?)?,
            "--refs" => a.refs = true,
            "--refs-only" => a.refs_only = true,
            "--refs-projects" => a.refs_projects = num(&name, &value()?)?,
            "--refs-repos" => a.refs_repos = num(&name, &value()?)?,
            "--refs-tags" => a.refs_tags = num(&name, &value()?)?,
            "--refs-branches" => a.refs_branches = num(&name, &value()?)?,
            "--refs-mrs" => a.refs_mrs = num(&name, &value()?)?,
            "--refs-latencies" => {
                a.refs_latencies = value()?
                    .split(',')
                    .map(|t| num(&name, t.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--binary" => a.binary = Some(PathBuf::from(value()?)),
            "--python" => a.python = value()?,
            "--python-timeout" => a.python_timeout = Duration::from_secs_f64(num(&name, &value()?)?),
            "--timeout" => a.timeout = Duration::from_secs_f64(num(&name, &value()?)?),
            "--out" => a.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.rounds == 0 || a.projects == 0 || a.repos == 0 || a.concurrency == 0 {
        return Err("--rounds, --projects, --repos and --concurrency must be at least 1".to_owned());
    }
    if !(0.0..=1.0).contains(&a.expired) {
        return Err("--expired must be between 0 and 1".to_owned());
    }
    if a.refs_projects == 0 || a.refs_repos == 0 || a.refs_latencies.is_empty() {
        return Err("--refs-projects and --refs-repos must be at least 1, --refs-latencies not empty".to_owned());
    }
    if a.refs_tags > 65_536 || a.refs_repos > 4096 {
        return Err("--refs-tags must be at most 65536 and --refs-repos at most 4096".to_owned());
    }
    if !(a.latency_ms >= 0.0
        && a.refs_latencies.iter().all(|&l| l >= 0.0)
        && a.scale_latency_ms >= 0.0
        && a.latencies().iter().all(|&l| l >= 0.0))
    {
        return Err("latencies must be >= 0".to_owned());
    }
    if !(1..=a.rounds).contains(&a.python_rounds()) {
        return Err("--python-rounds must be between 1 and --rounds (use --skip-python not to run it)".to_owned());
    }
    Ok(Some(a))
}

/// Which program a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Ours through REST (`--api rest --log-level warn`): the figures that count.
    Ours,
    /// Ours through GraphQL (`--api graphql --log-level warn`).
    OursGraphql,
    /// Ours through REST with the default `info` logs (a line per deleted tag).
    OursInfo,
    Python,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::Ours => "ours, REST (`--api rest`)",
            Tool::OursGraphql => "ours, GraphQL (`--api graphql`)",
            Tool::OursInfo => "ours, REST, default `info` logs",
            Tool::Python => "Python 1.0.6",
        }
    }

    /// A column heading in the summary across latencies.
    pub fn short(self) -> &'static str {
        match self {
            Tool::Ours => "REST",
            Tool::OursGraphql => "GraphQL",
            Tool::OursInfo => "REST + info logs",
            Tool::Python => "Python",
        }
    }

    /// The API a run of ours goes through; `None` for the Python tool.
    pub fn api(self) -> Option<Api> {
        match self {
            Tool::Ours | Tool::OursInfo => Some(Api::Rest),
            Tool::OursGraphql => Some(Api::Graphql),
            Tool::Python => None,
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Tool::Ours => "ours-rest",
            Tool::OursGraphql => "ours-graphql",
            Tool::OursInfo => "ours-info",
            Tool::Python => "python",
        }
    }
}

/// The main series at one latency.
#[derive(Debug, Clone)]
pub struct Series {
    pub scenario: Scenario,
    pub runs: Vec<Run>,
    pub probes: Vec<ProbeRun>,
}

/// One measured run of a tool.
#[derive(Debug, Clone)]
pub struct Run {
    pub tool: Tool,
    pub round: usize,
    pub measured: Measured,
    pub traffic: Traffic,
    pub verdict: Verdict,
    /// Lines of its output (stdout + stderr) that say ERROR.
    pub error_lines: u64,
    pub log_lines: u64,
}

impl Run {
    /// Exited 0 and deleted exactly the expired tags.
    pub fn is_correct(&self) -> bool {
        self.measured.outcome == Outcome::Exited(0) && self.verdict.exact
    }
}

/// The fake alone, once.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub round: usize,
    pub probed: probe::Probed,
    /// What the fake saw.
    pub traffic: Traffic,
}

/// What the report needs to know besides the runs.
pub struct Context {
    pub machine: String,
    /// Peak RSS measured for `true` through the wrapper: the floor, KiB.
    pub rss_floor_kib: Option<u64>,
    pub ours: String,
    pub python: Result<PythonTool, String>,
    pub args_line: String,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == measure::WRAPPER_ARG) {
        return measure::wrapper_main(std::env::args_os().skip(2).collect());
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Raises the soft limit on open files to the hard limit (at most 65536):
/// the Python tool opens a connection per request, up to a thousand at
/// once, and the in-process fake must accept them all.
fn raise_open_files_limit() {
    // SAFETY: rlimit is plain old data; all-zero is a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let want = lim.rlim_max.min(65_536);
    if lim.rlim_cur < want {
        lim.rlim_cur = want;
        // SAFETY: as above; failure leaves the limit as it was.
        unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `Ok(false)`: some run of ours failed or deleted the wrong tags.
fn run(args: &Args) -> Result<bool, String> {
    raise_open_files_limit();
    let root = workspace_root();
    let (binary, ours) = match &args.binary {
        Some(path) => {
            let path = fs::canonicalize(path).map_err(|e| format!("--binary {}: {e}", path.display()))?;
            let described = format!("`{}` (given with `--binary`), {}", path.display(), version_of(&path));
            (path, described)
        }
        None => {
            let path = build_release(&root)?;
            let described = format!("{}, built from {}", version_of(&path), git_state(&root));
            (path, described)
        }
    };
    let target_dir = target_dir(&root);
    let runs_dir = target_dir.join("bench-runs");
    fs::create_dir_all(&runs_dir).map_err(|e| format!("{}: {e}", runs_dir.display()))?;

    let main_series = !args.scale_only && !args.traffic_only && !args.big_repo_only && !args.refs_only;
    let python = if !main_series {
        let only = if args.refs_only {
            "--refs-only"
        } else if args.big_repo_only {
            "--big-repo-only"
        } else if args.traffic_only {
            "--traffic-only"
        } else {
            "--scale-only"
        };
        Err(format!("not run (`{only}`)"))
    } else if args.skip_python {
        Err("not run (`--skip-python`)".to_owned())
    } else {
        python::ensure(&target_dir.join("bench-venv"), &args.python)
    };
    if let Err(e) = &python
        && main_series
        && !args.skip_python
    {
        eprintln!("bench: the Python tool cannot be run: {e}");
    }

    let ctx = Context {
        machine: machine(),
        rss_floor_kib: rss_floor(&runs_dir),
        ours,
        python: python.clone(),
        args_line: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    };
    let mut ok = true;
    let mut series = Vec::new();
    if main_series {
        for scenario in args.scenarios() {
            let (s, series_ok) = run_series(scenario, &binary, python.as_ref().ok(), &runs_dir, args)?;
            ok &= series_ok;
            series.push(s);
        }
    }
    let mut scale = Vec::new();
    if (args.scale || args.scale_only) && !args.big_repo_only && !args.refs_only {
        for &tags in &args.scale_tags {
            let s = args.scale_scenario(tags);
            eprintln!("bench: scale: {}", s.describe());
            for round in 1..=args.rounds {
                let run = run_tool(Tool::Ours, &binary, None, &s, round, &runs_dir, args)?;
                ok &= run.is_correct();
                scale.push((s.clone(), run));
            }
        }
    }

    let mut traffic_runs = Vec::new();
    if args.traffic || args.traffic_only {
        traffic_runs = traffic::run_all(&binary, &runs_dir, args.rounds, args.timeout)?;
        ok &= traffic_runs.iter().all(|r| r.exit == Some(0) && r.exact);
    }

    let mut text = if args.traffic_only || args.refs_only {
        format!(
            "# {} benchmark\n\nMachine: {}. Ours: {}. Command: `cargo run --release -p bench -- {}`.\n\n",
            if args.refs_only {
                "delete_when_ref_gone"
            } else {
                "Traffic"
            },
            ctx.machine,
            ctx.ours,
            ctx.args_line
        )
    } else {
        report::render(&ctx, args, &series, &scale)
    };
    if !traffic_runs.is_empty() {
        text.push_str(&traffic::render(&traffic_runs));
    }
    if args.big_repo || args.big_repo_only {
        let (section, big_ok) = walk::run(&binary, &runs_dir, args)?;
        ok &= big_ok;
        text.push_str(&section);
    }
    if args.refs || args.refs_only {
        let (section, refs_ok) = refs::run(&binary, &runs_dir, args)?;
        ok &= refs_ok;
        text.push_str(&section);
    }
    print!("{text}");
    if let Some(out) = &args.out {
        fs::write(out, &text).map_err(|e| format!("--out {}: {e}", out.display()))?;
        eprintln!("bench: report written to {}", out.display());
    }
    Ok(ok)
}

/// The main series at one latency: per round the fake alone, then every
/// tool. `false` with it: some run of ours failed or deleted the wrong tags.
fn run_series(
    scenario: Scenario,
    binary: &Path,
    python: Option<&PythonTool>,
    runs_dir: &Path,
    args: &Args,
) -> Result<(Series, bool), String> {
    eprintln!(
        "bench: {}; {} rounds ({} with Python)",
        scenario.describe(),
        args.rounds,
        if python.is_some() { args.python_rounds() } else { 0 }
    );
    let mut ok = true;
    let (mut runs, mut probes) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        if args.probe {
            let p = run_probe(&scenario, round)?;
            eprintln!(
                "bench: {} ms, round {round}: fake alone {:.3} s ({} requests, {} errors)",
                scenario.latency.as_secs_f64() * 1000.0,
                p.probed.wall.as_secs_f64(),
                p.probed.requests,
                p.probed.errors
            );
            probes.push(p);
        }
        let mut tools = vec![Tool::Ours];
        if args.graphql {
            tools.push(Tool::OursGraphql);
        }
        if python.is_some() && round <= args.python_rounds() {
            tools.push(Tool::Python);
        }
        if args.info_logs {
            tools.push(Tool::OursInfo);
        }
        for tool in tools {
            let run = run_tool(tool, binary, python, &scenario, round, runs_dir, args)?;
            if tool != Tool::Python {
                ok &= run.is_correct();
            }
            runs.push(run);
        }
    }
    Ok((Series { scenario, runs, probes }, ok))
}

/// The workspace root: this crate lives in `<root>/tests/bench`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory for the workspace (`CARGO_TARGET_DIR`, a Cargo
/// config's `build.target-dir`, or `<root>/target`), as `cargo metadata`
/// reports it: the virtualenv and the runs' directories go there.
fn target_dir(root: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| root.join("target"))
}

/// `cargo build --release --bin gitlab-registry-cleaner`, and the path of
/// the executable as Cargo reports it (so `CARGO_TARGET_DIR`, a Cargo
/// config's `build.target-dir` or `--target` are all respected).
fn build_release(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("bench: cargo build --release --bin gitlab-registry-cleaner");
    let out = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--bin",
            "gitlab-registry-cleaner",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --release failed ({})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "gitlab-registry-cleaner")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo build did not report the gitlab-registry-cleaner executable".to_owned())
}

fn version_of(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "version unknown".to_owned())
}

/// `commit abc1234` or `commit abc1234 + uncommitted changes`.
fn git_state(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        None => "a tree outside git".to_owned(),
        Some(rev) => {
            let dirty =
                git(&["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("commit {rev} + uncommitted changes in src/ or Cargo.*")
            } else {
                format!("commit {rev}")
            }
        }
    }
}

/// `2 CPUs (model), Linux 6.1.0, 2025-01-01 12:00 UTC, load average 0.50 0.40 0.30`
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "CPU model unknown".to_owned());
    let kernel =
        fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("`nproc` {cpus} ({model}), Linux `{kernel}`, {date}, load average at start {load}")
}

/// What the wrapper measures for `true`: the least peak RSS it can report.
fn rss_floor(runs_dir: &Path) -> Option<u64> {
    let result = runs_dir.join("floor.txt");
    let timeout = Duration::from_secs(10);
    let mut cmd = measure::wrapped(&result, timeout, "true".as_ref()).ok()?;
    measure::run_wrapped(&mut cmd, &result, timeout)
        .ok()
        .filter(|m| m.outcome == Outcome::Exited(0))
        .map(|m| m.max_rss_kib)
}

/// Starts a fresh fake with the scenario's data and latency.
fn start_fake(scenario: &Scenario) -> Result<(FakeGitlab, DataSet), String> {
    let data = DataSet::generate(scenario);
    let fake = FakeGitlab::start(data.seed.clone()).map_err(|e| format!("cannot start the fake GitLab: {e}"))?;
    fake.set_faults(Faults {
        latency: scenario.latency,
        ..Faults::default()
    });
    Ok((fake, data))
}

fn run_probe(scenario: &Scenario, round: usize) -> Result<ProbeRun, String> {
    let (fake, data) = start_fake(scenario)?;
    let details: Vec<String> = data
        .repos
        .iter()
        .flat_map(|r| {
            r.young.iter().chain(&r.expired).map(move |t| {
                format!(
                    "/api/v4/projects/{}/registry/repositories/{}/tags/{t}",
                    r.project_id, r.repo_id
                )
            })
        })
        .collect();
    if details.is_empty() {
        return Err("the data set has no tags to probe".to_owned());
    }
    let n = scenario.minimum_total(Api::Rest) as usize;
    let paths: Vec<String> = details.iter().cycle().take(n).cloned().collect();
    let probed = probe::run(fake.addr(), TOKEN, paths, scenario.concurrency);
    let traffic = Traffic::from_stats(&fake.stats());
    Ok(ProbeRun { round, probed, traffic })
}

fn run_tool(
    tool: Tool,
    binary: &Path,
    python: Option<&PythonTool>,
    scenario: &Scenario,
    round: usize,
    runs_dir: &Path,
    args: &Args,
) -> Result<Run, String> {
    let dir = runs_dir.join(tool.dir());
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (fake, data) = start_fake(scenario)?;
    let config = dir.join("config.json");
    fs::write(&config, &data.config).map_err(|e| format!("{}: {e}", config.display()))?;
    let (stdout_path, stderr_path) = (dir.join("stdout.log"), dir.join("stderr.log"));
    let file = |p: &Path| fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let result = dir.join("measured.txt");
    let (mut cmd, timeout) = match tool {
        Tool::Ours | Tool::OursGraphql | Tool::OursInfo => {
            let api = tool.api().expect("ours goes through an API");
            let mut cmd = measure::wrapped(&result, args.timeout, binary.as_os_str()).map_err(|e| e.to_string())?;
            cmd.arg("once")
                .args(["-u", &fake.url(), "-t", TOKEN, "-c"])
                .arg(&config)
                .args(["--concurrency", &scenario.concurrency.to_string()])
                .args(["--api", api.flag()]);
            if tool != Tool::OursInfo {
                cmd.args(["--log-level", "warn"]);
            }
            (cmd, args.timeout)
        }
        Tool::Python => {
            let py = python.ok_or("the Python tool is not installed")?;
            let mut cmd =
                measure::wrapped(&result, args.python_timeout, py.exe.as_os_str()).map_err(|e| e.to_string())?;
            cmd.args(["-u", &fake.url(), "-t", TOKEN, "-c"]).arg(&config);
            (cmd, args.python_timeout)
        }
    };
    for var in TOOL_VARS {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    // The run's own directory: no stray `.env` is read by either tool.
    cmd.current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(file(&stdout_path)?)
        .stderr(file(&stderr_path)?);
    let measured =
        measure::run_wrapped(&mut cmd, &result, timeout).map_err(|e| format!("cannot run {}: {e}", tool.label()))?;
    let traffic = Traffic::from_stats(&fake.stats());
    let verdict = data.verify(&fake);
    drop(fake);
    let (mut log_lines, mut error_lines) = (0, 0);
    for path in [&stdout_path, &stderr_path] {
        let text = fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            log_lines += 1;
            error_lines += u64::from(line.contains("ERROR"));
        }
    }
    let run = Run {
        tool,
        round,
        measured,
        traffic,
        verdict,
        error_lines,
        log_lines,
    };
    eprintln!(
        "bench: {} ms, round {round}: {}: {:.3} s, {:.1} MiB, {} requests, exact {}, {}",
        scenario.latency.as_secs_f64() * 1000.0,
        tool.label(),
        run.measured.wall.as_secs_f64(),
        run.measured.max_rss_kib as f64 / 1024.0,
        run.traffic.total,
        run.verdict.exact,
        run.measured.outcome.describe()
    );
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_are_the_issues_scenario() {
        let a = parse(&[]).unwrap().unwrap();
        let scenarios = a.scenarios();
        assert_eq!(scenarios.len(), 1);
        let s = &scenarios[0];
        assert_eq!((s.projects, s.repos, s.tags, s.concurrency), (1, 10, 1000, 32));
        assert_eq!(s.latency, Duration::from_millis(5));
        assert_eq!(s.minimum_total(Api::Rest), 1 + 100 + 10_000 + 5_000 + 10);
        assert_eq!(s.minimum_total(Api::Graphql), 1 + 1 + 500 + 250);
        assert_eq!(a.rounds, 3);
        assert_eq!(a.python_rounds(), 3);
        assert!(a.graphql && a.info_logs && a.probe);
    }

    #[test]
    fn parses_flags() {
        let a = parse(&[
            "--rounds=1",
            "--repos",
            "2",
            "--latency-ms",
            "0.5",
            "--skip-python",
            "--scale-tags",
            "10,20",
            "--out",
            "r.md",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.rounds, 1);
        assert_eq!(a.repos, 2);
        assert_eq!(a.latencies(), [0.5]);
        assert_eq!(a.scenarios()[0].latency, Duration::from_micros(500));
        assert!(a.skip_python);
        assert_eq!(a.scale_tags, [10, 20]);
        assert_eq!(a.out, Some(PathBuf::from("r.md")));
        assert_eq!(parse(&["--help"]).unwrap(), None);
        assert!(parse(&["--rounds"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--expired", "2"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
    }

    #[test]
    fn parses_latencies_and_python_rounds() {
        let a = parse(&[
            "--latencies",
            "5, 50",
            "--rounds",
            "3",
            "--python-rounds=1",
            "--no-graphql",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.latencies(), [5.0, 50.0]);
        let latencies: Vec<Duration> = a.scenarios().iter().map(|s| s.latency).collect();
        assert_eq!(latencies, [Duration::from_millis(5), Duration::from_millis(50)]);
        assert_eq!(a.python_rounds(), 1);
        assert!(!a.graphql);
        // --latencies wins over --latency-ms, whatever the order.
        let a = parse(&["--latencies=0,5", "--latency-ms", "7"]).unwrap().unwrap();
        assert_eq!(a.latencies(), [0.0, 5.0]);
        assert!(parse(&["--latencies", "5,x"]).is_err());
        assert!(parse(&["--latencies", ""]).is_err());
        assert!(parse(&["--latencies", "5,-1"]).is_err());
        assert!(parse(&["--latencies"]).is_err());
        assert!(parse(&["--python-rounds", "0"]).is_err());
        assert!(parse(&["--rounds", "2", "--python-rounds", "3"]).is_err());
        assert!(parse(&["--python-rounds", "2"]).unwrap().is_some());
    }

    #[test]
    fn tools_and_their_apis() {
        assert_eq!(Tool::Ours.api(), Some(Api::Rest));
        assert_eq!(Tool::OursInfo.api(), Some(Api::Rest));
        assert_eq!(Tool::OursGraphql.api(), Some(Api::Graphql));
        assert_eq!(Tool::Python.api(), None);
        assert!(Tool::Ours.label().contains("--api rest"));
        assert!(Tool::OursGraphql.label().contains("--api graphql"));
    }
}
