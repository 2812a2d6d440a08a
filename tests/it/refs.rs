//! `delete_when_ref_gone`: images of branches that are gone and of merge
//! requests merged or closed go after the grace, nothing else does, and
//! whatever GitLab cannot say for sure keeps its tags.

use fake_gitlab::{Branch, MergeRequest, MergeRequestState};
use serde_json::{Value, json};

use crate::support::*;

const TAG_REGEX: &str = r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}";

/// Project 1 `acme/shop` with branches `main` and `feature/login`, merge
/// requests 12 (merged) and 13 (open), and repository 10 `app` with
/// `tags`.
fn shop(tags: Vec<Tag>) -> Seed {
    Seed {
        branches: [(1, vec![Branch::default_branch("main"), Branch::new("feature/login")])].into(),
        merge_requests: [(
            1,
            vec![
                MergeRequest::new(12, MergeRequestState::Merged),
                MergeRequest::new(13, MergeRequestState::Opened),
            ],
        )]
        .into(),
        ..seed(vec![project(1, "acme/shop", vec![repo(10, "app", tags)])])
    }
}

/// The issue's tags, two days old, and the same kinds one hour old.
fn issue_tags() -> Vec<Tag> {
    let mut tags: Vec<Tag> = [
        "main-3f2a9c1d",
        "feature-login-8b41e7a0",
        "feature-gone-c09d5e62",
        "mr-12-5a7f3b94",
        "mr-13-e1c28d07",
    ]
    .into_iter()
    .map(|name| tag_aged(name, 2 * DAY))
    .collect();
    tags.extend(["feature-gone-0000beef", "mr-12-0000beef"].map(|name| tag_aged(name, HOUR)));
    tags.push(tag_aged("latest", 2 * DAY));
    tags
}

fn config() -> Value {
    json!({"shop": {"id": 1, "delete_older_than": "30d",
        "delete_when_ref_gone": {"tag_regex": TAG_REGEX, "grace": "1d"}}})
}

/// The `ref_gone` deletions of a run: tag name, `ref`, `mr`.
fn ref_gone(r: &Run, operation: &str) -> Vec<(String, Option<String>, Option<u64>)> {
    let mut gone: Vec<_> = r
        .ops(operation)
        .iter()
        .filter(|e| e["reason"] == "ref_gone")
        .map(|e| {
            (
                e["tag_name"].as_str().unwrap().to_owned(),
                e["ref"].as_str().map(str::to_owned),
                e["mr"].as_u64(),
            )
        })
        .collect();
    gone.sort();
    gone
}

