use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::time::Duration;

fn load(value: Value) -> Result<Config, Problem> {
    Config::from_value(&value)
}

/// The one rule of an entry without `rules`.
fn only(entry: &Entry) -> &EntryRule {
    let [rule] = &entry.rules[..] else {
        panic!("{} has {} rules", entry.name, entry.rules.len())
    };
    rule
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
    assert_eq!(
        only(first).rule.policy.delete_older_than,
        Duration::from_secs(2 * 86_400)
    );
    assert_eq!(only(first).rule.policy.keep_n, 0);
    assert!(only(first).rule.policy.keep_latest && first.enabled);
    assert!(only(first).rule.policy.name_regex_delete.is_none() && only(first).rule.policy.name_regex_keep.is_none());
    assert_eq!(
        only(&config.entries[2]).rule.policy.delete_older_than,
        Duration::from_secs(3600)
    );
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
    assert_eq!(only(web).rule.policy.keep_n, 10);
    assert_eq!(
        only(web).rule.policy.delete_older_than,
        Duration::from_secs(2 * 86_400 + 5 * 3600)
    );
    assert!(
        only(web)
            .rule
            .policy
            .name_regex_keep
            .as_ref()
            .unwrap()
            .is_match("v1.2.3")
    );
    assert_eq!(only(ci).rule.policy.keep_n, 5, "from defaults");
    assert_eq!(ci.max_deletions, Some(500));
    assert!(
        only(ci)
            .rule
            .repository_regex
            .as_ref()
            .unwrap()
            .is_match("group/ci/cache-x")
    );
    assert!(
        !only(ci)
            .rule
            .repository_regex
            .as_ref()
            .unwrap()
            .is_match("other/group/ci/cache-x")
    );
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
    assert!(!a.enabled && !only(a).rule.policy.keep_latest);
    assert!(b.enabled && only(b).rule.policy.keep_latest);
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
    let re = only(&config.entries[0]).rule.policy.name_regex_delete.as_ref().unwrap();
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

#[test]
fn unknown_keys_list_the_known_ones() {
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "colour": "red"}})),
        "p.colour: unknown key (expected one of: id, delete_older_than, keep_n, keep_n_by, order_by, name_regex_delete, \
         name_regex_keep, keep_latest, repository_regex, max_deletions, enabled, age_from, delete_when_ref_gone, rules)"
    );
    // `defaults` has every field of an entry but `id` and `rules`.
    assert_eq!(
        err(json!({"defaults": {"id": 1}, "projects": {}})),
        "defaults.id: unknown key (expected one of: delete_older_than, keep_n, keep_n_by, order_by, name_regex_delete, \
         name_regex_keep, keep_latest, repository_regex, max_deletions, enabled, age_from, delete_when_ref_gone)"
    );
    assert_eq!(
        err(json!({"projects": {}, "shedule": "x"})),
        "shedule: unknown key (expected one of: schedule, run_on_start, concurrency, api, pass_timeout, max_requests_per_minute, defaults, projects, groups)"
    );
    assert!(
        err(json!({"projects": {"web": {"id": 1, "delete_older_than": "1d", "keepn": 1}}}))
            .starts_with("projects.web.keepn: unknown key"),
    );
}

#[test]
fn wrong_shapes_say_what_is_expected() {
    assert_eq!(
        err(json!({"projects": {}, "defaults": 3})),
        "defaults: must be an object"
    );
    assert_eq!(
        err(json!({"projects": {}, "groups": ["g"]})),
        "groups: must be an object mapping names to entries"
    );
    let entry = "must be an object with at least \"id\" and \"delete_older_than\"";
    assert_eq!(err(json!({"projects": {"web": "x"}})), format!("projects.web: {entry}"));
    // serde would read a struct from an array field by field: not here.
    assert_eq!(err(json!({"p": [5, "1d"]})), format!("p: {entry}"));
    assert_eq!(
        err(json!({"projects": {}, "defaults": ["1d"]})),
        "defaults: must be an object"
    );
    assert_eq!(err(json!({"p": null})), format!("p: {entry}"));
    assert_eq!(
        err(json!({"projects": {}, "run_on_start": 1})),
        "run_on_start: must be true or false"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": "1d", "repository_regex": 1}})),
        "p.repository_regex: must be a regex string"
    );
    assert_eq!(
        err(json!({"p": {"id": [1], "delete_older_than": "1d"}})),
        "p.id: must be a positive integer or a path string"
    );
    assert_eq!(
        err(json!({"p": {"id": 1, "delete_older_than": true}})),
        "p.delete_older_than: must be an object such as {\"days\": 2} or a duration string such as \"2d 5h\""
    );
}

