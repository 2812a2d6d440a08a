use super::*;

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
            concurrency: 2,
            ca_bundle: None,
            insecure: false,
            retry: RetryPolicy::default(),
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
    assert_eq!(
        next_page(&url, &headers(&[("x-next-page", ""), ("x-total-pages", "9")])).unwrap(),
        None
    );
}

#[test]
fn next_page_never_trusts_total_pages_alone() {
    let url: Url = "http://h/api/v4/x?per_page=100&page=1".parse().unwrap();
    assert_eq!(next_page(&url, &headers(&[("x-total-pages", "5")])).unwrap(), None);
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
    assert!(err.explain().contains("protected"));
}
