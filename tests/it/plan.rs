//! `plan`, `apply` and the summary table: apply deletes exactly what the
//! plan chose and is unchanged since; every bad plan is refused before a
//! request.

use serde_json::{Value, json};

use crate::support::*;

/// Project 1 `g/p`, repository 10 `g/p/img`: `a`, `b`, `c` expired, `new`
/// too young, `latest`.
fn fake() -> FakeGitlab {
    FakeGitlab::start(seed(vec![project(
        1,
        "g/p",
        vec![repo(
            10,
            "img",
            vec![
                old("a"),
                old("b"),
                old("c"),
                young("new"),
                Tag::aged("latest", 30 * DAY),
            ],
        )],
    )]))
    .unwrap()
}

fn config() -> Value {
    json!({"p": {"id": 1, "delete_older_than": "1d"}})
}

/// The binary in `work` against `fake`, on `api`.
fn cmd(fake: &FakeGitlab, work: &Workdir, api: &str, args: &[&str]) -> Run {
    let path = work.path().join("config.json");
    if !path.exists() {
        work.config(&config());
    }
    run(bin(work.path())
        .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--retry-base-ms", "5", "--log-level", "debug", "--api", api])
        .args(args))
}

fn read_plan(work: &Workdir) -> Value {
    serde_json::from_slice(&std::fs::read(work.path().join("plan.json")).unwrap()).unwrap()
}

