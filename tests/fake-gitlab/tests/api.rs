//! Black-box tests of the fake over real TCP, with a tiny raw HTTP/1.1 client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fake_gitlab::{
    FakeGitlab, Fault, FaultRule, Faults, Group, Project, Repository, Route, Seed, Tag, demo_seed, gitlab_time,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------- client

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("invalid JSON ({e}): {:?}", self.text()))
    }

    fn names(&self) -> Vec<String> {
        self.json()
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["name"].as_str().expect("name").to_owned())
            .collect()
    }
}

/// One HTTP/1.1 connection; requests are sent keep-alive.
struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            reader: BufReader::new(stream),
            host: addr.to_string(),
        }
    }

    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> io::Result<Resp> {
        let mut req = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header line");
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("content-length");
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Resp { status, headers, body })
    }
}

const TOKEN: &str = "s3cr3t";
const RO_TOKEN: &str = "read-only";

fn call(fake: &FakeGitlab, method: &str, target: &str, token: Option<&str>) -> Resp {
    let mut headers = vec![("User-Agent", "raw-test/1")];
    if let Some(t) = token {
        headers.push(("PRIVATE-TOKEN", t));
    }
    Conn::open(fake.addr())
        .send(method, target, &headers)
        .expect("response")
}

fn get(fake: &FakeGitlab, target: &str) -> Resp {
    call(fake, "GET", target, Some(TOKEN))
}

fn delete(fake: &FakeGitlab, target: &str) -> Resp {
    call(fake, "DELETE", target, Some(TOKEN))
}

// ---------------------------------------------------------------- fixture

const APP: u64 = 10;
const ROOT_REPO: u64 = 1;
const BIG_REPO: u64 = 2;
const PROT_REPO: u64 = 3;
const OTHER_REPO: u64 = 4;

fn seed() -> Seed {
    let big = (0..250).map(|i| Tag::new(format!("t{i:03}"), None)).collect();
    Seed {
        token: TOKEN.into(),
        read_only_token: Some(RO_TOKEN.into()),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![
            Project {
                id: APP,
                path: "Group/Sub/App".into(),
                repositories: vec![
                    Repository {
                        id: ROOT_REPO,
                        name: String::new(),
                        tags: ["b", "a", "B", "A", "10", "9", "latest"]
                            .into_iter()
                            .map(|n| Tag::new(n, Some("2019-01-06T16:49:51.272+00:00".into())))
                            .chain([Tag::new("no-date", None)])
                            .collect(),
                    },
                    Repository {
                        id: BIG_REPO,
                        name: "Worker".into(),
                        tags: big,
                    },
                    Repository {
                        id: PROT_REPO,
                        name: "prot".into(),
                        tags: vec![Tag::new("keep", None).protected(), Tag::new("drop", None)],
                    },
                ],
            },
            Project {
                id: 11,
                path: "group/other".into(),
                repositories: vec![Repository {
                    id: OTHER_REPO,
                    name: String::new(),
                    tags: vec![Tag::new("x", None)],
                }],
            },
            Project {
                id: 12,
                path: "elsewhere/app".into(),
                repositories: vec![Repository {
                    id: 5,
                    name: String::new(),
                    tags: vec![Tag::new("y", None)],
                }],
            },
        ],
        groups: vec![
            Group {
                id: 100,
                path: "group".into(),
            },
            Group {
                id: 101,
                path: "Group/Sub".into(),
            },
            Group {
                id: 102,
                path: "empty".into(),
            },
        ],
        // These tests describe the legacy registry's REST answers;
        // tests/modern.rs covers the metadata database's.
        metadata_database: false,
        ..Seed::default()
    }
}

fn start() -> FakeGitlab {
    FakeGitlab::start(seed()).expect("start")
}

const BIG_TAGS: &str = "/api/v4/projects/10/registry/repositories/2/tags";

// ---------------------------------------------------------------- pagination

