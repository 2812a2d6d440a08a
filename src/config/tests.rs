use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::time::Duration;

fn load(value: Value) -> Result<Config, Problem> {
    Config::from_value(&value)
}

fn err(value: Value) -> String {
    load(value).expect_err("config should be refused").to_string()
}

#[test]
fn legacy_form_from_the_article() {
    let config = load(json!({
        "gitlab_project_1": {"id": 1, "delete_older_than": {"days": 2}},
        "gitlab_project_2": {"id": 2, "delete_older_than": {"hours": 5}},
        "gitlab_project_3": {"id": 3, "delete_older_than": {"minutes": 60}}
    }))
    .unwrap();
    assert_eq!(config.form, ConfigForm::Legacy);
    assert_eq!(config.entries.len(), 3);
    let first = &config.entries[0];
    assert_eq!(first.name, "gitlab_project_1");
    assert_eq!(first.target, Target::Id(1));
    assert_eq!(first.kind, EntryKind::Project);
    assert_eq!(first.rules.delete_older_than, Duration::from_secs(2 * 86_400));
    assert_eq!(first.rules.keep_n, 0);
    assert!(first.rules.keep_latest && first.enabled);
    assert!(first.rules.name_regex_delete.is_none() && first.rules.name_regex_keep.is_none());
    assert_eq!(config.entries[2].rules.delete_older_than, Duration::from_secs(3600));
    assert_eq!(config.schedule, None);
}

#[test]
fn full_form_from_the_spec() {
    let config = load(json!({
        "schedule": "0 3 * * *",
        "run_on_start": false,
        "concurrency": 8,
        "defaults": {"delete_older_than": "30d", "keep_n": 5},
        "projects": {
            "web": {"id": "platform/web", "delete_older_than": "2d 5h",
                    "name_regex_keep": "v\\d+\\.\\d+\\.\\d+", "keep_n": 10},
            "ci": {"id": 42, "delete_older_than": {"days": 7},
                   "repository_regex": "group/ci/(cache|tmp)-.*", "max_deletions": 500}
        },
        "groups": {"sandbox": {"id": "sandbox", "delete_older_than": "3d"}}
    }))
    .unwrap();
    assert_eq!(config.form, ConfigForm::Full);
    assert_eq!(config.schedule.as_ref().map(Schedule::as_str), Some("0 3 * * *"));
    assert_eq!(config.concurrency, Some(8));
    let [web, ci, sandbox] = &config.entries[..] else {
        panic!("three entries")
    };
    assert_eq!(web.target, Target::Path("platform/web".into()));
    assert_eq!(web.rules.keep_n, 10);
    assert_eq!(web.rules.delete_older_than, Duration::from_secs(2 * 86_400 + 5 * 3600));
    assert!(web.rules.name_regex_keep.as_ref().unwrap().is_match("v1.2.3"));
    assert_eq!(ci.rules.keep_n, 5, "from defaults");
    assert_eq!(ci.max_deletions, Some(500));
    assert!(ci.repository_regex.as_ref().unwrap().is_match("group/ci/cache-x"));
    assert!(!ci.repository_regex.as_ref().unwrap().is_match("other/group/ci/cache-x"));
    assert_eq!(sandbox.kind, EntryKind::Group);
    assert_eq!(sandbox.json_path, "groups.sandbox");
}

#[test]
fn defaults_supply_the_age_and_every_other_field() {
    let config = load(json!({
        "defaults": {"delete_older_than": "1d", "keep_latest": false, "enabled": false,
                     "name_regex_delete": "tmp-.*", "max_deletions": 3, "age_from": "created"},
        "projects": {"a": {"id": 1}, "b": {"id": 2, "enabled": true, "keep_latest": true}}
    }))
    .unwrap();
    let [a, b] = &config.entries[..] else { panic!() };
    assert!(!a.enabled && !a.rules.keep_latest);
    assert!(b.enabled && b.rules.keep_latest);
    assert_eq!(b.max_deletions, Some(3));
    assert_eq!(config.enabled_entries().count(), 1);
}

