//! Black-box tests of the fake's GraphQL endpoint and the REST project and
//! group lookups, over real TCP.

use std::io::{Read, Write};
use std::net::TcpStream;

use fake_gitlab::{FakeGitlab, Fault, FaultRule, Faults, GraphqlSupport, Group, Project, Repository, Route, Seed, Tag};
use serde_json::{Value, json};

const TOKEN: &str = "s3cr3t";
const RO_TOKEN: &str = "read-only";
const BIG: u64 = 2;
const PROT: u64 = 3;

fn seed(metadata_database: bool) -> Seed {
    Seed {
        token: TOKEN.into(),
        read_only_token: Some(RO_TOKEN.into()),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![Project {
            id: 10,
            path: "Group/App".into(),
            repositories: vec![
                Repository {
                    id: BIG,
                    name: "big".into(),
                    tags: (0..250)
                        .map(|i| {
                            Tag::new(
                                format!("t{i:03}"),
                                Some(format!("2020-01-01T00:{:02}:00.000+00:00", i % 60)),
                            )
                        })
                        .collect(),
                },
                Repository {
                    id: PROT,
                    name: "prot".into(),
                    tags: vec![Tag::new("keep", None).protected(), Tag::new("drop", None)],
                },
            ],
        }],
        groups: vec![Group {
            id: 7,
            path: "Group".into(),
        }],
        metadata_database,
        ..Seed::default()
    }
}