fn kept_for(r: &Run, reason: &str) -> Vec<String> {
    let mut names: Vec<String> = r
        .ops("kept")
        .iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| e["tag_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_images_of_gone_branches_and_finished_merge_requests_go_after_the_grace() {
    for api in ["rest", "graphql"] {
        let fake = FakeGitlab::start(shop(issue_tags())).unwrap();
        let r = once(&fake, &config(), &["--api", api]);
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(
            ref_gone(&r, "deleted"),
            [
                (
                    "feature-gone-c09d5e62".to_owned(),
                    Some("feature-gone".to_owned()),
                    None
                ),
                ("mr-12-5a7f3b94".to_owned(), None, Some(12)),
            ],
            "{api}: {}",
            r.all()
        );
        assert_eq!(r.tags("deleted").len(), 2, "{api}: nothing else goes");
        assert_eq!(
            fake.tag_names(10),
            sorted(&[
                "feature-gone-0000beef",
                "feature-login-8b41e7a0",
                "latest",
                "main-3f2a9c1d",
                "mr-12-0000beef",
                "mr-13-e1c28d07",
            ])
        );
        // Within the grace, or of a branch or merge request still there: too new.
        assert_eq!(
            kept_for(&r, "too_new"),
            sorted(&[
                "feature-gone-0000beef",
                "feature-login-8b41e7a0",
                "main-3f2a9c1d",
                "mr-12-0000beef",
                "mr-13-e1c28d07",
            ]),
            "{api}"
        );
        // One keyset page of branches and one of git tags, each between
        // two reads of GitLab's count; one page of merge requests (12 and
        // 13 at once).
        let stats = fake.stats();
        assert_eq!(stats.count(Route::Branches), 3, "{api}");
        assert_eq!(stats.count(Route::GitTags), 3, "{api}");
        assert_eq!(stats.count(Route::MergeRequests), 1, "{api}");
        let asked = stats
            .requests
            .iter()
            .find(|request| request.route == Route::MergeRequests)
            .unwrap();
        let iids: Vec<&str> = asked
            .path_and_query
            .split(['?', '&'])
            .filter_map(|pair| pair.strip_prefix("iids%5B%5D="))
            .collect();
        assert_eq!(iids, ["12", "13"], "{api}");
    }
}

#[test]
fn nobody_asks_gitlab_when_no_tag_waits_for_its_branch() {
    // Older than the age limit, within the grace, or matching no ref: the
    // age alone decides them all.
    let tags = vec![
        tag_aged("feature-gone-c09d5e62", 40 * DAY),
        tag_aged("mr-12-5a7f3b94", HOUR),
        tag_aged("v1.2.3", 2 * DAY),
    ];
    let fake = FakeGitlab::start(shop(tags)).unwrap();
    let r = once(&fake, &config(), &["--api", "graphql"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.tags("deleted"), ["acme/shop/app:feature-gone-c09d5e62"]);
    assert!(ref_gone(&r, "deleted").is_empty(), "deleted by age, not ref_gone");
    assert_eq!(fake.stats().count(Route::Branches), 0);
    assert_eq!(fake.stats().count(Route::GitTags), 0);
    assert_eq!(fake.stats().count(Route::MergeRequests), 0);
}

#[test]
fn unknown_is_kept_when_gitlab_cannot_say_which_branches_exist() {
    type BreakIt = fn(&FakeGitlab);
    let broken: [(&str, BreakIt); 5] = [
        ("a failing branch listing", |fake| {
            fake.set_faults(Faults {
                rules: vec![FaultRule::always(Route::Branches, Fault::status(500))],
                ..Faults::default()
            })
        }),
        ("a token without access to the repository", |fake| {
            fake.set_faults(Faults {
                rules: vec![FaultRule::always(Route::Branches, Fault::status(403))],
                ..Faults::default()
            })
        }),
        ("a listing cut short", |fake| fake.set_branch_listing_cut(1, Some(1))),
        ("a failing git tag listing", |fake| {
            fake.set_faults(Faults {
                rules: vec![FaultRule::always(Route::GitTags, Fault::status(503))],
                ..Faults::default()
            })
        }),
        ("a repository without any branch", |fake| {
            fake.delete_branch(1, "main");
            fake.delete_branch(1, "feature/login");
        }),
    ];
    for ((what, break_it), keyset) in broken.into_iter().flat_map(|b| [(b, true), (b, false)]) {
        let what = format!("{what} ({} pages)", if keyset { "keyset" } else { "offset" });
        let mut seed = shop(issue_tags());
        seed.branch_keyset_pagination = keyset;
        let mut tags = issue_tags();
        tags.push(tag_aged("feature-old-0123abcd", 40 * DAY));
        seed.projects[0].repositories[0].tags = tags;
        let fake = FakeGitlab::start(seed).unwrap();
        break_it(&fake);
        let r = once(&fake, &config(), &["--api", "rest"]);
        assert_eq!(r.code, 1, "{what}: {}", r.all());
        let failed = r.ops("ref_lookup_failed");
        assert_eq!(failed.len(), 1, "{what}: {}", r.all());
        let expected = if what.contains("git tag") {
            "git tags"
        } else {
            "branches"
        };
        assert_eq!(failed[0]["what"], expected, "{what}");
        assert_eq!(failed[0]["level"], "ERROR", "{what}");
        // No branch tag goes by this rule; the merge requests still tell.
        assert_eq!(
            ref_gone(&r, "deleted"),
            [("mr-12-5a7f3b94".to_owned(), None, Some(12))],
            "{what}: {}",
            r.all()
        );
        assert_eq!(
            kept_for(&r, "ref_unknown"),
            sorted(&["feature-gone-c09d5e62", "feature-login-8b41e7a0", "main-3f2a9c1d"]),
            "{what}"
        );
        // The age limit needs no branch: past it, a tag goes as always.
        assert!(
            !fake.tag_names(10).contains(&"feature-old-0123abcd".to_owned()),
            "{what}"
        );
        assert!(
            fake.tag_names(10).contains(&"feature-gone-c09d5e62".to_owned()),
            "{what}"
        );
        assert_eq!(r.finished()["result"], "failed", "{what}");
    }
}

#[test]
fn merge_requests_gitlab_cannot_read_or_does_not_know_keep_their_tags() {
    let fake = FakeGitlab::start(shop(issue_tags())).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::MergeRequests, Fault::status(502))],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &["--api", "rest"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("ref_lookup_failed")[0]["what"], "merge requests");
    assert_eq!(
        ref_gone(&r, "deleted"),
        [(
            "feature-gone-c09d5e62".to_owned(),
            Some("feature-gone".to_owned()),
            None
        )]
    );
    assert_eq!(
        kept_for(&r, "ref_unknown"),
        sorted(&["mr-12-5a7f3b94", "mr-13-e1c28d07"])
    );

    // A merge request GitLab does not list (deleted, or another project's):
    // kept, with a warning, and no error.
    let fake = FakeGitlab::start(shop(vec![tag_aged("mr-99-0123abcd", 2 * DAY)])).unwrap();
    let r = once(&fake, &config(), &["--api", "rest"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(kept_for(&r, "ref_unknown"), ["mr-99-0123abcd"]);
    let warned = r.ops("merge_request_not_found");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["level"], "WARN");
}

#[test]
fn a_group_entry_judges_each_tag_against_its_own_projects_branches() {
    let tags = || {
        vec![
            tag_aged("feature-a-0123abcd", 2 * DAY),
            tag_aged("feature-b-0123abcd", 2 * DAY),
            tag_aged("mr-1-0123abcd", 2 * DAY),
        ]
    };
    let seed = Seed {
        groups: vec![Group {
            id: 50,
            path: "acme".into(),
        }],
        branches: [
            (1, vec![Branch::default_branch("main"), Branch::new("feature/a")]),
            (2, vec![Branch::default_branch("main"), Branch::new("Feature/B")]),
        ]
        .into(),
        merge_requests: [
            (1, vec![MergeRequest::new(1, MergeRequestState::Closed)]),
            (2, vec![MergeRequest::new(1, MergeRequestState::Locked)]),
        ]
        .into(),
        ..seed(vec![
            project(1, "acme/one", vec![repo(10, "app", tags())]),
            project(2, "acme/two", vec![repo(20, "app", tags()), repo(21, "worker", tags())]),
        ])
    };
    for api in ["rest", "graphql"] {
        let fake = FakeGitlab::start(seed.clone()).unwrap();
        let config = json!({"groups": {"acme": {"id": "acme", "delete_older_than": "30d",
            "delete_when_ref_gone": {"tag_regex": TAG_REGEX, "grace": "1d"}}}, "projects": {}});
        let r = once(&fake, &config, &["--api", api, "--concurrency", "1"]);
        assert_eq!(r.code, 0, "{api}: {}", r.all());
        assert_eq!(
            fake.tag_names(10),
            ["feature-a-0123abcd"],
            "{api}: project 1 has feature/a; its MR 1 is closed"
        );
        for repository in [20, 21] {
            assert_eq!(
                fake.tag_names(repository),
                sorted(&["feature-b-0123abcd", "mr-1-0123abcd"]),
                "{api}: project 2 has Feature/B; its MR 1 is being merged"
            );
        }
        // Each project's branches once (a page and the counts), though
        // project 2 has two repositories — where the tags' dates are push
        // dates (GraphQL's publishedAt); else read again for the second
        // repository, listed after the first reading.
        let readings = if api == "graphql" { 2 } else { 3 };
        assert_eq!(fake.stats().count(Route::Branches), 3 * readings, "{api}");
        assert_eq!(fake.stats().count(Route::MergeRequests), 2, "{api}");
    }
}

#[test]
fn a_rule_carries_it_and_plan_apply_and_the_summary_show_ref_gone() {
    let fake = FakeGitlab::start(shop(issue_tags())).unwrap();
    let work = Workdir::new();
    let config = work.config(&json!({"projects": {"shop": {"id": 1, "rules": [
        {"name": "releases", "name_regex_delete": r"v\d+.*", "delete_older_than": "90d"},
        {"name": "ci", "delete_older_than": "30d",
         "delete_when_ref_gone": {"tag_regex": TAG_REGEX, "grace": "1d"}}]}}}));
    let cmd = |args: &[&str]| {
        run(bin(work.path())
            .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
            .arg(&config)
            .args(["--retry-base-ms", "5", "--log-level", "debug", "--api", "graphql"])
            .args(args))
    };
    let plan = cmd(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert_eq!(ref_gone(&plan, "dry_run").len(), 2, "{}", plan.all());
    assert!(plan.ops("dry_run").iter().all(|e| e["rule"] == "ci"));
    assert!(
        plan.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("ref_gone") && l.split_whitespace().nth(1) == Some("2")),
        "the summary has a ref_gone line: {}",
        plan.stderr
    );
    let document: Value = serde_json::from_slice(&std::fs::read(work.path().join("plan.json")).unwrap()).unwrap();
    let mut planned: Vec<Value> = document["entries"][0]["repositories"][0]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["name"], t["reason"], t["ref"], t["mr"], t["rule"]]))
        .collect();
    planned.sort_by_key(|t| t[0].as_str().unwrap().to_owned());
    assert_eq!(
        planned,
        [
            json!(["feature-gone-c09d5e62", "ref_gone", "feature-gone", null, "ci"]),
            json!(["mr-12-5a7f3b94", "ref_gone", null, 12, "ci"]),
        ]
    );
    assert_eq!(fake.deleted().len(), 0, "plan deletes nothing");

    let apply = cmd(&["apply", "plan.json", "--summary"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert_eq!(
        ref_gone(&apply, "deleted"),
        [
            (
                "feature-gone-c09d5e62".to_owned(),
                Some("feature-gone".to_owned()),
                None
            ),
            ("mr-12-5a7f3b94".to_owned(), None, Some(12)),
        ]
    );
    assert!(apply.stderr.contains("ref_gone"), "{}", apply.stderr);
    assert_eq!(fake.deleted().len(), 2);
}

#[test]
fn merge_requests_are_asked_a_page_of_iids_at_a_time_and_once_a_pass() {
    // 250 merge requests, each with an image in two repositories.
    let tags = || {
        (1..=250)
            .map(|iid| tag_aged(&format!("mr-{iid}-0123abcd"), 2 * DAY))
            .collect::<Vec<_>>()
    };
    let merge_requests = (1..=250)
        .map(|iid| {
            let state = if iid % 2 == 0 {
                MergeRequestState::Merged
            } else {
                MergeRequestState::Opened
            };
            MergeRequest::new(iid, state)
        })
        .collect();
    let seed = Seed {
        merge_requests: [(1, merge_requests)].into(),
        ..seed(vec![project(
            1,
            "acme/shop",
            vec![repo(10, "app", tags()), repo(11, "worker", tags())],
        )])
    };
    // Page after page, and both repositories at once.
    for concurrency in ["1", "8"] {
        let fake = FakeGitlab::start(seed.clone()).unwrap();
        let r = once(&fake, &config(), &["--api", "graphql", "--concurrency", concurrency]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(ref_gone(&r, "deleted").len(), 250);
        assert_eq!(fake.tag_names(10).len(), 125);
        // 100 + 100 + 50 iids, each asked once for both repositories.
        assert_eq!(
            fake.stats().count(Route::MergeRequests),
            3,
            "--concurrency {concurrency}"
        );
        assert_eq!(fake.stats().count(Route::Branches), 0, "no tag names a branch");
    }
}

/// The CI conventions table of docs/config.md: each `tag_regex`, run
/// against tags made the way its row says CI makes them, deletes exactly
/// the images of the gone branch and of the merged merge request; and the
/// section's example config does the issue's example.
#[test]
fn every_ci_convention_of_the_docs_works_as_written() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
    let section = &docs[docs
        .find("### Tags of gone branches and merge requests")
        .expect("the section")..];
    let json_start = section.find("```json\n").unwrap() + "```json\n".len();
    let example: Value = serde_json::from_str(&section[json_start..][..section[json_start..].find("```").unwrap()])
        .expect("the example is JSON");
    let table = &section[section
        .find("| how CI tags the image |")
        .expect("the conventions table")..];
    let rows: Vec<(String, String)> = table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with("| "))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let ticked = |cell: &str| cell.split('`').nth(1).unwrap_or(cell).to_owned();
            (ticked(cells[0]), ticked(cells[1]).replace(r"\|", "|"))
        })
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    let made = |convention: &str, slug: &str, iid: &str| {
        convention
            .replace("$CI_COMMIT_REF_SLUG", slug)
            .replace("$CI_COMMIT_SHORT_SHA", "0123abcd")
            .replace("$CI_PIPELINE_IID", "42")
            .replace("$CI_MERGE_REQUEST_IID", iid)
    };
    for (convention, tag_regex) in rows {
        // "both of the first and fourth": each kind of tag.
        let conventions: Vec<String> = match convention.contains('$') {
            true => vec![convention.clone()],
            false => vec![
                "$CI_COMMIT_REF_SLUG-$CI_COMMIT_SHORT_SHA".to_owned(),
                "mr-$CI_MERGE_REQUEST_IID-$CI_COMMIT_SHORT_SHA".to_owned(),
            ],
        };
        let mut tags = Vec::new();
        let mut gone = Vec::new();
        for convention in &conventions {
            if convention.contains("REF_SLUG") {
                tags.push(made(convention, "feature-login", ""));
                gone.push(made(convention, "feature-gone", ""));
            } else {
                tags.push(made(convention, "", "13"));
                gone.push(made(convention, "", "12"));
            }
        }
        let all: Vec<Tag> = tags.iter().chain(&gone).map(|name| tag_aged(name, 2 * DAY)).collect();
        let fake = FakeGitlab::start(shop(all)).unwrap();
        let config = json!({"shop": {"id": 1, "delete_older_than": "30d",
            "delete_when_ref_gone": {"tag_regex": tag_regex, "grace": "1d"}}});
        let r = once(&fake, &config, &["--api", "graphql"]);
        assert_eq!(r.code, 0, "{convention}: {}", r.all());
        let mut deleted: Vec<String> = ref_gone(&r, "deleted").into_iter().map(|(name, ..)| name).collect();
        deleted.sort();
        gone.sort();
        assert_eq!(deleted, gone, "{convention} with {tag_regex}");
    }

    let fake = FakeGitlab::start(shop(issue_tags())).unwrap();
    let mut example = example;
    example["projects"]["shop"]["id"] = json!(1);
    let r = once(&fake, &example, &["--api", "graphql"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        ref_gone(&r, "deleted")
            .into_iter()
            .map(|(name, ..)| name)
            .collect::<Vec<_>>(),
        ["feature-gone-c09d5e62", "mr-12-5a7f3b94"]
    );
}

