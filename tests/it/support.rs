//! Running the real binary against the fake GitLab.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use fake_gitlab::{FakeGitlab, Fault, FaultRule, Faults, Group, Project, Repository, Route, Seed, Tag};
use serde_json::Value;

pub const TOKEN: &str = "glpat-test-token-5ecret";
pub const DAY: Duration = Duration::from_secs(86_400);
pub const HOUR: Duration = Duration::from_secs(3_600);

/// Variables of ours that must not leak in from the developer's shell.
const OUR_VARS: [&str; 20] = [
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
    "SUMMARY",
    "RUST_LOG",
    "GITLAB_REGISTRY_CLEANER_MAX_WALKERS",
];

pub fn seed(projects: Vec<Project>) -> Seed {
    Seed {
        token: TOKEN.to_owned(),
        read_only_token: Some("glpat-read-only".to_owned()),
        registry_host: "registry.example.com:5005".to_owned(),
        projects,
        groups: Vec::new(),
        ..Seed::default()
    }
}

pub fn project(id: u64, path: &str, repositories: Vec<Repository>) -> Project {
    Project {
        id,
        path: path.to_owned(),
        repositories,
    }
}

pub fn repo(id: u64, name: &str, tags: Vec<Tag>) -> Repository {
    Repository {
        id,
        name: name.to_owned(),
        tags,
    }
}

/// `n` expired tags `t00`, `t01`, … in repository 10 (`g/p/img`) of
/// project 1, every answer `latency` late.
pub fn old_tags_repo(n: usize, latency: std::time::Duration) -> FakeGitlab {
    let tags: Vec<Tag> = (0..n).map(|i| old(&format!("t{i:02}"))).collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap();
    fake.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    fake
}

pub fn old(name: &str) -> Tag {
    tag_aged(name, 10 * DAY)
}

pub fn young(name: &str) -> Tag {
    tag_aged(name, HOUR)
}

/// A tag `age` before one instant shared by the whole test run, in whole
/// seconds: tags made at one age have one date, through REST (milliseconds)
/// and GraphQL (seconds) alike, so `keep_n`'s ties break by name in both
/// however slowly a loaded machine builds a seed.
pub fn tag_aged(name: &str, age: std::time::Duration) -> Tag {
    static NOW: std::sync::LazyLock<jiff::Timestamp> = std::sync::LazyLock::new(|| {
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now is a valid timestamp")
    });
    let at = NOW
        .checked_sub(jiff::SignedDuration::try_from(age).expect("a test's age fits"))
        .expect("a test's age fits");
    Tag::new(name, Some(fake_gitlab::gitlab_time(at)))
}

/// A working directory with a config file in it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn config(&self, config: &Value) -> PathBuf {
        self.write("config.json", serde_json::to_vec_pretty(config).unwrap())
    }
}

/// The binary, in a clean environment, in `workdir`, on the REST API
/// (`GITLAB_API=rest`): most tests count or fault REST requests. The
/// GraphQL tests pass `--api`, which beats the variable; [`bin_default_api`]
/// runs the real default.
pub fn bin(workdir: &Path) -> Command {
    let mut cmd = bin_default_api(workdir);
    cmd.env("GITLAB_API", "rest");
    cmd
}

/// The binary, in a clean environment, in `workdir`.
pub fn bin_default_api(workdir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitlab-registry-cleaner"));
    for var in OUR_VARS {
        cmd.env_remove(var);
    }
    cmd.current_dir(workdir);
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn from(output: Output, elapsed: Duration) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// Every JSON log line.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    pub fn ops(&self, operation: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["operation"] == operation)
            .collect()
    }

    /// Sorted `repository:tag` of the events with this operation.
    pub fn tags(&self, operation: &str) -> Vec<String> {
        let mut tags: Vec<String> = self
            .ops(operation)
            .iter()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["repository"].as_str().unwrap(),
                    e["tag_name"].as_str().unwrap()
                )
            })
            .collect();
        tags.sort();
        tags
    }

    pub fn finished(&self) -> Value {
        self.ops("pass_finished")
            .pop()
            .unwrap_or_else(|| panic!("no pass_finished in\n{}", self.all()))
    }

    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let started = Instant::now();
    let output = cmd.output().expect("the binary runs");
    Run::from(output, started.elapsed())
}

/// `once` against the fake with the given config and extra arguments.
pub fn once(fake: &FakeGitlab, config: &Value, args: &[&str]) -> Run {
    let work = Workdir::new();
    let path = work.config(config);
    let mut cmd = bin(work.path());
    cmd.args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--retry-base-ms", "5", "--log-level", "debug"])
        .args(args);
    run(&mut cmd)
}

pub fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
