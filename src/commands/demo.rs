//! `demo`: the cleaner against a simulated GitLab on loopback.
//!
//! It starts the test suite's fake GitLab in-process, seeded with the
//! article's example (three projects whose tags are minutes, an hour and a
//! day old), and runs the article's config against it: a dry run, a real
//! pass, then a listing of what is left. No token and no network beyond
//! loopback are needed. The scenario, seed and config, lives in one place,
//! `fake_gitlab::{demo_seed, demo_config}`, which the tests use too.
//!
//! Only in builds with the `demo` cargo feature (the default): the fake
//! GitLab is test code, and the .deb leaves it out.

use std::path::PathBuf;
use std::process::ExitCode;

use fake_gitlab::Route;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::cli::Options;
use crate::config::Config;
use crate::gitlab::{Backend, GitlabClient, Listed};
use crate::pass;
use crate::secret::Secret;
use crate::settings::{ConfigSettings, Connection};

/// Runs the demo.
pub async fn run(options: &Options) -> Result<ExitCode, CommandError> {
    let seed = fake_gitlab::demo_seed();
    let token = seed.token.clone();
    let fake = fake_gitlab::FakeGitlab::start(seed)
        .map_err(|err| CommandError::Failed(format!("cannot start the simulated GitLab on loopback: {err}")))?;
    let config_json = fake_gitlab::demo_config();
    let config = Config::from_value(&config_json).map_err(|p| CommandError::Failed(format!("demo config: {p}")))?;
    let connection = Connection {
        base_url: fake
            .url()
            .parse()
            .map_err(|err| CommandError::Failed(format!("fake GitLab URL: {err}")))?,
        token: Secret::new(token),
    };
    let mut options = options.clone();
    options.ssl_path = None;
    options.insecure = false;
    let resolved = ConfigSettings::from_config(&options, PathBuf::from("(demo)"), config)?;
    let config = &resolved.config;
    let client = GitlabClient::new(&resolved.client_options(&options, connection), CancellationToken::new())?;
    let backend = resolved.backend(client);

    banner(&format!(
        "A simulated GitLab runs on {}. The config (the article's, legacy form):\n{}",
        fake.url(),
        serde_json::to_string_pretty(&config_json).unwrap_or_default()
    ));
    print_inventory(&backend, config, "What the registry holds now").await;

    banner("1. A dry run (--dry-run): decides and logs `dry_run` for each tag that would go; deletes nothing");
    options.dry_run = true;
    let dry = pass::run_pass(&backend, config, &resolved.pass_options(&options)).await;

    banner("2. A real pass: deletes the same tags (`deleted`)");
    options.dry_run = false;
    let real = pass::run_pass(&backend, config, &resolved.pass_options(&options)).await;

    print_inventory(&backend, config, "3. What is left").await;
    let stats = fake.stats();
    let (queries, mutations) = (stats.count(Route::Graphql), stats.count(Route::GraphqlMutation));
    banner(&format!(
        "The simulated GitLab answered {} requests: {queries} GraphQL queries, {mutations} GraphQL deletions \
         (up to 20 tags each), {} REST. Next: `gitlab-registry-cleaner check -c config.json` \
         and a `--dry-run` against your GitLab (see the README).",
        stats.total,
        stats.total - queries - mutations
    ));
    Ok(if dry.is_complete() && real.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn banner(text: &str) {
    println!("\n=== {text}");
}

async fn print_inventory(backend: &Backend, config: &Config, title: &str) {
    banner(title);
    let now = Timestamp::now();
    for entry in config.enabled_entries() {
        let api = backend.entry(pass::owner(entry));
        let Ok(repositories) = api.repositories().await else {
            println!("  {}: (cannot list)", entry.name);
            continue;
        };
        for repository in repositories {
            let mut records = Vec::new();
            let mut take = |listed| match listed {
                Listed::Record(record) => records.push(record),
                Listed::Unreadable(..) => {}
                Listed::Restart => records.clear(),
            };
            api.tags(&repository, &mut |_| true, &mut take).await;
            records.sort_by(|a, b| a.name.cmp(&b.name));
            let tags: Vec<String> = records
                .iter()
                .map(|tag| {
                    let age = match tag.created.usable() {
                        Some(created) => describe_age(now.duration_since(created)),
                        None => "undated".to_owned(),
                    };
                    format!("{} ({age})", tag.name)
                })
                .collect();
            let listed = if tags.is_empty() {
                "(no tags)".to_owned()
            } else {
                tags.join(", ")
            };
            println!("  {:<8} {:<40} {listed}", entry.name, repository.path);
        }
    }
}

fn describe_age(age: jiff::SignedDuration) -> String {
    let minutes = age.as_secs() / 60;
    match minutes {
        m if m < 120 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        m => format!("{} d", m / (24 * 60)),
    }
}
