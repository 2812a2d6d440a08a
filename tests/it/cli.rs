//! The command line as a user meets it: settings, `.env`, bad input, `check`, `demo`.

use serde_json::json;

use crate::support::*;

fn small_fake() -> FakeGitlab {
    FakeGitlab::start(seed(vec![project(
        1,
        "g/p",
        vec![repo(10, "img", vec![old("a"), young("b")])],
    )]))
    .unwrap()
}

fn valid_config() -> serde_json::Value {
    json!({"p": {"id": 1, "delete_older_than": "2d"}})
}

#[test]
fn configuration_only_from_dotenv() {
    let fake = small_fake();
    let work = Workdir::new();
    work.config(&valid_config());
    work.write(
        ".env",
        format!(
            "GITLAB_URL={}\nGITLAB_TOKEN={TOKEN}\nREPOSITORY_CONFIG_PATH=config.json\nDRY_RUN=true\n",
            fake.url()
        ),
    );
    let r = run(&mut bin(work.path()));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("dry_run"), vec!["g/p/img:a"]);
    assert_eq!(fake.stats().deletes(), 0);
}

#[test]
fn precedence_flag_over_env_over_dotenv() {
    let fake = small_fake();
    let work = Workdir::new();
    work.config(&valid_config());
    work.write(
        ".env",
        format!(
            "GITLAB_URL={}\nGITLAB_TOKEN=from-dotenv\nREPOSITORY_CONFIG_PATH=config.json\n",
            fake.url()
        ),
    );
    // env beats .env
    let r = run(bin(work.path()).env("GITLAB_TOKEN", TOKEN).arg("--dry-run"));
    assert_eq!(r.code, 0, "{}", r.all());
    // flag beats env
    let r = run(bin(work.path())
        .env("GITLAB_TOKEN", TOKEN)
        .args(["--dry-run", "--token", "from-flag"]));
    assert_eq!(r.code, 1, "{}", r.all());
    let seen: Vec<Option<String>> = fake.stats().requests.iter().map(|q| q.auth.clone()).collect();
    assert!(seen.contains(&Some(TOKEN.to_owned())) && seen.contains(&Some("from-flag".to_owned())));
    assert!(!seen.contains(&Some("from-dotenv".to_owned())));
}

#[test]
fn token_from_a_file() {
    let fake = small_fake();
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let token = work.write("token", format!("{TOKEN}\n"));
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "--dry-run", "-c"])
        .arg(&config)
        .env("GITLAB_TOKEN_FILE", &token));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(fake.stats().requests.iter().all(|q| q.auth.as_deref() == Some(TOKEN)));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let fake = small_fake();
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("invalid JSON", b"{\"p\": {\"id\": 1,", "not valid JSON"),
        (
            "unknown key",
            br#"{"p": {"id": 1, "delete_older_than": "2d", "colour": 1}}"#,
            "p.colour: unknown key",
        ),
        (
            "zero age",
            br#"{"p": {"id": 1, "delete_older_than": {"days": 0}}}"#,
            "p.delete_older_than: must be > 0",
        ),
        (
            "unknown unit",
            br#"{"p": {"id": 1, "delete_older_than": {"years": 1}}}"#,
            "unknown unit \"years\"",
        ),
        (
            "bad regex",
            br#"{"p": {"id": 1, "delete_older_than": "1d", "name_regex_delete": "(["}}"#,
            "p.name_regex_delete: invalid regex",
        ),
        ("empty file", b"", "the file is empty"),
        (
            "duplicate key",
            br#"{"p": {"id": 1, "delete_older_than": "30d", "delete_older_than": "1m"}}"#,
            "duplicate key \"delete_older_than\"",
        ),
        ("not UTF-8", b"{\"p\xff\": 1}", "not UTF-8"),
    ];
    for (what, content, expected) in cases {
        let work = Workdir::new();
        let path = work.write("config.json", content);
        let r = run(bin(work.path()).args(["-u", &fake.url(), "-t", TOKEN, "-c"]).arg(&path));
        assert_eq!(r.code, 2, "{what}: {}", r.all());
        assert!(
            r.stderr.contains(expected),
            "{what}: expected {expected:?} in\n{}",
            r.all()
        );
        assert!(r.stderr.contains("config.json"), "{what}: names the file\n{}", r.all());
    }
    assert_eq!(fake.stats().total, 0, "nothing reached GitLab");
}

