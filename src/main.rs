//! `gitlab-registry-cleaner`: see the library's crate docs and the README.

fn main() -> std::process::ExitCode {
    gitlab_registry_cleaner::app::main()
}
