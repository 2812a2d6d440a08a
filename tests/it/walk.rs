//! One large repository listed by several walkers at once (GraphQL; see
//! docs/performance.md): exact whatever the split, about as many requests
//! as page after page, and the fake orders names like a database collation,
//! so walkers that compared names themselves would get it wrong.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const REPO: u64 = 10;

/// CI names whose byte order differs from the fake's collation: case and
/// punctuation variants of one family sort together there, apart by bytes.
fn ci_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let sha = format!("{:08x}", (i as u32).wrapping_mul(2_654_435_761));
            match i % 10 {
                0 => format!("Main-{sha}"),
                1 | 2 => format!("main_{sha}"),
                3..=5 => format!("main-{sha}"),
                6 => format!("MR-{}-{sha}", i % 97),
                7 => format!("mr-{}-{sha}", i % 89),
                8 => format!("v{}.{}.{}", i % 7, i % 13, i),
                _ => format!("feature-X-{sha}"),
            }
        })
        .collect()
}

/// Old tags are every other name; the rest are young.
fn seeded(names: &[String], metadata_database: bool) -> FakeGitlab {
    let tags = names
        .iter()
        .enumerate()
        .map(|(i, n)| if i % 2 == 0 { old(n) } else { young(n) })
        .collect();
    let mut seed = seed(vec![project(1, "g/p", vec![repo(REPO, "img", tags)])]);
    seed.metadata_database = metadata_database;
    FakeGitlab::start(seed).unwrap()
}

fn old_names(names: &[String]) -> BTreeSet<String> {
    names.iter().step_by(2).cloned().collect()
}

fn config() -> Value {
    json!({"p": {"id": "g/p", "delete_older_than": "1d"}})
}

/// `once --api graphql`, with the hidden walker limit when given.
fn pass(fake: &FakeGitlab, concurrency: &str, max_walkers: Option<&str>) -> Run {
    let work = Workdir::new();
    let path = work.config(&config());
    let mut cmd = bin(work.path());
    cmd.args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--retry-base-ms", "5", "--log-level", "debug", "--api", "graphql"])
        .args(["--concurrency", concurrency]);
    if let Some(n) = max_walkers {
        cmd.env("GITLAB_REGISTRY_CLEANER_MAX_WALKERS", n);
    }
    run(&mut cmd)
}

fn deleted(fake: &FakeGitlab) -> BTreeSet<String> {
    fake.deleted().into_iter().map(|(_, name)| name).collect()
}

/// The `after` and `sort` of every tag page the fake answered.
fn tag_pages(fake: &FakeGitlab) -> Vec<(Option<String>, String)> {
    fake.stats()
        .requests
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|body| body["operationName"] == "RepositoryTags")
        .map(|body| {
            let query = body["query"].as_str().unwrap_or_default();
            let sort = if query.contains("NAME_DESC") {
                "NAME_DESC"
            } else {
                "NAME_ASC"
            };
            (body["variables"]["after"].as_str().map(str::to_owned), sort.to_owned())
        })
        .collect()
}

fn graphql_requests(fake: &FakeGitlab) -> u64 {
    fake.stats().count(Route::Graphql)
}