/// Sends one request on a fresh connection; returns status and body.
fn http(fake: &FakeGitlab, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(fake.addr()).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        fake.addr(),
        body.len()
    );
    if let Some(auth) = auth {
        req.push_str(auth);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn gql_as(fake: &FakeGitlab, token: &str, query: &str, variables: Value) -> (u16, Value) {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let (status, text) = http(
        fake,
        "POST",
        "/api/graphql",
        Some(&format!("Authorization: Bearer {token}")),
        &body,
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn gql(fake: &FakeGitlab, query: &str, variables: Value) -> Value {
    let (status, value) = gql_as(fake, TOKEN, query, variables);
    assert_eq!(status, 200, "{value}");
    value
}

const LIST_TAGS: &str = "query ListTags($id: ContainerRepositoryID!, $first: Int, $after: String) {
  containerRepository(id: $id) {
    tags(first: $first, after: $after, sort: NAME_ASC) {
      nodes { name createdAt publishedAt totalSize }
      pageInfo { hasNextPage endCursor }
    }
  }
}";

/// Every tag name reached by following `endCursor` with page size `first`.
fn all_tags(fake: &FakeGitlab, repo: u64, first: Option<i64>) -> (Vec<String>, usize) {
    let (mut names, mut pages, mut after) = (Vec::new(), 0, Value::Null);
    loop {
        let v = gql(
            fake,
            LIST_TAGS,
            json!({"id": format!("gid://gitlab/ContainerRepository/{repo}"), "first": first, "after": after}),
        );
        let tags = &v["data"]["containerRepository"]["tags"];
        pages += 1;
        names.extend(
            tags["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        if !tags["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return (names, pages);
        }
        after = tags["pageInfo"]["endCursor"].clone();
    }
}

#[test]
fn repositories_and_tags_page_by_cursor() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let v = gql(
        &fake,
        "query($p: ID!) { project(fullPath: $p) { containerRepositories(first: 1, sort: NAME_ASC) { nodes { id name path location } pageInfo { hasNextPage endCursor } } } }",
        json!({"p": "group/app"}),
    );
    let conn = &v["data"]["project"]["containerRepositories"];
    assert_eq!(conn["nodes"][0]["id"], "gid://gitlab/ContainerRepository/2");
    assert_eq!(conn["nodes"][0]["path"], "group/app/big");
    assert_eq!(conn["nodes"][0]["location"], "registry.example.com:5005/group/app/big");
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let (names, pages) = all_tags(&fake, BIG, Some(20));
    assert_eq!(names.len(), 250);
    assert_eq!(pages, 13);
    // Without the metadata database `first` is capped at 20, and nothing is skipped.
    let (names, _) = all_tags(&fake, BIG, Some(50));
    assert_eq!(names.len(), 250);
    let v = gql(
        &fake,
        LIST_TAGS,
        json!({"id": "gid://gitlab/ContainerRepository/2", "first": 1}),
    );
    let tag = &v["data"]["containerRepository"]["tags"]["nodes"][0];
    assert_eq!(tag["createdAt"], "2020-01-01T00:00:00Z");
    assert_eq!(tag["publishedAt"], Value::Null);
    assert!(tag["totalSize"].is_string(), "BigInt is a string: {tag}");
    let v = gql(
        &fake,
        "{ group(fullPath: \"group\") { containerRepositories { nodes { path } } } }",
        json!({}),
    );
    assert_eq!(
        v["data"]["group"]["containerRepositories"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let v = gql(&fake, "{ project(fullPath: \"nope/nope\") { id } }", json!({}));
    assert_eq!(v, json!({"data": {"project": null}}));
}

#[test]
fn metadata_database_pages_skip_tags_past_twenty_and_need_first() {
    let fake = FakeGitlab::start(seed(true)).unwrap();
    let (names, _) = all_tags(&fake, BIG, Some(20));
    assert_eq!(names.len(), 250);
    // The registry is asked for 50 a page, the connection keeps 20: 30 of every 50 are lost.
    let (names, pages) = all_tags(&fake, BIG, Some(50));
    assert_eq!((names.len(), pages), (100, 5));
    let (names, pages) = all_tags(&fake, BIG, None);
    assert_eq!((names.len(), pages), (0, 1));
    let v = gql(
        &fake,
        LIST_TAGS,
        json!({"id": "gid://gitlab/ContainerRepository/2", "first": 1}),
    );
    assert_eq!(
        v["data"]["containerRepository"]["tags"]["nodes"][0]["publishedAt"],
        "2020-01-01T00:00:00Z"
    );

    // The marker is a name: the next page starts after it even when its tag is gone.
    let id = "gid://gitlab/ContainerRepository/2";
    let v = gql(&fake, LIST_TAGS, json!({"id": id, "first": 20}));
    let cursor = v["data"]["containerRepository"]["tags"]["pageInfo"]["endCursor"].clone();
    let v = gql(&fake, DESTROY, json!({"id": id, "names": ["t019", "t020"]}));
    assert_eq!(v["data"]["destroyContainerRepositoryTags"]["errors"], json!([]));
    let v = gql(&fake, LIST_TAGS, json!({"id": id, "first": 20, "after": cursor}));
    assert_eq!(v["data"]["containerRepository"]["tags"]["nodes"][0]["name"], "t021");
}

#[test]
fn invalid_queries_are_rejected_like_gitlab() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    // Tags are not on the list type.
    let v = gql(
        &fake,
        "{ project(fullPath: \"group/app\") { containerRepositories { nodes { tags { nodes { name } } } } } }",
        json!({}),
    );
    assert!(v.get("data").is_none(), "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("does not have a field `tags`")),
        "{v}"
    );
    let v = gql(
        &fake,
        "{ containerRepository(id: \"gid://gitlab/ContainerRepository/2\") { tags(first: \"20\") { nodes { name } } } }",
        json!({}),
    );
    assert!(v["errors"].is_array(), "{v}");
    let aliases: String = (0..20)
        .map(|i| format!("r{i}: containerRepository(id: \"gid://gitlab/ContainerRepository/2\") {{ tags(first: 20) {{ nodes {{ name createdAt publishedAt totalSize digest location }} pageInfo {{ endCursor hasNextPage }} }} }} "))
        .collect();
    let v = gql(&fake, &format!("{{ {aliases} }}"), json!({}));
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("Query has complexity of "), "{message}");
    let v = gql(
        &fake,
        &format!("{{ project(fullPath: \"{}\") {{ id }} }}", "x".repeat(10_001)),
        json!({}),
    );
    assert_eq!(v["errors"][0]["message"], "Query too large");
}

const DESTROY: &str = "mutation($id: ContainerRepositoryID!, $names: [String!]!) {
  destroyContainerRepositoryTags(input: {id: $id, tagNames: $names}) { deletedTagNames errors }
}";

#[test]
fn destroy_tags_mutation() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let id = "gid://gitlab/ContainerRepository/2";
    let names: Vec<String> = (0..21).map(|i| format!("t{i:03}")).collect();
    let v = gql(&fake, DESTROY, json!({"id": id, "names": names}));
    assert_eq!(v["errors"][0]["message"], "Number of tags is greater than 20", "{v}");
    assert_eq!(v["data"]["destroyContainerRepositoryTags"], Value::Null);
    assert!(fake.deleted().is_empty());

    let (_, v) = gql_as(&fake, RO_TOKEN, DESTROY, json!({"id": id, "names": ["t000"]}));
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("permission"),
        "{v}"
    );
    assert!(fake.deleted().is_empty());

    let v = gql(&fake, DESTROY, json!({"id": id, "names": ["t000", "t001", "gone"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"],
        json!({"deletedTagNames": ["t000", "t001", "gone"], "errors": []})
    );
    assert_eq!(fake.deleted(), [(BIG, "t000".to_owned()), (BIG, "t001".to_owned())]);

    let prot = "gid://gitlab/ContainerRepository/3";
    let v = gql(&fake, DESTROY, json!({"id": prot, "names": ["keep"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"],
        json!({"deletedTagNames": [], "errors": ["cannot delete protected tag(s)"]})
    );
    let v = gql(&fake, DESTROY, json!({"id": prot, "names": ["keep", "drop"]}));
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"]["deletedTagNames"],
        json!(["drop"])
    );
    assert_eq!(fake.tag_names(PROT), ["keep"]);

    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::GraphqlMutation, Fault::PartialDelete, 1)],
        ..Faults::default()
    });
    let v = gql(
        &fake,
        DESTROY,
        json!({"id": id, "names": ["t010", "t011", "t012", "t013"]}),
    );
    assert_eq!(
        v["data"]["destroyContainerRepositoryTags"],
        json!({"deletedTagNames": ["t010", "t011"], "errors": ["error while deleting tags"]})
    );
    assert!(fake.tag_names(BIG).contains(&"t012".to_owned()));
    let stats = fake.stats();
    assert_eq!(stats.count(Route::GraphqlMutation), 6);
}

