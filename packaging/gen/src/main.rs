//! `packaging-gen DIR`: writes gitlab-registry-cleaner's man page and its
//! bash, zsh and fish completions into DIR, generated from the clap
//! definition in the library's `cli` module, so they never drift from
//! `--help`. packaging/build-deb.sh runs it before cargo-deb, which installs
//! the files (see `[package.metadata.deb]` in the top-level Cargo.toml):
//!
//! | file | installed as |
//! |---|---|
//! | `gitlab-registry-cleaner.1` (gzipped by build-deb.sh) | `/usr/share/man/man1/gitlab-registry-cleaner.1.gz` |
//! | `gitlab-registry-cleaner-<command>.1`, one per command (the main page refers to them) | `/usr/share/man/man1/…` |
//! | `gitlab-registry-cleaner.bash` | `/usr/share/bash-completion/completions/gitlab-registry-cleaner` |
//! | `_gitlab-registry-cleaner` | `/usr/share/zsh/vendor-completions/_gitlab-registry-cleaner` |
//! | `gitlab-registry-cleaner.fish` | `/usr/share/fish/vendor_completions.d/gitlab-registry-cleaner.fish` |

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use gitlab_registry_cleaner::cli::Cli;

const NAME: &str = "gitlab-registry-cleaner";

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: packaging-gen DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&dir)) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("packaging-gen: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the man page and the completions into `dir` (created if need
/// be); returns the files written.
fn generate(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut command = Cli::command();
    // Built, so that the global options reach each command's own page.
    command.build();
    let mut pages = vec![command.clone()];
    pages.extend(
        command
            .get_subcommands()
            // Leaked: a `&'static str` needs no clap "string" feature, which
            // would make cargo-deb build clap a second time.
            .map(|sub| sub.clone().name(format!("{NAME}-{}", sub.get_name()).leak() as &str)),
    );
    for page in pages {
        let file = dir.join(format!("{}.1", page.get_name()));
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        std::fs::write(&file, roff)?;
        files.push(file);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let file = clap_complete::generate_to(shell, &mut Cli::command(), NAME, dir)?;
        files.push(file);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_man_page_that_names_every_subcommand_and_the_completions() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut command = Cli::command();
        command.build();
        let subcommands: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_owned()).collect();
        assert!(subcommands.len() >= 6, "{subcommands:?}");
        let mut expected = vec![format!("{NAME}.1")];
        expected.extend(subcommands.iter().map(|name| format!("{NAME}-{name}.1")));
        expected.extend([format!("{NAME}.bash"), format!("_{NAME}"), format!("{NAME}.fish")]);
        assert_eq!(names, expected);
        let roff = |text: &str| text.replace('-', "\\-");
        let page = std::fs::read_to_string(&files[0]).unwrap();
        assert!(page.starts_with(".ie"), "roff: {}", &page[..40]);
        for name in subcommands.iter().filter(|name| *name != "help") {
            let reference = roff(&format!("{NAME}-{name}(1)"));
            assert!(page.contains(&reference), "the man page lacks {name}");
            assert!(names.contains(&format!("{NAME}-{name}.1")), "no page for {name}");
        }
        for flag in ["--summary", "--dry-run", "--token-file"] {
            assert!(page.contains(&roff(flag)), "the man page lacks {flag}");
        }
        let apply = std::fs::read_to_string(dir.path().join(format!("{NAME}-apply.1"))).unwrap();
        for option in ["--max-plan-age", "--url", "--dry-run"] {
            assert!(apply.contains(&roff(option)), "the apply page lacks {option}");
        }
        for file in &files[files.len() - 3..] {
            let text = std::fs::read_to_string(file).unwrap();
            for name in ["plan", "apply", "max-plan-age"] {
                assert!(text.contains(name), "{} lacks {name}", file.display());
            }
        }
    }
}