#[test]
fn a_large_repository_is_walked_in_parallel_with_the_same_result_and_requests() {
    let names = ci_names(2_400);
    let expected = old_names(&names);
    let parallel = seeded(&names, true);
    let sequential = seeded(&names, true);
    for fake in [&parallel, &sequential] {
        fake.set_faults(Faults {
            latency: Duration::from_millis(2),
            ..Faults::default()
        });
    }

    let r = pass(&parallel, "16", None);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(deleted(&parallel), expected, "exactly the old tags");
    let s = pass(&sequential, "16", Some("1"));
    assert_eq!(s.code, 0, "{}", s.all());
    assert_eq!(deleted(&sequential), expected);

    // The pass's requests (listing, deletions): a walker costs about half
    // a page where it meets the next one.
    let (p, q) = (parallel.stats().total, sequential.stats().total);
    assert!(p * 100 <= q * 105 && p * 100 >= q * 95, "{p} requests against {q}");
    let (p, q) = (graphql_requests(&parallel), graphql_requests(&sequential));
    assert!(p * 100 <= q * 108, "{p} listing requests against {q}");

    // Several walkers really ran: one from the end, and start points that
    // are no tag's name (synthetic, between names GitLab returned).
    let pages = tag_pages(&parallel);
    let names: BTreeSet<&String> = names.iter().collect();
    let descending = pages.iter().filter(|(_, sort)| sort == "NAME_DESC").count();
    let starts: BTreeSet<&String> = pages
        .iter()
        .filter_map(|(after, _)| after.as_ref())
        .filter(|after| !names.contains(after))
        .collect();
    assert!(descending >= 2, "{descending} pages from the end");
    assert!(starts.len() >= 2, "start points {starts:?}");
    assert!(
        tag_pages(&sequential).iter().all(|(_, sort)| sort == "NAME_ASC"),
        "one page after another"
    );
}

/// Case and punctuation variants of one name sort together in GitLab's
/// collation and far apart by bytes: a walker that decided by comparing
/// names (`"main_0" > "main-8"` by bytes) would stop early and leave tags
/// unlisted; here every tag is listed once and deleted once.
#[test]
fn walkers_meet_by_names_they_have_seen_not_by_byte_order() {
    let names: Vec<String> = (0..700)
        .flat_map(|i| {
            let sha = format!("{:06x}", (i as u32).wrapping_mul(40_503) & 0xff_ffff);
            [format!("Main-{sha}"), format!("main_{sha}"), format!("main-{sha}")]
        })
        .collect();
    let tags = names.iter().map(|n| old(n)).collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(REPO, "img", tags)])])).unwrap();
    // Byte order and GitLab's order really differ here.
    let mut by_bytes = fake.tag_names(REPO);
    by_bytes.sort();
    assert_ne!(by_bytes, fake.tag_names(REPO));

    let r = pass(&fake, "16", None);
    assert_eq!(r.code, 0, "{}", r.all());
    let all: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(deleted(&fake), all);
    assert_eq!(fake.deleted().len(), all.len(), "each tag deleted once");
    let synthetic = tag_pages(&fake)
        .iter()
        .filter(|(after, _)| after.as_ref().is_some_and(|a| !all.contains(a)))
        .count();
    assert!(synthetic >= 2, "walkers started between names: {synthetic}");
}

/// Runs a pass on `fake` and, once its walk is under way, `meanwhile`.
fn pass_while(fake: &FakeGitlab, meanwhile: impl FnOnce()) -> Run {
    std::thread::scope(|scope| {
        let pass = scope.spawn(|| pass(fake, "16", None));
        while tag_pages(fake).len() < 12 {
            std::thread::sleep(Duration::from_millis(5));
        }
        meanwhile();
        pass.join().unwrap()
    })
}

fn slow(names: &[String]) -> FakeGitlab {
    let fake = seeded(names, true);
    fake.set_faults(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    });
    fake
}

/// Others push and delete tags while the walkers run: nothing is wrongly
/// deleted, pushed tags (young) stay. Deletions alone, or pushes alone,
/// never make the listing look short; both at once can (GitLab's count
/// after the listing then hides a tag the walk did not reach), and then
/// the repository keeps every tag (docs/config.md#listings-gitlab-cut-short).
#[test]
fn tags_pushed_and_deleted_while_the_walkers_run() {
    let names = ci_names(2_000);
    let gone = [names[200].clone(), names[1_500].clone()];
    let pushed = ["main-0000aaaa-new", "mr-77-ffffffff-new"];
    let mut expected = old_names(&names);
    for name in &gone {
        expected.remove(name);
    }

    let fake = slow(&names);
    let r = pass_while(&fake, || {
        for name in &gone {
            assert!(fake.remove_tag(REPO, name));
        }
    });
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(deleted(&fake), expected, "deletions alone");

    let fake = slow(&names);
    let r = pass_while(&fake, || {
        for name in pushed {
            fake.push_tag(REPO, name, &fake_gitlab::default_digest(name));
        }
    });
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(deleted(&fake), old_names(&names), "pushes alone");

    let fake = slow(&names);
    let r = pass_while(&fake, || {
        fake.push_tag(REPO, pushed[0], &fake_gitlab::default_digest(pushed[0]));
        assert!(fake.remove_tag(REPO, &gone[0]));
    });
    let mut expected = old_names(&names);
    expected.remove(&gone[0]);
    match r.code {
        0 => assert_eq!(deleted(&fake), expected, "both"),
        _ => {
            assert_eq!(r.ops("listing_incomplete").len(), 1, "{}", r.all());
            assert!(fake.deleted().is_empty());
        }
    }
    assert!(fake.tag_names(REPO).contains(&pushed[0].to_owned()));
}