#[test]
fn null_means_not_set() {
    let config = load(json!({
        "schedule": null, "run_on_start": null, "concurrency": null, "api": null,
        "defaults": null, "groups": null,
        "projects": {"web": {"id": 1, "delete_older_than": "1d", "keep_n": null, "keep_latest": null,
                             "name_regex_delete": null, "name_regex_keep": null, "repository_regex": null,
                             "max_deletions": null, "enabled": null, "age_from": null}}
    }))
    .unwrap();
    assert_eq!(config.form, ConfigForm::Full);
    assert!(config.schedule.is_none() && !config.run_on_start && config.concurrency.is_none() && config.api.is_none());
    let web = &config.entries[0];
    assert_eq!(only(web).rule.policy.keep_n, 0);
    assert!(only(web).rule.policy.keep_latest && web.enabled && web.max_deletions.is_none());
    assert_eq!(
        (only(web).age_from, only(web).age_from_set),
        (AgeFrom::Published, false),
        "the default"
    );
    // An entry's null does not hide the default either.
    let config = load(json!({"defaults": {"delete_older_than": "1d", "keep_n": 3},
                             "projects": {"a": {"id": 1, "delete_older_than": null, "keep_n": null}}}))
    .unwrap();
    assert_eq!(only(&config.entries[0]).rule.policy.keep_n, 3);
    assert_eq!(
        only(&config.entries[0]).rule.policy.delete_older_than,
        Duration::from_secs(86_400)
    );
    assert_eq!(
        err(json!({"p": {"id": null, "delete_older_than": "1d"}})),
        "p.id: is required (a numeric id or a full path)"
    );
}

#[test]
fn a_bad_default_is_named_at_defaults_even_if_unused() {
    assert_eq!(
        err(json!({"defaults": {"keep_n": -1}, "projects": {"a": {"id": 1, "delete_older_than": "1d", "keep_n": 2}}})),
        "defaults.keep_n: must be an integer >= 0"
    );
}

#[test]
fn every_value_and_setting_is_read() {
    let config = load(json!({
        "schedule": "@daily", "run_on_start": true, "concurrency": 1024, "api": "graphql", "pass_timeout": "30m",
        "defaults": {"age_from": "published", "max_deletions": 7},
        "projects": {"a": {"id": " 12 ", "delete_older_than": {"weeks": 1}, "keep_latest": false}},
        "groups": {"g": {"id": "team/sub", "delete_older_than": "1d", "age_from": "created", "keep_n": 4}}
    }))
    .unwrap();
    assert!(config.run_on_start && config.schedule.is_some());
    assert_eq!((config.concurrency, config.api), (Some(1024), Some(ApiMode::Graphql)));
    assert_eq!(config.pass_timeout, Some(Duration::from_secs(30 * 60)));
    let [a, g] = &config.entries[..] else { panic!() };
    assert_eq!(
        (a.target.clone(), only(a).age_from, a.max_deletions),
        (Target::Id(12), AgeFrom::Published, Some(7))
    );
    assert_eq!(only(a).rule.policy.delete_older_than, Duration::from_secs(7 * 86_400));
    assert!(!only(a).rule.policy.keep_latest);
    assert_eq!(
        (g.kind, only(g).age_from, only(g).rule.policy.keep_n),
        (EntryKind::Group, AgeFrom::Created, 4)
    );
    assert_eq!(g.target, Target::Path("team/sub".into()));
    assert_eq!(
        err(json!({"projects": {}, "concurrency": 1025})),
        "concurrency: must be an integer from 1 to 1024"
    );
    let bad = err(json!({"projects": {"a": {"id": 1, "delete_older_than": "1d"}}, "pass_timeout": "soon"}));
    assert!(bad.starts_with("pass_timeout: "), "{bad}");
    let none = load(json!({"projects": {"a": {"id": 1, "delete_older_than": "1d"}}, "pass_timeout": null})).unwrap();
    assert_eq!(none.pass_timeout, None);
}

