//! The resident daemon, run as systemd would run it, with real signals.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// A daemon process whose JSON log lines are collected as they come.
struct Daemon {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    work: Workdir,
    exited: Option<(ExitStatus, Instant)>,
}

impl Daemon {
    fn start(fake: &FakeGitlab, config: &Value, args: &[&str], envs: &[(&str, &str)]) -> Daemon {
        let work = Workdir::new();
        work.config(config);
        let mut cmd = bin(work.path());
        cmd.args([
            "daemon",
            "-u",
            &fake.url(),
            "-t",
            TOKEN,
            "-c",
            "config.json",
            "--retry-base-ms",
            "5",
        ])
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("daemon starts");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        Daemon {
            child,
            events,
            work,
            exited: None,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The first event with this operation (it must have come).
    fn first(&self, operation: &str) -> Value {
        self.events()
            .into_iter()
            .find(|e| e["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} event\n{}", self.log()))
    }

    fn count(&self, operation: &str) -> usize {
        self.events().iter().filter(|e| e["operation"] == operation).count()
    }

    fn log(&self) -> String {
        self.events()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `done` holds, failing with the whole log after `limit`.
    fn wait_until(&self, what: &str, limit: Duration, done: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_count(&self, operation: &str, n: usize) {
        self.wait_until(&format!("{n} × {operation}"), Duration::from_secs(20), |d| {
            d.count(operation) >= n
        });
    }

    fn write_config(&self, content: &str) {
        // Replace atomically, as an editor or config management would.
        let tmp = self.work.write("config.json.tmp", content);
        std::fs::rename(tmp, self.work.path().join("config.json")).unwrap();
    }

    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let exited = (status, Instant::now());
                self.exited = Some(exited);
                return exited;
            }
            assert!(Instant::now() < deadline, "daemon did not exit\n{}", self.log());
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Project 1 (`a`), expired after a day, cleaned every second from the start.
fn a_every_second() -> Value {
    every_second(json!({"a": {"id": 1, "delete_older_than": "1d"}}))
}

fn every_second(projects: Value) -> Value {
    json!({"schedule": "* * * * * *", "run_on_start": true, "projects": projects})
}

fn two_projects() -> FakeGitlab {
    FakeGitlab::start(seed(vec![
        project(1, "g/a", vec![repo(10, "img", vec![old("a1"), old("a2"), young("a3")])]),
        project(2, "g/b", vec![repo(20, "img", vec![old("b1"), young("b2")])]),
    ]))
    .unwrap()
}

#[test]
fn scheduled_passes_delete_newly_expired_tags() {
    let fake = two_projects();
    let mut daemon = Daemon::start(&fake, &a_every_second(), &[], &[]);
    daemon.wait_for_count("pass_finished", 1);
    assert_eq!(fake.tag_names(10), vec!["a3"]);
    fake.add_tag(10, old("late"));
    daemon.wait_until("the late tag to go", Duration::from_secs(20), |_| {
        !fake.tag_names(10).contains(&"late".to_owned())
    });
    daemon.wait_for_count("next_run", 2);
    let next = daemon.first("next_run");
    assert!(next["next_run"].as_str().unwrap().ends_with('Z'), "{next}");
    assert_eq!(fake.tag_names(20).len(), 2, "project b is not configured");
    daemon.signal("TERM");
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_adds_a_project() {
    let fake = two_projects();
    let daemon = Daemon::start(&fake, &a_every_second(), &[], &[]);
    daemon.wait_for_count("pass_finished", 1);
    assert_eq!(fake.tag_names(20).len(), 2);
    let both = every_second(json!({
        "a": {"id": 1, "delete_older_than": "1d"},
        "b": {"id": 2, "delete_older_than": "1d"}
    }));
    daemon.write_config(&both.to_string());
    daemon.signal("HUP");
    daemon.wait_for_count("config_reloaded", 1);
    let reloaded = daemon.first("config_reloaded");
    assert_eq!(reloaded["added"], "projects.b", "{reloaded}");
    assert_eq!(reloaded["removed"], "");
    daemon.wait_until("project b cleaned", Duration::from_secs(20), |_| {
        fake.tag_names(20) == vec!["b2"]
    });
}

#[test]
fn a_broken_file_on_sighup_keeps_the_old_config_working() {
    let fake = two_projects();
    let daemon = Daemon::start(&fake, &a_every_second(), &[], &[]);
    daemon.wait_for_count("pass_finished", 1);
    daemon.write_config("{\"projects\": {\"a\": {\"id\": 1, \"delete_older_than\": {\"days\": 0}}}}");
    daemon.signal("HUP");
    daemon.wait_for_count("config_reload_failed", 1);
    let failed = daemon.first("config_reload_failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("projects.a.delete_older_than: must be > 0"),
        "{failed}"
    );
    assert_eq!(failed["level"], "ERROR");
    daemon.write_config("{not json");
    daemon.signal("HUP");
    daemon.wait_for_count("config_reload_failed", 2);
    fake.add_tag(10, old("after-bad-reload"));
    daemon.wait_until("the old config still cleans", Duration::from_secs(20), |_| {
        !fake.tag_names(10).contains(&"after-bad-reload".to_owned())
    });
}

#[test]
fn ticks_during_a_slow_pass_are_skipped_and_passes_never_overlap() {
    let fake = old_tags_repo(12, Duration::from_millis(400));
    let daemon = Daemon::start(&fake, &a_every_second(), &["--concurrency", "4", "--dry-run"], &[]);
    daemon.wait_for_count("pass_finished", 2);
    assert!(daemon.count("pass_skipped") >= 1, "{}", daemon.log());
    let mut running = false;
    for event in daemon.events() {
        match event["operation"].as_str() {
            Some("pass_started") => {
                assert!(!running, "two passes at once\n{}", daemon.log());
                running = true;
            }
            Some("pass_finished") => running = false,
            _ => {}
        }
    }
    assert!(fake.stats().max_in_flight <= 4);
}

#[test]
fn sigterm_in_a_slow_pass_exits_0_promptly_and_sends_nothing_after() {
    let fake = old_tags_repo(40, Duration::from_millis(700));
    let mut daemon = Daemon::start(&fake, &a_every_second(), &["--concurrency", "2", "--timeout", "3"], &[]);
    daemon.wait_until("tag details in flight", Duration::from_secs(20), |_| {
        fake.stats().count(Route::TagDetail) >= 2
    });
    let signalled = Instant::now();
    daemon.signal("TERM");
    let (status, exited) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(
        exited.duration_since(signalled) < Duration::from_secs(3),
        "took {:?}",
        exited.duration_since(signalled)
    );
    thread::sleep(Duration::from_millis(1500));
    let stats = fake.stats();
    assert!(
        stats.requests.iter().all(|q| q.started <= exited),
        "a request came after the exit"
    );
    let after_signal = stats
        .requests
        .iter()
        .filter(|q| q.started > signalled + Duration::from_millis(50))
        .count();
    assert_eq!(after_signal, 0, "no new request after the signal");
    assert_eq!(stats.deletes(), 0, "the pass never reached its deletes");
    let shutdown = daemon
        .events()
        .into_iter()
        .find(|e| e["operation"] == "shutdown")
        .expect("shutdown event");
    assert_eq!(shutdown["pass_interrupted"], true, "{shutdown}");
    assert!(shutdown["tags_seen"].as_u64().unwrap() == 40, "{shutdown}");
    let finished = daemon.first("pass_finished");
    assert_eq!(finished["result"], "interrupted");
    assert_eq!(
        daemon.count("delete_failed") + daemon.count("repository_failed"),
        0,
        "interruption is not an error"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let fake = old_tags_repo(10, Duration::from_secs(8));
    let mut daemon = Daemon::start(&fake, &a_every_second(), &["--timeout", "20"], &[]);
    daemon.wait_until("a request in flight", Duration::from_secs(20), |_| {
        fake.stats().max_in_flight >= 1 || daemon.count("pass_started") >= 1
    });
    thread::sleep(Duration::from_millis(200));
    daemon.signal("TERM");
    daemon.wait_for_count("stopping", 1);
    let second = Instant::now();
    daemon.signal("INT");
    let (status, exited) = daemon.wait_exit(Duration::from_secs(5));
    assert!(exited.duration_since(second) < Duration::from_secs(2));
    assert_eq!(status.code(), Some(1));
}

#[test]
fn systemd_notifications_in_order() {
    let fake = two_projects();
    let work = Workdir::new();
    let socket_path = work.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let config = json!({"schedule": "@hourly", "projects": {"a": {"id": 1, "delete_older_than": "1d"}}});
    let mut daemon = Daemon::start(
        &fake,
        &config,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut messages: Vec<String> = Vec::new();
    let receive_until = |wanted: &str, messages: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {wanted}: {e}; got {messages:?}"));
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = text.lines().any(|l| l == wanted);
            messages.push(text);
            if hit {
                return;
            }
        }
    };
    receive_until("READY=1", &mut messages);
    assert!(
        messages.last().unwrap().contains("STATUS=no pass yet; next run "),
        "{messages:?}"
    );
    receive_until("WATCHDOG=1", &mut messages);
    daemon.signal("HUP");
    receive_until("RELOADING=1", &mut messages);
    assert!(messages.last().unwrap().contains("MONOTONIC_USEC="), "{messages:?}");
    receive_until("READY=1", &mut messages);
    daemon.signal("TERM");
    receive_until("STOPPING=1", &mut messages);
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let order: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.lines())
        .filter(|l| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(l))
        .collect();
    assert_eq!(order, vec!["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
}

#[test]
fn log_file_gets_every_line_including_the_last() {
    let fake = two_projects();
    let mut daemon = Daemon::start(&fake, &a_every_second(), &["--log-file", "logs/cleaner.log"], &[]);
    daemon.wait_for_count("pass_finished", 1);
    daemon.signal("TERM");
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    thread::sleep(Duration::from_millis(100));
    let logs: Vec<_> = std::fs::read_dir(daemon.work.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = logs[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("cleaner.log.20"), "{name}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), daemon.events().len(), "same lines as stdout");
    assert_eq!(lines.last().unwrap()["operation"], "shutdown");
}

#[test]
fn daemon_needs_a_valid_schedule() {
    let fake = two_projects();
    let work = Workdir::new();
    work.config(&json!({"a": {"id": 1, "delete_older_than": "1d"}}));
    let r = run(bin(work.path()).args(["daemon", "-u", &fake.url(), "-t", TOKEN, "-c", "config.json"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("daemon needs a schedule"), "{}", r.all());
    let r = run(bin(work.path()).args([
        "daemon",
        "-u",
        &fake.url(),
        "-t",
        TOKEN,
        "-c",
        "config.json",
        "--schedule",
        "0 25 * * *",
    ]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("invalid cron expression \"0 25 * * *\""),
        "{}",
        r.all()
    );
    work.config(&json!({"schedule": "every day", "projects": {"a": {"id": 1, "delete_older_than": "1d"}}}));
    let r = run(bin(work.path()).args(["daemon", "-u", &fake.url(), "-t", TOKEN, "-c", "config.json"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("schedule: invalid cron expression \"every day\""),
        "{}",
        r.all()
    );
    assert_eq!(fake.stats().total, 0);
}

#[test]
fn the_schedule_flag_overrides_the_config_and_a_reload_changes_it_at_once() {
    let fake = two_projects();
    let config = json!({"schedule": "@weekly", "projects": {"a": {"id": 1, "delete_older_than": "1d"}}});
    let daemon = Daemon::start(&fake, &config, &[], &[]);
    daemon.wait_for_count("daemon_started", 1);
    let started = daemon.first("daemon_started");
    assert_eq!(started["schedule"], "@weekly");
    assert_eq!(fake.stats().total, 0, "no run_on_start");
    daemon.write_config(&a_every_second().to_string());
    daemon.signal("HUP");
    daemon.wait_for_count("config_reloaded", 1);
    let reloaded = daemon.first("config_reloaded");
    assert_eq!(reloaded["schedule_changed"], true);
    let warning = daemon.first("restart_required");
    assert_eq!(warning["settings"], "run_on_start", "{warning}");
    daemon.wait_for_count("pass_finished", 1);

    let fake2 = two_projects();
    let daemon = Daemon::start(&fake2, &config, &["--schedule", "*/1 * * * * *"], &[]);
    daemon.wait_for_count("pass_finished", 1);
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn prometheus_metrics_after_a_pass() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "g/a",
        vec![repo(
            10,
            "img",
            vec![
                old("a1"),
                old("a2"),
                young("a3"),
                old("guarded").protected(),
                Tag::aged("latest", 30 * DAY),
            ],
        )],
    )]))
    .unwrap();
    // One DELETE fails outright (a 400, not retried): a delete error. One
    // request at a time, so it is the first tag's (a1), not the protected one's.
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::DeleteTag, Fault::status(400), 1)],
        ..Faults::default()
    });
    let config =
        json!({"schedule": "@hourly", "run_on_start": true, "projects": {"a": {"id": 1, "delete_older_than": "1d"}}});
    let mut daemon = Daemon::start(
        &fake,
        &config,
        &["--metrics-listen", "127.0.0.1:0", "--concurrency", "1"],
        &[],
    );
    daemon.wait_for_count("pass_finished", 1);
    let listening = daemon.first("metrics_listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    assert_eq!(http_get(&addr, "/healthz"), (200, "ok\n".to_owned()));
    let (status, text) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    let p = "gitlab_registry_cleaner_";
    assert_eq!(metric(&text, &format!("{p}tags_deleted_total{{project=\"a\"}}")), 1.0);
    assert_eq!(metric(&text, &format!("{p}delete_errors_total{{project=\"a\"}}")), 1.0);
    assert_eq!(
        metric(
            &text,
            &format!("{p}tags_kept_total{{project=\"a\",reason=\"protected\"}}")
        ),
        1.0,
        "REST learns it from the DELETE's 403 and a GET: kept, not an error"
    );
    assert_eq!(
        metric(
            &text,
            &format!("{p}tags_kept_total{{project=\"a\",reason=\"too_new\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(&text, &format!("{p}tags_kept_total{{project=\"a\",reason=\"latest\"}}")),
        1.0
    );
    assert_eq!(metric(&text, &format!("{p}passes_total{{result=\"failed\"}}")), 1.0);
    assert_eq!(metric(&text, &format!("{p}last_pass_success")), 0.0);
    assert_eq!(metric(&text, &format!("{p}pass_duration_seconds_count")), 1.0);
    assert!(metric(&text, &format!("{p}bytes_freed_total{{project=\"a\"}}")) > 0.0);
    assert!(metric(&text, &format!("{p}last_pass_timestamp_seconds")) > 1.7e9);
    let stats = fake.stats();
    assert_eq!(
        metric(
            &text,
            &format!("{p}api_requests_total{{method=\"DELETE\",status=\"200\"}}")
        ),
        1.0,
        "{:?}",
        stats.by_status
    );
    assert_eq!(
        metric(
            &text,
            &format!("{p}api_requests_total{{method=\"DELETE\",status=\"403\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{p}api_requests_total{{method=\"DELETE\",status=\"400\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{p}api_requests_total{{method=\"GET\",status=\"200\"}}")
        ),
        (stats.total - 3) as f64
    );
    assert_eq!(http_get(&addr, "/nope").0, 404);
    daemon.signal("TERM");
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the server stops with the daemon"
    );
}

#[test]
fn start_only_settings_changed_in_dotenv_are_named_on_reload() {
    let fake = two_projects();
    let daemon = Daemon::start(
        &fake,
        &json!({"schedule": "@weekly", "projects": {"a": {"id": 1, "delete_older_than": "1d"}}}),
        &[],
        &[],
    );
    daemon.wait_for_count("daemon_started", 1);
    daemon
        .work
        .write(".env", "LOG_FILE=/var/log/elsewhere.log\nLOG_FORMAT=text\n");
    daemon.signal("HUP");
    daemon.wait_until("a warning naming the settings", Duration::from_secs(20), |d| {
        d.events()
            .iter()
            .any(|e| e["operation"] == "restart_required" && e["settings"] == "LOG_FILE,LOG_FORMAT")
    });
    daemon.wait_until("the reload itself", Duration::from_secs(20), |d| {
        d.events()
            .iter()
            .any(|e| e["operation"] == "config_reloaded" && e.get("schedule_changed").is_some())
    });
}

/// Unix time now, in seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn last_success_timestamp_is_set_by_a_successful_pass_only() {
    let fake = two_projects();
    let mut daemon = Daemon::start(&fake, &a_every_second(), &["--metrics-listen", "127.0.0.1:0"], &[]);
    daemon.wait_for_count("pass_finished", 1);
    let addr = daemon.first("metrics_listening")["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = "gitlab_registry_cleaner_";
    let scrape = || http_get(&addr, "/metrics").1;
    let text = scrape();
    assert_eq!(metric(&text, &format!("{p}last_pass_success")), 1.0, "{text}");
    let success = metric(&text, &format!("{p}last_success_timestamp_seconds"));
    assert!((unix_now() - success).abs() < 60.0, "{success} is not now");

    // A tag whose DELETE always fails: from now on every pass fails.
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::DeleteTag, Fault::status(400))],
        ..Faults::default()
    });
    fake.add_tag(10, old("doomed"));
    let failed = |n: usize| {
        move |d: &Daemon| {
            d.events()
                .iter()
                .filter(|e| e["operation"] == "pass_finished" && e["result"] == "failed")
                .count()
                >= n
        }
    };
    daemon.wait_until("a failed pass", Duration::from_secs(20), failed(1));
    let after_one = metric(&scrape(), &format!("{p}last_success_timestamp_seconds"));
    daemon.wait_until("another failed pass", Duration::from_secs(20), failed(2));
    let text = scrape();
    assert_eq!(metric(&text, &format!("{p}last_pass_success")), 0.0, "{text}");
    assert_eq!(
        metric(&text, &format!("{p}last_success_timestamp_seconds")),
        after_one,
        "a failed pass does not move it"
    );
    assert!(metric(&text, &format!("{p}last_pass_timestamp_seconds")) > after_one);
    daemon.signal("TERM");
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}