#[test]
fn check_online_says_whether_the_token_can_read_branches_and_merge_requests() {
    let fake = FakeGitlab::start(shop(issue_tags())).unwrap();
    let work = Workdir::new();
    let config = work.config(&config());
    let check = || {
        run(bin(work.path())
            .args(["check", "--online", "-u", &fake.url(), "-t", TOKEN, "-c"])
            .arg(&config))
    };
    let r = check();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("of a gone branch or merge request after 1 day"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("project 1: 2 branches readable"), "{}", r.all());
    assert!(r.stdout.contains("project 1: merge requests readable"), "{}", r.all());

    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Branches, Fault::status(403))],
        ..Faults::default()
    });
    let r = check();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("project 1: FAILED to read the branches") && r.stdout.contains("the token needs read_api"),
        "{}",
        r.all()
    );
    assert_eq!(fake.stats().deletes(), 0);
}

#[test]
fn images_of_tag_pipelines_name_a_git_tag_and_are_not_gone() {
    // A tag pipeline's $CI_COMMIT_REF_SLUG is its git tag's: `v1.2.3` → `v1-2-3`.
    let tags = vec![
        tag_aged("v1-2-3-0123abcd", 2 * DAY),
        tag_aged("v1-2-4-0123abcd", 2 * DAY),
    ];
    let mut seed = shop(tags);
    seed.git_tags = [(1, vec!["v1.2.3".to_owned()])].into();
    let fake = FakeGitlab::start(seed).unwrap();
    let r = once(&fake, &config(), &["--api", "graphql"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        ref_gone(&r, "deleted"),
        [("v1-2-4-0123abcd".to_owned(), Some("v1-2-4".to_owned()), None)],
        "v1.2.4 is neither a branch nor a git tag"
    );
    assert_eq!(kept_for(&r, "too_new"), ["v1-2-3-0123abcd"]);
}

#[test]
fn a_forks_merge_requests_do_not_judge_its_tags() {
    // Project 2 forks project 1; its pipelines for project 1's merge
    // requests tag images with project 1's iids, and its own MR 12 is merged.
    let tags = vec![
        tag_aged("mr-12-0123abcd", 2 * DAY),
        tag_aged("feature-gone-0123abcd", 2 * DAY),
    ];
    let seed = Seed {
        forks: [(2, 1)].into(),
        branches: [(2, vec![Branch::default_branch("main")])].into(),
        merge_requests: [(2, vec![MergeRequest::new(12, MergeRequestState::Merged)])].into(),
        ..seed(vec![
            project(1, "acme/shop", vec![]),
            project(2, "someone/shop", vec![repo(20, "app", tags)]),
        ])
    };
    let fake = FakeGitlab::start(seed).unwrap();
    let config = json!({"fork": {"id": 2, "delete_older_than": "30d",
        "delete_when_ref_gone": {"tag_regex": TAG_REGEX, "grace": "1d"}}});
    let r = once(&fake, &config, &["--api", "rest"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(kept_for(&r, "ref_unknown"), ["mr-12-0123abcd"]);
    assert_eq!(r.ops("merge_requests_of_a_fork").len(), 1, "{}", r.all());
    assert_eq!(fake.stats().count(Route::MergeRequests), 0);
    // Its branches are its own: a gone one still goes.
    assert_eq!(fake.tag_names(20), ["mr-12-0123abcd"]);
}

/// Runs `change` on the fake while the `nth` request of `route` is being
/// answered: that answer is held back 2 s, and `change` runs 300 ms after
/// the request arrived (GitLab has read its page by then). Join the handle
/// after the run.
fn while_answering(
    fake: &std::sync::Arc<FakeGitlab>,
    route: Route,
    nth: u32,
    change: impl FnOnce(&FakeGitlab) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(route, Fault::Delay(std::time::Duration::from_secs(2)), 1).after(nth - 1)],
        ..Faults::default()
    });
    let fake = std::sync::Arc::clone(fake);
    std::thread::spawn(move || {
        while fake.arrived(route) < u64::from(nth) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        change(&fake);
    })
}

