//! Chaos: a real pass under each fault mix, seeded so a failure reproduces.
//! Whatever goes wrong, no tag outside the expected set is deleted, nothing
//! panics, the exit code says whether the job is complete, and a second pass
//! without faults completes it exactly.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

const REPOSITORIES: [u64; 4] = [10, 11, 20, 21];

fn data() -> FakeGitlab {
    let tags = |prefix: &str| {
        let mut tags: Vec<Tag> = (0..10)
            .map(|i| Tag::aged(format!("old-{prefix}{i}"), (10 + i) * DAY))
            .collect();
        tags.extend((0..3).map(|i| young(&format!("new-{prefix}{i}"))));
        tags.extend((0..2).map(|i| old(&format!("keep-{prefix}{i}"))));
        tags.push(Tag::aged("latest", 40 * DAY));
        tags.push(Tag::new(format!("undated-{prefix}"), None));
        tags
    };
    FakeGitlab::start(seed(vec![
        project(1, "chaos/one", vec![repo(10, "a", tags("a")), repo(11, "b", tags("b"))]),
        project(2, "chaos/two", vec![repo(20, "c", tags("c")), repo(21, "d", tags("d"))]),
    ]))
    .unwrap()
}

fn config() -> serde_json::Value {
    json!({"projects": {
        "one": {"id": 1, "delete_older_than": "2d", "name_regex_keep": "keep-.*"},
        "two": {"id": "chaos/two", "delete_older_than": {"days": 2}, "name_regex_keep": "keep-.*"}
    }})
}

fn remaining(fake: &FakeGitlab) -> BTreeSet<String> {
    REPOSITORIES
        .iter()
        .flat_map(|id| fake.tag_names(*id).into_iter().map(move |t| format!("{id}:{t}")))
        .collect()
}

fn is_expected(tag: &str) -> bool {
    tag.starts_with("old-")
}

struct Outcome {
    first_exit: i32,
    done_first: usize,
    expected: usize,
    wrong: usize,
}

fn chaos(name: &str, faults: Faults, extra: &[&str]) -> Outcome {
    let fake = data();
    let before = remaining(&fake);
    let expected: BTreeSet<String> = before
        .iter()
        .filter(|t| is_expected(t.split_once(':').unwrap().1))
        .cloned()
        .collect();
    let keep: BTreeSet<String> = before.difference(&expected).cloned().collect();
    fake.set_faults(faults);
    let first = once(&fake, &config(), extra);
    assert!(!first.stderr.contains("panicked"), "{name}: panic\n{}", first.all());
    assert!(
        first.code == 0 || first.code == 1,
        "{name}: exit {}\n{}",
        first.code,
        first.all()
    );
    let wrong: Vec<(u64, String)> = fake.deleted().into_iter().filter(|(_, t)| !is_expected(t)).collect();
    assert!(
        wrong.is_empty(),
        "{name}: deleted tags outside the expected set: {wrong:?}"
    );
    let after_first = remaining(&fake);
    let done_first = expected.iter().filter(|t| !after_first.contains(*t)).count();
    if first.code == 0 {
        assert_eq!(
            after_first,
            keep,
            "{name}: exit 0 but the job is not complete\n{}",
            first.all()
        );
    } else {
        let errors = first.finished()["errors"].as_u64().unwrap() + first.finished()["fuses_tripped"].as_u64().unwrap();
        assert!(errors > 0, "{name}: exit 1 without a counted failure\n{}", first.all());
    }

    fake.clear_faults();
    let second = once(&fake, &config(), extra);
    assert_eq!(second.code, 0, "{name}: clean rerun\n{}", second.all());
    assert_eq!(remaining(&fake), keep, "{name}: the rerun completes the job exactly");
    assert!(fake.deleted().iter().all(|(_, t)| is_expected(t)));
    Outcome {
        first_exit: first.code,
        done_first,
        expected: expected.len(),
        wrong: wrong.len(),
    }
}

fn mix(seed: u64, rules: Vec<FaultRule>) -> Faults {
    Faults {
        seed,
        rules,
        ..Faults::default()
    }
}

