//! Black-box tests of what today's GitLab does and the fake imitates: the
//! metadata database's dates and name cursors, tag protection rules, counts
//! and silently short listings, repository status, group projects and
//! GitLab's complexity formula. Every test states the registry's mode.

mod common;

use common::{Resp, send};
use fake_gitlab::{
    AccessLevel, FakeGitlab, Fault, FaultRule, Faults, Group, Project, Repository, RepositoryStatus, Route, Seed, Tag,
    TagFields, TagProtectionRule, default_digest,
};
use serde_json::{Value, json};

const TOKEN: &str = "s3cr3t";
const PROJECT: u64 = 10;
const APP: u64 = 1;
const OTHER_PROJECT: u64 = 11;
const OTHER: u64 = 2;
const FIRST_PUSH: &str = "2020-01-01T00:00:00.000+00:00";

fn seed(metadata_database: bool) -> Seed {
    let tags = |names: &[&str]| names.iter().map(|n| Tag::new(*n, Some(FIRST_PUSH.into()))).collect();
    Seed {
        token: TOKEN.into(),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![
            Project {
                id: PROJECT,
                path: "group/app".into(),
                repositories: vec![Repository {
                    id: APP,
                    name: "app".into(),
                    tags: tags(&["dev-1", "main", "v1", "v2"]),
                }],
            },
            Project {
                id: OTHER_PROJECT,
                path: "group/sub/other".into(),
                repositories: vec![Repository {
                    id: OTHER,
                    name: String::new(),
                    tags: tags(&["x"]),
                }],
            },
        ],
        groups: vec![Group {
            id: 7,
            path: "group".into(),
        }],
        metadata_database,
        ..Seed::default()
    }
}

/// One request with the token.
fn http(fake: &FakeGitlab, method: &str, path: &str, body: &str) -> Resp {
    send(fake, method, path, Some(TOKEN), body)
}

fn get(fake: &FakeGitlab, path: &str) -> Resp {
    http(fake, "GET", path, "")
}

