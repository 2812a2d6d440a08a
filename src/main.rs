//! `gitlab-registry-cleaner`: see the library's crate docs and the README.
//!
//! Parse, set up logging, start the runtime, run the command, exit. This is
//! the only place that ends the process, and the only one that prints
//! errors to stderr: exit codes 0 success, 1 something failed, 2 usage or
//! config error.

use std::process::ExitCode;
use std::time::Duration;

use gitlab_registry_cleaner::cli::{self, LogFormatArg};
use gitlab_registry_cleaner::commands;
use gitlab_registry_cleaner::logging::{self, LogFormat};

fn main() -> ExitCode {
    let parsed = match cli::parse() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let options = &parsed.cli.options;
    let level = options
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned());
    let filter = match logging::filter(&level) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let format = match options.log_format {
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Text => LogFormat::Text,
    };
    // Dropped last, after the runtime: flushes --log-file on every path below.
    let _log_guard = match logging::init(format, filter, options.log_file.as_deref()) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(commands::run(&parsed)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    // After a second signal a pass may still be running: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}