fn planned_names(plan: &Value) -> Vec<String> {
    let mut names: Vec<String> = plan["entries"][0]["repositories"][0]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn plan_decides_like_a_dry_run_and_apply_deletes_exactly_the_plan() {
    for api in ["rest", "graphql"] {
        let fake = fake();
        let work = Workdir::new();
        let dry = cmd(&fake, &work, api, &["once", "--dry-run"]);
        let plan = cmd(&fake, &work, api, &["plan"]);
        assert_eq!(plan.code, 0, "{api}: {}", plan.all());
        assert_eq!(fake.stats().deletes(), 0, "{api}: plan deletes nothing");
        // The same decisions and the same events as `once --dry-run`.
        assert_eq!(plan.tags("dry_run"), dry.tags("dry_run"), "{api}");
        assert_eq!(plan.tags("kept"), dry.tags("kept"), "{api}");
        let document = read_plan(&work);
        assert_eq!(document["format"], "gitlab-registry-cleaner/plan");
        assert_eq!(document["version"], 1);
        assert_eq!(document["gitlab_url"], fake.url().trim_end_matches('/'));
        assert_eq!(planned_names(&document), ["a", "b", "c"], "{api}");
        let repository = &document["entries"][0]["repositories"][0];
        assert_eq!(repository["id"], 10);
        assert_eq!(repository["project_id"], 1);
        assert_eq!(repository["path"], "g/p/img");
        assert_eq!(repository["kept"], json!({"latest": 1, "too_new": 1}), "{api}");
        for tag in repository["delete"].as_array().unwrap() {
            let name = tag["name"].as_str().unwrap();
            assert_eq!(tag["digest"].as_str(), fake.tag_digest(10, name).as_deref());
            assert!(tag["date"].is_string() && tag["size"].is_u64(), "{tag}");
        }
        assert_eq!(
            document["totals"],
            json!({"repositories": 1, "tags_seen": 5, "delete": 3, "kept": 2,
                   "bytes": repository["delete"].as_array().unwrap().iter().map(|t| t["size"].as_u64().unwrap()).sum::<u64>()})
        );
        // Digests join the log to the plan.
        for event in plan.ops("dry_run") {
            let name = event["tag_name"].as_str().unwrap();
            assert_eq!(
                event["digest"].as_str(),
                fake.tag_digest(10, name).as_deref(),
                "{event}"
            );
        }

        // A tag that expires after the plan is not the plan's to delete.
        fake.add_tag(10, old("d"));
        let apply = cmd(&fake, &work, api, &["apply", "plan.json"]);
        assert_eq!(apply.code, 0, "{api}: {}", apply.all());
        assert_eq!(
            apply.tags("deleted"),
            sorted(&["g/p/img:a", "g/p/img:b", "g/p/img:c"]),
            "{api}"
        );
        assert_eq!(fake.tag_names(10), ["d", "latest", "new"], "{api}");
        assert_eq!(apply.finished()["deleted"], 3);
        for event in apply.ops("deleted") {
            assert_eq!(event["already_gone"], false);
            assert!(event["digest"].as_str().unwrap().starts_with("sha256:"), "{event}");
            assert_eq!(event["project"], "p");
        }
        // No policy in apply: nothing about `d`, `new` or `latest`.
        assert!(apply.ops("kept").is_empty(), "{api}: {}", apply.all());
        assert!(!apply.stdout.contains("to delete"), "the table is never on stdout");
    }
}

#[test]
fn apply_keeps_a_re_pushed_tag_and_counts_a_vanished_one_as_already_gone() {
    for api in ["rest", "graphql"] {
        let fake = fake();
        let work = Workdir::new();
        assert_eq!(cmd(&fake, &work, api, &["plan"]).code, 0);
        fake.push_tag(10, "a", &format!("sha256:{}", "e".repeat(64)));
        assert!(fake.remove_tag(10, "b"));
        let apply = cmd(&fake, &work, api, &["apply", "plan.json"]);
        assert_eq!(apply.code, 0, "{api}: {}", apply.all());
        assert_eq!(fake.tag_names(10), ["a", "latest", "new"], "{api}");
        let kept = apply.ops("kept");
        assert_eq!(kept.len(), 1, "{api}: {kept:?}");
        assert_eq!(kept[0]["reason"], "changed_since_plan");
        assert_eq!(kept[0]["tag_name"], "a");
        assert_eq!(kept[0]["digest"], format!("sha256:{}", "e".repeat(64)));
        let deleted = apply.ops("deleted");
        let gone: Vec<&Value> = deleted.iter().filter(|e| e["already_gone"] == true).collect();
        assert_eq!(gone.len(), 1, "{api}: {deleted:?}");
        assert_eq!(gone[0]["tag_name"], "b");
        assert_eq!(apply.tags("deleted"), sorted(&["g/p/img:b", "g/p/img:c"]));
        // Only `c` needed a request.
        assert_eq!(fake.deleted(), [(10, "c".to_owned())], "{api}");
    }
}

#[test]
fn apply_dry_run_sends_no_delete() {
    let fake = fake();
    let work = Workdir::new();
    assert_eq!(cmd(&fake, &work, "rest", &["plan"]).code, 0);
    let apply = cmd(&fake, &work, "rest", &["apply", "plan.json", "--dry-run"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert_eq!(apply.tags("dry_run"), sorted(&["g/p/img:a", "g/p/img:b", "g/p/img:c"]));
    assert_eq!(fake.stats().deletes(), 0);
    assert_eq!(fake.tag_names(10).len(), 5);
}

#[test]
fn apply_of_an_incomplete_listing_deletes_nothing() {
    let fake = fake();
    let work = Workdir::new();
    assert_eq!(cmd(&fake, &work, "rest", &["plan"]).code, 0);
    // The tag list now fails for good: apply cannot show any tag unchanged.
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Tags, Fault::status(500))],
        ..Faults::default()
    });
    let apply = cmd(&fake, &work, "rest", &["apply", "plan.json"]);
    assert_eq!(apply.code, 1, "{}", apply.all());
    assert_eq!(fake.stats().deletes(), 0);
    assert_eq!(fake.tag_names(10).len(), 5);
}