#[test]
fn form_detection_follows_the_stated_rule() {
    // A legacy entry that happens to be named "projects" has an id: legacy form.
    let config = load(json!({"projects": {"id": 7, "delete_older_than": {"days": 1}}})).unwrap();
    assert_eq!(config.form, ConfigForm::Legacy);
    assert_eq!(config.entries[0].name, "projects");
    // Full form with only groups.
    let config = load(json!({"projects": {}, "groups": {"g": {"id": "g", "delete_older_than": "1d"}}})).unwrap();
    assert_eq!(config.form, ConfigForm::Full);
}

#[test]
fn numeric_strings_are_ids() {
    let config = load(json!({"p": {"id": "42", "delete_older_than": "1d"}})).unwrap();
    assert_eq!(config.entries[0].target, Target::Id(42));
}

#[test]
fn errors_name_the_json_path() {
    assert_eq!(
        err(json!({"projects": {"web": {"id": 1, "delete_older_than": {"days": 0}}}})),
        "projects.web.delete_older_than: must be > 0"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": {"years": 1}}})),
        "p.delete_older_than: unknown unit \"years\" (expected weeks, days, hours, minutes or seconds)"
    );
    assert!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "colour": "red"}})).starts_with("p.colour: unknown key")
    );
    assert!(err(json!({"projects": {}, "groups": {}, "shedule": "x"})).starts_with("shedule: unknown key"));
    assert!(err(json!({"defaults": {"id": 1}, "projects": {}})).starts_with("defaults.id: unknown key"));
    assert!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "name_regex_keep": "("}}))
            .starts_with("p.name_regex_keep: invalid regex")
    );
    assert_eq!(
        err(json!({"p": {"id": 1}})),
        "p: delete_older_than is required (in the entry or in defaults)"
    );
    assert_eq!(
        err(json!({"p": {"delete_older_than": "1d"}})),
        "p.id: is required (a numeric id or a full path)"
    );
    assert_eq!(
        err(json!({"p": {"id": 0, "delete_older_than": "1d"}})),
        "p.id: must be a positive integer or a path string"
    );
    assert_eq!(
        err(json!({"p": {"id": -3, "delete_older_than": "1d"}})),
        "p.id: must be a positive integer or a path string"
    );
    assert!(err(json!({"p": {"id": "/abs/", "delete_older_than": "1d"}})).starts_with("p.id: \"/abs/\" is not"));
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "keep_n": -1}})),
        "p.keep_n: must be an integer >= 0"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "max_deletions": 0}})),
        "p.max_deletions: must be an integer >= 1"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "keep_latest": "yes"}})),
        "p.keep_latest: must be true or false"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "age_from": "pushed"}})),
        "p.age_from: must be \"created\" or \"published\""
    );
    assert_eq!(
        err(json!({"projects": {}, "concurrency": 0, "groups": {"g": {"id": "g", "delete_older_than": "1d"}}})),
        "concurrency: must be an integer from 1 to 1024"
    );
    assert_eq!(
        err(json!({"projects": {}, "api": "soap"})),
        "api: must be \"rest\", \"graphql\" or \"auto\""
    );
    assert_eq!(
        err(json!({"projects": {}, "schedule": 5})),
        "schedule: must be a cron expression string"
    );
    assert!(
        err(json!({"projects": {}, "schedule": "61 * * * *"}))
            .starts_with("schedule: invalid cron expression \"61 * * * *\"")
    );
    assert_eq!(
        err(json!({"p": 5})),
        "p: must be an object with at least \"id\" and \"delete_older_than\""
    );
    assert_eq!(err(json!([1, 2])), "the top level must be a JSON object");
    assert_eq!(err(json!({})), "names no project and no group to clean");
}