#[test]
fn tags_pagination_headers_and_links() {
    let fake = start();
    let base = format!("http://{}{BIG_TAGS}", fake.addr());
    let link = |page: u64| format!("{base}?page={page}&per_page=100");

    let p1 = get(&fake, &format!("{BIG_TAGS}?per_page=100"));
    assert_eq!(p1.status, 200);
    assert_eq!(p1.header("content-type"), Some("application/json"));
    assert_eq!(p1.names().len(), 100);
    assert_eq!(p1.names()[0], "t000");
    assert_eq!(p1.header("x-page"), Some("1"));
    assert_eq!(p1.header("x-per-page"), Some("100"));
    assert_eq!(p1.header("x-total"), Some("250"));
    assert_eq!(p1.header("x-total-pages"), Some("3"));
    assert_eq!(p1.header("x-next-page"), Some("2"));
    assert_eq!(p1.header("x-prev-page"), Some(""));
    assert_eq!(
        p1.header("link").unwrap(),
        format!(
            "<{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
            link(2),
            link(1),
            link(3)
        )
    );

    let p2 = get(&fake, &format!("{BIG_TAGS}?per_page=100&page=2"));
    assert_eq!(p2.names()[0], "t100");
    assert_eq!(p2.header("x-next-page"), Some("3"));
    assert_eq!(p2.header("x-prev-page"), Some("1"));
    assert_eq!(
        p2.header("link").unwrap(),
        format!(
            "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
            link(1),
            link(3),
            link(1),
            link(3)
        )
    );

    let p3 = get(&fake, &format!("{BIG_TAGS}?page=3&per_page=100"));
    assert_eq!(p3.names().len(), 50);
    assert_eq!(p3.names().last().unwrap(), "t249");
    assert_eq!(p3.header("x-next-page"), Some(""));
    assert_eq!(p3.header("x-prev-page"), Some("2"));
    assert_eq!(
        p3.header("link").unwrap(),
        format!(
            "<{}>; rel=\"prev\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
            link(2),
            link(1),
            link(3)
        )
    );

    // Past the end: empty, no prev/next (Kaminari's out_of_range).
    let p9 = get(&fake, &format!("{BIG_TAGS}?page=9&per_page=100"));
    assert_eq!(p9.status, 200);
    assert_eq!(p9.text(), "[]");
    assert_eq!(p9.header("x-page"), Some("9"));
    assert_eq!(p9.header("x-total"), Some("250"));
    assert_eq!(p9.header("x-total-pages"), Some("3"));
    assert_eq!(p9.header("x-next-page"), Some(""));
    assert_eq!(p9.header("x-prev-page"), Some(""));
    assert_eq!(
        p9.header("link").unwrap(),
        format!("<{}>; rel=\"first\", <{}>; rel=\"last\"", link(1), link(3))
    );
}

#[test]
fn per_page_default_and_clamping() {
    let fake = start();
    let d = get(&fake, BIG_TAGS);
    assert_eq!(d.names().len(), 20);
    assert_eq!(d.header("x-per-page"), Some("20"));
    assert_eq!(d.header("x-total-pages"), Some("13"));

    let big = get(&fake, &format!("{BIG_TAGS}?per_page=1000"));
    assert_eq!(big.status, 200);
    assert_eq!(big.names().len(), 100);
    assert_eq!(big.header("x-per-page"), Some("100"));
    assert_eq!(big.header("x-total-pages"), Some("3"));
    assert!(big.header("link").unwrap().contains("per_page=100>"));

    let zero = get(&fake, &format!("{BIG_TAGS}?per_page=0&page=0"));
    assert_eq!(zero.names(), ["t000"]);
    assert_eq!(zero.header("x-per-page"), Some("1"));
    assert_eq!(zero.header("x-page"), Some("1"));
    assert_eq!(zero.header("x-total-pages"), Some("250"));

    let bad = get(&fake, &format!("{BIG_TAGS}?page=abc"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json(), json!({"error": "page is invalid"}));
    let bad = get(&fake, &format!("{BIG_TAGS}?per_page=1.5"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json(), json!({"error": "per_page is invalid"}));
}

#[test]
fn link_keeps_other_params_and_uses_host_header() {
    let fake = start();
    let r = Conn::open(fake.addr())
        .send(
            "GET",
            &format!("{BIG_TAGS}?zeta=1&per_page=100&alpha=a%20b"),
            &[("Host", "gitlab.example.com:8443"), ("PRIVATE-TOKEN", TOKEN)],
        )
        .unwrap();
    assert_eq!(
        r.header("link").unwrap().split(", ").next().unwrap(),
        format!("<http://gitlab.example.com:8443{BIG_TAGS}?alpha=a+b&page=2&per_page=100&zeta=1>; rel=\"next\"")
    );
}

#[test]
fn empty_list_has_one_page() {
    let fake = start();
    fake.add_project(Project {
        id: 50,
        path: "bare/project".into(),
        repositories: vec![],
    });
    let r = get(&fake, "/api/v4/projects/50/registry/repositories");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "[]");
    assert_eq!(r.header("x-total"), Some("0"));
    assert_eq!(r.header("x-total-pages"), Some("1"));
    assert_eq!(r.header("x-next-page"), Some(""));
    assert_eq!(r.header("x-prev-page"), Some(""));
}

// ---------------------------------------------------------------- entities

#[test]
fn repositories_by_encoded_path_case_insensitive() {
    let fake = start();
    let by_id = get(&fake, "/api/v4/projects/10/registry/repositories");
    let by_path = get(&fake, "/api/v4/projects/group%2Fsub%2Fapp/registry/repositories");
    let by_other_case = get(&fake, "/api/v4/projects/GROUP%2fSUB%2FApp/registry/repositories");
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.json(), by_path.json());
    assert_eq!(by_id.json(), by_other_case.json());
    let repos = by_id.json();
    assert_eq!(
        repos[0],
        json!({
            "id": 1,
            "name": "",
            "path": "group/sub/app",
            "project_id": 10,
            "location": "registry.example.com:5005/group/sub/app",
            "created_at": repos[0]["created_at"],
            "cleanup_policy_started_at": null,
            "status": null
        })
    );
    let keys: Vec<&String> = repos[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8);
    let created = repos[0]["created_at"].as_str().unwrap();
    assert_eq!(created.len(), "2019-01-10T13:38:57.391Z".len());
    assert!(created.ends_with('Z'));
    assert_eq!(repos[1]["path"], "group/sub/app/worker");
    assert_eq!(repos[1]["name"], "Worker");
    assert_eq!(repos[1]["location"], "registry.example.com:5005/group/sub/app/worker");
    assert_eq!(by_id.header("x-total"), Some("3"));

    // Unencoded slashes match no route at all.
    let raw = get(&fake, "/api/v4/projects/group/sub/app/registry/repositories");
    assert_eq!(raw.status, 404);
    assert_eq!(raw.json(), json!({"error": "404 Not Found"}));

    let missing = get(&fake, "/api/v4/projects/nope%2Fnope/registry/repositories");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"message": "404 Project Not Found"}));
    let missing = get(&fake, "/api/v4/projects/999/registry/repositories");
    assert_eq!(missing.json(), json!({"message": "404 Project Not Found"}));
}