#[test]
fn max_requests_per_minute_is_a_positive_integer() {
    let entry = json!({"a": {"id": 1, "delete_older_than": "1d"}});
    let config = load(json!({"projects": entry, "max_requests_per_minute": 2000})).unwrap();
    assert_eq!(config.max_requests_per_minute.map(|n| n.get()), Some(2000));
    assert_eq!(load(json!({"projects": entry})).unwrap().max_requests_per_minute, None);
    for bad in [json!(0), json!(-5), json!(1.5), json!("2000")] {
        assert_eq!(
            err(json!({"projects": entry, "max_requests_per_minute": bad})),
            "max_requests_per_minute: must be an integer >= 1"
        );
    }
}

#[test]
fn legacy_entries_keep_file_order() {
    let config = Config::from_bytes(
        br#"{"zeta": {"id": 3, "delete_older_than": "1d"}, "alpha": {"id": 1, "delete_older_than": "1d"}}"#,
    )
    .unwrap();
    let names: Vec<&str> = config.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"]);
}

#[test]
fn messages_never_echo_a_huge_input() {
    let huge = "x".repeat(100_000);
    let cases = [
        json!({"p": {"id": 1, "delete_older_than": "1d", huge.clone(): 1}}),
        json!({huge.clone(): {"id": 1, "delete_older_than": "1d", "keep_n": -1}}),
        json!({"p": {"id": format!("/{huge}"), "delete_older_than": "1d"}}),
        json!({"p": {"id": 1, "delete_older_than": huge.clone()}}),
        json!({"p": {"id": 1, "delete_older_than": "1d", "name_regex_keep": format!("({huge}")}}),
        json!({"projects": {}, "schedule": huge.clone()}),
    ];
    for case in cases {
        let message = err(case);
        assert!(
            message.chars().count() < 1_000,
            "{} chars: {}…",
            message.len(),
            &message[..80]
        );
    }
    let duplicate = format!(r#"{{"{huge}": 1, "{huge}": 2}}"#);
    let message = Config::from_bytes(duplicate.as_bytes()).unwrap_err().to_string();
    assert!(message.starts_with("not valid JSON: duplicate key") && message.chars().count() < 1_000);
    assert!(
        message.contains("…\" at line 1 column"),
        "the position survives: {message}"
    );
}

#[test]
fn the_packaged_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.json");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.enabled_entries().count(), 0, "the shipped config cleans nothing");
}

#[test]
fn summary_names_every_field() {
    let base = json!({"id": 1, "delete_older_than": "1d"});
    let changes = [
        ("id", json!("group/app")),
        ("delete_older_than", json!("2d")),
        ("keep_n", json!(3)),
        ("keep_n_by", json!("(?<stream>.+)-\\d+")),
        ("order_by", json!("semver")),
        ("name_regex_delete", json!("tmp-.*")),
        ("name_regex_keep", json!("v.*")),
        ("keep_latest", json!(false)),
        ("repository_regex", json!("a/.*")),
        ("max_deletions", json!(9)),
        ("enabled", json!(false)),
        ("age_from", json!("created")),
        (
            "delete_when_ref_gone",
            json!({"tag_regex": "(?<ref>.+)-[0-9a-f]{8}", "grace": "1h"}),
        ),
    ];
    let summary = |entry: Value| load(json!({"p": entry})).unwrap().entries[0].summary();
    let plain = summary(base.clone());
    assert_eq!(plain, "project 1, delete older than 1 day (age_from published)");
    for (key, value) in changes {
        let mut entry = base.clone();
        entry[key] = value;
        assert_ne!(summary(entry), plain, "a change of only {key} must show in the summary");
    }
    let mut published = base;
    published["age_from"] = json!("published");
    assert!(summary(published).contains("(age_from published)"));
}

