//! `daemon`: passes on a cron schedule, SIGHUP reload, graceful stop.
//!
//! One event loop `select!`s over a closed set of events — the next tick, a
//! finished pass, SIGHUP, SIGTERM/SIGINT, the watchdog — so everything that
//! can change the daemon's state is in one place. A pass runs as its own
//! task with the config and client it started with; a tick that comes while
//! it runs is skipped (`pass_skipped`), so passes never overlap. Stopping
//! cancels the one root token: no new pass, no new request; requests in
//! flight finish within `--timeout`.
//!
//! tokio-cron-scheduler was not used: it refuses 5-field cron expressions and
//! lets runs of a job overlap. croner parses, and this loop sleeps until the
//! next tick (at most a minute at a time, so a wall-clock jump is noticed).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{AppError, NO_SCHEDULE, Prepared, prepare};
use crate::cli::Parsed;
use crate::config::Config;
use crate::notify;
use crate::pass::{self, PassReport};
use crate::schedule::Schedule;

/// Longest single sleep: the timer is monotonic, the schedule is wall-clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Extra time, beyond `--timeout`, that a stop waits for a pass to wind down.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The signals the daemon handles. Registering them replaces the default
/// actions (SIGHUP's would kill the process), so this comes first.
pub struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

/// What a signal asks for.
enum SignalEvent {
    Reload,
    Stop(&'static str),
}

impl Signals {
    /// Installs the handlers.
    pub fn register() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT; a SIGHUP meanwhile is ignored.
    pub async fn next_stop(&mut self) {
        while let SignalEvent::Reload = self.next().await {
            tracing::info!("SIGHUP ignored: nothing to reload now");
        }
    }

    async fn next(&mut self) -> SignalEvent {
        tokio::select! {
            _ = self.hangup.recv() => SignalEvent::Reload,
            _ = self.terminate.recv() => SignalEvent::Stop("SIGTERM"),
            _ = self.interrupt.recv() => SignalEvent::Stop("SIGINT"),
        }
    }
}

/// The daemon's state between events.
struct Daemon<'a> {
    parsed: &'a Parsed,
    shutdown: CancellationToken,
    current: Prepared,
    schedule: Schedule,
    next_run: Option<Timestamp>,
    running: Option<JoinHandle<PassReport>>,
    last: Option<(Timestamp, PassReport)>,
    /// `.env` as it was at start: its settings only apply at start.
    dotenv_at_start: std::collections::BTreeMap<String, String>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(parsed: &Parsed) -> Result<ExitCode, AppError> {
    let mut signals =
        Signals::register().map_err(|err| AppError::Failed(format!("cannot install signal handlers: {err}")))?;
    let shutdown = CancellationToken::new();
    let current = prepare(parsed, &shutdown)?;
    let schedule = current
        .schedule
        .clone()
        .ok_or_else(|| AppError::Usage(NO_SCHEDULE.to_owned()))?;
    if let Some(addr) = parsed.cli.options.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| AppError::Usage(format!("--metrics-listen {addr}: cannot listen: {err}")))?;
        let bound = listener
            .local_addr()
            .map_or_else(|_| addr.to_string(), |a| a.to_string());
        tracing::info!(operation = "metrics_listening", address = %bound, "serving /metrics and /healthz");
        tokio::spawn(crate::metrics::serve(listener, shutdown.clone()));
    }
    let mut daemon = Daemon {
        parsed,
        shutdown,
        next_run: schedule.next_after(Timestamp::now()),
        schedule,
        current,
        running: None,
        last: None,
        dotenv_at_start: crate::cli::read_dotenv(),
    };
    tracing::info!(
        operation = "daemon_started",
        schedule = daemon.schedule.as_str(),
        next_run = %display_time(daemon.next_run),
        projects = daemon.current.config.enabled_entries().count(),
        run_on_start = daemon.current.config.run_on_start,
        "daemon started"
    );
    notify::ready(&daemon.status_line());
    if daemon.current.config.run_on_start {
        daemon.start_pass();
    }

    let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
    let stop_signal = loop {
        let sleep = daemon.sleep_duration();
        tokio::select! {
            () = tokio::time::sleep(sleep) => daemon.on_timer(),
            report = join(&mut daemon.running) => daemon.on_pass_finished(report),
            event = signals.next() => match event {
                SignalEvent::Reload => daemon.reload(),
                SignalEvent::Stop(name) => break name,
            },
            _ = tick(&mut watchdog) => notify::watchdog(),
        }
    };
    daemon.stop(stop_signal, &mut signals).await;
    Ok(ExitCode::SUCCESS)
}