fn gql(fake: &FakeGitlab, query: &str, variables: Value) -> Value {
    let resp = http(
        fake,
        "POST",
        "/api/graphql",
        &json!({ "query": query, "variables": variables }).to_string(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

fn gid(repository: u64) -> String {
    format!("gid://gitlab/ContainerRepository/{repository}")
}

const TAG_DATES: &str = "query($id: ContainerRepositoryID!) {
  containerRepository(id: $id) {
    tags(first: 20, sort: NAME_ASC) { nodes { name digest revision createdAt publishedAt } }
  }
}";

/// The GraphQL node of one tag.
fn tag_node(fake: &FakeGitlab, repository: u64, name: &str) -> Value {
    let v = gql(fake, TAG_DATES, json!({"id": gid(repository)}));
    v["data"]["containerRepository"]["tags"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

fn tag_details(fake: &FakeGitlab, repository: u64, name: &str) -> Value {
    get(
        fake,
        &format!("/api/v4/projects/{PROJECT}/registry/repositories/{repository}/tags/{name}"),
    )
    .json()
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn with_the_metadata_database_a_push_moves_only_published_at() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let before = tag_node(&fake, APP, "main");
    assert_eq!(before["digest"], default_digest("main").as_str());
    assert_eq!(
        (&before["createdAt"], &before["publishedAt"]),
        (&json!("2020-01-01T00:00:00Z"), &json!("2020-01-01T00:00:00Z"))
    );

    fake.push_tag_at(APP, "main", NEW_DIGEST, at("2024-05-01T12:00:00Z"));
    let after = tag_node(&fake, APP, "main");
    assert_eq!(after["createdAt"], "2020-01-01T00:00:00Z", "the first push stays");
    assert_eq!(after["publishedAt"], "2024-05-01T12:00:00Z");
    assert_eq!(after["digest"], NEW_DIGEST);
    assert_ne!(after["revision"], before["revision"]);
    let details = tag_details(&fake, APP, "main");
    assert_eq!(details["created_at"], FIRST_PUSH, "REST shows the first push");
    assert_eq!(details["digest"], NEW_DIGEST);
    assert_eq!(details["revision"], after["revision"]);
    assert_eq!(fake.tag_digest(APP, "main").as_deref(), Some(NEW_DIGEST));

    // The same digest again changes nothing.
    fake.push_tag_at(APP, "main", NEW_DIGEST, at("2024-06-01T12:00:00Z"));
    assert_eq!(tag_node(&fake, APP, "main"), after);

    // A new tag is first and last pushed now.
    fake.push_tag_at(APP, "fresh", NEW_DIGEST, at("2024-07-01T08:30:00Z"));
    let fresh = tag_node(&fake, APP, "fresh");
    assert_eq!(
        (&fresh["createdAt"], &fresh["publishedAt"]),
        (&json!("2024-07-01T08:30:00Z"), &json!("2024-07-01T08:30:00Z"))
    );
    fake.push_tag(APP, "fresher", &default_digest("fresher"));
    assert!(fake.tag_names(APP).contains(&"fresher".to_owned()));
}

#[test]
fn without_the_metadata_database_a_push_is_a_new_build() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    fake.push_tag_at(APP, "main", NEW_DIGEST, at("2024-05-01T12:00:00Z"));
    let node = tag_node(&fake, APP, "main");
    assert_eq!(node["createdAt"], "2024-05-01T12:00:00Z", "the new image's build time");
    assert_eq!(node["publishedAt"], Value::Null);
    assert_eq!(node["digest"], NEW_DIGEST);
    assert_eq!(
        tag_details(&fake, APP, "main")["created_at"],
        "2024-05-01T12:00:00.000+00:00"
    );
}

const PAGE: &str =
    "query($id: ContainerRepositoryID!, $first: Int, $after: String, $sort: ContainerRepositoryTagSort) {
  containerRepository(id: $id) {
    tags(first: $first, after: $after, sort: $sort) { nodes { name } pageInfo { hasNextPage endCursor } }
  }
}";

fn names_of(v: &Value) -> Vec<String> {
    v["data"]["containerRepository"]["tags"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn name_cursors_are_raw_names_and_any_string_is_a_start_point() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let id = gid(APP);
    let v = gql(&fake, PAGE, json!({"id": id, "first": 2, "sort": "NAME_ASC"}));
    assert_eq!(names_of(&v), ["dev-1", "main"]);
    let page_info = &v["data"]["containerRepository"]["tags"]["pageInfo"];
    assert_eq!(page_info["endCursor"], "main");
    assert_eq!(page_info["hasNextPage"], true);

    // A name that is no tag starts the page after it.
    let v = gql(
        &fake,
        PAGE,
        json!({"id": id, "first": 20, "after": "u", "sort": "NAME_ASC"}),
    );
    assert_eq!(names_of(&v), ["v1", "v2"]);
    assert_eq!(
        v["data"]["containerRepository"]["tags"]["pageInfo"]["hasNextPage"],
        false
    );
    let v = gql(
        &fake,
        PAGE,
        json!({"id": id, "first": 20, "after": "m", "sort": "NAME_DESC"}),
    );
    assert_eq!(names_of(&v), ["dev-1"]);

    // No word character: the registry's 400 becomes an empty last page, no error.
    for after in ["", "-", "..."] {
        let v = gql(
            &fake,
            PAGE,
            json!({"id": id, "first": 20, "after": after, "sort": "NAME_ASC"}),
        );
        assert!(v.get("errors").is_none(), "{v}");
        assert_eq!(names_of(&v), Vec::<String>::new(), "after {after:?}");
        assert_eq!(
            v["data"]["containerRepository"]["tags"]["pageInfo"]["hasNextPage"],
            false
        );
    }

    // Publication order keeps an opaque cursor that names the last tag seen.
    fake.push_tag_at(APP, "dev-1", NEW_DIGEST, at("2024-05-01T12:00:00Z"));
    let v = gql(&fake, PAGE, json!({"id": id, "first": 3, "sort": "PUBLISHED_AT_ASC"}));
    assert_eq!(names_of(&v), ["main", "v1", "v2"]);
    let cursor = v["data"]["containerRepository"]["tags"]["pageInfo"]["endCursor"].clone();
    assert_ne!(cursor, "v2");
    let v = gql(
        &fake,
        PAGE,
        json!({"id": id, "first": 3, "after": cursor, "sort": "PUBLISHED_AT_ASC"}),
    );
    assert_eq!(names_of(&v), ["dev-1"]);
}

#[test]
fn names_sort_like_a_collation_not_byte_order() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let traps = ["ab", "A_b", "a-b", "v1.9", "v1.10", "MR-2", "main_x", "Main-y", "mr-10"];
    for name in traps {
        fake.add_tag(OTHER, Tag::new(name, Some(FIRST_PUSH.into())));
    }
    let id = gid(OTHER);
    let expected = [
        "A_b", "a-b", "ab", "main_x", "Main-y", "mr-10", "MR-2", "v1.10", "v1.9", "x",
    ];
    assert_eq!(fake.tag_names(OTHER), expected);
    let v = gql(&fake, PAGE, json!({"id": id, "first": 20, "sort": "NAME_ASC"}));
    assert_eq!(names_of(&v), expected);
    let v = gql(&fake, PAGE, json!({"id": id, "first": 20, "sort": "NAME_DESC"}));
    assert_eq!(names_of(&v), expected.iter().rev().copied().collect::<Vec<_>>());
    let rest = http(
        &fake,
        "GET",
        &format!("/api/v4/projects/{OTHER_PROJECT}/registry/repositories/{OTHER}/tags"),
        "",
    );
    let rest: Vec<String> = rest
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest, expected, "REST lists in the same order");

    // `after` is a place in that order, a tag or not: byte order would put
    // "MR-2" before "a-b" and "main_x" before "Main-y".
    let after = |marker: &str, sort: &str| {
        names_of(&gql(
            &fake,
            PAGE,
            json!({"id": id, "first": 3, "after": marker, "sort": sort}),
        ))
    };
    assert_eq!(after("A_b", "NAME_ASC"), ["a-b", "ab", "main_x"]);
    assert_eq!(after("MAIN", "NAME_ASC"), ["main_x", "Main-y", "mr-10"]);
    assert_eq!(
        after("mainx", "NAME_ASC"),
        ["Main-y", "mr-10", "MR-2"],
        "main_x < mainx: the full name breaks the tie"
    );
    assert_eq!(after("mr-2", "NAME_ASC"), ["v1.10", "v1.9", "x"]);
    assert_eq!(after("x", "NAME_ASC"), Vec::<String>::new());
    assert_eq!(after("MR-2", "NAME_DESC"), ["mr-10", "Main-y", "main_x"]);
    assert_eq!(after("v1.95", "NAME_DESC"), ["v1.9", "v1.10", "MR-2"]);
}

#[test]
fn rest_delete_of_a_missing_tag_is_forbidden_with_the_metadata_database() {
    let path = format!("/api/v4/projects/{PROJECT}/registry/repositories/{APP}/tags/gone");
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let resp = http(&fake, "DELETE", &path, "");
    assert_eq!(
        (resp.status, resp.body.as_str()),
        (403, r#"{"message":"403 Forbidden"}"#)
    );
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let resp = http(&fake, "DELETE", &path, "");
    assert_eq!((resp.status, resp.body.as_str()), (200, "200"));
}

const PERMISSIONS: &str = "query($id: ContainerRepositoryID!) {
  containerRepository(id: $id) {
    tags(first: 20, sort: NAME_ASC) {
      nodes {
        name
        userPermissions { destroyContainerRepositoryTag }
        protection { minimumAccessLevelForDelete minimumAccessLevelForPush immutable }
      }
    }
  }
}";

const DESTROY: &str = "mutation($id: ContainerRepositoryID!, $names: [String!]!) {
  destroyContainerRepositoryTags(input: {id: $id, tagNames: $names}) { deletedTagNames errors }
}";

