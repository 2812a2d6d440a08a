use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use tokio_util::sync::CancellationToken;

use super::client::{api_base, decode, graphql_url, next_page};
use super::error::*;
use super::wire::{self, TagDetails, Version};
use super::*;
use crate::secret::Secret;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn client(base: &str) -> GitlabClient {
    GitlabClient::new(
        &ClientOptions {
            base_url: base.parse().unwrap(),
            token: Secret::new("t"),
            timeout: Duration::from_secs(1),
            concurrency: std::num::NonZeroUsize::new(2).unwrap(),
            ca_bundle: None,
            insecure: false,
            retry: RetryPolicy::default(),
            max_requests_per_minute: None,
        },
        CancellationToken::new(),
    )
    .unwrap()
}

#[test]
fn api_base_keeps_prefixes_and_trailing_slashes() {
    assert_eq!(
        api_base(&"https://gitlab.example.com".parse().unwrap()).as_str(),
        "https://gitlab.example.com/api/v4"
    );
    assert_eq!(
        api_base(&"https://gitlab.example.com/".parse().unwrap()).as_str(),
        "https://gitlab.example.com/api/v4"
    );
    assert_eq!(
        api_base(&"https://example.com/gitlab/".parse().unwrap()).as_str(),
        "https://example.com/gitlab/api/v4"
    );
}

#[test]
fn graphql_url_keeps_prefixes() {
    for (base, expected) in [
        ("https://gitlab.example.com", "https://gitlab.example.com/api/graphql"),
        ("https://gitlab.example.com/", "https://gitlab.example.com/api/graphql"),
        ("https://example.com/gitlab/", "https://example.com/gitlab/api/graphql"),
    ] {
        assert_eq!(graphql_url(&base.parse().unwrap()).as_str(), expected);
        assert_eq!(client(base).graphql_url().as_str(), expected);
    }
}

#[test]
fn only_a_missing_endpoint_or_a_refused_query_means_graphql_is_unavailable() {
    let status = |path: &str, status: u16| ApiError::Status {
        method: Method::POST,
        path: path.to_owned(),
        status,
        message: String::new(),
    };
    let graphql = |kind| ApiError::Graphql {
        operation: "Q",
        kind,
        message: "m".to_owned(),
    };
    assert!(status("/api/graphql", 404).graphql_unavailable());
    assert!(status("/gitlab/api/graphql", 405).graphql_unavailable());
    assert!(graphql(GraphqlFailure::Rejected).graphql_unavailable());
    // A failing GitLab, a bad token or a missing project is no reason to switch APIs.
    assert!(!status("/api/graphql", 401).graphql_unavailable());
    assert!(!status("/api/graphql", 502).graphql_unavailable());
    assert!(!status("/api/v4/projects/1/registry/repositories", 404).graphql_unavailable());
    assert!(!graphql(GraphqlFailure::Field).graphql_unavailable());
    assert!(!graphql(GraphqlFailure::NotFound).graphql_unavailable());
    assert!(
        graphql(GraphqlFailure::NotFound)
            .hint()
            .unwrap()
            .contains("no such project")
    );
    assert!(!graphql(GraphqlFailure::Rejected).may_have_acted());
}

#[test]
fn paths_are_one_encoded_segment() {
    let c = client("https://gitlab.example.com/");
    assert_eq!(
        c.url(&["projects", "group/sub/app", "registry", "repositories"])
            .as_str(),
        "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fapp/registry/repositories"
    );
    assert_eq!(
        c.tags_url(3, 7, Some("v1.0.0")).as_str(),
        "https://gitlab.example.com/api/v4/projects/3/registry/repositories/7/tags/v1.0.0"
    );
}