#[test]
fn repositories_with_tags_options() {
    let fake = start();
    let r = get(
        &fake,
        "/api/v4/projects/10/registry/repositories?tags=true&tags_count=true&per_page=1&page=3",
    );
    let repo = &r.json()[0];
    assert_eq!(repo["id"], 3);
    assert_eq!(repo["tags_count"], 2);
    assert_eq!(
        repo["tags"],
        json!([
            {"name": "drop", "path": "group/sub/app/prot:drop", "location": "registry.example.com:5005/group/sub/app/prot:drop"},
            {"name": "keep", "path": "group/sub/app/prot:keep", "location": "registry.example.com:5005/group/sub/app/prot:keep"}
        ])
    );
    let bad = get(&fake, "/api/v4/projects/10/registry/repositories?tags=maybe");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json(), json!({"error": "tags is invalid"}));
}

#[test]
fn group_repositories() {
    let fake = start();
    let r = get(&fake, "/api/v4/groups/group/registry/repositories");
    assert_eq!(r.status, 200);
    let ids: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(r.header("x-total"), Some("4"));

    let sub = get(
        &fake,
        "/api/v4/groups/group%2FSUB/registry/repositories?per_page=2&page=2",
    );
    assert_eq!(sub.json()[0]["id"], 3);
    assert_eq!(sub.header("x-total"), Some("3"));
    assert_eq!(sub.header("x-prev-page"), Some("1"));
    let by_id = get(&fake, "/api/v4/groups/101/registry/repositories");
    assert_eq!(by_id.header("x-total"), Some("3"));

    let empty = get(&fake, "/api/v4/groups/empty/registry/repositories");
    assert_eq!(empty.text(), "[]");
    let missing = get(&fake, "/api/v4/groups/nope/registry/repositories");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"message": "404 Group Not Found"}));
    // "gro" is not a prefix match of "group/..." paths
    fake.add_project(Project {
        id: 60,
        path: "groupies/x".into(),
        repositories: vec![Repository {
            id: 60,
            name: "".into(),
            tags: vec![],
        }],
    });
    let r = get(&fake, "/api/v4/groups/group/registry/repositories");
    assert_eq!(r.header("x-total"), Some("4"));
}

#[test]
fn tags_list_sorted_by_collation_with_paths() {
    let fake = start();
    let r = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags");
    // Case folded first, then the full name's bytes break the tie.
    assert_eq!(r.names(), ["10", "9", "A", "a", "B", "b", "latest", "no-date"]);
    assert_eq!(
        r.json()[0],
        json!({"name": "10", "path": "group/sub/app:10", "location": "registry.example.com:5005/group/sub/app:10"})
    );
    assert_eq!(fake.tag_names(ROOT_REPO), r.names());

    let other = get(&fake, "/api/v4/projects/10/registry/repositories/4/tags");
    assert_eq!(other.status, 404);
    assert_eq!(other.json(), json!({"message": "404 Repository Not Found"}));
    let bad = get(&fake, "/api/v4/projects/10/registry/repositories/x/tags");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json(), json!({"error": "repository_id is invalid"}));
    let keyset = get(
        &fake,
        "/api/v4/projects/10/registry/repositories/1/tags?pagination=keyset",
    );
    assert_eq!(keyset.status, 405);
}

