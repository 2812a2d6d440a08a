//! `daemon`: passes on a cron schedule, SIGHUP reload, graceful stop.
//!
//! One event loop `select!`s over a closed set of events — the next tick, a
//! finished pass, a signal, the watchdog — so everything that can change the
//! daemon's state is in one place. A pass runs as its own task with the
//! config and client it started with; a tick that comes while it runs is
//! skipped (`pass_skipped`), so passes never overlap. Stopping cancels the
//! one root token: no new pass, no new request; requests in flight finish
//! within `--timeout`. A second stop signal returns at once with exit 1.
//!
//! The loop ([`run_loop`]) gets the outside world injected ([`Wiring`]): the
//! wall clock, the signals (a channel), how to reload and how to run a pass.
//! [`run`] wires the real ones; the unit tests wire fakes under tokio's
//! paused time.
//!
//! tokio-cron-scheduler was not used: it refuses 5-field cron expressions and
//! lets runs of a job overlap. croner parses, and this loop sleeps until the
//! next tick (at most a minute at a time, so a wall-clock jump is noticed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::cli::{self, Parsed};
use crate::config::Config;
use crate::gitlab::{ClientBuildError, GitlabClient};
use crate::notify;
use crate::pass::{self, PassReport};
use crate::schedule::Schedule;
use crate::settings::{Settings, SettingsError};
use crate::signals::{SignalEvent, Signals};

/// Longest single sleep: the timer is monotonic, the schedule is wall-clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Extra time, beyond `--timeout`, that a stop waits for a pass to wind down.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The wall clock the schedule is read against.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Makes the future of one pass, fresh for each run.
pub type PassRunner = Arc<dyn Fn() -> BoxFuture<'static, PassReport> + Send + Sync>;

/// A config in force: what the loop needs of it.
#[derive(Clone)]
pub struct Loaded {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The config itself.
    pub config: Arc<Config>,
    /// When passes run (`--schedule`, else the config's).
    pub schedule: Schedule,
    /// Whether passes only say what they would delete (for the status line).
    pub dry_run: bool,
    /// Runs one pass with this config.
    pub run_pass: PassRunner,
}

/// Why a SIGHUP could not bring in a new config.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The settings or the config are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The client refuses the settings.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// The daemon cannot go on without a schedule.
    #[error("the new config has no schedule")]
    NoSchedule,
}

/// Reads everything again, for a SIGHUP.
pub type Reloader<'a> = Box<dyn FnMut() -> Result<Loaded, ReloadError> + Send + 'a>;

/// The outside world of the event loop.
pub struct Wiring<'a> {
    /// The wall clock.
    pub clock: Box<dyn Clock>,
    /// Signals, as events (the real ones from [`Signals::forward`]).
    pub signals: mpsc::Receiver<SignalEvent>,
    /// Brings in a new config on SIGHUP.
    pub reload: Reloader<'a>,
    /// Cancelled on stop: the client sends no new request, the pass winds down.
    pub shutdown: CancellationToken,
    /// How long a stop waits for the running pass.
    pub stop_limit: Duration,
    /// How often to ping systemd's watchdog, if at all.
    pub watchdog: Option<Duration>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(parsed: &Parsed) -> Result<ExitCode, CommandError> {
    // Before anything else: until then a SIGHUP would kill the process.
    let signals = Signals::register().map_err(CommandError::Signals)?;
    let shutdown = CancellationToken::new();
    let settings = Settings::resolve(parsed)?;
    let schedule = settings.config.required_schedule()?.clone();
    let metrics_listen = settings.metrics_listen;
    let stop_limit = settings.timeout + STOP_GRACE;
    let current = load(settings, schedule, &shutdown)?;
    if let Some(address) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| CommandError::MetricsListen { address, source })?;
        let bound = listener
            .local_addr()
            .map_or_else(|_| address.to_string(), |a| a.to_string());
        tracing::info!(operation = "metrics_listening", address = %bound, "serving /metrics and /healthz");
        tokio::spawn(crate::metrics::serve(listener, shutdown.clone()));
    }
    // `.env` as it was at start: its settings only apply at start.
    let dotenv_at_start = cli::read_dotenv();
    let reload_shutdown = shutdown.clone();
    let reload: Reloader<'_> = Box::new(move || -> Result<Loaded, ReloadError> {
        let settings = Settings::resolve(parsed)?;
        let schedule = settings.config.schedule.clone().ok_or(ReloadError::NoSchedule)?;
        let fresh = load(settings, schedule, &reload_shutdown)?;
        warn_about_changed_dotenv(&dotenv_at_start);
        Ok(fresh)
    });
    let wiring = Wiring {
        clock: Box::new(SystemClock),
        signals: signals.forward(),
        reload,
        shutdown,
        stop_limit,
        watchdog: notify::watchdog_interval(),
    };
    Ok(run_loop(current, wiring).await)
}

