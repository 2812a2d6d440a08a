//! The event loop in paused time: ticks, skips, reloads and stops, to the
//! millisecond, with fake passes, a fake clock and signals sent by hand.

use std::sync::Mutex;

use serde_json::json;
use tokio::time::Instant;

use super::*;

/// A wall clock that moves with tokio's (paused) clock.
struct TestClock {
    wall_at_start: Timestamp,
    start: Instant,
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        self.wall_at_start
            .checked_add(self.start.elapsed())
            .expect("the test clock stays in range")
    }
}

/// One pass a fake runner made: which runner, when it started and ended
/// (since the test started).
#[derive(Debug, Clone, PartialEq)]
struct Run {
    runner: &'static str,
    started: Duration,
    ended: Option<Duration>,
}

type Runs = Arc<Mutex<Vec<Run>>>;

/// The test's view of the loop: its runs, the signal sender, the loop's task.
struct Harness {
    start: Instant,
    runs: Runs,
    signals: mpsc::Sender<SignalEvent>,
    shutdown: CancellationToken,
    exit: JoinHandle<ExitCode>,
}

const MS: Duration = Duration::from_millis(1);

fn config(run_on_start: bool) -> Arc<Config> {
    let value = json!({
        "run_on_start": run_on_start,
        "projects": {"a": {"id": 1, "delete_older_than": "1d"}}
    });
    Arc::new(Config::from_value(&value).expect("a valid config"))
}

/// A config in force whose passes take `duration` and are recorded as `runner`.
fn loaded(runner: &'static str, schedule: &str, duration: Duration, runs: &Runs) -> Loaded {
    loaded_with(runner, schedule, duration, runs, config(false))
}

fn loaded_with(runner: &'static str, schedule: &str, duration: Duration, runs: &Runs, config: Arc<Config>) -> Loaded {
    let runs = Arc::clone(runs);
    // The paused clock starts when the runtime does, before the harness: close enough, both are at 0.
    let epoch = Instant::now();
    Loaded {
        path: PathBuf::from("config.json"),
        config,
        schedule: Schedule::parse(schedule).unwrap(),
        dry_run: false,
        run_pass: Arc::new(move || {
            let runs = Arc::clone(&runs);
            Box::pin(async move {
                let index = {
                    let mut runs = runs.lock().unwrap();
                    runs.push(Run {
                        runner,
                        started: epoch.elapsed(),
                        ended: None,
                    });
                    runs.len() - 1
                };
                tokio::time::sleep(duration).await;
                runs.lock().unwrap()[index].ended = Some(epoch.elapsed());
                PassReport::default()
            })
        }),
    }
}

/// Starts the loop at wall time 00:00:00.5 (so a per-second schedule ticks at
/// 0.5 s, 1.5 s, ... of test time), with `reloads` answering each SIGHUP in turn.
fn start(current: Loaded, runs: &Runs, reloads: Vec<Result<Loaded, ReloadError>>) -> Harness {
    let start = Instant::now();
    let (signals, receiver) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let mut reloads = reloads.into_iter();
    let wiring = Wiring {
        clock: Box::new(TestClock {
            wall_at_start: "2030-01-01T00:00:00.5Z".parse().unwrap(),
            start,
        }),
        signals: receiver,
        reload: Box::new(move || reloads.next().expect("a reload the test did not expect")),
        shutdown: shutdown.clone(),
        stop_limit: Duration::from_secs(10),
        watchdog: None,
    };
    Harness {
        start,
        runs: Arc::clone(runs),
        signals,
        shutdown,
        exit: tokio::spawn(run_loop(current, wiring)),
    }
}

impl Harness {
    /// Sleeps until `at` since the start of the test.
    async fn until(&self, at: Duration) {
        tokio::time::sleep_until(self.start + at).await;
    }

    async fn send(&self, event: SignalEvent) {
        self.signals.send(event).await.unwrap();
    }

    /// Start times, rounded to the millisecond, by runner.
    fn starts(&self) -> Vec<(&'static str, u128)> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.runner, r.started.as_millis()))
            .collect()
    }

    /// Stops the loop at `at`; its exit code and when it returned.
    async fn stop_at(self, at: Duration) -> (ExitCode, Duration) {
        self.until(at).await;
        self.send(SignalEvent::Stop("SIGTERM")).await;
        let code = self.exit.await.unwrap();
        (code, self.start.elapsed())
    }
}

fn runs() -> Runs {
    Arc::new(Mutex::new(Vec::new()))
}

#[tokio::test(start_paused = true)]
async fn ticks_start_passes() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 100 * MS, &runs), &runs, vec![]);
    daemon.until(3600 * MS).await;
    assert_eq!(
        daemon.starts(),
        [("old", 500), ("old", 1500), ("old", 2500), ("old", 3500)]
    );
    let (code, _) = daemon.stop_at(3700 * MS).await;
    assert_eq!(code, ExitCode::SUCCESS);
}