/// 150 branches `b000`…`b149` paged by offset only; tags `b100-…` (its
/// branch is there) and `gone-…`.
fn shifted_seed() -> Seed {
    let names: Vec<String> = (0..150).map(|i| format!("b{i:03}")).collect();
    let mut branches: Vec<Branch> = names.iter().map(Branch::new).collect();
    branches[0] = Branch::default_branch("b000");
    let tags = vec![tag_aged("b100-0123abcd", 2 * DAY), tag_aged("gone-0123abcd", 2 * DAY)];
    Seed {
        branches: [(1, branches)].into(),
        branch_keyset_pagination: false,
        ..seed(vec![project(1, "acme/shop", vec![repo(10, "app", tags)])])
    }
}

#[test]
fn offset_pages_shifted_by_a_branch_deleted_and_another_created_delete_nothing() {
    // While page 1's answer is on its way, `b010` is deleted and `zzz`
    // created. Page 2 then starts one branch later and skips `b100`, with
    // the count unchanged.
    let fake = std::sync::Arc::new(FakeGitlab::start(shifted_seed()).unwrap());
    // The count comes first, then page 1.
    let swapper = while_answering(&fake, Route::Branches, 2, |fake| {
        assert!(fake.delete_branch(1, "b010"));
        fake.add_branch(1, Branch::new("zzz"));
    });
    let r = once(&fake, &config(), &["--api", "rest"]);
    swapper.join().unwrap();
    // The two readings differ, so the list is read once more, whole and
    // unchanged this time: b100 is there, `gone` is not.
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(fake.tag_names(10).contains(&"b100-0123abcd".to_owned()), "{}", r.all());
    assert_eq!(kept_for(&r, "too_new"), ["b100-0123abcd"]);
    assert_eq!(ref_gone(&r, "deleted").len(), 1);
    // Count, 2 pages, 2 pages again; then the same once more.
    assert_eq!(fake.stats().count(Route::Branches), 10, "{}", r.all());

    // Changing on every reading, it is never trusted.
    let fake = std::sync::Arc::new(FakeGitlab::start(shifted_seed()).unwrap());
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::Branches,
            Fault::Delay(std::time::Duration::from_millis(300)),
        )],
        ..Faults::default()
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churner = {
        let (fake, stop) = (std::sync::Arc::clone(&fake), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                // One deleted, one created: the count stays, the pages shift.
                fake.delete_branch(1, &format!("b{:03}", i % 90 + 1));
                fake.add_branch(1, Branch::new(format!("z{i:04}")));
                std::thread::sleep(std::time::Duration::from_millis(100));
                fake.add_branch(1, Branch::new(format!("b{:03}", i % 90 + 1)));
                fake.delete_branch(1, &format!("z{i:04}"));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let r = once(&fake, &config(), &["--api", "rest"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    churner.join().unwrap();
    assert!(fake.tag_names(10).contains(&"b100-0123abcd".to_owned()), "{}", r.all());
    if r.code == 1 {
        assert_eq!(kept_for(&r, "ref_unknown"), ["b100-0123abcd", "gone-0123abcd"]);
        assert_eq!(r.ops("ref_lookup_failed").len(), 1, "{}", r.all());
    }
}

#[test]
fn a_branch_list_read_before_a_repository_was_listed_is_read_again() {
    // Through REST the dates are build dates. Repository app is decided
    // first and reads the branch list; then branch feature/new is created
    // and its pipeline retags a 10-day-old image into worker, listed later
    // in the same pass.
    let mut seed = shop(vec![tag_aged("feature-gone-0123abcd", 2 * DAY)]);
    seed.projects[0]
        .repositories
        .push(repo(11, "worker", vec![tag_aged("main-0123abcd", 2 * DAY)]));
    let fake = std::sync::Arc::new(FakeGitlab::start(seed).unwrap());
    // app's git tag list: count, page, then the count after it.
    let changer = while_answering(&fake, Route::GitTags, 3, |fake| {
        fake.add_branch(1, Branch::new("feature/new"));
        fake.add_tag(11, tag_aged("feature-new-0123abcd", 10 * DAY));
    });
    let r = once(&fake, &config(), &["--api", "rest", "--concurrency", "1"]);
    changer.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        ref_gone(&r, "deleted"),
        [(
            "feature-gone-0123abcd".to_owned(),
            Some("feature-gone".to_owned()),
            None
        )]
    );
    assert!(fake.tag_names(11).contains(&"feature-new-0123abcd".to_owned()));
    assert_eq!(fake.stats().count(Route::Branches), 6, "read once per repository");
}

#[test]
fn a_project_whose_branches_cannot_be_read_is_one_error_however_many_repositories() {
    let mut seed = shop(issue_tags());
    seed.projects[0].repositories.push(repo(11, "worker", issue_tags()));
    seed.projects[0].repositories.push(repo(12, "docs", issue_tags()));
    let fake = FakeGitlab::start(seed).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Branches, Fault::status(500))],
        ..Faults::default()
    });
    let r = once(&fake, &config(), &["--api", "rest"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.ops("ref_lookup_failed").len(), 1, "{}", r.all());
    assert_eq!(r.finished()["errors"], 1);
    assert_eq!(kept_for(&r, "ref_unknown").len(), 9);
}

#[test]
fn a_keyset_page_token_whose_branch_was_deleted_is_read_again() {
    // Keyset pages: `b099` ends page 1 and is deleted before page 2 is asked
    // for with it as its token; GitLab answers 422, and the list is read
    // once more.
    let mut seed = shifted_seed();
    seed.branch_keyset_pagination = true;
    let fake = std::sync::Arc::new(FakeGitlab::start(seed).unwrap());
    // The count comes first, then page 1.
    let deleter = while_answering(&fake, Route::Branches, 2, |fake| assert!(fake.delete_branch(1, "b099")));
    let r = once(&fake, &config(), &["--api", "rest"]);
    deleter.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.all());
    let statuses: Vec<u16> = fake
        .stats()
        .requests
        .iter()
        .filter(|request| request.route == Route::Branches)
        .map(|request| request.status)
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 422, 200, 200, 200, 200],
        "count, pages, the 422; then all again"
    );
    assert_eq!(kept_for(&r, "too_new"), ["b100-0123abcd"]);
    assert_eq!(ref_gone(&r, "deleted").len(), 1);
}
