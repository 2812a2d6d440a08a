//! Several rules per entry (`rules`), `keep_n_by` and `order_by: "semver"`:
//! the cookbook of docs/config.md, run as written, through both APIs, every
//! row of each recipe's table checked; and `check`'s view of the rules.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// One row of a recipe's table: what the docs say happens to a tag.
#[derive(Debug)]
struct Row {
    tag: String,
    age: Duration,
    /// `None`: deleted; else the reason it is kept.
    kept: Option<String>,
    rule: Option<String>,
}

/// A recipe of docs/config.md: its config file and its table.
fn recipe(name: &str) -> (Value, Vec<Row>) {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
    let marker = format!("<!-- cookbook: {name} -->");
    let at = docs
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in docs/config.md"));
    let rest = &docs[at + marker.len()..];
    let json_start = rest.find("```json\n").expect("a json block after the marker") + "```json\n".len();
    let json_len = rest[json_start..].find("```").unwrap();
    let config: Value = serde_json::from_str(&rest[json_start..json_start + json_len])
        .unwrap_or_else(|err| panic!("recipe {name}: {err}"));
    let table = &rest[json_start + json_len..];
    let rows = table
        .lines()
        .skip_while(|line| !line.starts_with("| `"))
        .take_while(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let ticked = |text: &str| text.split('`').nth(1).map(str::to_owned);
            let (n, unit) = cells[1].strip_suffix(" ago").unwrap().split_once(' ').unwrap();
            let n: u64 = n.parse().unwrap();
            let age = match unit {
                "days" => DAY * n as u32,
                "hours" => HOUR * n as u32,
                other => panic!("unit {other}"),
            };
            let outcome = cells[2];
            let rule = outcome
                .split_once("rule `")
                .map(|(_, r)| r.trim_end_matches(['`', ')']).to_owned());
            let kept = if outcome.starts_with("deleted") {
                None
            } else {
                assert!(outcome.starts_with("kept (`"), "{outcome}");
                Some(ticked(outcome).unwrap())
            };
            Row {
                tag: ticked(cells[0]).unwrap(),
                age,
                kept,
                rule,
            }
        })
        .collect::<Vec<_>>();
    assert!(rows.len() >= 3, "recipe {name} has a table");
    (config, rows)
}

/// Runs a recipe once through `api` and checks every row of its table.
fn run_recipe(name: &str, api: &str) {
    let (config, rows) = recipe(name);
    let tags: Vec<Tag> = rows.iter().map(|row| tag_aged(&row.tag, row.age)).collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "platform/web", vec![repo(10, "app", tags)])])).unwrap();
    let r = once(&fake, &config, &["--api", api]);
    assert_eq!(r.code, 0, "{name} via {api}: {}", r.all());
    let deleted = r.ops("deleted");
    let kept = r.ops("kept");
    for row in &rows {
        let (events, operation) = match row.kept {
            None => (&deleted, "deleted"),
            Some(_) => (&kept, "kept"),
        };
        let event = events
            .iter()
            .find(|e| e["tag_name"] == row.tag.as_str())
            .unwrap_or_else(|| panic!("{name} via {api}: no {operation} event for {row:?}\n{}", r.all()));
        if let Some(reason) = &row.kept {
            assert_eq!(event["reason"], reason.as_str(), "{name} via {api}: {row:?}");
        }
        assert_eq!(
            event["rule"].as_str(),
            row.rule.as_deref(),
            "{name} via {api}: the rule of {row:?}"
        );
    }
    let mut left: Vec<&str> = rows
        .iter()
        .filter(|row| row.kept.is_some())
        .map(|row| row.tag.as_str())
        .collect();
    left.sort();
    assert_eq!(fake.tag_names(10), left, "{name} via {api}: what is left");
}

#[test]
fn cookbook_releases_by_version() {
    run_recipe("releases", "rest");
    run_recipe("releases", "graphql");
}

#[test]
fn cookbook_branch_builds_per_stream() {
    run_recipe("branches", "rest");
    run_recipe("branches", "graphql");
}

#[test]
fn cookbook_scratch_images() {
    run_recipe("scratch", "rest");
    run_recipe("scratch", "graphql");
}

#[test]
fn cookbook_keep_everything_tagged_like_a_version() {
    run_recipe("versions-forever", "rest");
    run_recipe("versions-forever", "graphql");
}