#[test]
fn rules_are_read_in_order_with_defaults_filling_their_gaps() {
    let config = load(json!({
        "defaults": {"delete_older_than": "30d", "keep_n": 2, "max_deletions": 50},
        "projects": {"web": {"id": "platform/web", "rules": [
            {"name": "releases", "name_regex_delete": "v\\d+\\.\\d+\\.\\d+", "order_by": "semver", "keep_n": 10, "delete_older_than": "180d"},
            {"name": "branches", "name_regex_delete": "(?<stream>[a-z0-9-]+)-[0-9a-f]{8}",
             "keep_n_by": "(?<stream>[a-z0-9-]+)-[0-9a-f]{8}", "age_from": "created"},
            {"name": "scratch", "name_regex_delete": "tmp-.*", "repository_regex": "platform/web/.*", "delete_older_than": "1d"}
        ]}}
    }))
    .unwrap();
    let web = &config.entries[0];
    assert!(web.has_named_rules());
    assert_eq!(web.max_deletions, Some(50), "the fuse is the entry's");
    let names: Vec<&str> = web.rules.iter().map(|r| r.rule.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["releases", "branches", "scratch"]);
    let [releases, branches, scratch] = &web.rules[..] else {
        panic!()
    };
    assert_eq!(releases.rule.policy.order_by, OrderBy::Semver);
    assert_eq!(releases.rule.policy.keep_n, 10);
    assert_eq!(branches.rule.policy.keep_n, 2, "from defaults");
    assert_eq!(branches.rule.policy.delete_older_than, Duration::from_secs(30 * 86_400));
    assert!(branches.rule.policy.keep_n_by.is_some());
    assert_eq!((branches.age_from, branches.age_from_set), (AgeFrom::Created, true));
    assert_eq!((releases.age_from, releases.age_from_set), (AgeFrom::Published, false));
    assert_eq!(scratch.json_path, "projects.web.rules.2");
    assert!(web.selects_repository("platform/web/app"));
    assert_eq!(
        web.rule_for("other/x", "tmp-1").map(|r| r.json_path.as_str()),
        None,
        "scratch only governs its repositories"
    );
    let summary = web.summary();
    assert!(summary.contains("3 rules, first match governs a tag"), "{summary}");
    assert!(
        summary.contains("1. \"releases\": governs tags v\\d+\\.\\d+\\.\\d+, delete older than"),
        "{summary}"
    );
    assert!(summary.contains("keep 10 highest versions"), "{summary}");
    assert!(summary.contains("keep 2 newest of each stream"), "{summary}");
    assert!(
        summary.contains("3. \"scratch\": governs tags tmp-.*, in repositories platform/web/.*"),
        "{summary}"
    );
}