/// A fault mix: its name, its faults for a seed, extra command-line arguments.
type Mix = (&'static str, Box<dyn Fn(u64) -> Faults>, &'static [&'static str]);

#[test]
fn chaos_fault_mixes() {
    let sometimes = FaultRule::sometimes;
    let mixes: Vec<Mix> = vec![
        (
            "10% 5xx",
            Box::new(move |s| mix(s, vec![sometimes(Route::Any, Fault::status(500), 0.10)])),
            &[],
        ),
        (
            "25% 5xx (500/502/503/504)",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::status(500), 0.07),
                        sometimes(Route::Any, Fault::status(502), 0.07),
                        sometimes(Route::Any, Fault::status(503), 0.07),
                        sometimes(Route::Any, Fault::status(504), 0.07),
                    ],
                )
            }),
            &[],
        ),
        (
            "429 storm with Retry-After",
            Box::new(move |s| {
                mix(
                    s,
                    vec![sometimes(Route::Any, Fault::too_many_requests(Some("1")), 0.15)],
                )
            }),
            &[],
        ),
        (
            "429 storm without Retry-After",
            Box::new(move |s| mix(s, vec![sometimes(Route::Any, Fault::too_many_requests(None), 0.4)])),
            &[],
        ),
        (
            "dropped connections",
            Box::new(move |s| mix(s, vec![sometimes(Route::Any, Fault::Drop, 0.15)])),
            &[],
        ),
        (
            "HTML 502 from a proxy",
            Box::new(move |s| mix(s, vec![sometimes(Route::Any, Fault::html_502(), 0.2)])),
            &[],
        ),
        (
            "malformed or wrong-shape JSON in a 200",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::MalformedJson, 0.08),
                        sometimes(Route::Any, Fault::WrongShapeJson, 0.04),
                    ],
                )
            }),
            &[],
        ),
        (
            "502 after the delete",
            Box::new(move |s| mix(s, vec![sometimes(Route::DeleteTag, Fault::DeleteThen502, 0.5)])),
            &[],
        ),
        (
            "answers slower than --timeout",
            Box::new(move |s| {
                mix(
                    s,
                    vec![sometimes(Route::Any, Fault::Delay(Duration::from_millis(1500)), 0.08)],
                )
            }),
            &["--timeout", "1"],
        ),
        (
            "all of the above",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::status(500), 0.04),
                        sometimes(Route::Any, Fault::html_502(), 0.04),
                        sometimes(Route::Any, Fault::too_many_requests(None), 0.05),
                        sometimes(Route::Any, Fault::Drop, 0.04),
                        sometimes(Route::Any, Fault::MalformedJson, 0.03),
                        sometimes(Route::DeleteTag, Fault::DeleteThen502, 0.2),
                        sometimes(Route::Any, Fault::Delay(Duration::from_millis(1500)), 0.02),
                    ],
                )
            }),
            &["--timeout", "1"],
        ),
    ];
    print_table(&mixes, &[]);
}

/// Runs every mix on seeds 1–3 and prints a markdown row per mix.
fn print_table(mixes: &[Mix], api: &[&str]) {
    println!("| faults | seeds | passes | wrong deletions | first pass exit 0 | share done on the first pass |");
    println!("|---|---|---|---|---|---|");
    let seeds = [1u64, 2, 3];
    for (name, faults, extra) in mixes {
        let extra: Vec<&str> = api.iter().chain(extra.iter()).copied().collect();
        let (mut passes, mut wrong, mut clean, mut done, mut expected) = (0, 0, 0, 0, 0);
        for seed in seeds {
            let outcome = chaos(&format!("{name} (seed {seed})"), faults(seed), &extra);
            passes += 2;
            wrong += outcome.wrong;
            clean += usize::from(outcome.first_exit == 0);
            done += outcome.done_first;
            expected += outcome.expected;
        }
        println!(
            "| {name} | {} | {passes} | {wrong} | {clean}/{} | {:.1} % |",
            seeds.len(),
            seeds.len(),
            100.0 * done as f64 / expected as f64
        );
    }
}

