//! `fake-gitlab`: serves the demo data set on a port of your choice.
//!
//! ```text
//! fake-gitlab [--listen 127.0.0.1:8080] [--latency-ms N] [--scenario demo|modern|branches]
//!             [--throttle LIMIT/SECONDS[:full|on-throttle|none]]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use fake_gitlab::{
    FakeGitlab, Faults, Throttle, ThrottleHeaders, branches_seed, demo_seed, modern_faults, modern_seed,
};

const USAGE: &str = "\
usage: fake-gitlab [--listen ADDR:PORT] [--latency-ms N] [--scenario demo|modern|branches]
                   [--throttle LIMIT/SECONDS[:full|on-throttle|none]]

Serves a fake GitLab container registry API (token: demo-token) until
interrupted with Ctrl-C.

  --listen ADDR:PORT   address to listen on (default 127.0.0.1:8080)
  --latency-ms N       delay every response by N milliseconds (default 0)
  --scenario NAME      demo: the article's three projects (default);
                       modern: today's GitLab.com — project acme/web with a
                       tag protection rule (v*, Maintainer), a tag re-pushed
                       an hour ago after 60 days, and a registry that cuts
                       every tag listing short after its first page in
                       repository acme/web/cache;
                       branches: project acme/shop with branches main and
                       feature/login, merge requests 12 (merged) and 13
                       (open), and repository app tagged per branch and per
                       merge request (main-*, feature-login-*,
                       feature-gone-*, mr-12-*, mr-13-*, two days old) plus
                       latest
  --throttle RATE      throttle like GitLab: LIMIT requests per token in each
                       fixed window of SECONDS (e.g. 2000/60 as GitLab.com,
                       5/0.5), 429 \"Retry later\" beyond; RateLimit-* headers
                       on every answer (full, default), on 429s only
                       (on-throttle) or never (none)
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Demo,
    Modern,
    Branches,
}

struct Args {
    listen: SocketAddr,
    latency: Duration,
    scenario: Scenario,
    throttle: Option<Throttle>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        latency: Duration::ZERO,
        scenario: Scenario::Demo,
        throttle: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                parsed.listen = v
                    .parse()
                    .map_err(|e| format!("--listen {v}: {e} (expected e.g. 127.0.0.1:8080)"))?;
            }
            "--latency-ms" => {
                let v = value("--latency-ms")?;
                let ms: u64 = v.parse().map_err(|e| format!("--latency-ms {v}: {e}"))?;
                parsed.latency = Duration::from_millis(ms);
            }
            "--scenario" => {
                parsed.scenario = match value("--scenario")?.as_str() {
                    "demo" => Scenario::Demo,
                    "modern" => Scenario::Modern,
                    "branches" => Scenario::Branches,
                    other => return Err(format!("--scenario {other}: expected demo, modern or branches")),
                };
            }
            "--throttle" => {
                let v = value("--throttle")?;
                parsed.throttle = Some(parse_throttle(&v).map_err(|e| format!("--throttle {v}: {e}"))?);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(parsed))
}

/// `LIMIT/SECONDS[:full|on-throttle|none]`, e.g. `2000/60` or `5/0.5:none`.
fn parse_throttle(spec: &str) -> Result<Throttle, String> {
    let (rate, headers) = spec.split_once(':').unwrap_or((spec, "full"));
    let headers = match headers {
        "full" => ThrottleHeaders::Full,
        "on-throttle" => ThrottleHeaders::OnlyOnThrottle,
        "none" => ThrottleHeaders::None,
        other => return Err(format!("headers {other:?}: expected full, on-throttle or none")),
    };
    let (limit, seconds) = rate.split_once('/').ok_or("expected LIMIT/SECONDS, e.g. 2000/60")?;
    let limit: u32 = limit.parse().map_err(|e| format!("limit {limit:?}: {e}"))?;
    let window = seconds
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|w| !w.is_zero())
        .ok_or_else(|| format!("seconds {seconds:?}: expected a positive number"))?;
    Ok(Throttle::new(limit, window).with_headers(headers))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-gitlab: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut seed = match args.scenario {
        Scenario::Demo => demo_seed(),
        Scenario::Modern => modern_seed(),
        Scenario::Branches => branches_seed(),
    };
    seed.throttle = args.throttle;
    let token = seed.token.clone();
    let fake = match FakeGitlab::start_on(args.listen, seed) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-gitlab: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let faults = if args.scenario == Scenario::Modern {
        modern_faults()
    } else {
        Faults::default()
    };
    fake.set_faults(Faults {
        latency: args.latency,
        ..faults
    });
    println!("fake GitLab listening on {} (token: {token})", fake.url());
    // Serve until the process is interrupted (SIGINT's default action).
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_parse() {
        assert_eq!(parse_throttle("2000/60"), Ok(Throttle::gitlab_com()));
        assert_eq!(
            parse_throttle("5/0.5:none"),
            Ok(Throttle::new(5, Duration::from_millis(500)).with_headers(ThrottleHeaders::None))
        );
        assert_eq!(
            parse_throttle("7200/3600:on-throttle").map(|t| t.headers),
            Ok(ThrottleHeaders::OnlyOnThrottle)
        );
        for bad in ["2000", "x/60", "10/0", "10/-1", "10/60:some"] {
            assert!(parse_throttle(bad).is_err(), "{bad}");
        }
    }
}