#[test]
fn tag_details() {
    let fake = start();
    let r = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/latest");
    assert_eq!(r.status, 200);
    let d = r.json();
    let obj = d.as_object().unwrap();
    // Sorted: key order depends on serde_json's preserve_order, which the workspace may enable.
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = vec![
        "name",
        "path",
        "location",
        "revision",
        "short_revision",
        "digest",
        "created_at",
        "total_size",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(d["name"], "latest");
    assert_eq!(d["path"], "group/sub/app:latest");
    assert_eq!(d["location"], "registry.example.com:5005/group/sub/app:latest");
    assert_eq!(d["created_at"], "2019-01-06T16:49:51.272+00:00");
    assert!(d["total_size"].as_u64().unwrap() > 0);
    let rev = d["revision"].as_str().unwrap();
    assert_eq!(rev.len(), 64);
    assert!(rev.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(d["short_revision"].as_str().unwrap(), &rev[..9]);
    let digest = d["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71);
    assert_ne!(&digest[7..], rev);
    // deterministic
    assert_eq!(
        get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/latest").json(),
        d
    );
    let other = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/a").json();
    assert_ne!(other["revision"], d["revision"]);

    let null = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/no-date");
    assert!(null.text().contains(r#""created_at":null"#));

    let missing = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"message": "404 Tag Not Found"}));

    // Raw JSON field order as GitLab's entity.
    let text = r.text();
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("name") < pos("path") && pos("location") < pos("revision"));
    assert!(pos("digest") < pos("created_at") && pos("created_at") < pos("total_size"));
}

// ---------------------------------------------------------------- auth & errors

#[test]
fn authentication() {
    let fake = start();
    let none = call(&fake, "GET", "/api/v4/version", None);
    assert_eq!(none.status, 401);
    assert_eq!(none.json(), json!({"message": "401 Unauthorized"}));
    let wrong = call(&fake, "GET", "/api/v4/projects/10/registry/repositories", Some("x"));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json(), json!({"message": "401 Unauthorized"}));

    let v = get(&fake, "/api/v4/version");
    assert_eq!(v.status, 200);
    assert_eq!(v.json(), json!({"version": "17.5.0-ee", "revision": "abc123"}));

    let bearer = Conn::open(fake.addr())
        .send(
            "GET",
            "/api/v4/version",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .unwrap();
    assert_eq!(bearer.status, 200);

    let ro_get = call(&fake, "GET", BIG_TAGS, Some(RO_TOKEN));
    assert_eq!(ro_get.status, 200);
    let ro_del = call(
        &fake,
        "DELETE",
        "/api/v4/projects/10/registry/repositories/2/tags/t000",
        Some(RO_TOKEN),
    );
    assert_eq!(ro_del.status, 403);
    assert_eq!(
        ro_del.json(),
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api"})
    );
    assert!(fake.tag_names(BIG_REPO).contains(&"t000".to_owned()));
    let unauth_del = call(
        &fake,
        "DELETE",
        "/api/v4/projects/10/registry/repositories/2/tags/t000",
        None,
    );
    assert_eq!(unauth_del.status, 401);
    assert!(fake.deleted().is_empty());
}

#[test]
fn unknown_routes_and_methods() {
    let fake = start();
    for path in [
        "/",
        "/api/v4/nothing",
        "/api/v4/projects/10/registry",
        "/api/v4/projects/10/registry/repositories/",
    ] {
        let r = get(&fake, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), json!({"error": "404 Not Found"}));
    }
    let r = call(
        &fake,
        "POST",
        "/api/v4/projects/10/registry/repositories/1/tags/a",
        Some(TOKEN),
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json(), json!({"message": "405 Method Not Allowed"}));
    let r = call(&fake, "PUT", "/api/v4/version", Some(TOKEN));
    assert_eq!(r.status, 405);
    assert_eq!(fake.stats().count(Route::Unknown), 6);
}

// ---------------------------------------------------------------- delete