#[test]
fn chaos_fault_mixes_through_graphql() {
    let sometimes = FaultRule::sometimes;
    let mixes: Vec<Mix> = vec![
        (
            "GraphQL: 5xx and 429s",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::status(502), 0.1),
                        sometimes(Route::Any, Fault::too_many_requests(None), 0.15),
                    ],
                )
            }),
            &[],
        ),
        (
            "GraphQL: dropped connections",
            Box::new(move |s| mix(s, vec![sometimes(Route::Any, Fault::Drop, 0.15)])),
            &[],
        ),
        (
            "GraphQL: malformed or wrong-shape JSON in a 200",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::MalformedJson, 0.1),
                        sometimes(Route::Any, Fault::WrongShapeJson, 0.05),
                    ],
                )
            }),
            &[],
        ),
        (
            "GraphQL: errors in the answer (timeouts, complexity)",
            Box::new(move |s| {
                mix(
                    s,
                    vec![sometimes(
                        Route::Any,
                        Fault::GraphqlError("Timeout on ContainerRepositoryDetails.tags".into()),
                        0.15,
                    )],
                )
            }),
            &[],
        ),
        (
            "GraphQL: 502 after the mutation ran",
            Box::new(move |s| mix(s, vec![sometimes(Route::GraphqlMutation, Fault::DeleteThen502, 0.5)])),
            &[],
        ),
        (
            "GraphQL: a timeout error after the mutation ran",
            Box::new(move |s| {
                mix(
                    s,
                    vec![sometimes(
                        Route::GraphqlMutation,
                        Fault::RunThenGraphqlError("Timeout on DestroyContainerRepositoryTagsPayload".into()),
                        0.5,
                    )],
                )
            }),
            &[],
        ),
        (
            "GraphQL: partial deletions",
            Box::new(move |s| mix(s, vec![sometimes(Route::GraphqlMutation, Fault::PartialDelete, 0.5)])),
            &[],
        ),
        (
            "GraphQL: all of the above",
            Box::new(move |s| {
                mix(
                    s,
                    vec![
                        sometimes(Route::Any, Fault::status(500), 0.04),
                        sometimes(Route::Any, Fault::too_many_requests(None), 0.05),
                        sometimes(Route::Any, Fault::Drop, 0.04),
                        sometimes(Route::Any, Fault::MalformedJson, 0.03),
                        sometimes(Route::Any, Fault::GraphqlError("Timeout".into()), 0.04),
                        sometimes(Route::GraphqlMutation, Fault::DeleteThen502, 0.2),
                        sometimes(Route::GraphqlMutation, Fault::PartialDelete, 0.2),
                        sometimes(
                            Route::GraphqlMutation,
                            Fault::RunThenGraphqlError("Timeout".into()),
                            0.1,
                        ),
                        sometimes(Route::Any, Fault::Delay(Duration::from_millis(1500)), 0.02),
                    ],
                )
            }),
            &["--timeout", "1"],
        ),
    ];
    print_table(&mixes, &["--api", "graphql"]);
}

#[test]
fn sigkill_mid_pass_then_rerun_deletes_exactly_the_expected_set() {
    let fake = data();
    let before = remaining(&fake);
    let keep: BTreeSet<String> = before
        .iter()
        .filter(|t| !is_expected(t.split_once(':').unwrap().1))
        .cloned()
        .collect();
    fake.set_faults(Faults {
        latency: Duration::from_millis(60),
        ..Faults::default()
    });
    let work = Workdir::new();
    let path = work.config(&config());
    let mut child = bin(work.path())
        .args(["-u", &fake.url(), "-t", TOKEN, "--concurrency", "3", "-c"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.stats().deletes() < 5 {
        assert!(std::time::Instant::now() < deadline, "no deletes started");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let after_kill = remaining(&fake);
    assert!(
        after_kill.len() < before.len() && after_kill.is_superset(&keep),
        "a partial pass, nothing wrong"
    );
    fake.clear_faults();
    let rerun = once(&fake, &config(), &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert_eq!(remaining(&fake), keep);
    assert!(fake.deleted().iter().all(|(_, t)| is_expected(t)));
}
