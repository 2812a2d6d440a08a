//! Benchmark (a): about 3,000 REST requests against a fake that throttles
//! at 3,000 requests a minute (250 per 5 s window, aligned to Unix time, so
//! a run spans about twelve windows), once with `RateLimit-*` on every
//! answer and once with bare 429s. Per run: wall ÷ (requests ÷ limit), the
//! share of 429s, and whether exactly the expired tags went.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fake_gitlab::{FakeGitlab, Faults, Throttle, ThrottleHeaders};

use crate::scenario::{DataSet, Scenario, TOKEN};

/// Requests per window, and the window.
const LIMIT: u32 = 250;
const WINDOW: Duration = Duration::from_secs(5);

/// The workload: 2 repositories × 1,000 tags, half expired, 5 ms latency:
/// 2,000 detail GETs + 1,000 DELETEs + pages, about 3,025 requests.
pub fn scenario() -> Scenario {
    Scenario {
        projects: 1,
        repos: 2,
        tags: 1000,
        expired: 0.5,
        latency: Duration::from_millis(5),
        concurrency: 8,
    }
}

/// One run of ours against the throttled fake.
#[derive(Debug, Clone)]
pub struct TrafficRun {
    pub headers: &'static str,
    pub round: usize,
    pub wall: Duration,
    pub requests: u64,
    pub throttled: u64,
    pub exit: Option<i32>,
    pub exact: bool,
}

impl TrafficRun {
    /// The least time the limit allows for these requests.
    pub fn bound(&self) -> Duration {
        WINDOW.mul_f64(self.requests as f64 / f64::from(LIMIT))
    }

    pub fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.bound().as_secs_f64()
    }

    pub fn throttled_share(&self) -> f64 {
        self.throttled as f64 / self.requests.max(1) as f64
    }

    /// The targets: with headers ≤ 1.15× and no 429; without ≤ 1.3×
    /// and under 2 % 429s; exit 0 and exact either way.
    pub fn meets_target(&self) -> bool {
        let (ratio, share) = if self.headers == "full" {
            (1.15, 0.0)
        } else {
            (1.3, 0.02)
        };
        let few = if share == 0.0 {
            self.throttled == 0
        } else {
            self.throttled_share() < share
        };
        self.exit == Some(0) && self.exact && self.ratio() <= ratio && few
    }
}

/// Every run: per round, headers on every answer, then bare 429s.
pub fn run_all(binary: &Path, runs_dir: &Path, rounds: usize, timeout: Duration) -> Result<Vec<TrafficRun>, String> {
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for (name, headers) in [("full", ThrottleHeaders::Full), ("none", ThrottleHeaders::None)] {
            let run = run_one(binary, runs_dir, name, headers, round, timeout)?;
            eprintln!(
                "bench: traffic, headers {name}, round {round}: {:.1} s = {:.3}× of {} requests ÷ limit, {} 429s ({:.2} %), exact {}, exit {:?}",
                run.wall.as_secs_f64(),
                run.ratio(),
                run.requests,
                run.throttled,
                run.throttled_share() * 100.0,
                run.exact,
                run.exit
            );
            runs.push(run);
        }
    }
    Ok(runs)
}

fn run_one(
    binary: &Path,
    runs_dir: &Path,
    name: &'static str,
    headers: ThrottleHeaders,
    round: usize,
    timeout: Duration,
) -> Result<TrafficRun, String> {
    let scenario = scenario();
    let data = DataSet::generate(&scenario);
    let fake = FakeGitlab::start(data.seed.clone()).map_err(|e| format!("cannot start the fake GitLab: {e}"))?;
    fake.set_faults(Faults {
        latency: scenario.latency,
        ..Faults::default()
    });
    fake.set_throttle(Some(Throttle::new(LIMIT, WINDOW).with_headers(headers)));
    let dir = runs_dir.join(format!("traffic-{name}"));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("config.json");
    fs::write(&config, &data.config).map_err(|e| format!("{}: {e}", config.display()))?;
    let log = dir.join("stdout.log");
    let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("once")
        .args(["-u", &fake.url(), "-t", TOKEN, "-c"])
        .arg(&config)
        .args(["--concurrency", &scenario.concurrency.to_string()])
        .args(["--api", "rest", "--log-level", "warn"]);
    for var in crate::TOOL_VARS {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    cmd.current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null());
    let (exit, wall) = crate::measure::spawn_and_wait(&mut cmd, timeout)?;
    let stats = fake.stats();
    Ok(TrafficRun {
        headers: name,
        round,
        wall,
        requests: stats.total,
        throttled: stats.throttled(),
        exit,
        exact: data.verify(&fake).exact,
    })
}

/// The report's section.
pub fn render(runs: &[TrafficRun]) -> String {
    let mut text = String::new();
    text.push_str("## Traffic: 3,000 requests against 3,000 requests/min\n\n");
    text.push_str(&format!(
        "REST (`--api rest`, `--concurrency {}`), {}; the fake throttles {LIMIT} requests per {} s window \
         (aligned to Unix time). Bound = requests ÷ limit. Targets: with `RateLimit-*` headers ≤ 1.15× and no 429; \
         bare 429s ≤ 1.3× and < 2 % 429s.\n\n",
        scenario().concurrency,
        scenario().describe_data(),
        WINDOW.as_secs()
    ));
    text.push_str("| headers | round | wall | requests | bound | wall ÷ bound | 429s | exact, exit 0 | target met |\n");
    text.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        text.push_str(&format!(
            "| {} | {} | {:.1} s | {} | {:.1} s | {:.3}× | {} ({:.2} %) | {} | {} |\n",
            if r.headers == "full" {
                "on every answer"
            } else {
                "none (bare 429)"
            },
            r.round,
            r.wall.as_secs_f64(),
            r.requests,
            r.bound().as_secs_f64(),
            r.ratio(),
            r.throttled,
            r.throttled_share() * 100.0,
            if r.exact && r.exit == Some(0) { "yes" } else { "NO" },
            if r.meets_target() { "yes" } else { "NO" },
        ));
    }
    text.push('\n');
    text
}