const NO_PERMISSION: &str =
    "The resource that you are attempting to access does not exist or you don't have permission to perform this action";

/// `name → (destroyContainerRepositoryTag, protection)`.
fn permissions(fake: &FakeGitlab, repository: u64) -> Vec<(String, bool, Value)> {
    let v = gql(fake, PERMISSIONS, json!({"id": gid(repository)}));
    v["data"]["containerRepository"]["tags"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["userPermissions"]["destroyContainerRepositoryTag"].as_bool().unwrap(),
                t["protection"].clone(),
            )
        })
        .collect()
}

fn delete_tag(fake: &FakeGitlab, name: &str) -> Resp {
    http(
        fake,
        "DELETE",
        &format!("/api/v4/projects/{PROJECT}/registry/repositories/{APP}/tags/{name}"),
        "",
    )
}

#[test]
fn a_rule_above_the_role_protects_its_tags_and_refuses_bulk_deletion() {
    let fake = FakeGitlab::start(Seed {
        tag_protection_rules: [(
            PROJECT,
            vec![TagProtectionRule::at_least("v.*", AccessLevel::Maintainer)],
        )]
        .into(),
        ..seed(true)
    })
    .unwrap();
    let maintainer = json!({"minimumAccessLevelForDelete": "MAINTAINER", "minimumAccessLevelForPush": "MAINTAINER", "immutable": false});
    assert_eq!(
        permissions(&fake, APP),
        [
            ("dev-1".to_owned(), true, Value::Null),
            ("main".to_owned(), true, Value::Null),
            ("v1".to_owned(), false, maintainer.clone()),
            ("v2".to_owned(), false, maintainer.clone()),
        ]
    );

    // The whole repository is refused, even for names no rule matches.
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["dev-1"]}));
    assert_eq!(v["data"]["destroyContainerRepositoryTags"], Value::Null, "{v}");
    assert_eq!(v["errors"][0]["message"], NO_PERMISSION);
    assert!(fake.deleted().is_empty());
    // Another project without rules is not affected.
    let v = gql(&fake, DESTROY, json!({"id": gid(OTHER), "names": ["x"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"]["deletedTagNames"],
        json!(["x"])
    );

    // REST is authorised per tag.
    let resp = delete_tag(&fake, "v1");
    assert_eq!(
        (resp.status, resp.body.as_str()),
        (403, r#"{"message":"403 Forbidden - cannot delete protected tag(s)"}"#)
    );
    assert_eq!(delete_tag(&fake, "dev-1").status, 200);
    assert_eq!(fake.tag_names(APP), ["main", "v1", "v2"]);

    // A Maintainer may do it all.
    fake.set_role(PROJECT, Some(AccessLevel::Maintainer));
    assert!(permissions(&fake, APP).iter().all(|(_, may, _)| *may));
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["v1", "main"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"],
        json!({"deletedTagNames": ["v1", "main"], "errors": []})
    );
    assert_eq!(delete_tag(&fake, "v2").status, 200);
    assert!(fake.tag_names(APP).is_empty());

    // Back to Developer: a repository without tags is not refused.
    fake.set_role(PROJECT, None);
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["v1"]}));
    assert_eq!(v["data"]["destroyContainerRepositoryTags"]["errors"], json!([]), "{v}");
}