#[test]
fn missing_settings_exit_2() {
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let r = run(bin(work.path()).args(["-u", "http://127.0.0.1:9", "-t", TOKEN, "-c", "nope.json"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("nope.json") && r.stderr.contains("No such file"),
        "{}",
        r.all()
    );

    let r = run(bin(work.path()).args(["-u", "http://127.0.0.1:9", "-c"]).arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no GitLab token"), "{}", r.all());

    let r = run(bin(work.path()).args(["-t", TOKEN, "-c"]).arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no GitLab URL"), "{}", r.all());

    let r = run(bin(work.path()).args(["-u", "http://127.0.0.1:9", "-t", TOKEN]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no config file"), "{}", r.all());

    let r = run(bin(work.path()).args(["-u", "ftp://x", "-t", TOKEN, "-c"]).arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("http:// or https://"), "{}", r.all());

    let r = run(bin(work.path())
        .args([
            "-u",
            "http://127.0.0.1:9",
            "-t",
            TOKEN,
            "--ssl-path",
            "missing.pem",
            "-c",
        ])
        .arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("missing.pem"), "{}", r.all());
}

#[test]
fn command_line_misuse_is_a_usage_error() {
    let work = Workdir::new();
    for args in [
        &["--bogus"][..],
        &["frobnicate"],
        &["--timeout", "never"],
        &["--concurrency", "0"],
        &["--log-format", "xml"],
    ] {
        let r = run(bin(work.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        assert!(
            r.stderr.contains("Usage") || r.stderr.contains("error"),
            "{args:?}: {}",
            r.all()
        );
    }
    let r = run(bin(work.path()).env("DRY_RUN", "maybe").args(["check"]));
    assert_eq!(r.code, 2, "{}", r.all());
    let r = run(bin(work.path()).args(["--log-level", "loud=="]));
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn help_lists_every_flag_and_hides_the_token() {
    let work = Workdir::new();
    let r = run(bin(work.path()).env("GITLAB_TOKEN", "glpat-in-env").arg("--help"));
    assert_eq!(r.code, 0);
    for flag in [
        "--token",
        "--token-file",
        "--url",
        "--config",
        "--dry-run",
        "--ssl-path",
        "--timeout",
        "--concurrency",
        "--log-format",
        "--log-level",
        "--insecure",
        "--api",
        "GITLAB_TOKEN",
        "REPOSITORY_CONFIG_PATH",
    ] {
        assert!(r.stdout.contains(flag), "{flag} missing from --help");
    }
    for command in ["once", "check", "demo"] {
        assert!(r.stdout.contains(command), "{command} missing from --help");
    }
    assert!(!r.stdout.contains("glpat-in-env"));
}

#[test]
fn check_offline_needs_no_url_or_token() {
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let r = run(bin(work.path()).args(["check", "-c"]).arg(&config));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("OK (legacy form, 1 entries, 1 enabled)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("p: project 1, delete older than 2 days"),
        "{}",
        r.all()
    );
    let bad = work.write(
        "bad.json",
        br#"{"p": {"id": 1, "delete_older_than": "2d", "keep_n": "x"}}"#,
    );
    let r = run(bin(work.path()).args(["check", "-c"]).arg(&bad));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("p.keep_n: must be an integer >= 0"), "{}", r.all());
}

#[test]
fn check_online_reports_each_entry() {
    let fake = small_fake();
    let work = Workdir::new();
    let config = work.config(&json!({"projects": {
        "good": {"id": "G/P", "delete_older_than": "2d"},
        "missing": {"id": 404, "delete_older_than": "2d"}
    }}));
    let r = run(bin(work.path())
        .args(["check", "--online", "-u", &fake.url(), "-t", TOKEN, "-c"])
        .arg(&config));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("reachable, version 17"), "{}", r.all());
    assert!(r.stdout.contains("good: OK, 1 container repositories"), "{}", r.all());
    assert!(
        r.stdout
            .contains("missing: FAILED: GET /api/v4/projects/404/registry/repositories: HTTP 404"),
        "{}",
        r.all()
    );
    assert_eq!(
        fake.stats().deletes() + fake.stats().count(Route::Tags),
        0,
        "check only lists repositories"
    );

    let r = run(bin(work.path())
        .args(["check", "--online", "-u", &fake.url(), "-t", "bad", "-c"])
        .arg(&config));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("HTTP 401") && r.stdout.contains("token is invalid"),
        "{}",
        r.all()
    );
}

#[test]
fn text_log_format() {
    let fake = small_fake();
    let r = once(&fake, &valid_config(), &["--log-format", "text"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.events().is_empty(), "no JSON in text mode");
    assert!(
        r.stdout.contains("deleted tag") && r.stdout.contains("tag_name"),
        "{}",
        r.all()
    );
}

#[cfg(feature = "demo")]
#[test]
fn demo_runs_without_token_or_network() {
    let work = Workdir::new();
    let r = run(bin_default_api(work.path()).arg("demo"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("pass_finished").len(), 2);
    let dry = &r.ops("pass_finished")[0];
    let real = &r.ops("pass_finished")[1];
    assert_eq!(dry["would_delete"], real["deleted"]);
    assert_eq!(r.tags("dry_run"), r.tags("deleted"));
    assert!(r.stdout.contains("What is left"), "{}", r.all());
}

#[cfg(not(feature = "demo"))]
#[test]
fn demo_without_the_feature_says_how_to_get_it() {
    let work = Workdir::new();
    let r = run(bin_default_api(work.path()).arg("demo"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("without the \"demo\" cargo feature") && r.stderr.contains("cargo install"),
        "{}",
        r.all()
    );
    assert!(r.stdout.is_empty(), "{}", r.all());
}

#[test]
fn a_token_file_in_the_environment_beats_a_token_in_dotenv() {
    let fake = small_fake();
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let token = work.write("token", format!("{TOKEN}\n"));
    work.write(".env", "GITLAB_TOKEN=stale-from-dotenv\n");
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "--dry-run", "-c"])
        .arg(&config)
        .env("GITLAB_TOKEN_FILE", &token));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(fake.stats().requests.iter().all(|q| q.auth.as_deref() == Some(TOKEN)));
}

#[test]
fn a_url_with_a_query_is_refused() {
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let r = run(bin(work.path())
        .args([
            "-u",
            "https://gitlab.example.com/?private_token=glpat-in-url",
            "-t",
            TOKEN,
            "-c",
        ])
        .arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("without a query"), "{}", r.all());
    assert!(!r.stderr.contains("glpat-in-url"), "{}", r.all());
}

#[test]
fn sigterm_stops_once_promptly_with_exit_1() {
    let fake = old_tags_repo(40, std::time::Duration::from_millis(500));
    let work = Workdir::new();
    let config = work.config(&valid_config());
    let child = bin(work.path())
        .args(["-u", &fake.url(), "-t", TOKEN, "--concurrency", "2", "-c"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while fake.stats().count(Route::TagDetail) < 2 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap(), signalled.elapsed());
    assert_eq!(r.code, 1, "an interrupted job is incomplete\n{}", r.all());
    assert!(r.elapsed < std::time::Duration::from_secs(3), "took {:?}", r.elapsed);
    assert_eq!(r.finished()["result"], "interrupted");
    assert_eq!(fake.stats().deletes(), 0);
}