/// The fuse counts the whole entry, every rule's deletions together.
#[test]
fn max_deletions_counts_every_rule_of_the_entry() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "platform/web",
        vec![repo(10, "app", vec![old("tmp-a"), old("build-1"), young("tmp-b")])],
    )]))
    .unwrap();
    let config = json!({"projects": {"web": {"id": "platform/web", "max_deletions": 1, "rules": [
        {"name": "scratch", "name_regex_delete": "tmp-.*", "delete_older_than": "1d"},
        {"name": "builds", "name_regex_delete": "build-.*", "delete_older_than": "1d"}
    ]}}});
    let r = once(&fake, &config, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(fake.stats().deletes(), 0);
    let fused: Vec<(String, String)> = r
        .ops("kept")
        .iter()
        .filter(|e| e["reason"] == "max_deletions")
        .map(|e| {
            (
                e["tag_name"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(fused.len(), 2, "{}", r.all());
    assert!(
        fused.contains(&("tmp-a".into(), "scratch".into())) && fused.contains(&("build-1".into(), "builds".into()))
    );
}

/// A rule's `repository_regex` decides which repositories it governs;
/// a repository no rule selects is not even listed.
#[test]
fn repository_regex_per_rule() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "platform/web",
        vec![
            repo(10, "app", vec![old("tmp-a"), old("build-1")]),
            repo(11, "ci-cache", vec![old("tmp-a"), old("build-1")]),
            repo(12, "docs", vec![old("tmp-a")]),
        ],
    )]))
    .unwrap();
    let config = json!({"projects": {"web": {"id": "platform/web", "rules": [
        {"name": "cache", "repository_regex": "platform/web/ci-cache", "delete_older_than": "1d"},
        {"name": "scratch", "repository_regex": "platform/web/(app|ci-cache)", "name_regex_delete": "tmp-.*", "delete_older_than": "1d"}
    ]}}});
    let r = once(&fake, &config, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.tags("deleted"),
        sorted(&[
            "platform/web/app:tmp-a",
            "platform/web/ci-cache:build-1",
            "platform/web/ci-cache:tmp-a"
        ])
    );
    assert_eq!(fake.tag_names(12), ["tmp-a"], "docs: no rule selects it");
    assert_eq!(fake.stats().count(Route::Tags), 2, "docs is not listed: {}", r.all());
}

#[test]
fn check_prints_the_rules_and_online_how_many_tags_each_governs() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "platform/web",
        vec![repo(
            10,
            "app",
            vec![old("v1.0.0"), old("v1.1.0"), old("tmp-a"), old("other")],
        )],
    )]))
    .unwrap();
    let work = Workdir::new();
    let config = work.config(&json!({"projects": {"web": {"id": "platform/web", "rules": [
        {"name": "releases", "name_regex_delete": "v\\d+\\.\\d+\\.\\d+", "order_by": "semver", "keep_n": 10, "delete_older_than": "180d"},
        {"name": "branches", "name_regex_delete": "[a-z0-9-]+-[0-9a-f]{8}",
         "keep_n_by": "(?<stream>[a-z0-9-]+)-[0-9a-f]{8}", "keep_n": 2, "delete_older_than": "14d"},
        {"name": "scratch", "name_regex_delete": "tmp-.*", "delete_older_than": "1d"}
    ]}}}));
    let r = run(bin(work.path()).args(["check", "-c"]).arg(&config));
    assert_eq!(r.code, 0, "{}", r.all());
    for line in [
        "web: project platform/web, 3 rules, first match governs a tag",
        "1. \"releases\": governs tags v\\d+\\.\\d+\\.\\d+, delete older than 180 days (age_from created), keep 10 highest versions",
        "2. \"branches\": governs tags [a-z0-9-]+-[0-9a-f]{8}, delete older than 14 days (age_from created), keep 2 newest of each stream (?<stream>[a-z0-9-]+)-[0-9a-f]{8}",
        "3. \"scratch\": governs tags tmp-.*, delete older than 1 day (age_from created)",
    ] {
        assert!(r.stdout.contains(line), "missing {line:?} in\n{}", r.all());
    }
    let r = run(bin(work.path())
        .args(["check", "--online", "-u", &fake.url(), "-t", TOKEN, "-c"])
        .arg(&config));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(
            "platform/web/app: 4 tags; governed by \"releases\" 2, \"branches\" 0, \"scratch\" 1; by no rule 1"
        ),
        "{}",
        r.all()
    );
    assert_eq!(fake.stats().deletes(), 0, "check deletes nothing");
}

#[test]
fn rule_mistakes_stop_the_binary_with_exit_2_and_the_json_path() {
    let work = Workdir::new();
    for (rules, path) in [
        (
            json!([{"name": "a", "delete_older_than": "1d", "name_regex_delete": "x.*"},
                {"name": "a", "delete_older_than": "1d"}]),
            "projects.web.rules.1.name",
        ),
        (
            json!([{"name": "a", "delete_older_than": "1d", "name_regex_delete": "x.*"},
                {"name": "b", "delete_older_than": "9d", "name_regex_delete": "x.*"}]),
            "projects.web.rules.1: can never govern",
        ),
        (
            json!([{"name": "a", "delete_older_than": "1d", "keep_n_by": "(.+)-\\d+"}]),
            "projects.web.rules.0.keep_n_by",
        ),
    ] {
        let config = work.config(&json!({"projects": {"web": {"id": 1, "rules": rules}}}));
        let r = run(bin(work.path()).args(["check", "-c"]).arg(&config));
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stderr.contains(path), "{path}: {}", r.all());
    }
    let config = work.config(
        &json!({"projects": {"web": {"id": 1, "keep_n": 3, "rules": [{"name": "a", "delete_older_than": "1d"}]}}}),
    );
    let r = run(bin(work.path()).args(["check", "-c"]).arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("projects.web.keep_n: cannot be set beside \"rules\""),
        "{}",
        r.all()
    );
}

/// An entry without `rules` logs no `rule` at all, as before.
#[test]
fn an_entry_without_rules_logs_no_rule() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "g/p",
        vec![repo(10, "img", vec![old("a"), young("b")])],
    )]))
    .unwrap();
    let r = once(&fake, &json!({"p": {"id": 1, "delete_older_than": "1d"}}), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let tag_events: Vec<Value> = r.events().into_iter().filter(|e| e.get("tag_name").is_some()).collect();
    assert_eq!(tag_events.len(), 2, "{}", r.all());
    assert!(tag_events.iter().all(|e| e.get("rule").is_none()), "{}", r.all());
}