#[test]
fn an_immutable_rule_binds_everyone() {
    let fake = FakeGitlab::start(Seed {
        role: AccessLevel::Admin,
        tag_protection_rules: [(PROJECT, vec![TagProtectionRule::immutable("v[0-9]+")])].into(),
        ..seed(true)
    })
    .unwrap();
    let immutable = json!({"minimumAccessLevelForDelete": null, "minimumAccessLevelForPush": null, "immutable": true});
    let seen = permissions(&fake, APP);
    assert_eq!(seen[0], ("dev-1".to_owned(), true, Value::Null));
    assert_eq!(seen[2], ("v1".to_owned(), false, immutable));
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["main"]}));
    assert_eq!(v["errors"][0]["message"], NO_PERMISSION, "{v}");
    assert_eq!(delete_tag(&fake, "v2").status, 403);
    assert_eq!(delete_tag(&fake, "main").status, 200);

    // The most restrictive matching rule is the tag's protection; the pattern matches whole names.
    fake.set_tag_protection_rules(
        PROJECT,
        vec![
            TagProtectionRule::at_least("v.*", AccessLevel::Maintainer),
            TagProtectionRule::at_least("v1", AccessLevel::Owner),
            TagProtectionRule::at_least("dev", AccessLevel::Admin),
        ],
    );
    let seen = permissions(&fake, APP);
    assert_eq!(seen[0].2, Value::Null, "`dev` does not match `dev-1`");
    assert_eq!(seen[1].2["minimumAccessLevelForDelete"], "OWNER");
    assert_eq!(seen[2].2["minimumAccessLevelForDelete"], "MAINTAINER");
    assert!(seen.iter().all(|(_, may, _)| *may), "an Admin may delete them all");
}