#[test]
fn rule_mistakes_are_config_errors_at_their_path() {
    let entry = |rules: Value| json!({"projects": {"web": {"id": 1, "delete_older_than": "1d", "rules": rules}}});
    let rules_only = |extra: Value| {
        let mut web = json!({"id": 1, "rules": [{"name": "a", "delete_older_than": "1d"}]});
        for (k, v) in extra.as_object().unwrap() {
            web[k] = v.clone();
        }
        err(json!({"projects": {"web": web}}))
    };
    assert!(
        err(entry(json!([{"name": "a"}])))
            .starts_with("projects.web.delete_older_than: cannot be set beside \"rules\""),
        "a tag-selection field beside rules"
    );
    for field in [
        "keep_n",
        "name_regex_delete",
        "repository_regex",
        "age_from",
        "keep_latest",
        "order_by",
    ] {
        let value = match field {
            "keep_n" => json!(1),
            "keep_latest" => json!(false),
            "age_from" => json!("created"),
            "order_by" => json!("semver"),
            _ => json!("x.*"),
        };
        let message = rules_only(json!({ field: value }));
        assert!(
            message.starts_with(&format!("projects.web.{field}: cannot be set beside")),
            "{message}"
        );
    }
    // id, enabled and max_deletions belong beside rules.
    load(
        json!({"projects": {"web": {"id": 1, "enabled": true, "max_deletions": 3,
        "rules": [{"name": "a", "delete_older_than": "1d"}]}}}),
    )
    .unwrap();
    assert_eq!(
        rules_only(json!({"rules": []})),
        "projects.web.rules: must list at least one rule"
    );
    assert_eq!(
        rules_only(json!({"rules": [{"delete_older_than": "1d"}]})),
        "projects.web.rules.0.name: is required (the rule's name, logged as rule)"
    );
    assert_eq!(
        rules_only(json!({"rules": [{"name": "a"}]})),
        "projects.web.rules.0: delete_older_than is required (in the entry or in defaults)"
    );
    assert!(
        rules_only(json!({"rules": [{"name": " ", "delete_older_than": "1d"}]}))
            .starts_with("projects.web.rules.0.name: must be")
    );
    assert!(
        rules_only(json!({"rules": [{"name": "a", "delete_older_than": "1d", "enabled": false}]}))
            .starts_with("projects.web.rules.0.enabled: unknown key")
    );
    assert_eq!(
        rules_only(json!({"rules": [
            {"name": "a", "name_regex_delete": "x.*", "delete_older_than": "1d"},
            {"name": "a", "name_regex_delete": "y.*", "delete_older_than": "1d"}
        ]})),
        "projects.web.rules.1.name: \"a\" is already the name of projects.web.rules.0: rule names must be unique in an entry"
    );
    let unreachable = |earlier: Value, later: Value| {
        let mut a = json!({"name": "a", "delete_older_than": "1d"});
        let mut b = json!({"name": "b", "delete_older_than": "2d"});
        a.as_object_mut().unwrap().extend(earlier.as_object().unwrap().clone());
        b.as_object_mut().unwrap().extend(later.as_object().unwrap().clone());
        load(json!({"projects": {"web": {"id": 1, "rules": [a, b]}}}))
            .err()
            .map(|e| e.to_string())
    };
    let refused = unreachable(
        json!({"name_regex_delete": "tmp-.*"}),
        json!({"name_regex_delete": "tmp-.*", "keep_n": 3}),
    );
    assert!(
        refused.as_deref().is_some_and(
            |m| m.starts_with("projects.web.rules.1: can never govern a tag: projects.web.rules.0 comes first")
        ),
        "{refused:?}"
    );
    assert!(
        unreachable(json!({}), json!({"name_regex_delete": "x"})).is_some(),
        "a catch-all first"
    );
    assert!(unreachable(json!({"name_regex_delete": ".*"}), json!({"repository_regex": "a/b"})).is_some());
    assert!(
        unreachable(
            json!({"repository_regex": "a/.*"}),
            json!({"repository_regex": "a/.*", "name_regex_delete": "x"})
        )
        .is_some()
    );
    // Different patterns, or a narrower earlier rule: both can govern.
    assert_eq!(unreachable(json!({"name_regex_delete": "x.*"}), json!({})), None);
    assert_eq!(
        unreachable(json!({"repository_regex": "a/.*"}), json!({"repository_regex": "b/.*"})),
        None
    );
    assert_eq!(
        unreachable(json!({"name_regex_delete": "x.*"}), json!({"name_regex_delete": "x.+"})),
        None
    );
}

#[test]
fn keep_n_by_needs_its_stream_group_and_order_by_its_words() {
    let one = |field: &str, value: Value| {
        let mut p = json!({"id": 1, "delete_older_than": "1d"});
        p[field] = value;
        load(json!({"p": p})).err().map(|e| e.to_string())
    };
    assert_eq!(one("keep_n_by", json!("(?<stream>.+)-\\d+")), None);
    assert_eq!(one("keep_n_by", json!("(?P<stream>.+)-\\d+")), None);
    assert!(
        one("keep_n_by", json!("(.+)-\\d+"))
            .unwrap()
            .starts_with("p.keep_n_by: must have a named group \"stream\"")
    );
    assert!(one("keep_n_by", json!("(?<branch>.+)")).is_some());
    assert!(
        one("keep_n_by", json!("(?<stream>"))
            .unwrap()
            .starts_with("p.keep_n_by: invalid regex")
    );
    assert_eq!(one("order_by", json!("semver")), None);
    assert_eq!(one("order_by", json!("date")), None);
    assert_eq!(
        one("order_by", json!("version")).unwrap(),
        "p.order_by: must be \"date\" or \"semver\""
    );
    let rule = load(json!({"projects": {"w": {"id": 1, "rules": [
        {"name": "r", "delete_older_than": "1d", "keep_n_by": "x"}]}}}))
    .unwrap_err()
    .to_string();
    assert!(
        rule.starts_with("projects.w.rules.0.keep_n_by: must have a named group"),
        "{rule}"
    );
}

