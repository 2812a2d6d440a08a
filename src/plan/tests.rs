use super::*;
use proptest::prelude::*;

fn plan() -> Plan {
    Plan {
        format: FORMAT.to_owned(),
        version: VERSION,
        gitlab_url: "https://gitlab.example.com".to_owned(),
        created_at: "2026-12-01T03:00:00Z".to_owned(),
        config_sha256: sha256_hex(b"{}"),
        entries: vec![PlanEntry {
            project: "web".to_owned(),
            repositories: vec![PlanRepository {
                id: 12,
                project_id: 3,
                path: "platform/web/app".to_owned(),
                location: "registry.example.com/platform/web/app".to_owned(),
                tags_seen: 51,
                delete: vec![PlanTag {
                    name: "build-17".to_owned(),
                    digest: Some(format!("sha256:{}", "a".repeat(64))),
                    date: Some("2026-10-01T08:00:00Z".to_owned()),
                    size: Some(123_456),
                    rule: None,
                    reason: None,
                    git_ref: None,
                    mr: None,
                }],
                kept: [("too_new".to_owned(), 40), ("keep_n".to_owned(), 10)].into(),
            }],
        }],
        totals: PlanTotals {
            repositories: 1,
            tags_seen: 51,
            delete: 1,
            kept: 50,
            bytes: 123_456,
        },
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn a_written_plan_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    plan().write(&path).unwrap();
    assert_eq!(Plan::read(&path).unwrap(), plan());
    // Nothing but the plan is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Overwritten whole.
    let mut smaller = plan();
    smaller.entries.clear();
    smaller.write(&path).unwrap();
    assert_eq!(Plan::read(&path).unwrap(), smaller);
}

#[test]
fn sha256_is_the_known_one() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn another_spelling_of_the_same_gitlab_is_the_same_gitlab() {
    let now = at("2026-12-01T04:00:00Z");
    let day = Duration::from_secs(86_400);
    for url in [
        "https://gitlab.example.com",
        "https://gitlab.example.com/",
        "https://GitLab.Example.com:443/",
    ] {
        plan().check(&url.parse().unwrap(), day, now).unwrap();
    }
    for url in [
        "http://gitlab.example.com",
        "https://gitlab.example.com:8443",
        "https://gitlab.example.com/gitlab",
        "https://other.example.com",
    ] {
        assert!(
            matches!(
                plan().check(&url.parse().unwrap(), day, now),
                Err(PlanError::OtherGitlab { .. })
            ),
            "{url}"
        );
    }
}

#[test]
fn a_plan_too_old_or_from_the_future_is_refused() {
    let url: Url = "https://gitlab.example.com".parse().unwrap();
    let hour = Duration::from_secs(3_600);
    plan().check(&url, hour, at("2026-12-01T04:00:00Z")).unwrap();
    let err = plan().check(&url, hour, at("2026-12-01T04:00:01Z")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan was made at 2026-12-01T03:00:00Z, 1h 1s ago, more than --max-plan-age 1h; \
         make a new plan (or raise --max-plan-age)"
    );
    plan().check(&url, hour, at("2026-12-01T02:56:00Z")).unwrap();
    assert!(matches!(
        plan().check(&url, hour, at("2026-12-01T02:54:00Z")),
        Err(PlanError::FromTheFuture { .. })
    ));
}

#[test]
fn a_bad_plan_is_named_by_its_problem() {
    let path = Path::new("p.json");
    let text = serde_json::to_string(&plan()).unwrap();
    let error = |text: &str| Plan::parse(path, text.as_bytes()).unwrap_err().to_string();
    assert!(error(&text[..text.len() - 1]).contains("not valid JSON (truncated?)"));
    assert!(error("[]").contains("format is missing"));
    let edited = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        error(&text.replacen(from, to, 1))
    };
    assert!(edited("\"version\":1", "\"version\":\"1\"").contains("version is \"1\""));
    assert!(edited("\"tags_seen\":51", "\"tags_seen\":-1").contains("entries[0].repositories[0].tags_seen"));
    assert!(edited("\"size\":123456", "\"size\":123456,\"sise\":1").contains("unknown field `sise`"));
    let missing = edited("\"digest\":", "\"digest_\":");
    assert!(missing.contains("entries[0].repositories[0].delete[0]"), "{missing}");
    assert!(edited("2026-10-01T08:00:00Z", "1 Oct").contains("delete[0].date"));
    assert!(edited("2026-12-01T03:00:00Z", "now").contains("created_at"));
}

proptest! {
    #[test]
    fn any_plan_round_trips(
        // Distinct: a plan naming a tag twice is refused (test below).
        names in proptest::collection::btree_set("[a-zA-Z0-9._-]{1,40}", 0..20),
        size in proptest::option::of(any::<u64>()),
    ) {
        let mut p = plan();
        p.entries[0].repositories[0].delete = names
            .iter()
            .map(|name| PlanTag { name: name.clone(), digest: None, date: None, size, rule: None, reason: None, git_ref: None, mr: None })
            .collect();
        let text = serde_json::to_vec_pretty(&p).unwrap();
        prop_assert_eq!(Plan::parse(Path::new("p"), &text).unwrap(), p);
    }
}

#[test]
fn a_tag_or_repository_twice_is_refused_with_its_path() {
    let bytes = |plan: &Plan| serde_json::to_vec(plan).unwrap();
    let path = Path::new("plan.json");
    let mut twice = plan();
    let tag = twice.entries[0].repositories[0].delete[0].clone();
    twice.entries[0].repositories[0].delete.push(tag);
    let err = Plan::parse(path, &bytes(&twice)).unwrap_err().to_string();
    assert!(
        err.contains("entries[0].repositories[0].delete[1].name") && err.contains("twice"),
        "{err}"
    );
    let mut twice = plan();
    let repository = twice.entries[0].repositories[0].clone();
    twice.entries.push(PlanEntry {
        project: "other".to_owned(),
        repositories: vec![repository],
    });
    let err = Plan::parse(path, &bytes(&twice)).unwrap_err().to_string();
    assert!(
        err.contains("entries[1].repositories[0].id") && err.contains("twice"),
        "{err}"
    );
    // The same name in two repositories is fine.
    let mut two = plan();
    let mut repository = two.entries[0].repositories[0].clone();
    repository.id = 13;
    two.entries[0].repositories.push(repository);
    Plan::parse(path, &bytes(&two)).unwrap();
}