#[test]
fn a_protected_tag_is_undeletable_without_refusing_the_repository() {
    let mut seed = seed(true);
    seed.projects[0].repositories[0].tags[2] = Tag::new("v1", None).protected();
    let fake = FakeGitlab::start(seed).unwrap();
    let seen = permissions(&fake, APP);
    // GitLab shows the rule that protects it.
    assert_eq!((seen[2].0.as_str(), seen[2].1), ("v1", false));
    assert_eq!(seen[2].2["minimumAccessLevelForDelete"], "MAINTAINER");
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["v1"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"],
        json!({"deletedTagNames": [], "errors": ["cannot delete protected tag(s)"]})
    );
    let v = gql(&fake, DESTROY, json!({"id": gid(APP), "names": ["v1", "v2"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"]["deletedTagNames"],
        json!(["v2"])
    );
    assert_eq!(delete_tag(&fake, "v1").status, 403);
}

#[test]
fn rules_need_the_metadata_database() {
    let err = FakeGitlab::start(Seed {
        tag_protection_rules: [(PROJECT, vec![TagProtectionRule::immutable(".*")])].into(),
        ..seed(false)
    })
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("metadata database"), "{err}");
}

#[test]
fn an_older_gitlab_rejects_the_experiment_fields() {
    let only_protection = "query($id: ContainerRepositoryID!) { containerRepository(id: $id) { tags(first: 20) { nodes { name protection { immutable } } } } }";
    let only_permissions = "query($id: ContainerRepositoryID!) { containerRepository(id: $id) { tags(first: 20) { nodes { name userPermissions { destroyContainerRepositoryTag } } } } }";
    let id = json!({"id": gid(APP)});
    let start = |tag_fields| {
        FakeGitlab::start(Seed {
            tag_fields,
            ..seed(true)
        })
        .unwrap()
    };
    let fake = start(TagFields::PermissionsAndProtection);
    assert!(gql(&fake, only_protection, id.clone()).get("errors").is_none());
    let fake = start(TagFields::PermissionsOnly);
    let v = gql(&fake, only_protection, id.clone());
    assert!(v.get("data").is_none(), "{v}");
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("protection"),
        "{v}"
    );
    assert!(gql(&fake, only_permissions, id.clone()).get("errors").is_none());
    let fake = start(TagFields::Neither);
    let v = gql(&fake, only_permissions, id.clone());
    assert!(v.get("data").is_none(), "{v}");
}

const COUNTS: &str = "query($p: ID!, $id: ContainerRepositoryID!) {
  project(fullPath: $p) { containerRepositories(first: 10) { nodes { id tagsCount } } }
  containerRepository(id: $id) { tagsCount }
}";