#[test]
fn delete_tag_changes_state() {
    let fake = start();
    let tag = "/api/v4/projects/10/registry/repositories/2/tags/t005";
    let r = delete(&fake, tag);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "200");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(get(&fake, tag).status, 404);
    assert!(!fake.tag_names(BIG_REPO).contains(&"t005".to_owned()));
    let list = get(&fake, &format!("{BIG_TAGS}?per_page=10"));
    assert_eq!(list.header("x-total"), Some("249"));
    assert_eq!(list.names()[5], "t006");

    // Deleting again: the legacy path answers 200 for a missing tag.
    let again = delete(&fake, tag);
    assert_eq!(again.status, 200);
    assert_eq!(again.text(), "200");
    // Path id works for DELETE too.
    let by_path = delete(
        &fake,
        "/api/v4/projects/group%2Fsub%2Fapp/registry/repositories/2/tags/t006",
    );
    assert_eq!(by_path.status, 200);
    assert_eq!(
        fake.deleted(),
        [(BIG_REPO, "t005".to_owned()), (BIG_REPO, "t006".to_owned())]
    );

    let wrong_project = delete(&fake, "/api/v4/projects/11/registry/repositories/2/tags/t007");
    assert_eq!(wrong_project.status, 404);
    assert_eq!(wrong_project.json(), json!({"message": "404 Repository Not Found"}));
    assert_eq!(fake.tag_names(BIG_REPO).len(), 248);
}

#[test]
fn protected_tag_cannot_be_deleted() {
    let fake = start();
    let r = delete(&fake, "/api/v4/projects/10/registry/repositories/3/tags/keep");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"message": "403 Forbidden - cannot delete protected tag(s)"})
    );
    assert_eq!(fake.tag_names(PROT_REPO), ["drop", "keep"]);
    assert_eq!(
        delete(&fake, "/api/v4/projects/10/registry/repositories/3/tags/drop").status,
        200
    );
    assert_eq!(fake.tag_names(PROT_REPO), ["keep"]);
}

#[test]
fn add_tag_and_project_while_running() {
    let fake = start();
    fake.add_tag(OTHER_REPO, Tag::aged("new", Duration::from_secs(10)));
    assert_eq!(
        get(&fake, "/api/v4/projects/11/registry/repositories/4/tags").names(),
        ["new", "x"]
    );
    fake.add_project(Project {
        id: 70,
        path: "group/Late".into(),
        repositories: vec![Repository {
            id: 70,
            name: "img".into(),
            tags: vec![Tag::new("v1", None)],
        }],
    });
    let r = get(&fake, "/api/v4/projects/group%2Flate/registry/repositories");
    assert_eq!(r.json()[0]["path"], "group/late/img");
    assert_eq!(
        get(&fake, "/api/v4/groups/group/registry/repositories").header("x-total"),
        Some("5")
    );
}

#[test]
#[should_panic(expected = "duplicate repository id")]
fn add_project_rejects_duplicate_repository_ids() {
    let fake = start();
    fake.add_project(Project {
        id: 80,
        path: "dup/x".into(),
        repositories: vec![Repository {
            id: 1,
            name: "".into(),
            tags: vec![],
        }],
    });
}

#[test]
fn start_rejects_duplicate_seed() {
    let mut s = seed();
    s.projects[1].id = APP;
    assert_eq!(FakeGitlab::start(s).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------- faults

#[test]
fn too_many_requests_once_then_success() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::Tags, Fault::too_many_requests(Some("3")), 1)],
        ..Faults::default()
    });
    let first = get(&fake, BIG_TAGS);
    assert_eq!(first.status, 429);
    assert_eq!(first.header("retry-after"), Some("3"));
    assert_eq!(first.header("content-type"), Some("text/plain"));
    assert_eq!(first.text().trim(), "Retry later");
    // other routes are unaffected
    assert_eq!(get(&fake, "/api/v4/version").status, 200);
    let second = get(&fake, BIG_TAGS);
    assert_eq!(second.status, 200);

    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::Any, Fault::status(429), 2)],
        ..Faults::default()
    });
    let a = get(&fake, "/api/v4/version");
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), None);
    assert_eq!(get(&fake, BIG_TAGS).status, 429);
    assert_eq!(get(&fake, BIG_TAGS).status, 200);

    let stats = fake.stats();
    assert_eq!(stats.by_status[&429], 3);
    assert_eq!(stats.count(Route::Tags), 4);
}

#[test]
fn status_fault_does_not_perform_the_request() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::DeleteTag, Fault::status(500), 1)],
        ..Faults::default()
    });
    let tag = "/api/v4/projects/10/registry/repositories/2/tags/t001";
    let r = delete(&fake, tag);
    assert_eq!(r.status, 500);
    assert_eq!(r.json(), json!({"message": "500 Internal Server Error"}));
    assert!(fake.tag_names(BIG_REPO).contains(&"t001".to_owned()));
    assert_eq!(delete(&fake, tag).status, 200);
    assert!(!fake.tag_names(BIG_REPO).contains(&"t001".to_owned()));

    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Any, Fault::html_502())],
        ..Faults::default()
    });
    let r = get(&fake, "/api/v4/version");
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<html>"));
    fake.clear_faults();
    assert_eq!(get(&fake, "/api/v4/version").status, 200);
}