/// The config in force from resolved settings: a backend for it, and how to
/// run a pass with both.
fn load(settings: Settings, schedule: Schedule, shutdown: &CancellationToken) -> Result<Loaded, ClientBuildError> {
    let backend = settings
        .config
        .backend(GitlabClient::new(&settings.client, shutdown.clone())?);
    let config = Arc::clone(&settings.config.config);
    let options = settings.pass.clone();
    let run_pass: PassRunner = {
        let config = Arc::clone(&config);
        Arc::new(move || {
            let (backend, config, options) = (backend.clone(), Arc::clone(&config), options.clone());
            Box::pin(async move { pass::run_pass(&backend, &config, &options).await })
        })
    };
    Ok(Loaded {
        path: settings.config.path,
        config,
        schedule,
        dry_run: settings.pass.dry_run,
        run_pass,
    })
}

/// `.env` settings (the URL, the token, the log file...) apply at start only: say which changed.
fn warn_about_changed_dotenv(at_start: &BTreeMap<String, String>) {
    let now = cli::read_dotenv();
    let changed: BTreeSet<&str> = now
        .keys()
        .chain(at_start.keys())
        .filter(|key| now.get(*key) != at_start.get(*key))
        .map(String::as_str)
        .collect();
    if !changed.is_empty() {
        tracing::warn!(
            operation = "restart_required",
            settings = %changed.into_iter().collect::<Vec<_>>().join(","),
            "settings changed in .env apply only at start; restart to use them"
        );
    }
}

/// The event loop, until a stop signal; its exit code.
pub async fn run_loop(current: Loaded, wiring: Wiring<'_>) -> ExitCode {
    let Wiring {
        clock,
        mut signals,
        reload,
        shutdown,
        stop_limit,
        watchdog,
    } = wiring;
    let mut daemon = Daemon {
        next_run: current.schedule.next_after(clock.now()),
        clock,
        current,
        reload,
        running: None,
        last: None,
    };
    tracing::info!(
        operation = "daemon_started",
        schedule = daemon.current.schedule.as_str(),
        next_run = %display_time(daemon.next_run),
        projects = daemon.current.config.enabled_entries().count(),
        run_on_start = daemon.current.config.run_on_start,
        "daemon started"
    );
    notify::ready(&daemon.status_line());
    if daemon.current.config.run_on_start {
        daemon.start_pass();
    }

    let mut watchdog = watchdog.map(tokio::time::interval);
    let stop_signal = loop {
        let sleep = daemon.sleep_duration();
        tokio::select! {
            () = tokio::time::sleep(sleep) => daemon.on_timer(),
            report = join(&mut daemon.running) => daemon.on_pass_finished(report),
            event = next_signal(&mut signals) => match event {
                SignalEvent::Reload => daemon.reload(),
                SignalEvent::Stop(name) => break name,
            },
            () = tick(&mut watchdog) => notify::watchdog(),
        }
    };
    daemon.stop(stop_signal, &shutdown, stop_limit, &mut signals).await
}

/// The daemon's state between events.
struct Daemon<'a> {
    clock: Box<dyn Clock>,
    current: Loaded,
    reload: Reloader<'a>,
    next_run: Option<Timestamp>,
    running: Option<JoinHandle<PassReport>>,
    last: Option<(Timestamp, PassReport)>,
}