/// `(list's tagsCount, details' tagsCount)` of the first repository.
fn graphql_counts(fake: &FakeGitlab) -> (Value, Value) {
    let v = gql(fake, COUNTS, json!({"p": "group/app", "id": gid(APP)}));
    (
        v["data"]["project"]["containerRepositories"]["nodes"][0]["tagsCount"].clone(),
        v["data"]["containerRepository"]["tagsCount"].clone(),
    )
}

/// `(list's tags_count, single repository's tags_count)` of the first repository.
fn rest_counts(fake: &FakeGitlab) -> (Value, Value) {
    let list = get(
        fake,
        &format!("/api/v4/projects/{PROJECT}/registry/repositories?tags_count=true"),
    )
    .json();
    let one = get(fake, &format!("/api/v4/registry/repositories/{APP}?tags_count=true")).json();
    (list[0]["tags_count"].clone(), one["tags_count"].clone())
}

fn many_tags(metadata_database: bool, n: usize) -> Seed {
    let mut seed = seed(metadata_database);
    seed.projects[0].repositories[0].tags = (0..n).map(|i| Tag::new(format!("t{i:05}"), None)).collect();
    seed
}

#[test]
fn counts_stop_at_ten_thousand_and_are_zero_when_the_count_fails() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    assert_eq!(graphql_counts(&fake), (json!(4), json!(4)));
    assert_eq!(rest_counts(&fake), (json!(4), json!(4)));
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::always(Route::Graphql, Fault::TagsCountFails),
            FaultRule::always(Route::ProjectRepositories, Fault::TagsCountFails),
            FaultRule::always(Route::Repository, Fault::TagsCountFails),
        ],
        ..Faults::default()
    });
    assert_eq!(graphql_counts(&fake), (json!(0), json!(0)));
    assert_eq!(rest_counts(&fake), (json!(0), json!(0)));

    for metadata_database in [true, false] {
        let fake = FakeGitlab::start(many_tags(metadata_database, 10_001)).unwrap();
        assert_eq!(graphql_counts(&fake), (json!(10_000), json!(10_000)));
        assert_eq!(rest_counts(&fake), (json!(10_000), json!(10_000)));
    }
}

#[test]
fn without_the_metadata_database_listings_stop_at_ten_thousand_tags() {
    let last_page = format!("/api/v4/projects/{PROJECT}/registry/repositories/{APP}/tags?per_page=100&page=100");
    let past_it = format!("/api/v4/projects/{PROJECT}/registry/repositories/{APP}/tags?per_page=100&page=101");
    let find = "query($id: ContainerRepositoryID!) { containerRepository(id: $id) { tags(first: 20, name: \"t10000\") { nodes { name } } } }";

    let fake = FakeGitlab::start(many_tags(false, 10_001)).unwrap();
    let resp = get(&fake, &last_page);
    assert_eq!(resp.json().as_array().unwrap().len(), 100);
    assert_eq!(resp.header("x-next-page"), Some(""));
    // GitLab does not count lists of 10,000 or more.
    assert_eq!((resp.header("x-total"), resp.header("x-total-pages")), (None, None));
    assert!(!resp.header("link").unwrap().contains("rel=\"last\""));
    assert_eq!(get(&fake, &past_it).body, "[]");
    assert_eq!(
        names_of(&gql(&fake, find, json!({"id": gid(APP)}))),
        Vec::<String>::new()
    );

    let fake = FakeGitlab::start(many_tags(true, 10_001)).unwrap();
    let resp = get(&fake, &last_page);
    assert_eq!(resp.header("x-next-page"), Some("101"));
    assert_eq!(resp.header("x-total"), None);
    assert_eq!(get(&fake, &past_it).json()[0]["name"], "t10000");
    assert_eq!(names_of(&gql(&fake, find, json!({"id": gid(APP)}))), ["t10000"]);

    // Below 10,000 the totals are there.
    let fake = FakeGitlab::start(many_tags(false, 9_999)).unwrap();
    let resp = get(&fake, &last_page);
    assert_eq!(
        (resp.header("x-total"), resp.header("x-total-pages")),
        (Some("9999"), Some("100"))
    );
}

