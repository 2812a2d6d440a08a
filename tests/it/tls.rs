//! TLS against a real TLS server: certificates made here, a TLS front that
//! forwards to the fake GitLab.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;
use tokio_rustls::rustls;

use crate::support::*;

struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

/// A private CA and a server certificate for `names`, signed by it.
fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gitlab-registry-cleaner test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server,
    }
}

/// A TLS front on loopback forwarding to `backend`; runs until dropped.
struct TlsFront {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn tls_front(config: rustls::ServerConfig, backend: SocketAddr) -> TlsFront {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    TlsFront {
        addr,
        _runtime: runtime,
    }
}

fn fake() -> FakeGitlab {
    FakeGitlab::start(seed(vec![project(
        1,
        "g/p",
        vec![repo(10, "img", vec![old("a"), young("b")])],
    )]))
    .unwrap()
}

fn run_against(url: &str, extra: &[&str], work: &Workdir) -> Run {
    let config = work.config(&json!({"p": {"id": 1, "delete_older_than": "1d"}}));
    run(bin(work.path())
        .args(["-u", url, "-t", TOKEN, "--retry-base-ms", "5", "-c"])
        .arg(&config)
        .args(extra))
}

#[test]
fn an_untrusted_certificate_is_refused_and_the_ca_bundle_fixes_it() {
    let fake = fake();
    let pki = pki(&["localhost", "127.0.0.1"]);
    let front = tls_front(pki.server, fake.addr());
    let url = format!("https://localhost:{}", front.addr.port());
    let work = Workdir::new();

    let refused = run_against(&url, &[], &work);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert_eq!(fake.stats().total, 0, "nothing got through the TLS handshake");
    let failed = refused.ops("project_failed");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("certificate") && error.contains("--ssl-path"),
        "says why and what to do: {error}"
    );
    assert!(
        refused.elapsed < std::time::Duration::from_secs(5),
        "a TLS failure is not retried"
    );

    let ca = work.write("ca.pem", &pki.ca_pem);
    let trusted = run_against(&url, &["--ssl-path", ca.to_str().unwrap()], &work);
    assert_eq!(trusted.code, 0, "{}", trusted.all());
    assert_eq!(fake.tag_names(10), vec!["b"]);
    assert!(trusted.ops("insecure").is_empty());
}

#[test]
fn a_hostname_mismatch_is_refused_even_with_the_right_ca() {
    let fake = fake();
    let pki = pki(&["gitlab.other.example"]);
    let front = tls_front(pki.server, fake.addr());
    let work = Workdir::new();
    let ca = work.write("ca.pem", &pki.ca_pem);
    let url = format!("https://localhost:{}", front.addr.port());
    let r = run_against(&url, &["--ssl-path", ca.to_str().unwrap()], &work);
    assert_eq!(r.code, 1, "{}", r.all());
    let error = r.ops("project_failed")[0]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("certificate") && error.to_lowercase().contains("name"),
        "{error}"
    );
    assert_eq!(fake.stats().total, 0);
}

#[test]
fn insecure_works_and_warns_at_every_pass() {
    let fake = fake();
    let pki = pki(&["gitlab.other.example"]);
    let front = tls_front(pki.server, fake.addr());
    let work = Workdir::new();
    let url = format!("https://localhost:{}", front.addr.port());
    let r = run_against(&url, &["--insecure", "--dry-run"], &work);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.ops("insecure").len(), 1);
    assert_eq!(r.ops("insecure")[0]["level"], "WARN");
    assert_eq!(r.tags("dry_run"), vec!["g/p/img:a"]);

    // In the daemon, every pass warns again.
    let config = work.config(&json!({"schedule": "* * * * * *", "run_on_start": true,
        "projects": {"p": {"id": 1, "delete_older_than": "1d"}}}));
    fake.reset_stats();
    let child = bin(work.path())
        .args(["daemon", "-u", &url, "-t", TOKEN, "--insecure", "--dry-run", "-c"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while fake.stats().count(Route::ProjectRepositories) < 3 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "three passes expected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let out = Run::from(output, started.elapsed());
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.ops("pass_started").len() >= 3);
    assert_eq!(
        out.ops("insecure").len(),
        out.ops("pass_started").len(),
        "one warning per pass"
    );
}
