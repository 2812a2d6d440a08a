//! Branches, merge requests and Git tags, over HTTP: the pages GitLab
//! gives, the state tests change, the cut-short knob, faults on each
//! route; and forks in the project entity.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Resp, send};
use fake_gitlab::{
    Branch, FakeGitlab, Fault, FaultRule, Faults, Group, MergeRequest, MergeRequestState, Project, Repository, Route,
    Seed, Tag,
};
use serde_json::Value;

const TOKEN: &str = "t0ken";

/// Project 1 `acme/shop` with `branches` (none given: GitLab's default
/// `main`) and merge requests.
fn start(branches: Option<Vec<Branch>>, merge_requests: Vec<MergeRequest>, keyset_flag: bool) -> FakeGitlab {
    FakeGitlab::start(Seed {
        token: TOKEN.into(),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![Project {
            id: 1,
            path: "acme/shop".into(),
            repositories: Vec::new(),
        }],
        branches: branches.map(|b| BTreeMap::from([(1, b)])).unwrap_or_default(),
        merge_requests: BTreeMap::from([(1, merge_requests)]),
        branch_keyset_pagination: keyset_flag,
        ..Seed::default()
    })
    .unwrap()
}

/// `b000` … `b249`, in an order that is not the listing's.
fn many_branches(n: usize) -> Vec<Branch> {
    (0..n).rev().map(|i| Branch::new(format!("b{i:03}"))).collect()
}

fn get(fake: &FakeGitlab, path: &str) -> Resp {
    send(fake, "GET", path, Some(TOKEN), "")
}

