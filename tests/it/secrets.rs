//! Where the token may and may not go.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::support::*;

#[test]
fn a_link_to_another_host_is_not_followed_with_the_token() {
    let elsewhere = FakeGitlab::start(seed(Vec::new())).unwrap();
    let tags: Vec<Tag> = (0..30).map(|i| old(&format!("t{i:02}"))).collect();
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", tags)])])).unwrap();
    fake.set_faults(Faults {
        rules: vec![FaultRule::always(Route::Tags, Fault::LinkElsewhere(elsewhere.url()))],
        ..Faults::default()
    });
    let r = once(&fake, &json!({"p": {"id": 1, "delete_older_than": "1d"}}), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(elsewhere.stats().total, 0, "the other host saw no request at all");
    assert_eq!(
        fake.stats().deletes(),
        0,
        "a listing that cannot be finished deletes nothing"
    );
    let failed = r.ops("repository_failed");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("another host"),
        "{}",
        failed[0]
    );
}

#[test]
fn a_token_file_readable_by_others_gets_a_warning() {
    let fake = FakeGitlab::start(seed(vec![project(1, "g/p", vec![repo(10, "img", vec![old("a")])])])).unwrap();
    let work = Workdir::new();
    let config = work.config(&json!({"p": {"id": 1, "delete_older_than": "1d"}}));
    let token = work.write("token", format!("{TOKEN}\n"));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "--dry-run", "--token-file"])
        .arg(&token)
        .arg("-c")
        .arg(&config));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("the token file is readable by every user"),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains(TOKEN));

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(bin(work.path())
        .args(["-u", &fake.url(), "--dry-run", "--token-file"])
        .arg(&token)
        .arg("-c")
        .arg(&config));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stdout.contains("readable by every user"));
}

#[test]
fn errors_about_settings_never_echo_the_token() {
    let work = Workdir::new();
    let config = work.config(&json!({"p": {"id": 1, "delete_older_than": "1d"}}));
    let secret = "glpat-sUp3r-5ecret\u{7}bell";
    let r = run(bin(work.path())
        .args(["-u", "http://127.0.0.1:9", "-t", secret, "-c"])
        .arg(&config));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("token"), "{}", r.all());
    assert!(
        !r.stderr.contains("sUp3r") && !r.stdout.contains("sUp3r"),
        "{}",
        r.all()
    );
}