#[test]
fn a_cut_listing_ends_early_without_an_error() {
    let page = |n: u32| format!("/api/v4/projects/{PROJECT}/registry/repositories/{APP}/tags?per_page=20&page={n}");
    let fake = FakeGitlab::start(many_tags(false, 100)).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Tags, Fault::RegistryCut).after(2)],
        ..Faults::default()
    });
    assert_eq!(get(&fake, &page(1)).header("x-next-page"), Some("2"));
    assert_eq!(get(&fake, &page(2)).header("x-next-page"), Some("3"));
    let cut = get(&fake, &page(3));
    assert_eq!((cut.status, cut.body.as_str()), (200, "[]"));
    assert_eq!(cut.header("x-next-page"), Some(""));
    assert_eq!(
        (cut.header("x-total"), cut.header("x-total-pages")),
        (Some("40"), Some("2"))
    );
    // The count is another registry call: whole.
    assert_eq!(rest_counts(&fake), (json!(100), json!(100)));

    for metadata_database in [true, false] {
        let fake = FakeGitlab::start(many_tags(metadata_database, 100)).unwrap();
        fake.set_faults(Faults {
            rules: vec![FaultRule::always(Route::Graphql, Fault::RegistryCut).after(1)],
            ..Faults::default()
        });
        let query = "query($id: ContainerRepositoryID!, $after: String) { containerRepository(id: $id) { tagsCount tags(first: 20, after: $after, sort: NAME_ASC) { nodes { name } pageInfo { hasNextPage endCursor } } } }";
        let v = gql(&fake, query, json!({"id": gid(APP)}));
        assert_eq!(names_of(&v).len(), 20);
        let cursor = v["data"]["containerRepository"]["tags"]["pageInfo"]["endCursor"].clone();
        let v = gql(&fake, query, json!({"id": gid(APP), "after": cursor}));
        assert!(v.get("errors").is_none(), "{v}");
        assert_eq!(names_of(&v), Vec::<String>::new());
        assert_eq!(
            v["data"]["containerRepository"]["tags"]["pageInfo"]["hasNextPage"],
            false
        );
        assert_eq!(v["data"]["containerRepository"]["tagsCount"], 100);
    }
}

#[test]
fn repository_status_and_the_single_repository_endpoint() {
    let fake = FakeGitlab::start(Seed {
        repository_status: [(APP, RepositoryStatus::DeleteScheduled)].into(),
        ..seed(false)
    })
    .unwrap();
    let list = get(&fake, &format!("/api/v4/projects/{PROJECT}/registry/repositories")).json();
    assert_eq!(list[0]["status"], "delete_scheduled");
    let one = get(
        &fake,
        &format!("/api/v4/registry/repositories/{APP}?tags=true&size=true"),
    );
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["status"], "delete_scheduled");
    assert_eq!((&one["id"], &one["path"]), (&json!(APP), &json!("group/app/app")));
    assert_eq!(
        one["tags"][0]["location"],
        "registry.example.com:5005/group/app/app:dev-1"
    );
    assert_eq!(one["size"], Value::Null, "only the metadata database knows sizes");
    assert!(one.get("tags_count").is_none());
    let status = "query($p: ID!, $id: ContainerRepositoryID!) { project(fullPath: $p) { containerRepositories { nodes { status } } } containerRepository(id: $id) { status } }";
    let v = gql(&fake, status, json!({"p": "group/app", "id": gid(APP)}));
    assert_eq!(
        v["data"]["project"]["containerRepositories"]["nodes"][0]["status"],
        "DELETE_SCHEDULED"
    );
    assert_eq!(v["data"]["containerRepository"]["status"], "DELETE_SCHEDULED");

    fake.set_repository_status(APP, Some(RepositoryStatus::DeleteOngoing));
    let v = gql(&fake, status, json!({"p": "group/app", "id": gid(APP)}));
    assert_eq!(v["data"]["containerRepository"]["status"], "DELETE_ONGOING");
    fake.set_repository_status(APP, None);
    assert_eq!(
        get(&fake, "/api/v4/registry/repositories/1").json()["status"],
        Value::Null
    );

    let missing = get(&fake, "/api/v4/registry/repositories/99");
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, r#"{"message":"404 Not found"}"#)
    );
    let not_an_id = get(&fake, "/api/v4/registry/repositories/app");
    assert_eq!(
        (not_an_id.status, not_an_id.body.as_str()),
        (404, r#"{"error":"404 Not Found"}"#)
    );
    assert_eq!(fake.stats().count(Route::Repository), 3);

    let fake = FakeGitlab::start(seed(true)).unwrap();
    let one = get(&fake, &format!("/api/v4/registry/repositories/{APP}?size=true")).json();
    assert!(one["size"].as_u64().unwrap() > 0, "{one}");
}