#[tokio::test(start_paused = true)]
async fn run_on_start_starts_a_pass_at_once() {
    let runs = runs();
    let current = loaded_with("old", "@hourly", 100 * MS, &runs, config(true));
    let daemon = start(current, &runs, vec![]);
    daemon.until(1000 * MS).await;
    assert_eq!(daemon.starts(), [("old", 0)]);
    daemon.stop_at(1000 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn a_tick_during_a_running_pass_is_skipped_and_passes_never_overlap() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 2200 * MS, &runs), &runs, vec![]);
    daemon.until(6000 * MS).await;
    // 0.5 s runs to 2.7 s: the ticks at 1.5 and 2.5 are skipped.
    assert_eq!(daemon.starts(), [("old", 500), ("old", 3500)]);
    let runs = daemon.runs.lock().unwrap().clone();
    for pair in runs.windows(2) {
        assert!(pair[0].ended.is_some_and(|ended| ended <= pair[1].started), "{runs:?}");
    }
    daemon.stop_at(6000 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn a_valid_reload_swaps_the_config_for_the_next_pass() {
    let runs = runs();
    let fresh = loaded("new", "* * * * * *", 100 * MS, &runs);
    let daemon = start(loaded("old", "* * * * * *", 100 * MS, &runs), &runs, vec![Ok(fresh)]);
    daemon.until(1000 * MS).await;
    daemon.send(SignalEvent::Reload).await;
    daemon.until(2600 * MS).await;
    // Same schedule: not re-timed, the next tick runs the new config.
    assert_eq!(daemon.starts(), [("old", 500), ("new", 1500), ("new", 2500)]);
    daemon.stop_at(2600 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_with_a_new_schedule_re_times_the_next_run() {
    let runs = runs();
    let fresh = loaded("new", "* * * * * *", 100 * MS, &runs);
    let daemon = start(loaded("old", "@hourly", 100 * MS, &runs), &runs, vec![Ok(fresh)]);
    daemon.until(61_000 * MS).await;
    assert_eq!(daemon.starts(), [], "nothing until the hour");
    daemon.send(SignalEvent::Reload).await;
    daemon.until(63_000 * MS).await;
    assert_eq!(daemon.starts(), [("new", 61_500), ("new", 62_500)]);
    daemon.stop_at(63_000 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_reload_keeps_the_old_config() {
    let runs = runs();
    let daemon = start(
        loaded("old", "* * * * * *", 100 * MS, &runs),
        &runs,
        vec![Err(ReloadError::NoSchedule)],
    );
    daemon.until(1000 * MS).await;
    daemon.send(SignalEvent::Reload).await;
    daemon.until(2600 * MS).await;
    assert_eq!(daemon.starts(), [("old", 500), ("old", 1500), ("old", 2500)]);
    daemon.stop_at(2600 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_pass_waits_for_it() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 3000 * MS, &runs), &runs, vec![]);
    let shutdown = daemon.shutdown.clone();
    let (code, returned) = daemon.stop_at(1000 * MS).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(shutdown.is_cancelled(), "no new request after a stop");
    assert_eq!(returned.as_millis(), 3500, "the pass started at 0.5 s and takes 3 s");
    assert_eq!(runs.lock().unwrap()[0].ended, Some(3500 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_stop_waits_for_a_stuck_pass_only_so_long() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 3600 * 1000 * MS, &runs), &runs, vec![]);
    let (code, returned) = daemon.stop_at(1000 * MS).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(returned.as_millis(), 11_000, "the stop limit is 10 s");
}

#[tokio::test(start_paused = true)]
async fn a_second_stop_returns_at_once_with_exit_1() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 3600 * 1000 * MS, &runs), &runs, vec![]);
    daemon.until(1000 * MS).await;
    daemon.send(SignalEvent::Stop("SIGTERM")).await;
    daemon.send(SignalEvent::Reload).await;
    daemon.until(2000 * MS).await;
    daemon.send(SignalEvent::Stop("SIGINT")).await;
    let code = daemon.exit.await.unwrap();
    assert_eq!(code, ExitCode::from(1));
    assert_eq!(daemon.start.elapsed().as_millis(), 2000, "at once");
}

#[tokio::test(start_paused = true)]
async fn a_stop_between_passes_returns_at_once() {
    let runs = runs();
    let daemon = start(loaded("old", "* * * * * *", 100 * MS, &runs), &runs, vec![]);
    let (code, returned) = daemon.stop_at(1000 * MS).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(returned.as_millis(), 1000);
}

fn entry_config(entry: serde_json::Value) -> Config {
    Config::from_value(&json!({ "projects": { "a": entry, "b": {"id": 2, "delete_older_than": "1d"} } })).unwrap()
}

#[test]
fn the_reload_diff_names_added_removed_and_changed_entries() {
    let old = Config::from_value(&json!({"projects": {
        "a": {"id": 1, "delete_older_than": "1d"},
        "b": {"id": 2, "delete_older_than": "1d"}
    }}))
    .unwrap();
    let new = Config::from_value(&json!({"projects": {
        "a": {"id": 1, "delete_older_than": "2d"},
        "c": {"id": 3, "delete_older_than": "1d"}
    }}))
    .unwrap();
    assert_eq!(
        describe_changes(&old, &new),
        Changes {
            added: vec!["projects.c".to_owned()],
            removed: vec!["projects.b".to_owned()],
            changed: vec!["projects.a".to_owned()],
        }
    );
    assert_eq!(
        describe_changes(&old, &old),
        Changes {
            added: vec![],
            removed: vec![],
            changed: vec![],
        }
    );
}

/// `Entry::summary()` names `age_from`, and the diff compares summaries.
#[test]
fn the_reload_diff_notices_a_change_of_age_from_alone() {
    let created = entry_config(json!({"id": 1, "delete_older_than": "1d", "age_from": "created"}));
    let published = entry_config(json!({"id": 1, "delete_older_than": "1d", "age_from": "published"}));
    assert_eq!(
        describe_changes(&created, &published).changed,
        vec!["projects.a".to_owned()]
    );
}