#[test]
fn authentication_and_a_missing_endpoint() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let (status, v) = gql_as(&fake, "wrong", "{ project(fullPath: \"group/app\") { id } }", json!({}));
    assert_eq!((status, v), (401, json!({"errors": [{"message": "Invalid token"}]})));
    let body = json!({"query": "{ project(fullPath: \"group/app\") { id } }"}).to_string();
    let (status, text) = http(&fake, "POST", "/api/graphql", None, &body);
    assert_eq!((status, text.as_str()), (200, r#"{"data":{"project":null}}"#));
    let (status, text) = http(&fake, "POST", "/api/graphql", Some("PRIVATE-TOKEN: s3cr3t"), &body);
    assert_eq!(status, 200);
    assert!(text.contains("gid://gitlab/Project/10"), "{text}");

    let fake = FakeGitlab::start(Seed {
        graphql: GraphqlSupport::Missing,
        ..seed(false)
    })
    .unwrap();
    let (status, _) = http(&fake, "POST", "/api/graphql", Some("PRIVATE-TOKEN: s3cr3t"), &body);
    assert_eq!(status, 404);
    assert_eq!(fake.stats().count(Route::Graphql), 1);
}

#[test]
fn project_and_group_lookups() {
    let fake = FakeGitlab::start(seed(false)).unwrap();
    let (status, text) = http(&fake, "GET", "/api/v4/projects/10", Some("PRIVATE-TOKEN: s3cr3t"), "");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["path_with_namespace"], "Group/App");
    let (status, text) = http(&fake, "GET", "/api/v4/groups/7", Some("PRIVATE-TOKEN: s3cr3t"), "");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["full_path"], "Group");
    let (status, _) = http(&fake, "GET", "/api/v4/projects/99", Some("PRIVATE-TOKEN: s3cr3t"), "");
    assert_eq!(status, 404);
}