#[test]
fn delete_then_502_deletes() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::DeleteTag, Fault::DeleteThen502, 1)],
        ..Faults::default()
    });
    let tag = "/api/v4/projects/10/registry/repositories/2/tags/t002";
    let r = delete(&fake, tag);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.text().contains("Bad Gateway"));
    assert_eq!(fake.deleted(), [(BIG_REPO, "t002".to_owned())]);
    // The retry finds nothing to delete and still gets 200.
    let retry = delete(&fake, tag);
    assert_eq!(retry.status, 200);
    assert_eq!(fake.deleted().len(), 1);
}

#[test]
fn drop_closes_without_response() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::Version, Fault::Drop, 1)],
        ..Faults::default()
    });
    let mut conn = Conn::open(fake.addr());
    conn.reader
        .get_mut()
        .write_all(format!("GET /api/v4/version HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {TOKEN}\r\n\r\n").as_bytes())
        .unwrap();
    let mut rest = Vec::new();
    // EOF (or a reset) without a single byte of response.
    match conn.reader.read_to_end(&mut rest) {
        Ok(n) => assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&rest)),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
    }
    assert_eq!(get(&fake, "/api/v4/version").status, 200);
    let stats = fake.stats();
    assert_eq!(stats.by_status.get(&0), Some(&1));
    assert_eq!(stats.requests[0].status, 0);
    assert_eq!(stats.count(Route::Version), 2);
}

#[test]
fn malformed_and_wrong_shape_json() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::Tags, Fault::MalformedJson, 1)],
        ..Faults::default()
    });
    let r = get(&fake, BIG_TAGS);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert!(r.text().starts_with("[{\"name\":\"t000\""));
    assert_eq!(r.header("x-total"), Some("250"));

    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Any, Fault::MalformedJson)],
        ..Faults::default()
    });
    // Even tiny bodies ("200", "[]") come out invalid.
    let d = delete(&fake, "/api/v4/projects/10/registry/repositories/2/tags/t003");
    assert_eq!(d.status, 200);
    assert!(serde_json::from_slice::<Value>(&d.body).is_err());
    assert!(!fake.tag_names(BIG_REPO).contains(&"t003".to_owned()));
    let e = get(&fake, "/api/v4/projects/10/registry/repositories?page=5");
    assert!(serde_json::from_slice::<Value>(&e.body).is_err());

    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::TagDetail, Fault::WrongShapeJson)],
        ..Faults::default()
    });
    let w = get(&fake, "/api/v4/projects/10/registry/repositories/1/tags/a");
    assert_eq!(w.status, 200);
    assert_eq!(w.json(), json!({"unexpected": true}));
}

#[test]
fn latency_and_delay() {
    let fake = start();
    fake.set_faults(Faults {
        latency: Duration::from_millis(150),
        rules: vec![FaultRule::always(Route::Tags, Fault::Delay(Duration::from_millis(250)))],
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(get(&fake, "/api/v4/version").status, 200);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(150) && e < Duration::from_millis(390),
        "{e:?}"
    );
    let t = Instant::now();
    assert_eq!(get(&fake, BIG_TAGS).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
    // 401s and 404s are slow too
    let t = Instant::now();
    assert_eq!(call(&fake, "GET", "/api/v4/version", None).status, 401);
    assert!(t.elapsed() >= Duration::from_millis(150));
    let rec = &fake.stats().requests[0];
    assert!(rec.finished.duration_since(rec.started) >= Duration::from_millis(150));
}

#[test]
fn delayed_delete_takes_effect_before_the_answer() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(
            Route::DeleteTag,
            Fault::Delay(Duration::from_millis(800)),
        )],
        ..Faults::default()
    });
    let mut conn = Conn::open(fake.addr());
    conn.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let r = conn.send(
        "DELETE",
        "/api/v4/projects/10/registry/repositories/2/tags/t004",
        &[("PRIVATE-TOKEN", TOKEN)],
    );
    assert!(r.is_err(), "client should time out");
    assert!(!fake.tag_names(BIG_REPO).contains(&"t004".to_owned()));
}