#[test]
fn a_group_lists_its_own_projects_unless_asked_not_to() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let group = get(&fake, "/api/v4/groups/7").json();
    let projects: Vec<&str> = group["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path_with_namespace"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["group/app"], "a subgroup's projects are not the group's");
    let group = get(&fake, "/api/v4/groups/group?with_projects=false").json();
    assert_eq!(group["full_path"], "group");
    assert!(group.get("projects").is_none(), "{group}");
    let stats = fake.stats();
    let asked: Vec<Option<&str>> = stats
        .requests
        .iter()
        .filter(|r| r.route == Route::Group)
        .map(|r| r.query_param("with_projects"))
        .collect();
    assert_eq!(asked, [None, Some("false")]);
    assert_eq!(stats.requests[1].path(), "/api/v4/groups/group");
}

/// GitLab's score of `query`, read from `queryComplexity`, which itself
/// costs 3 (the field and its two children).
fn score(fake: &FakeGitlab, query: &str) -> i64 {
    let query = query.replacen('{', "{ queryComplexity { score limit } ", 1);
    let v = gql(fake, &query, json!({"id": gid(APP), "p": "group/app"}));
    assert_eq!(v["data"]["queryComplexity"]["limit"], 250, "{v}");
    v["data"]["queryComplexity"]["score"].as_i64().unwrap() - 3
}

#[test]
fn complexity_follows_gitlabs_formula() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let tags_page = "query($id: ContainerRepositoryID!) { containerRepository(id: $id) { tagsCount
        tags(first: 20, sort: NAME_ASC) { nodes { name digest createdAt publishedAt totalSize } pageInfo { hasNextPage endCursor } } } }";
    assert_eq!(score(&fake, tags_page), 15);
    let with_protection = tags_page.replace(
        "totalSize",
        "totalSize userPermissions { destroyContainerRepositoryTag } protection { minimumAccessLevelForDelete immutable }",
    );
    assert_eq!(score(&fake, &with_protection), 21);
    let repositories = "query($p: ID!) { project(fullPath: $p) { containerRepositories(first: 100, sort: NAME_ASC) {
        nodes { id path location status project { id fullPath } } pageInfo { hasNextPage endCursor } } } }";
    assert_eq!(score(&fake, repositories), 27);

    // A score of exactly 250 passes; 252 does not.
    let aliases = |n: usize| -> String {
        let fields: String = (0..n)
            .map(|i| format!("r{i}: containerRepository(id: $id) {{ tagsCount }} "))
            .collect();
        format!("query($id: ContainerRepositoryID!) {{ {fields}}}")
    };
    let v = gql(&fake, &aliases(125), json!({"id": gid(APP)}));
    assert!(v.get("errors").is_none(), "{v}");
    let v = gql(&fake, &aliases(126), json!({"id": gid(APP)}));
    assert_eq!(
        v["errors"][0]["message"],
        "Query has complexity of 252, which exceeds max complexity of 250"
    );
}