#[test]
fn syntax_errors_are_clear() {
    let e = Config::from_bytes(b"{\"p\": ").unwrap_err().to_string();
    assert!(e.starts_with("not valid JSON: EOF while parsing"), "{e}");
    assert_eq!(
        Config::from_bytes(b"  \n").unwrap_err().to_string(),
        "the file is empty"
    );
    let e = Config::from_bytes(b"{\"p\xff\": 1}").unwrap_err().to_string();
    assert!(e.starts_with("not UTF-8 text"), "{e}");
}

#[test]
fn overlapping_entries_are_refused() {
    let e = err(json!({"a": {"id": 5, "delete_older_than": "1d"}, "b": {"id": 5, "delete_older_than": "2d"}}));
    assert!(e.starts_with("b.id: covers the same repositories as a"), "{e}");
    let e = err(
        json!({"a": {"id": "Group/App", "delete_older_than": "1d"}, "b": {"id": "group/app", "delete_older_than": "2d"}}),
    );
    assert!(e.starts_with("b.id: covers"), "{e}");
    let e = err(json!({
        "projects": {"app": {"id": "team/sub/app", "delete_older_than": "1d"}},
        "groups": {"team": {"id": "team", "delete_older_than": "2d"}}
    }));
    assert!(
        e.starts_with("groups.team.id: covers the same repositories as projects.app"),
        "{e}"
    );
    // A disabled entry does not clean, so it does not collide.
    load(
        json!({"a": {"id": 5, "delete_older_than": "1d"}, "b": {"id": 5, "delete_older_than": "2d", "enabled": false}}),
    )
    .unwrap();
    // Siblings and prefixes that are not path segments are fine.
    load(json!({
        "projects": {"app": {"id": "team2/app", "delete_older_than": "1d"}},
        "groups": {"team": {"id": "team", "delete_older_than": "2d"}}
    }))
    .unwrap();
}

#[test]
fn regexes_are_anchored() {
    let config = load(json!({"p": {"id": 1, "delete_older_than": "1d", "name_regex_delete": "dev"}})).unwrap();
    let re = config.entries[0].rules.name_regex_delete.as_ref().unwrap();
    assert!(re.is_match("dev") && !re.is_match("dev-1") && !re.is_match("mydev"));
}

#[test]
fn every_file_in_config_dir_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
            found += 1;
        }
    }
    assert!(found >= 2, "expected the example configs in {}", dir.display());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        "(id|days|hours|1d|2d 5h|v.*|\\(|latest|projects|groups|defaults|[a-z]{0,6})".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                "(id|delete_older_than|keep_n|days|projects|groups|defaults|schedule|enabled|name_regex_keep|[a-z]{1,5})",
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn random_json_never_panics(value in arb_json()) {
        if let Ok(config) = Config::from_value(&value) {
            prop_assert!(!config.entries.is_empty());
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Config::from_bytes(&bytes);
    }

    #[test]
    fn mutated_valid_config_never_panics(pos in 0usize..200, byte in any::<u8>()) {
        let mut text = br#"{"defaults":{"delete_older_than":"30d","keep_n":5},"projects":{"web":{"id":"platform/web","delete_older_than":{"days":2},"name_regex_keep":"v\\d+"}}}"#.to_vec();
        let at = pos % text.len();
        text[at] = byte;
        let _ = Config::from_bytes(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000);
    assert!(Config::from_bytes(deep.as_bytes()).is_err());
}

#[test]
fn huge_numbers_are_refused() {
    assert!(load(json!({"p": {"id": 1, "delete_older_than": "1d", "keep_n": 1e300}})).is_err());
    assert!(load(json!({"p": {"id": 1e300, "delete_older_than": "1d"}})).is_err());
    let e = Config::from_bytes(br#"{"p": {"id": 1, "delete_older_than": {"days": 1e999}}}"#);
    assert!(e.is_err());
}
