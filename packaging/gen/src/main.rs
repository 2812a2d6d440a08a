//! `packaging-gen DIR`: writes gitlab-registry-cleaner's man page and its
//! bash, zsh and fish completions into DIR, generated from the clap
//! definition in the library's `cli` module, so they never drift from
//! `--help`. packaging/build-deb.sh runs it before cargo-deb, which installs
//! the files (see `[package.metadata.deb]` in the top-level Cargo.toml):
//!
//! | file | installed as |
//! |---|---|
//! | `gitlab-registry-cleaner.1` (gzipped by build-deb.sh) | `/usr/share/man/man1/gitlab-registry-cleaner.1.gz` |
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
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    let man = dir.join(format!("{NAME}.1"));
    std::fs::write(&man, page)?;
    files.push(man);
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
        assert_eq!(
            names,
            [
                "gitlab-registry-cleaner.1",
                "gitlab-registry-cleaner.bash",
                "_gitlab-registry-cleaner",
                "gitlab-registry-cleaner.fish"
            ]
        );
        let page = std::fs::read_to_string(&files[0]).unwrap();
        assert!(page.starts_with(".ie"), "roff: {}", &page[..40]);
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert!(subcommands.len() >= 6, "{subcommands:?}");
        for name in &subcommands {
            assert!(page.contains(&format!("{NAME}\\-{name}")), "the man page lacks {name}");
        }
        for flag in ["summary", "dry\\-run", "token\\-file"] {
            assert!(page.contains(flag), "the man page lacks --{flag}");
        }
        for file in &files[1..] {
            let text = std::fs::read_to_string(file).unwrap();
            for name in ["plan", "apply", "max-plan-age"] {
                assert!(text.contains(name), "{} lacks {name}", file.display());
            }
        }
    }
}