#[test]
fn probabilities_are_reproducible() {
    let fake = start();
    let faults = Faults {
        seed: 42,
        rules: vec![FaultRule::sometimes(Route::Version, Fault::status(503), 0.5)],
        ..Faults::default()
    };
    let mut conn = Conn::open(fake.addr());
    let mut run = || {
        fake.set_faults(faults.clone());
        (0..40)
            .map(|_| {
                conn.send("GET", "/api/v4/version", &[("PRIVATE-TOKEN", TOKEN)])
                    .unwrap()
                    .status
            })
            .collect::<Vec<u16>>()
    };
    let a = run();
    let b = run();
    assert_eq!(a, b);
    let failed = a.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&failed), "{failed} of 40");
    assert!(a.iter().all(|s| *s == 503 || *s == 200));
}

#[test]
fn first_matching_rule_wins_and_budgets_are_counted() {
    let fake = start();
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::Tags, Fault::status(500), 1),
            FaultRule::times(Route::Any, Fault::status(502), 2),
            FaultRule::sometimes(Route::Any, Fault::status(504), 0.0),
        ],
        ..Faults::default()
    });
    let statuses: Vec<u16> = (0..4).map(|_| get(&fake, BIG_TAGS).status).collect();
    assert_eq!(statuses, [500, 502, 502, 200]);
}

// ---------------------------------------------------------------- stats, concurrency

#[test]
fn max_in_flight_and_concurrency() {
    let fake = Arc::new(start());
    fake.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    });
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let t = Instant::now();
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let fake = Arc::clone(&fake);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut conn = Conn::open(fake.addr());
                barrier.wait();
                conn.send("GET", BIG_TAGS, &[("PRIVATE-TOKEN", TOKEN)]).unwrap().status
            })
        })
        .collect();
    for th in threads {
        assert_eq!(th.join().unwrap(), 200);
    }
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    let stats = fake.stats();
    assert_eq!(stats.max_in_flight, N as u64);
    assert_eq!(stats.total, N as u64);
    fake.reset_stats();
    let stats = fake.stats();
    assert_eq!((stats.total, stats.max_in_flight), (0, 0));
    assert!(stats.requests.is_empty());
}

#[test]
fn stats_by_route_and_records() {
    let fake = start();
    get(&fake, "/api/v4/version");
    get(&fake, "/api/v4/projects/10/registry/repositories");
    get(&fake, "/api/v4/groups/group/registry/repositories");
    get(&fake, BIG_TAGS);
    get(&fake, &format!("{BIG_TAGS}?page=2"));
    get(&fake, "/api/v4/projects/10/registry/repositories/2/tags/t010");
    delete(&fake, "/api/v4/projects/10/registry/repositories/2/tags/t010");
    call(&fake, "GET", "/api/v4/version", None);
    get(&fake, "/api/v4/nope");
    let s = fake.stats();
    assert_eq!(s.total, 9);
    assert_eq!(s.count(Route::Any), 9);
    let expected: Vec<(&str, u64)> = vec![
        ("DELETE tag", 1),
        ("GET group_repositories", 1),
        ("GET project_repositories", 1),
        ("GET tag_detail", 1),
        ("GET tags", 2),
        ("GET version", 2),
        ("unknown", 1),
    ];
    let got: Vec<(&str, u64)> = s.by_route.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(got, expected);
    assert_eq!(s.deletes(), 1);
    assert_eq!(s.count(Route::Tags), 2);
    assert_eq!(s.by_status[&200], 7);
    assert_eq!(s.by_status[&401], 1);
    assert_eq!(s.by_status[&404], 1);
    let tags_page2 = &s.requests[4];
    assert_eq!(tags_page2.method, "GET");
    assert_eq!(tags_page2.path_and_query, format!("{BIG_TAGS}?page=2"));
    assert_eq!(tags_page2.route, Route::Tags);
    assert_eq!(tags_page2.status, 200);
    assert_eq!(tags_page2.auth.as_deref(), Some(TOKEN));
    assert_eq!(tags_page2.user_agent.as_deref(), Some("raw-test/1"));
    assert!(tags_page2.finished >= tags_page2.started);
    assert_eq!(s.requests[7].auth, None);
    assert_eq!(s.requests[6].route, Route::DeleteTag);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let fake = start();
    let mut conn = Conn::open(fake.addr());
    for page in 1..=13 {
        let r = conn
            .send("GET", &format!("{BIG_TAGS}?page={page}"), &[("PRIVATE-TOKEN", TOKEN)])
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-page"), Some(page.to_string().as_str()));
    }
    let r = conn
        .send(
            "DELETE",
            "/api/v4/projects/10/registry/repositories/2/tags/t000",
            &[("PRIVATE-TOKEN", TOKEN)],
        )
        .unwrap();
    assert_eq!(r.text(), "200");
    // an error answer keeps the connection usable too
    assert_eq!(conn.send("GET", "/api/v4/version", &[]).unwrap().status, 401);
    assert_eq!(
        conn.send("GET", "/api/v4/version", &[("PRIVATE-TOKEN", TOKEN)])
            .unwrap()
            .status,
        200
    );
}