fn names(resp: &Resp) -> Vec<String> {
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|b| b["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// The `rel="next"` URL of a `Link` header, made relative to the server.
fn next_link(resp: &Resp, fake: &FakeGitlab) -> Option<String> {
    let link = resp.header("link")?;
    let next = link.split(", ").find(|l| l.ends_with("rel=\"next\""))?;
    let url = next.strip_prefix('<')?.split_once('>')?.0;
    Some(url.strip_prefix(&fake.url()).expect("a link to this server").to_owned())
}

const BRANCHES: &str = "/api/v4/projects/1/repository/branches";

#[test]
fn the_default_project_has_a_protected_default_main() {
    let fake = start(None, Vec::new(), true);
    let resp = get(&fake, &format!("{BRANCHES}?pagination=keyset"));
    let body = resp.json();
    assert_eq!(body.as_array().unwrap().len(), 1);
    let main = &body[0];
    assert_eq!(main["name"], "main");
    assert_eq!(main["default"], true);
    assert_eq!(main["protected"], true);
    assert_eq!(main["merged"], false);
    assert_eq!(main["can_push"], true);
    assert_eq!(main["developers_can_push"], false);
    assert_eq!(main["developers_can_merge"], false);
    let id = main["commit"]["id"].as_str().unwrap();
    assert_eq!(id.len(), 40);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(id.starts_with(main["commit"]["short_id"].as_str().unwrap()));
    assert!(main["web_url"].as_str().unwrap().ends_with("/acme/shop/-/tree/main"));
    assert_eq!(fake.branch_names(1), ["main"]);
}

#[test]
fn keyset_pages_follow_gitaly_and_link_while_full() {
    let fake = start(Some(many_branches(250)), Vec::new(), true);
    let mut path = format!("{BRANCHES}?pagination=keyset&per_page=100");
    let mut pages = Vec::new();
    let mut listed = Vec::new();
    loop {
        let resp = get(&fake, &path);
        assert_eq!(resp.header("x-total"), None);
        assert_eq!(resp.header("x-page"), None);
        assert_eq!(resp.header("x-next-page"), None);
        let page = names(&resp);
        pages.push(page.len());
        listed.extend(page);
        match next_link(&resp, &fake) {
            Some(next) => {
                let last = listed.last().unwrap();
                assert_eq!(
                    next,
                    format!("{BRANCHES}?page_token={last}&pagination=keyset&per_page=100")
                );
                path = next;
            }
            None => break,
        }
        assert!(pages.len() < 10, "no end");
    }
    assert_eq!(pages, [100, 100, 50]);
    let expected: Vec<String> = (0..250).map(|i| format!("b{i:03}")).collect();
    assert_eq!(listed, expected);
    // The link carries the other parameters, sorted as Ruby's to_query.
    let resp = get(&fake, &format!("{BRANCHES}?per_page=100&pagination=keyset"));
    assert_eq!(
        next_link(&resp, &fake).unwrap(),
        format!("{BRANCHES}?page_token=b099&pagination=keyset&per_page=100")
    );
}

#[test]
fn an_exactly_full_last_keyset_page_is_followed_by_an_empty_one() {
    let fake = start(Some(many_branches(200)), Vec::new(), true);
    let first = get(&fake, &format!("{BRANCHES}?pagination=keyset&per_page=100"));
    let second = get(&fake, &next_link(&first, &fake).unwrap());
    assert_eq!(names(&second).len(), 100);
    let third_path = next_link(&second, &fake).expect("a full page links on");
    let third = get(&fake, &third_path);
    assert_eq!(names(&third), Vec::<String>::new());
    assert_eq!(next_link(&third, &fake), None);
    // Default per_page is 20, at most 100.
    assert_eq!(names(&get(&fake, &format!("{BRANCHES}?pagination=keyset"))).len(), 20);
    assert_eq!(
        names(&get(&fake, &format!("{BRANCHES}?pagination=keyset&per_page=500"))).len(),
        100
    );
}

#[test]
fn a_page_token_starts_after_that_branch_and_must_exist() {
    let branches = ["main", "feature/login", "feature/a", "Zeta", "release-1"];
    let fake = start(
        Some(branches.iter().map(|&n| Branch::new(n)).collect()),
        Vec::new(),
        true,
    );
    // Byte order: uppercase before lowercase, `/` before letters.
    assert_eq!(
        names(&get(&fake, &format!("{BRANCHES}?pagination=keyset"))),
        ["Zeta", "feature/a", "feature/login", "main", "release-1"]
    );
    assert_eq!(
        names(&get(
            &fake,
            &format!("{BRANCHES}?pagination=keyset&page_token=feature%2Fa&per_page=2")
        )),
        ["feature/login", "main"]
    );
    assert_eq!(
        names(&get(
            &fake,
            &format!("{BRANCHES}?pagination=keyset&page_token=release-1")
        )),
        Vec::<String>::new()
    );
    let gone = get(&fake, &format!("{BRANCHES}?pagination=keyset&page_token=feature%2Fb"));
    assert_eq!(gone.status, 422, "{}", gone.body);
    assert_eq!(gone.json()["message"], "Invalid page token: refs/heads/feature/b");
}

#[test]
fn offset_pages_are_kaminari_after_a_first_page_from_gitaly() {
    let fake = start(Some(many_branches(250)), Vec::new(), true);
    let mut listed = Vec::new();
    let mut page = 1;
    let mut headers = Vec::new();
    loop {
        let resp = get(&fake, &format!("{BRANCHES}?per_page=100&page={page}"));
        listed.extend(names(&resp));
        headers.push((
            resp.header("x-total").unwrap().to_owned(),
            resp.header("x-total-pages").unwrap().to_owned(),
            resp.header("x-next-page").unwrap().to_owned(),
        ));
        match resp.header("x-next-page").unwrap() {
            "" => break,
            n => page = n.parse().unwrap(),
        }
        assert!(page < 10, "no end");
    }
    let expected: Vec<String> = (0..250).map(|i| format!("b{i:03}")).collect();
    assert_eq!(listed, expected);
    let h = |t: &str, p: &str, n: &str| (t.to_owned(), p.to_owned(), n.to_owned());
    assert_eq!(headers, [h("250", "3", "2"), h("250", "3", "3"), h("250", "3", "")]);

    // GitLab's first page always names a page 2 and counts one page too
    // many when the total is a multiple of per_page.
    let fake = start(Some(many_branches(200)), Vec::new(), true);
    let first = get(&fake, &format!("{BRANCHES}?per_page=100"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(first.header("x-total-pages"), Some("3"));
    let second = get(&fake, &format!("{BRANCHES}?per_page=100&page=2"));
    assert_eq!(names(&second).len(), 100);
    assert_eq!(second.header("x-next-page"), Some(""));
    assert_eq!(second.header("x-total-pages"), Some("2"));

    // Without the feature flag: Kaminari throughout, keyset ignored.
    let fake = start(Some(many_branches(200)), Vec::new(), false);
    let first = get(&fake, &format!("{BRANCHES}?per_page=100&pagination=keyset"));
    assert_eq!(names(&first).len(), 100);
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(first.header("x-total-pages"), Some("2"));
    assert!(next_link(&first, &fake).unwrap().contains("page=2"));
    let small = start(None, Vec::new(), false);
    assert_eq!(get(&small, BRANCHES).header("x-next-page"), Some(""));
}

#[test]
fn unknown_projects_and_bad_tokens_are_refused() {
    let fake = start(None, Vec::new(), true);
    for path in [
        "/api/v4/projects/9/repository/branches",
        "/api/v4/projects/acme%2Fnone/repository/branches",
        "/api/v4/projects/9/merge_requests",
    ] {
        let resp = get(&fake, path);
        assert_eq!(resp.status, 404, "{path}");
        assert_eq!(resp.json(), serde_json::json!({"message": "404 Project Not Found"}));
    }
    assert_eq!(
        names(&get(&fake, "/api/v4/projects/ACME%2Fshop/repository/branches")),
        ["main"]
    );
    for token in [None, Some("wrong")] {
        for path in [
            BRANCHES,
            "/api/v4/projects/1/merge_requests",
            "/api/v4/projects/9/merge_requests",
        ] {
            let resp = send(&fake, "GET", path, token, "");
            assert_eq!(resp.status, 401, "{path}");
            assert_eq!(resp.json(), serde_json::json!({"message": "401 Unauthorized"}));
        }
    }
    assert_eq!(send(&fake, "PUT", BRANCHES, Some(TOKEN), "").status, 405);
    let stats = fake.stats();
    assert_eq!(stats.count(Route::Branches), 3 + 2);
    assert_eq!(stats.count(Route::MergeRequests), 1 + 4);
}

#[test]
fn branch_changes_show_in_the_next_listing() {
    let fake = start(
        Some(vec![Branch::default_branch("main"), Branch::new("feature/login")]),
        Vec::new(),
        true,
    );
    let list = || names(&get(&fake, &format!("{BRANCHES}?pagination=keyset&per_page=100")));
    assert_eq!(list(), ["feature/login", "main"]);
    assert!(fake.delete_branch(1, "feature/login"));
    assert!(!fake.delete_branch(1, "feature/login"));
    assert_eq!(list(), ["main"]);
    fake.add_branch(1, Branch::new("feature/cart").protected());
    fake.add_branch(1, Branch::default_branch("develop"));
    assert_eq!(list(), ["develop", "feature/cart", "main"]);
    let body = get(&fake, BRANCHES).json();
    let flags: Vec<(bool, bool)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["default"].as_bool().unwrap(), b["protected"].as_bool().unwrap()))
        .collect();
    // The new default takes over; `main` stays protected.
    assert_eq!(flags, [(true, true), (false, true), (false, true)]);
    assert_eq!(fake.branch_names(1), ["develop", "feature/cart", "main"]);
}

fn five_merge_requests() -> Vec<MergeRequest> {
    use MergeRequestState::*;
    vec![
        MergeRequest::new(11, Opened),
        MergeRequest::new(12, Merged).from_branch("feature/gone"),
        MergeRequest::new(13, Opened),
        MergeRequest::new(14, Closed),
        MergeRequest::new(15, Locked),
    ]
}

fn iids(resp: &Resp) -> Vec<u64> {
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["iid"].as_u64().unwrap())
        .collect()
}

const MRS: &str = "/api/v4/projects/1/merge_requests";

#[test]
fn merge_requests_by_iid_newest_first() {
    let fake = start(None, five_merge_requests(), true);
    let resp = get(
        &fake,
        &format!("{MRS}?view=simple&state=all&per_page=100&iids%5B%5D=12&iids%5B%5D=14&iids%5B%5D=99&iids%5B%5D=13"),
    );
    assert_eq!(iids(&resp), [14, 13, 12]);
    assert_eq!(resp.header("x-total"), Some("3"));
    let states: Vec<Value> = resp
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].clone())
        .collect();
    assert_eq!(states, ["closed", "opened", "merged"]);
    // view=simple: exactly these fields.
    let mut keys: Vec<String> = resp.json()[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "description",
            "id",
            "iid",
            "project_id",
            "state",
            "title",
            "updated_at",
            "web_url"
        ]
    );
    // The full entity names the branches.
    let full = get(&fake, &format!("{MRS}?iids[]=12"));
    let mr = &full.json()[0];
    assert_eq!(mr["source_branch"], "feature/gone");
    assert_eq!(mr["target_branch"], "main");
    assert!(mr["merged_at"].is_string());
    let open = get(&fake, &format!("{MRS}?iids[]=13"));
    assert_eq!(open.json()[0]["source_branch"], "mr-13");
    assert!(open.json()[0]["merged_at"].is_null());
    // Comma-separated iids work too; no iids means all.
    assert_eq!(iids(&get(&fake, &format!("{MRS}?iids=11,15"))), [15, 11]);
    assert_eq!(iids(&get(&fake, MRS)), [15, 14, 13, 12, 11]);
    assert_eq!(iids(&get(&fake, &format!("{MRS}?iids[]=-1"))), Vec::<u64>::new());
}