impl Daemon<'_> {
    fn sleep_duration(&self) -> Duration {
        match self.next_run {
            Some(next) => Duration::try_from(next.duration_since(Timestamp::now()))
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        }
    }

    fn on_timer(&mut self) {
        let now = Timestamp::now();
        let Some(due) = self.next_run.filter(|due| *due <= now) else {
            return;
        };
        if self.running.is_some() {
            tracing::warn!(operation = "pass_skipped", tick = %due, "a tick came while a pass was still running; skipped");
        } else {
            self.start_pass();
        }
        self.next_run = self.schedule.next_after(now);
    }

    fn start_pass(&mut self) {
        let backend = self.current.backend.clone();
        let config: Arc<Config> = Arc::clone(&self.current.config);
        let options = self.current.pass_options.clone();
        notify::status(&format!("pass running; {}", self.last_result()));
        self.running = Some(tokio::spawn(async move {
            pass::run_pass(&backend, &config, &options).await
        }));
    }

    fn on_pass_finished(&mut self, report: Option<PassReport>) {
        self.running = None;
        if let Some(report) = report {
            self.last = Some((Timestamp::now(), report));
        }
        tracing::info!(operation = "next_run", next_run = %display_time(self.next_run), "waiting for the next run");
        notify::status(&self.status_line());
    }

    fn reload(&mut self) {
        notify::reloading();
        let path = self
            .parsed
            .cli
            .options
            .config
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match self.try_reload() {
            Ok(()) => {}
            Err(err) => tracing::error!(
                operation = "config_reload_failed",
                config = %path,
                error = %err,
                "the new config is invalid; the old one stays in force"
            ),
        }
        notify::ready(&self.status_line());
    }

    fn try_reload(&mut self) -> Result<(), AppError> {
        let fresh = prepare(self.parsed, &self.shutdown)?;
        let schedule = fresh
            .schedule
            .clone()
            .ok_or_else(|| AppError::Usage("the new config has no schedule".to_owned()))?;
        let changes = describe_changes(&self.current.config, &fresh.config);
        let schedule_changed = schedule != self.schedule;
        if fresh.config.run_on_start != self.current.config.run_on_start {
            tracing::warn!(
                operation = "restart_required",
                settings = "run_on_start",
                "run_on_start only applies when the daemon starts; the change takes effect at the next restart"
            );
        }
        let dotenv = crate::cli::read_dotenv();
        let changed_env: Vec<&str> = dotenv
            .keys()
            .chain(self.dotenv_at_start.keys())
            .filter(|key| dotenv.get(*key) != self.dotenv_at_start.get(*key))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !changed_env.is_empty() {
            tracing::warn!(
                operation = "restart_required",
                settings = %changed_env.join(","),
                "settings changed in .env apply only at start; restart to use them"
            );
        }
        let old_schedule = std::mem::replace(&mut self.schedule, schedule);
        self.current = fresh;
        if schedule_changed {
            self.next_run = self.schedule.next_after(Timestamp::now());
        }
        tracing::info!(
            operation = "config_reloaded",
            added = %changes.added.join(","),
            removed = %changes.removed.join(","),
            changed = %changes.changed.join(","),
            schedule = self.schedule.as_str(),
            schedule_changed,
            old_schedule = old_schedule.as_str(),
            next_run = %display_time(self.next_run),
            pass_running = self.running.is_some(),
            "config reloaded; it applies from the next pass"
        );
        Ok(())
    }

    async fn stop(mut self, signal_name: &str, signals: &mut Signals) {
        notify::stopping();
        tracing::info!(
            operation = "stopping",
            signal = signal_name,
            "stopping: no new pass, no new request"
        );
        self.shutdown.cancel();
        let mut report = None;
        if let Some(handle) = self.running.take() {
            let limit = self.parsed.cli.options.timeout.unwrap_or(crate::app::DEFAULT_TIMEOUT) + STOP_GRACE;
            tokio::select! {
                joined = handle => report = joined.ok(),
                () = tokio::time::sleep(limit) => {
                    tracing::error!(operation = "shutdown", "the pass did not wind down in time; exiting anyway");
                }
                () = signals.next_stop() => {
                    tracing::warn!(operation = "shutdown", "second signal: exiting at once");
                    std::process::exit(1);
                }
            }
        }
        match report {
            Some(r) => tracing::info!(
                operation = "shutdown",
                signal = signal_name,
                pass_interrupted = r.interrupted,
                deleted = r.deleted,
                kept = r.kept,
                errors = r.errors,
                tags_seen = r.tags_seen,
                "stopped"
            ),
            None => tracing::info!(
                operation = "shutdown",
                signal = signal_name,
                pass_interrupted = false,
                "stopped"
            ),
        }
    }

    fn last_result(&self) -> String {
        match &self.last {
            None => "no pass yet".to_owned(),
            Some((at, r)) => format!(
                "last pass {}: {}, {} {}, {} errors",
                at.round(jiff::Unit::Second).unwrap_or(*at),
                r.result(),
                r.deleted,
                if self.current.pass_options.dry_run {
                    "would delete"
                } else {
                    "deleted"
                },
                r.errors
            ),
        }
    }

    fn status_line(&self) -> String {
        format!("{}; next run {}", self.last_result(), display_time(self.next_run))
    }
}

/// Entries added, removed and changed between two configs, by name.
struct Changes {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

fn describe_changes(old: &Config, new: &Config) -> Changes {
    let find = |config: &Config, path: &str| config.entries.iter().find(|e| e.json_path == path).map(|e| e.summary());
    Changes {
        added: new
            .entries
            .iter()
            .filter(|e| find(old, &e.json_path).is_none())
            .map(|e| e.json_path.clone())
            .collect(),
        removed: old
            .entries
            .iter()
            .filter(|e| find(new, &e.json_path).is_none())
            .map(|e| e.json_path.clone())
            .collect(),
        changed: new
            .entries
            .iter()
            .filter(|e| find(old, &e.json_path).is_some_and(|summary| summary != e.summary()))
            .map(|e| e.json_path.clone())
            .collect(),
    }
}

fn display_time(time: Option<Timestamp>) -> String {
    time.map(|t| t.to_string()).unwrap_or_else(|| "never".to_owned())
}

/// Waits for the running pass, or forever if there is none.
async fn join(running: &mut Option<JoinHandle<PassReport>>) -> Option<PassReport> {
    match running {
        Some(handle) => match handle.await {
            Ok(report) => Some(report),
            Err(err) => {
                tracing::error!(operation = "pass_failed", error = %err, "the pass task failed");
                None
            }
        },
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