// ---------------------------------------------------------------- lifecycle

#[test]
fn works_inside_a_tokio_runtime_and_drops_cleanly() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async {
        let fake = FakeGitlab::start(seed()).unwrap();
        let addr = fake.addr();
        let status = tokio::task::spawn_blocking(move || {
            Conn::open(addr)
                .send("GET", "/api/v4/version", &[("PRIVATE-TOKEN", TOKEN)])
                .unwrap()
                .status
        })
        .await
        .unwrap();
        assert_eq!(status, 200);
        // an idle keep-alive connection must not block the drop
        let _idle = Conn::open(addr);
        drop(fake);
        addr
    });
    assert!(TcpStream::connect(addr).is_err(), "server still listening");
}

#[test]
fn url_and_start_on() {
    let fake = start();
    assert_eq!(fake.url(), format!("http://127.0.0.1:{}", fake.addr().port()));
    assert!(!fake.url().ends_with('/'));
    // The port is taken: start_on fails cleanly.
    let err = FakeGitlab::start_on(fake.addr(), seed()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}

// ---------------------------------------------------------------- seed helpers

#[test]
fn gitlab_time_format() {
    let ts = jiff::Timestamp::from_millisecond(1_546_793_391_272).unwrap();
    assert_eq!(gitlab_time(ts), "2019-01-06T16:49:51.272+00:00");
    let ts = jiff::Timestamp::from_second(1_546_793_391).unwrap();
    assert_eq!(gitlab_time(ts), "2019-01-06T16:49:51.000+00:00");
}

fn age_of(tag: &Tag) -> Duration {
    let ts: jiff::Timestamp = tag.created_at.as_deref().unwrap().parse().unwrap();
    let d = jiff::Timestamp::now().duration_since(ts);
    Duration::try_from(d).unwrap()
}

#[test]
fn tag_helpers() {
    let t = Tag::aged("v1", Duration::from_secs(3600));
    let age = age_of(&t);
    assert!(age >= Duration::from_secs(3600) && age < Duration::from_secs(3605));
    assert!(!t.protected);
    assert_eq!(t.total_size, Tag::new("v1", None).total_size);
    assert!(t.total_size.is_some());
    assert!(t.clone().protected().protected);
}

#[test]
fn demo_seed_matches_the_scenario() {
    let s = demo_seed();
    assert_eq!(s.token, "demo-token");
    assert_eq!(s.registry_host, "registry.demo.local:5005");
    let paths: Vec<&str> = s.projects.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["root/repo_1", "root/repo_2", "root/repo_3"]);
    let mut ids = std::collections::HashSet::new();
    for p in &s.projects {
        for r in &p.repositories {
            assert!(ids.insert(r.id), "repository ids must be unique");
            for t in &r.tags {
                assert!(!t.protected);
                assert_ne!(t.name, "latest");
                let age = age_of(t);
                let minutes = age.as_secs_f64() / 60.0;
                match (p.id, r.name.as_str()) {
                    (1, "legacy") => assert!((24.0 * 60.0..24.0 * 60.0 + 5.0).contains(&minutes)),
                    (1, _) => assert!((4.5..6.0).contains(&minutes), "{minutes}"),
                    (2, "test_image_repo_2") => assert!((4.5..50.0).contains(&minutes)),
                    (2, _) => assert!((60.0..70.0).contains(&minutes), "{minutes}"),
                    (3, _) => assert!((5.0..=6.01).contains(&minutes) && minutes > 2.0),
                    _ => unreachable!(),
                }
            }
        }
    }
    let repo = |p: usize, name: &str| s.projects[p].repositories.iter().find(|r| r.name == name).unwrap();
    assert_eq!(repo(0, "legacy").tags.len(), 2);
    let numbered: Vec<String> = (0..=10).map(|i| i.to_string()).collect();
    let names = |r: &Repository| r.tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(repo(1, "test_image_repo_2")), numbered);
    assert_eq!(names(repo(2, "test_image_repo_3")), numbered);
    assert!(s.projects[0].repositories.len() >= 4);
    assert!(s.projects[1].repositories.len() >= 4);

    let fake = FakeGitlab::start(s).unwrap();
    let r = Conn::open(fake.addr())
        .send(
            "GET",
            "/api/v4/projects/root%2Frepo_2/registry/repositories",
            &[("PRIVATE-TOKEN", "demo-token")],
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["location"], "registry.demo.local:5005/root/repo_2/api");
}
