//! Branches and merge requests, over HTTP: the pages GitLab gives, the
//! state tests change, the cut-short knob and faults on both routes.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Resp, send};
use fake_gitlab::{
    Branch, FakeGitlab, Fault, FaultRule, Faults, MergeRequest, MergeRequestState, Project, Route, Seed,
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