/// Without the metadata database cursors are opaque offsets: two walkers,
/// from both ends, and still exact.
#[test]
fn opaque_cursors_are_walked_from_both_ends() {
    let names = ci_names(1_200);
    let parallel = seeded(&names, false);
    let sequential = seeded(&names, false);
    let r = pass(&parallel, "16", None);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(deleted(&parallel), old_names(&names));
    let pages = tag_pages(&parallel);
    assert!(pages.iter().any(|(_, sort)| sort == "NAME_DESC"));
    // Two walkers: two first pages (no `after`); every other page follows
    // a cursor GitLab gave, none starts between names.
    let firsts = pages.iter().filter(|(after, _)| after.is_none()).count();
    assert_eq!(firsts, 2, "{pages:?}");
    assert!(
        pages
            .iter()
            .all(|(after, _)| after.as_ref().is_none_or(|a| !names.contains(a)))
    );
    let s = pass(&sequential, "16", Some("1"));
    assert_eq!(s.code, 0, "{}", s.all());
    let (p, q) = (graphql_requests(&parallel), graphql_requests(&sequential));
    assert!(p <= q + 2 && p + 2 >= q, "{p} requests against {q}");
}

/// A page that fails while other walkers' pages are in flight fails the
/// whole listing: the repository keeps every tag.
#[test]
fn a_walkers_error_keeps_the_whole_repository() {
    // Over 1,000 tags: walked, not page after page.
    let names = ci_names(1_200);
    let fake = seeded(&names, true);
    fake.set_faults(Faults {
        latency: Duration::from_millis(2),
        rules: vec![FaultRule::times(Route::Graphql, Fault::status(400), 1).after(6)],
        ..Faults::default()
    });
    let r = pass(&fake, "16", None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(fake.deleted().is_empty(), "nothing deleted: {:?}", fake.deleted());
    assert_eq!(r.ops("repository_failed").len(), 1, "{}", r.all());
    let pages = tag_pages(&fake);
    assert!(pages.iter().any(|(_, sort)| sort == "NAME_DESC"), "walked: {pages:?}");
}

/// The pass's deadline strikes while the walkers run: no page starts after
/// it, the listing is not complete, and nothing of the repository goes.
#[test]
fn a_deadline_in_the_middle_of_a_walk_keeps_the_whole_repository() {
    let names = ci_names(2_400);
    let fake = seeded(&names, true);
    fake.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let work = Workdir::new();
    let path = work.config(&config());
    let r = run(bin(work.path())
        .args(["--url", &fake.url(), "--token", TOKEN, "--config"])
        .arg(&path)
        .args(["--retry-base-ms", "5", "--log-level", "debug", "--api", "graphql"])
        .args(["--concurrency", "16", "--pass-timeout", "1s"]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(r.finished()["result"], "incomplete", "{}", r.all());
    assert!(fake.deleted().is_empty(), "nothing deleted: {:?}", fake.deleted());
    let pages = tag_pages(&fake);
    assert!(pages.iter().any(|(_, sort)| sort == "NAME_DESC"), "walked: {pages:?}");
    // 2,400 tags are 120 pages: the walk was cut, not finished.
    assert!(pages.len() < 120, "{} pages", pages.len());
}