/// Writes `plan` (a JSON value, or raw text) and applies it: every refusal
/// is exit 2, a message naming the problem, and no request to GitLab.
fn refused(fake: &FakeGitlab, plan: &str) -> Run {
    let work = Workdir::new();
    work.write("plan.json", plan);
    fake.reset_stats();
    let r = cmd(fake, &work, "rest", &["apply", "plan.json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(fake.stats().count(Route::Tags), 0, "refused before any request");
    assert_eq!(fake.stats().deletes(), 0);
    r
}

#[test]
fn apply_refuses_a_plan_it_cannot_trust() {
    let fake = fake();
    let work = Workdir::new();
    assert_eq!(cmd(&fake, &work, "rest", &["plan"]).code, 0);
    let good = std::fs::read_to_string(work.path().join("plan.json")).unwrap();
    let document = read_plan(&work);
    let with = |pointer: &str, value: Value| {
        let mut changed = document.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        changed.to_string()
    };

    let r = refused(&fake, &good[..good.len() / 2]);
    assert!(r.stderr.contains("not valid JSON (truncated?)"), "{}", r.stderr);
    let r = refused(&fake, &with("/entries/0/repositories/0/delete/0/size", json!("big")));
    assert!(
        r.stderr.contains("entries[0].repositories[0].delete[0].size"),
        "names the JSON path: {}",
        r.stderr
    );
    let r = refused(
        &fake,
        &with("/entries/0/repositories/0/delete/0/date", json!("yesterday")),
    );
    assert!(r.stderr.contains("delete[0].date"), "{}", r.stderr);
    let r = refused(&fake, &with("/format", json!("something/else")));
    assert!(r.stderr.contains("format is \"something/else\""), "{}", r.stderr);
    let r = refused(&fake, &with("/version", json!(2)));
    assert!(r.stderr.contains("version is 2"), "{}", r.stderr);
    let r = refused(&fake, &with("/gitlab_url", json!("https://gitlab.other.example")));
    assert!(
        r.stderr.contains("made for https://gitlab.other.example"),
        "{}",
        r.stderr
    );
    let r = refused(&fake, &with("/created_at", json!("2020-01-01T00:00:00Z")));
    assert!(r.stderr.contains("--max-plan-age"), "{}", r.stderr);
    let r = refused(&fake, "");
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);

    // A trailing slash or an upper-case host is the same GitLab.
    let same = with(
        "/gitlab_url",
        json!(format!("{}/", fake.url().to_uppercase().replace("HTTP://", "http://"))),
    );
    work.write("plan.json", same);
    let r = cmd(&fake, &work, "rest", &["apply", "plan.json", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // --max-plan-age decides what is too old.
    let hour_old = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    work.write("plan.json", with("/created_at", json!(hour_old)));
    let r = cmd(
        &fake,
        &work,
        "rest",
        &["apply", "plan.json", "--dry-run", "--max-plan-age", "30m"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    let r = cmd(
        &fake,
        &work,
        "rest",
        &["apply", "plan.json", "--dry-run", "--max-plan-age", "2h"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn the_summary_totals_are_the_plan_totals_and_only_on_stderr() {
    let fake = FakeGitlab::start(seed(vec![project(
        1,
        "g/p",
        vec![
            repo(10, "img", vec![old("a"), old("b"), young("c")]),
            repo(11, "quiet", vec![young("x")]),
        ],
    )]))
    .unwrap();
    let work = Workdir::new();
    let plan = cmd(&fake, &work, "graphql", &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let totals = &read_plan(&work)["totals"];
    let table: Vec<&str> = plan.stderr.lines().collect();
    assert!(
        table[0].starts_with("entry") && table[0].contains("to delete"),
        "{}",
        plan.stderr
    );
    assert!(
        table[1].starts_with("p ") && table[1].contains("g/p/img"),
        "one row: {}",
        plan.stderr
    );
    assert!(!plan.stderr.contains("g/p/quiet"), "nothing to do: totals only");
    let total: Vec<&str> = table
        .iter()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(total[1..3], ["2", "repositories"]);
    assert_eq!(total[3], totals["tags_seen"].to_string());
    assert_eq!(total[4], totals["delete"].to_string());
    assert_eq!(total[5], totals["kept"].to_string());
    assert_eq!(totals["delete"], 2);
    assert!(
        plan.stdout.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "stdout stays JSON lines"
    );

    // `once` prints it with --summary (or SUMMARY), else not when stderr is no terminal.
    let quiet = cmd(&fake, &work, "rest", &["once", "--dry-run"]);
    assert!(!quiet.stderr.contains("repositories"), "{}", quiet.stderr);
    let told = cmd(&fake, &work, "rest", &["once", "--summary"]);
    assert_eq!(told.code, 0, "{}", told.all());
    assert!(
        told.stderr.lines().next().unwrap().contains("deleted"),
        "{}",
        told.stderr
    );
    assert!(told.stderr.contains("g/p/img"), "{}", told.stderr);
    assert!(!told.stdout.contains("g/p/img  "), "never on stdout");
}

#[test]
fn plan_to_stdout_is_its_last_line() {
    let fake = fake();
    let work = Workdir::new();
    let r = cmd(&fake, &work, "rest", &["plan", "-o", "-"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let last: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["format"], "gitlab-registry-cleaner/plan");
    assert_eq!(planned_names(&last), ["a", "b", "c"]);
    assert!(!work.path().join("plan.json").exists());
    // A directory that does not exist is refused before the pass.
    let r = cmd(&fake, &work, "rest", &["plan", "-o", "no/such/dir/plan.json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(fake.stats().count(Route::Tags), 1, "refused before a second listing");
    assert!(r.stderr.contains("no/such/dir/plan.json"), "{}", r.stderr);
}

#[test]
fn a_tripped_fuse_leaves_its_tags_out_of_the_plan() {
    let fake = fake();
    let work = Workdir::new();
    work.config(&json!({"p": {"id": 1, "delete_older_than": "1d", "max_deletions": 2}}));
    let plan = cmd(&fake, &work, "graphql", &["plan"]);
    assert_eq!(plan.code, 1, "a tripped fuse is a failure: {}", plan.all());
    let document = read_plan(&work);
    let repository = &document["entries"][0]["repositories"][0];
    assert_eq!(repository["delete"], json!([]));
    assert_eq!(
        repository["kept"],
        json!({"latest": 1, "max_deletions": 3, "too_new": 1})
    );
    assert_eq!(document["totals"]["delete"], 0);
    let apply = cmd(&fake, &work, "graphql", &["apply", "plan.json"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert_eq!(fake.stats().deletes(), 0);
    assert_eq!(fake.tag_names(10).len(), 5);
}

#[test]
fn the_rule_that_chose_a_tag_travels_through_plan_and_apply() {
    for api in ["rest", "graphql"] {
        let fake = fake();
        let work = Workdir::new();
        work.config(&json!({"p": {"id": 1, "rules": [
            {"name": "keep-a", "name_regex_delete": "a", "delete_older_than": "3650d"},
            {"name": "the-rest", "delete_older_than": "1d"},
        ]}}));
        let plan = cmd(&fake, &work, api, &["plan"]);
        assert_eq!(plan.code, 0, "{api}: {}", plan.all());
        let document = read_plan(&work);
        assert_eq!(planned_names(&document), ["b", "c"], "{api}");
        for tag in document["entries"][0]["repositories"][0]["delete"].as_array().unwrap() {
            assert_eq!(tag["rule"], "the-rest", "{api}: {tag}");
        }
        assert!(
            plan.ops("dry_run").iter().all(|e| e["rule"] == "the-rest"),
            "{api}: {}",
            plan.all()
        );
        // The summary table gives each rule's share under its repository.
        let share = plan
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with("rule the-rest"));
        assert_eq!(
            share.map(|l| l.split_whitespace().nth(2)),
            Some(Some("2")),
            "{api}: {}",
            plan.stderr
        );
        let apply = cmd(&fake, &work, api, &["apply", "plan.json"]);
        assert_eq!(apply.code, 0, "{api}: {}", apply.all());
        let deleted = apply.ops("deleted");
        assert_eq!(deleted.len(), 2, "{api}: {}", apply.all());
        assert!(
            deleted.iter().all(|e| e["rule"] == "the-rest"),
            "{api}: {}",
            apply.all()
        );
    }
}