#[test]
fn merge_requests_filter_by_state_and_change() {
    let fake = start(None, five_merge_requests(), true);
    let by = |state: &str| iids(&get(&fake, &format!("{MRS}?state={state}")));
    assert_eq!(by("opened"), [13, 11]);
    assert_eq!(by("merged"), [12]);
    assert_eq!(by("closed"), [14]);
    assert_eq!(by("locked"), [15]);
    assert_eq!(by("all"), [15, 14, 13, 12, 11]);
    fake.set_merge_request_state(1, 13, MergeRequestState::Merged);
    fake.add_merge_request(1, MergeRequest::new(16, MergeRequestState::Opened));
    assert_eq!(by("merged"), [13, 12]);
    assert_eq!(by("opened"), [16, 11]);
    assert_eq!(fake.merge_request_state(1, 13), Some(MergeRequestState::Merged));
    assert_eq!(fake.merge_request_state(1, 99), None);
    let bad = get(&fake, &format!("{MRS}?state=open"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "state does not have a valid value");
}

#[test]
fn a_bad_iid_is_a_400() {
    let fake = start(None, five_merge_requests(), true);
    for query in ["iids%5B%5D=12&iids%5B%5D=x", "iids[]=1.5", "iids=12,abc", "iids[]=-"] {
        let resp = get(&fake, &format!("{MRS}?{query}"));
        assert_eq!(resp.status, 400, "{query}");
        assert_eq!(resp.json(), serde_json::json!({"error": "iids is invalid"}), "{query}");
    }
}

#[test]
fn merge_requests_page_by_offset() {
    let many: Vec<MergeRequest> = (1..=150)
        .map(|i| MergeRequest::new(i, MergeRequestState::Merged))
        .collect();
    let fake = start(None, many, true);
    let asked: String = (1..=150).map(|i| format!("&iids%5B%5D={i}")).collect();
    let first = get(&fake, &format!("{MRS}?view=simple&per_page=100{asked}"));
    assert_eq!(first.header("x-total"), Some("150"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    let next = next_link(&first, &fake).unwrap();
    // The link keeps every iid, in order, as Ruby's to_query writes an array.
    assert!(next.contains("iids%5B%5D=1&iids%5B%5D=2&iids%5B%5D=3&"), "{next}");
    let second = get(&fake, &next);
    assert_eq!(second.header("x-next-page"), Some(""));
    let mut all = iids(&first);
    all.extend(iids(&second));
    assert_eq!(all, (1..=150).rev().collect::<Vec<u64>>());
}

#[test]
fn fault_rules_fire_on_both_routes() {
    let fake = start(Some(many_branches(30)), five_merge_requests(), true);
    fake.set_faults(Faults {
        rules: vec![
            FaultRule::times(Route::Branches, Fault::status(500), 1).after(1),
            FaultRule::times(Route::MergeRequests, Fault::too_many_requests(Some("7")), 1),
            FaultRule::times(Route::MergeRequests, Fault::Drop, 1),
        ],
        ..Faults::default()
    });
    let keyset = format!("{BRANCHES}?pagination=keyset&per_page=20");
    assert_eq!(get(&fake, &keyset).status, 200);
    let failed = get(&fake, &keyset);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["message"], "500 Internal Server Error");
    assert_eq!(get(&fake, &keyset).status, 200);
    let throttled = get(&fake, MRS);
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("7"));
    // Dropped: the connection closes without an answer.
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {MRS} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty());
    assert_eq!(iids(&get(&fake, MRS)).len(), 5);
    let stats = fake.stats();
    assert_eq!(stats.count(Route::Branches), 3);
    assert_eq!(stats.count(Route::MergeRequests), 3);
    assert_eq!(stats.by_status.get(&0), Some(&1));
}