#[test]
fn next_page_prefers_x_next_page() {
    let url: Url = "http://h/api/v4/x?per_page=100&page=2".parse().unwrap();
    let next = next_page(
        &url,
        &headers(&[
            ("x-next-page", "3"),
            ("link", "<http://h/elsewhere?page=9>; rel=\"next\""),
        ]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(next.as_str(), "http://h/api/v4/x?per_page=100&page=3");
    // An empty X-Next-Page ends the listing, whatever Link says.
    assert_eq!(
        next_page(
            &url,
            &headers(&[
                ("x-next-page", ""),
                ("link", "<http://h/api/v4/x?page=3>; rel=\"next\"")
            ])
        )
        .unwrap(),
        None
    );
}

#[test]
fn total_pages_is_never_followed_but_flags_a_cut_listing() {
    let url: Url = "http://h/api/v4/x?per_page=100&page=1".parse().unwrap();
    let err = next_page(&url, &headers(&[("x-total-pages", "5")])).unwrap_err();
    assert!(err.to_string().contains("counts 5 pages"), "{err}");
    let err = next_page(&url, &headers(&[("x-next-page", ""), ("x-total-pages", "2")])).unwrap_err();
    assert!(err.to_string().contains("counts 2 pages"), "{err}");
    assert_eq!(
        next_page(&url, &headers(&[("x-next-page", ""), ("x-total-pages", "1")])).unwrap(),
        None
    );
    assert_eq!(next_page(&url, &HeaderMap::new()).unwrap(), None);
}

#[test]
fn next_page_must_be_the_following_one() {
    let url: Url = "http://h/api/v4/x?per_page=100&page=2".parse().unwrap();
    let err = next_page(&url, &headers(&[("x-next-page", "5")])).unwrap_err();
    assert!(err.to_string().contains("skipped"), "{err}");
    let mut h = HeaderMap::new();
    h.insert("x-next-page", HeaderValue::from_bytes(b"\xff3").unwrap());
    assert!(
        next_page(&url, &h).is_err(),
        "a non-ASCII X-Next-Page is not the last page"
    );
}

#[test]
fn next_page_follows_link_on_the_same_host_only() {
    let url: Url = "http://h:8080/api/v4/x?per_page=100&page=1".parse().unwrap();
    let next = next_page(
        &url,
        &headers(&[("link", "<http://h:8080/api/v4/x?page=2&per_page=100>; rel=\"next\"")]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(next.as_str(), "http://h:8080/api/v4/x?page=2&per_page=100");
    let err = next_page(
        &url,
        &headers(&[("link", "<http://evil.example/steal?page=2>; rel=\"next\"")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
    let err = next_page(
        &url,
        &headers(&[("link", "<https://h:8080/api/v4/x?page=2>; rel=\"next\"")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
}

#[test]
fn next_page_refuses_loops() {
    let url: Url = "http://h/api/v4/x?per_page=100&page=4".parse().unwrap();
    assert!(next_page(&url, &headers(&[("x-next-page", "4")])).is_err());
    assert!(next_page(&url, &headers(&[("x-next-page", "two")])).is_err());
    assert!(
        next_page(
            &url,
            &headers(&[("link", "<http://h/api/v4/x?per_page=100&page=4>; rel=\"next\"")])
        )
        .is_err()
    );
}

#[test]
fn api_errors_never_carry_the_token_and_give_hints() {
    let err = ApiError::Status {
        method: Method::GET,
        path: "/api/v4/version".into(),
        status: 401,
        message: "401 Unauthorized".into(),
    };
    assert!(err.explain().contains("token is invalid"));
    let err = ApiError::Status {
        method: Method::DELETE,
        path: "/x".into(),
        status: 403,
        message: "403 Forbidden - cannot delete protected tag(s)".into(),
    };
    let hint = err.hint().unwrap();
    for role in ["Maintainer", "Owner", "Admin", "immutable"] {
        assert!(hint.contains(role), "{hint}");
    }
    assert!(err.says_protected() && !err.is_scope_error());
    let scope = ApiError::Status {
        method: Method::DELETE,
        path: "/x".into(),
        status: 403,
        message: "insufficient_scope: The request requires higher privileges".into(),
    };
    assert!(scope.is_scope_error() && !scope.says_protected());
    let cut = ApiError::ListingIncomplete {
        listed: 20,
        before: 150,
        after: 149,
    };
    let text = cut.explain();
    assert!(
        text.contains("20") && text.contains("150") && text.contains("149") && text.contains("kept"),
        "{text}"
    );
}

mod decoders_never_panic {
    use super::*;
    use proptest::prelude::*;

    const REPOSITORIES: &str = r#"[{"id":1,"name":"","path":"group/project","project_id":9,"location":"gitlab.example.com:5000/group/project","created_at":"2019-01-10T13:38:57.391Z","cleanup_policy_started_at":null,"status":null}]"#;
    const DETAILS: &str = r#"{"name":"v10.0.0","path":"group/project:latest","location":"gitlab.example.com:5000/group/project:latest","revision":"e9ed9d87c881d8c2fd3a31b41904d01ba0b836e7fd15240d774d811a1c248181","short_revision":"e9ed9d87c","digest":"sha256:c3490dcf10ffb6530c1303522a1405dfaf7daecd8f38d3e6a1ba19ea1f8a1751","created_at":"2019-01-06T16:49:51.272+00:00","total_size":350224384}"#;

    fn url() -> Url {
        "http://h/api/v4/x?per_page=100&page=1".parse().unwrap()
    }

    fn all_decoders(body: &[u8]) {
        let _ = decode::<Vec<Repository>>(&Method::GET, &url(), body);
        let _ = decode::<Vec<wire::TagName>>(&Method::GET, &url(), body);
        let _ = decode::<TagDetails>(&Method::GET, &url(), body);
        let _ = decode::<Version>(&Method::GET, &url(), body);
        let _ = wire::error_message(&HeaderMap::new(), body);
        if let Ok(details) = decode::<TagDetails>(&Method::GET, &url(), body) {
            let _ = details.into_record("t".to_owned());
        }
    }

    proptest! {
        #[test]
        fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            all_decoders(&body);
        }

        #[test]
        fn mutated_gitlab_bodies(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
            for original in [REPOSITORIES, DETAILS] {
                let mut body = original.as_bytes().to_vec();
                let at = pos % body.len();
                body[at] = byte;
                all_decoders(&body);
                all_decoders(&original.as_bytes()[..cut.min(original.len())]);
            }
        }

        #[test]
        fn random_pagination_headers(next in ".{0,20}", link in ".{0,80}", retry in ".{0,40}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&next) { h.insert("x-next-page", v); }
            let _ = next_page(&url(), &h);
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&link) { h.insert("link", v); }
            let _ = next_page(&url(), &h);
            let _ = wire::link_next(&link);
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&retry) { h.insert("retry-after", v); }
            let _ = retry::retry_after(&h, jiff::Timestamp::now());
        }

        #[test]
        fn huge_numbers_in_retry_after(n in any::<u64>()) {
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_str(&n.to_string()).unwrap());
            prop_assert_eq!(retry::retry_after(&h, jiff::Timestamp::now()), Some(Duration::from_secs(n)));
        }
    }

    #[test]
    fn deeply_nested_bodies_are_errors() {
        let deep = "[".repeat(100_000);
        assert!(decode::<Vec<Repository>>(&Method::GET, &url(), deep.as_bytes()).is_err());
        assert!(decode::<TagDetails>(&Method::GET, &url(), deep.as_bytes()).is_err());
    }

    #[test]
    fn the_documented_examples_decode() {
        let repos = decode::<Vec<Repository>>(&Method::GET, &url(), REPOSITORIES.as_bytes()).unwrap();
        assert_eq!(repos[0].path, "group/project");
        let details = decode::<TagDetails>(&Method::GET, &url(), DETAILS.as_bytes()).unwrap();
        assert_eq!(details.total_size, Some(350_224_384));
    }
}

#[test]
fn client_options_debug_masks_the_token() {
    let options = ClientOptions {
        base_url: "https://gitlab.example.com".parse().unwrap(),
        token: Secret::new("glpat-visible-if-leaked"),
        timeout: Duration::from_secs(1),
        concurrency: std::num::NonZeroUsize::MIN,
        ca_bundle: None,
        insecure: false,
        retry: RetryPolicy::default(),
        max_requests_per_minute: None,
    };
    assert!(!format!("{options:?}").contains("visible-if-leaked"));
}
