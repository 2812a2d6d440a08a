//! The Python tool: a virtualenv with `gitlab-registry-async-cleaner`
//! 1.0.6 from PyPI, created once under the Cargo target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const PACKAGE: &str = "gitlab-registry-async-cleaner";
pub const VERSION: &str = "1.0.6";
/// The console script the package installs.
pub const ENTRY_POINT: &str = "gitlab_async_cleaner";

/// A ready Python tool.
#[derive(Debug, Clone)]
pub struct PythonTool {
    pub exe: PathBuf,
    /// `Python 3.11.7, gitlab_registry_async_cleaner 1.0.6, httpx 0.27.2`
    pub versions: String,
}

/// Creates the virtualenv at `venv` with `python` (e.g. `python3`) if it is
/// missing, installs the package if it is not there at the right version,
/// and returns the entry point.
pub fn ensure(venv: &Path, python: &str) -> Result<PythonTool, String> {
    let venv_python = venv.join("bin").join("python");
    let exe = venv.join("bin").join(ENTRY_POINT);
    if !venv_python.exists() {
        eprintln!("bench: creating virtualenv {}", venv.display());
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .map_err(|e| format!("cannot run {python}: {e} (set BENCH_PYTHON or --python)"))?;
        if !status.success() {
            return Err(format!(
                "`{python} -m venv {}` failed ({status}); on Debian `apt-get install python3-venv`",
                venv.display()
            ));
        }
    }
    if versions(&venv_python).is_none_or(|v| !v.contains(&format!(" {VERSION},"))) || !exe.exists() {
        eprintln!("bench: pip install {PACKAGE}=={VERSION}");
        let status = Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("{PACKAGE}=={VERSION}"),
            ])
            .status()
            .map_err(|e| format!("cannot run pip: {e}"))?;
        if !status.success() {
            return Err(format!("pip install {PACKAGE}=={VERSION} failed ({status})"));
        }
    }
    if !exe.exists() {
        return Err(format!("{} is missing after pip install", exe.display()));
    }
    let versions = versions(&venv_python).ok_or("cannot read the installed versions")?;
    Ok(PythonTool { exe, versions })
}

fn versions(venv_python: &Path) -> Option<String> {
    let out = Command::new(venv_python)
        .args([
            "-c",
            "import sys, importlib.metadata as m\n\
             print('Python %s, gitlab_registry_async_cleaner %s, httpx %s' % (sys.version.split()[0], \
             m.version('gitlab_registry_async_cleaner'), m.version('httpx')))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