impl Daemon<'_> {
    fn sleep_duration(&self) -> Duration {
        match self.next_run {
            Some(next) => Duration::try_from(next.duration_since(self.clock.now()))
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        }
    }

    fn on_timer(&mut self) {
        let now = self.clock.now();
        let Some(due) = self.next_run.filter(|due| *due <= now) else {
            return;
        };
        if self.running.is_some() {
            tracing::warn!(operation = "pass_skipped", tick = %due, "a tick came while a pass was still running; skipped");
        } else {
            self.start_pass();
        }
        self.next_run = self.current.schedule.next_after(now);
    }

    fn start_pass(&mut self) {
        notify::status(&format!("pass running; {}", self.last_result()));
        self.running = Some(tokio::spawn((self.current.run_pass)()));
    }

    fn on_pass_finished(&mut self, report: Option<PassReport>) {
        self.running = None;
        if let Some(report) = report {
            self.last = Some((self.clock.now(), report));
        }
        tracing::info!(operation = "next_run", next_run = %display_time(self.next_run), "waiting for the next run");
        notify::status(&self.status_line());
    }

    fn reload(&mut self) {
        notify::reloading();
        match (self.reload)() {
            Ok(fresh) => self.apply(fresh),
            Err(err) => tracing::error!(
                operation = "config_reload_failed",
                config = %self.current.path.display(),
                error = %err,
                "the new config is invalid; the old one stays in force"
            ),
        }
        notify::ready(&self.status_line());
    }

    /// Puts a reloaded config in force; a running pass finishes with the old one.
    fn apply(&mut self, fresh: Loaded) {
        let changes = describe_changes(&self.current.config, &fresh.config);
        let schedule_changed = fresh.schedule != self.current.schedule;
        if fresh.config.run_on_start != self.current.config.run_on_start {
            tracing::warn!(
                operation = "restart_required",
                settings = "run_on_start",
                "run_on_start only applies when the daemon starts; the change takes effect at the next restart"
            );
        }
        let old = std::mem::replace(&mut self.current, fresh);
        if schedule_changed {
            self.next_run = self.current.schedule.next_after(self.clock.now());
        }
        tracing::info!(
            operation = "config_reloaded",
            added = %changes.added.join(","),
            removed = %changes.removed.join(","),
            changed = %changes.changed.join(","),
            schedule = self.current.schedule.as_str(),
            schedule_changed,
            old_schedule = old.schedule.as_str(),
            next_run = %display_time(self.next_run),
            pass_running = self.running.is_some(),
            "config reloaded; it applies from the next pass"
        );
    }

    async fn stop(
        mut self,
        signal_name: &str,
        shutdown: &CancellationToken,
        limit: Duration,
        signals: &mut mpsc::Receiver<SignalEvent>,
    ) -> ExitCode {
        notify::stopping();
        tracing::info!(
            operation = "stopping",
            signal = signal_name,
            "stopping: no new pass, no new request"
        );
        shutdown.cancel();
        let mut report = None;
        if let Some(handle) = self.running.take() {
            tokio::select! {
                joined = handle => report = joined.ok(),
                () = tokio::time::sleep(limit) => {
                    tracing::error!(operation = "shutdown", "the pass did not wind down in time; exiting anyway");
                }
                () = next_stop(signals) => {
                    tracing::warn!(operation = "shutdown", "second signal: exiting at once");
                    return ExitCode::from(1);
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
        ExitCode::SUCCESS
    }

    fn last_result(&self) -> String {
        match &self.last {
            None => "no pass yet".to_owned(),
            Some((at, r)) => format!(
                "last pass {}: {}, {} {}, {} errors",
                at.round(jiff::Unit::Second).unwrap_or(*at),
                r.result(),
                r.deleted,
                if self.current.dry_run {
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

/// Entries added, removed and changed between two configs, by JSON path.
#[derive(Debug, PartialEq, Eq)]
struct Changes {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

/// Compares entries by [`crate::config::Entry::summary`], which names every
/// setting of an entry: a change the summary does not show is not reported.
fn describe_changes(old: &Config, new: &Config) -> Changes {
    let summary =
        |config: &Config, path: &str| config.entries.iter().find(|e| e.json_path == path).map(|e| e.summary());
    // The JSON paths of `from`'s entries whose summary in `other` passes `test`.
    let paths = |from: &Config, other: &Config, test: &dyn Fn(&crate::config::Entry, Option<String>) -> bool| {
        from.entries
            .iter()
            .filter(|e| test(e, summary(other, &e.json_path)))
            .map(|e| e.json_path.clone())
            .collect()
    };
    Changes {
        added: paths(new, old, &|_, before| before.is_none()),
        removed: paths(old, new, &|_, after| after.is_none()),
        changed: paths(new, old, &|e, before| {
            before.is_some_and(|before| before != e.summary())
        }),
    }
}

fn display_time(time: Option<Timestamp>) -> String {
    time.map(|t| t.to_string()).unwrap_or_else(|| "never".to_owned())
}

/// The next signal; never, once every sender is gone.
async fn next_signal(signals: &mut mpsc::Receiver<SignalEvent>) -> SignalEvent {
    match signals.recv().await {
        Some(event) => event,
        None => std::future::pending().await,
    }
}

/// The next stop signal; a SIGHUP meanwhile is logged and ignored.
async fn next_stop(signals: &mut mpsc::Receiver<SignalEvent>) {
    while let SignalEvent::Reload = next_signal(signals).await {
        tracing::info!("SIGHUP ignored: nothing to reload now");
    }
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

#[cfg(test)]
mod tests;