#[test]
fn a_cut_branch_listing_ends_early_without_an_error() {
    let fake = start(Some(many_branches(250)), Vec::new(), true);
    fake.set_branch_listing_cut(1, Some(150));

    // Keyset: the page holding the 150th branch has no next link.
    let first = get(&fake, &format!("{BRANCHES}?pagination=keyset&per_page=100"));
    assert_eq!(names(&first).len(), 100);
    let second = get(&fake, &next_link(&first, &fake).unwrap());
    assert_eq!(second.status, 200);
    assert_eq!(names(&second).len(), 50);
    assert_eq!(next_link(&second, &fake), None);
    // Even when that page is full.
    fake.set_branch_listing_cut(1, Some(200));
    let second = get(&fake, &next_link(&first, &fake).unwrap());
    assert_eq!(names(&second).len(), 100);
    assert_eq!(next_link(&second, &fake), None);

    // Offset: no next page from the page holding the n-th branch, totals whole.
    fake.set_branch_listing_cut(1, Some(150));
    let first = get(&fake, &format!("{BRANCHES}?per_page=100"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    let second = get(&fake, &format!("{BRANCHES}?per_page=100&page=2"));
    assert_eq!(second.status, 200);
    assert_eq!(
        names(&second),
        (100..150).map(|i| format!("b{i:03}")).collect::<Vec<_>>()
    );
    assert_eq!(second.header("x-next-page"), Some(""));
    assert_eq!(next_link(&second, &fake), None);
    assert_eq!(second.header("x-total"), Some("250"));
    assert_eq!(second.header("x-total-pages"), Some("3"));
    fake.set_branch_listing_cut(1, Some(50));
    let first = get(&fake, &format!("{BRANCHES}?per_page=100"));
    assert_eq!(names(&first).len(), 50);
    assert_eq!(first.header("x-next-page"), Some(""));
    assert_eq!(first.header("x-total"), Some("250"));

    // Whole again.
    fake.set_branch_listing_cut(1, None);
    let second = get(&fake, &format!("{BRANCHES}?per_page=100&page=2"));
    assert_eq!(second.header("x-next-page"), Some("3"));
}

#[test]
fn the_branches_scenario_names_two_gone_refs() {
    let fake = FakeGitlab::start(fake_gitlab::branches_seed()).unwrap();
    let token = Some("demo-token");
    let branches = send(
        &fake,
        "GET",
        &format!("{BRANCHES}?pagination=keyset&per_page=100"),
        token,
        "",
    );
    assert_eq!(names(&branches), ["feature/login", "main"]);
    let mrs = send(
        &fake,
        "GET",
        &format!("{MRS}?view=simple&iids%5B%5D=12&iids%5B%5D=13"),
        token,
        "",
    );
    let states: Vec<(u64, String)> = mrs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["iid"].as_u64().unwrap(), m["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(states, [(13, "opened".to_owned()), (12, "merged".to_owned())]);
    let tags = fake.tag_names(1);
    assert_eq!(tags.len(), 6);
    for prefix in ["main-", "feature-login-", "feature-gone-", "mr-12-", "mr-13-"] {
        let tag = tags.iter().find(|t| t.starts_with(prefix)).expect(prefix);
        let sha = &tag[prefix.len()..];
        assert!(sha.len() == 8 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{tag}");
    }
    assert!(tags.contains(&"latest".to_owned()));
    let details = send(
        &fake,
        "GET",
        "/api/v4/projects/1/registry/repositories/1/tags/mr-12-5a7f3b94",
        token,
        "",
    );
    let created = jiff::Timestamp::strptime(
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        details.json()["created_at"].as_str().unwrap(),
    )
    .unwrap();
    let age = jiff::Timestamp::now().duration_since(created).as_secs();
    assert!((2 * 86_400 - 60..=2 * 86_400 + 60).contains(&age), "{age}");
}

const GIT_TAGS: &str = "/api/v4/projects/1/repository/tags";

/// `acme/shop` (1) with these Git tags and a registry repository (id 1)
/// holding `latest`; `acme/empty` (2) with no Git tags.
fn start_git_tags(git_tags: Vec<String>, keyset_flag: bool) -> FakeGitlab {
    FakeGitlab::start(Seed {
        token: TOKEN.into(),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![
            Project {
                id: 1,
                path: "acme/shop".into(),
                repositories: vec![Repository {
                    id: 1,
                    name: "app".into(),
                    tags: vec![Tag::new("latest", None)],
                }],
            },
            Project {
                id: 2,
                path: "acme/empty".into(),
                repositories: Vec::new(),
            },
        ],
        git_tags: BTreeMap::from([(1, git_tags)]),
        branch_keyset_pagination: keyset_flag,
        ..Seed::default()
    })
    .unwrap()
}

/// `v000` … `v{n-1}`, in an order that is not the listing's.
fn many_git_tags(n: usize) -> Vec<String> {
    (0..n).rev().map(|i| format!("v{i:03}")).collect()
}

/// Every Git tag by keyset pages of 100: the names and the page sizes.
fn keyset_listing(fake: &FakeGitlab) -> (Vec<String>, Vec<usize>) {
    let mut path = format!("{GIT_TAGS}?pagination=keyset&per_page=100");
    let (mut listed, mut pages) = (Vec::new(), Vec::new());
    loop {
        let resp = get(fake, &path);
        assert_eq!(resp.header("x-total"), None);
        let page = names(&resp);
        pages.push(page.len());
        listed.extend(page);
        match next_link(&resp, fake) {
            Some(next) => path = next,
            None => return (listed, pages),
        }
        assert!(pages.len() < 10, "no end");
    }
}

/// Every Git tag by offset pages of 100, following `X-Next-Page`: the
/// names and each page's `(X-Total, X-Total-Pages, X-Next-Page)`.
fn offset_listing(fake: &FakeGitlab, extra: &str) -> (Vec<String>, Vec<(String, String, String)>) {
    let (mut listed, mut headers) = (Vec::new(), Vec::new());
    let mut page = 1;
    loop {
        let resp = get(fake, &format!("{GIT_TAGS}?per_page=100&page={page}{extra}"));
        listed.extend(names(&resp));
        let h = |name: &str| resp.header(name).expect(name).to_owned();
        headers.push((h("x-total"), h("x-total-pages"), h("x-next-page")));
        match resp.header("x-next-page").unwrap() {
            "" => return (listed, headers),
            n => page = n.parse().unwrap(),
        }
        assert!(page < 10, "no end");
    }
}

fn h(total: &str, pages: &str, next: &str) -> (String, String, String) {
    (total.to_owned(), pages.to_owned(), next.to_owned())
}

#[test]
fn git_tags_are_listed_whole_by_keyset_and_by_offset() {
    let fake = start_git_tags(many_git_tags(150), true);
    let expected: Vec<String> = (0..150).map(|i| format!("v{i:03}")).collect();
    let (listed, pages) = keyset_listing(&fake);
    assert_eq!(listed, expected);
    assert_eq!(pages, [100, 50]);
    let first = get(&fake, &format!("{GIT_TAGS}?pagination=keyset&per_page=100"));
    assert_eq!(
        next_link(&first, &fake).unwrap(),
        format!("{GIT_TAGS}?page_token=v099&pagination=keyset&per_page=100")
    );
    // Offset: the first page from Gitaly (`150 / 100 + 1` pages), then Kaminari.
    let (listed, headers) = offset_listing(&fake, "");
    assert_eq!(listed, expected);
    assert_eq!(headers, [h("150", "2", "2"), h("150", "2", "")]);
    // The quirk: with 200 tags the first page counts a third page.
    let fake = start_git_tags(many_git_tags(200), true);
    assert_eq!(
        get(&fake, &format!("{GIT_TAGS}?per_page=100")).header("x-total-pages"),
        Some("3")
    );
    let (listed, pages) = keyset_listing(&fake);
    assert_eq!((listed.len(), pages), (200, vec![100, 100, 0]));
    // Without the flag: Kaminari throughout, keyset ignored.
    let fake = start_git_tags(many_git_tags(200), false);
    let (listed, headers) = offset_listing(&fake, "&pagination=keyset");
    assert_eq!(listed.len(), 200);
    assert_eq!(headers, [h("200", "2", "2"), h("200", "2", "")]);
}

#[test]
fn git_tags_sort_by_bytes_and_look_like_gitlabs() {
    let fake = start_git_tags(vec!["v1.9".into(), "v1.10".into(), "Zeta".into(), "rc/1".into()], true);
    let resp = get(&fake, GIT_TAGS);
    assert_eq!(names(&resp), ["Zeta", "rc/1", "v1.10", "v1.9"]);
    let tag = &resp.json()[2];
    assert_eq!(tag["message"], Value::Null);
    assert_eq!(tag["release"], Value::Null);
    assert_eq!(tag["protected"], false);
    let target = tag["target"].as_str().unwrap();
    assert_eq!(target.len(), 40);
    assert!(target.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(tag["commit"]["id"], target);
    assert!(target.starts_with(tag["commit"]["short_id"].as_str().unwrap()));
    let body = resp.json();
    let targets: std::collections::BTreeSet<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 4, "each tag its own commit");
    // The registry's tags of the same project are another list.
    let registry = get(&fake, "/api/v4/projects/1/registry/repositories/1/tags");
    assert_eq!(names(&registry), ["latest"]);
    let stats = fake.stats();
    assert_eq!(stats.count(Route::GitTags), 1);
    assert_eq!(stats.count(Route::Tags), 1);
    assert_eq!(stats.by_route.get("GET git_tags"), Some(&1));
}

#[test]
fn git_tags_of_unknown_projects_are_404_and_unlisted_projects_have_none() {
    let fake = start_git_tags(many_git_tags(3), true);
    for path in [
        "/api/v4/projects/9/repository/tags",
        "/api/v4/projects/acme%2Fnone/repository/tags",
    ] {
        let resp = get(&fake, path);
        assert_eq!(resp.status, 404, "{path}");
        assert_eq!(resp.json(), serde_json::json!({"message": "404 Project Not Found"}));
    }
    assert_eq!(
        names(&get(&fake, "/api/v4/projects/acme%2Fempty/repository/tags")),
        Vec::<String>::new()
    );
    assert_eq!(fake.git_tag_names(2), Vec::<String>::new());
    assert_eq!(fake.git_tag_names(9), Vec::<String>::new());
    let resp = send(&fake, "GET", GIT_TAGS, Some("wrong"), "");
    assert_eq!(resp.status, 401);
    assert_eq!(send(&fake, "POST", GIT_TAGS, Some(TOKEN), "").status, 405);
}

#[test]
fn git_tag_changes_show_in_the_next_listing() {
    let fake = start_git_tags(vec!["v1.0".into()], true);
    let list = || names(&get(&fake, &format!("{GIT_TAGS}?pagination=keyset")));
    assert_eq!(list(), ["v1.0"]);
    fake.add_git_tag(1, "v2.0");
    fake.add_git_tag(1, "v1.1");
    fake.add_git_tag(1, "v1.1");
    assert_eq!(list(), ["v1.0", "v1.1", "v2.0"]);
    assert!(fake.delete_git_tag(1, "v1.0"));
    assert!(!fake.delete_git_tag(1, "v1.0"));
    assert_eq!(list(), ["v1.1", "v2.0"]);
    assert_eq!(fake.git_tag_names(1), ["v1.1", "v2.0"]);
    fake.add_git_tag(2, "first");
    assert_eq!(names(&get(&fake, "/api/v4/projects/2/repository/tags")), ["first"]);
    // The branches are another list.
    assert_eq!(fake.branch_names(1), ["main"]);
}

#[test]
fn a_git_tag_page_token_must_name_a_tag() {
    let fake = start_git_tags(many_git_tags(150), true);
    let after = get(&fake, &format!("{GIT_TAGS}?pagination=keyset&page_token=v147"));
    assert_eq!(names(&after), ["v148", "v149"]);
    let missing = get(&fake, &format!("{GIT_TAGS}?pagination=keyset&page_token=v2.0"));
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert_eq!(
        missing.json(),
        serde_json::json!({"message": "Invalid page token: refs/tags/v2.0"})
    );
    // The tag that ended a page deleted before the next page is asked for.
    let first = get(&fake, &format!("{GIT_TAGS}?pagination=keyset&per_page=100"));
    assert!(fake.delete_git_tag(1, "v099"));
    let next = get(&fake, &next_link(&first, &fake).unwrap());
    assert_eq!(next.status, 422);
    assert_eq!(next.json()["message"], "Invalid page token: refs/tags/v099");
}

#[test]
fn fault_rules_on_git_tags_fire_there_only() {
    let fake = start_git_tags(many_git_tags(30), true);
    fake.set_faults(Faults {
        rules: vec![FaultRule::times(Route::GitTags, Fault::status(502), 1).after(1)],
        ..Faults::default()
    });
    let keyset = format!("{GIT_TAGS}?pagination=keyset");
    assert_eq!(get(&fake, &keyset).status, 200);
    assert_eq!(get(&fake, BRANCHES).status, 200);
    assert_eq!(
        get(&fake, "/api/v4/projects/1/registry/repositories/1/tags").status,
        200
    );
    let failed = get(&fake, &keyset);
    assert_eq!(failed.status, 502);
    assert_eq!(failed.json()["message"], "502 Bad Gateway");
    assert_eq!(names(&get(&fake, &keyset)).len(), 20);
    let stats = fake.stats();
    assert_eq!(stats.count(Route::GitTags), 3);
    assert_eq!(stats.by_status.get(&502), Some(&1));
}

/// `acme/shop` (1), its fork `someone/shop` (2) and the group `someone` (5).
fn start_forks(forks: BTreeMap<u64, u64>) -> std::io::Result<FakeGitlab> {
    let project = |id: u64, path: &str| Project {
        id,
        path: path.into(),
        repositories: Vec::new(),
    };
    FakeGitlab::start(Seed {
        token: TOKEN.into(),
        registry_host: "registry.example.com:5005".into(),
        projects: vec![project(1, "acme/shop"), project(2, "someone/shop")],
        groups: vec![Group {
            id: 5,
            path: "someone".into(),
        }],
        forks,
        ..Seed::default()
    })
}

#[test]
fn a_fork_names_its_parent_and_others_name_none() {
    let fake = start_forks(BTreeMap::from([(2, 1)])).unwrap();
    for path in ["/api/v4/projects/2", "/api/v4/projects/someone%2Fshop"] {
        let fork = get(&fake, path);
        assert_eq!(fork.status, 200, "{}", fork.body);
        let fork = fork.json();
        assert_eq!(fork["path_with_namespace"], "someone/shop");
        let parent = &fork["forked_from_project"];
        assert_eq!(parent["id"], 1, "{fork}");
        assert_eq!(parent["path_with_namespace"], "acme/shop");
        assert_eq!(parent["name"], "shop");
        assert_eq!(parent["default_branch"], "main");
    }
    let parent = get(&fake, "/api/v4/projects/1").json();
    assert_eq!(parent["id"], 1);
    assert!(parent.get("forked_from_project").is_none(), "{parent}");
    // A group's project entities show it too.
    let group = get(&fake, "/api/v4/groups/5").json();
    assert_eq!(group["projects"][0]["forked_from_project"]["id"], 1, "{group}");

    let unforked = start_forks(BTreeMap::new()).unwrap();
    let entity = get(&unforked, "/api/v4/projects/2").json();
    assert!(entity.get("forked_from_project").is_none(), "{entity}");
}

#[test]
fn a_fork_of_no_seeded_project_is_refused() {
    for forks in [[(2, 9)], [(9, 1)], [(1, 1)]] {
        let Err(err) = start_forks(BTreeMap::from(forks)) else {
            panic!("{forks:?} accepted");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{forks:?}: {err}");
    }
}