#[test]
fn delete_when_ref_gone_is_read_and_checked_at_its_path() {
    const GONE: &str = r"mr-(?<mr>\d+)-[0-9a-f]{8}|(?<ref>[a-z0-9-]+)-[0-9a-f]{8}";
    let one = |gone: Value| {
        load(json!({"p": {"id": 1, "delete_older_than": "30d", "delete_when_ref_gone": gone}}))
            .map_err(|e| e.to_string())
    };
    let config = one(json!({"tag_regex": GONE, "grace": "1d"})).unwrap();
    let gone = only(&config.entries[0])
        .rule
        .policy
        .delete_when_ref_gone
        .clone()
        .unwrap();
    assert_eq!(gone.grace, Duration::from_secs(86_400));
    assert!(gone.tag_regex.is_match("mr-12-0123abcd") && !gone.tag_regex.is_match("x mr-12-0123abcd"));
    assert!(
        config.entries[0]
            .summary()
            .contains("of a gone branch or merge request after 1 day"),
        "{}",
        config.entries[0].summary()
    );
    assert_eq!(one(Value::Null).map(|c| c.entries.len()), Ok(1));
    for (gone, expected) in [
        (
            json!("x"),
            "p.delete_when_ref_gone: must be an object with \"tag_regex\" and \"grace\", or false",
        ),
        (
            json!(true),
            "p.delete_when_ref_gone: must be an object with \"tag_regex\" and \"grace\", or false",
        ),
        (
            json!({"grace": "1d"}),
            "p.delete_when_ref_gone: \"tag_regex\" is required (which tags name a branch or merge request)",
        ),
        (
            json!({"tag_regex": GONE}),
            "p.delete_when_ref_gone: \"grace\" is required (how old a tag of a gone branch or merge request must be to go, e.g. \"1d\")",
        ),
        (
            json!({"tag_regex": GONE, "grace": "1d", "graze": "1d"}),
            "p.delete_when_ref_gone: unknown key \"graze\" (expected one of: tag_regex, grace)",
        ),
        (
            json!({"tag_regex": "(?<branch>.+)", "grace": "1d"}),
            "p.delete_when_ref_gone: tag_regex must have a named group \"ref\"",
        ),
        (
            json!({"tag_regex": "(?<ref>", "grace": "1d"}),
            "p.delete_when_ref_gone: tag_regex invalid regex",
        ),
        (
            json!({"tag_regex": GONE, "grace": "soon"}),
            "p.delete_when_ref_gone: grace ",
        ),
        (
            json!({"tag_regex": GONE, "grace": "30d"}),
            "p.delete_when_ref_gone.grace: 30 days is not shorter than delete_older_than (30 days)",
        ),
    ] {
        let message = one(gone.clone()).unwrap_err();
        assert!(message.starts_with(expected), "{gone}: {message}");
    }
    // Only `ref`, only `mr`: either is enough.
    assert!(one(json!({"tag_regex": "(?<ref>.+)", "grace": "1h"})).is_ok());
    assert!(one(json!({"tag_regex": r"mr-(?<mr>\d+)", "grace": "30m"})).is_ok());
    // `false` turns off what defaults set.
    let config = load(
        json!({"defaults": {"delete_when_ref_gone": {"tag_regex": GONE, "grace": "2d"}},
        "projects": {"on": {"id": 1, "delete_older_than": "14d"},
                     "off": {"id": 2, "delete_older_than": "14d", "delete_when_ref_gone": false}}}),
    )
    .unwrap();
    let gone = |i: usize| only(&config.entries[i]).rule.policy.delete_when_ref_gone.is_some();
    assert!(gone(0) && !gone(1));
    // A rule inherits it from defaults, and is checked against its own age limit.
    let rules = load(
        json!({"defaults": {"delete_when_ref_gone": {"tag_regex": GONE, "grace": "2d"}},
        "projects": {"w": {"id": 1, "rules": [
            {"name": "branches", "delete_older_than": "14d"},
            {"name": "short", "name_regex_delete": "tmp-.*", "delete_older_than": "1d"}]}}}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        rules.starts_with("projects.w.rules.1.delete_when_ref_gone.grace: 2 days is not shorter"),
        "{rules}"
    );
}
