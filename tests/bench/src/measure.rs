//! Runs a child process and measures it: wall time, CPU time and peak RSS
//! from `wait4(2)`'s `rusage` for that one child (`ru_maxrss`, KiB on
//! Linux), with a timeout after which the child is killed.
//!
//! **Why through a wrapper process.** Linux carries the high-water RSS of
//! the address space a process had *before* `execve` into its `ru_maxrss`
//! (`exec_mmap` → `setmax_mm_hiwater_rss`). A child spawned straight from
//! the harness (`vfork`/`CLONE_VM`, as `std::process::Command` does) starts
//! in the harness's address space, which holds the in-process fake GitLab,
//! its data and its request log: the child would be charged tens of MiB
//! that are not its own, growing from run to run. So the harness re-executes
//! itself as a small wrapper (`bench __measure RESULT TIMEOUT PROGRAM
//! ARGS…`) that spawns the measured program, waits for it with `wait4` and
//! writes the figures to `RESULT`. The wrapper's own few MiB are then the
//! floor of what can be measured; the report states it (measured on
//! `true`). `/usr/bin/time -v` would do the same job with its own small
//! floor, but needs Debian's `time` package; this needs nothing.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The first argument that makes `bench` act as the measuring wrapper.
pub const WRAPPER_ARG: &str = "__measure";

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// Killed by us after the timeout.
    TimedOut,
}

impl Outcome {
    pub fn describe(self) -> String {
        match self {
            Outcome::Exited(code) => format!("exit {code}"),
            Outcome::Signaled(sig) => format!("signal {sig}"),
            Outcome::TimedOut => "**timed out**".to_owned(),
        }
    }
}

/// What one run of a child cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// `CLOCK_MONOTONIC` just before `spawn`, ns (comparable across processes).
    pub spawned_ns: u64,
    /// From just before `spawn` to `wait4` returning.
    pub wall: Duration,
    /// User + system CPU time of the child.
    pub cpu: Duration,
    /// Peak resident set size of the child, KiB.
    pub max_rss_kib: u64,
    pub outcome: Outcome,
}

/// `CLOCK_MONOTONIC` now, ns.
pub fn mono_ns() -> u64 {
    // SAFETY: timespec is plain old data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An `Instant` of this process on the `CLOCK_MONOTONIC` scale, ns.
pub fn instant_ns(t: Instant) -> u64 {
    let (now, now_ns) = (Instant::now(), mono_ns());
    match now.checked_duration_since(t) {
        Some(ago) => now_ns.saturating_sub(ago.as_nanos() as u64),
        None => now_ns + t.duration_since(now).as_nanos() as u64,
    }
}

/// The wrapper command for `program`: add the program's arguments, the
/// environment, working directory and stdio as for the program itself
/// (the wrapper passes all of them on), then give it to [`run_wrapped`].
pub fn wrapped(result: &Path, timeout: Duration, program: &OsStr) -> io::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg(WRAPPER_ARG)
        .arg(result)
        .arg(timeout.as_secs_f64().to_string())
        .arg(program);
    Ok(cmd)
}

/// Runs a command made by [`wrapped`] and reads what the wrapper measured.
pub fn run_wrapped(cmd: &mut Command, result: &Path, timeout: Duration) -> io::Result<Measured> {
    let _ = std::fs::remove_file(result);
    // The wrapper enforces `timeout` itself; this is a backstop.
    let wrapper = run(cmd, timeout + Duration::from_secs(30))?;
    if wrapper.outcome != Outcome::Exited(0) {
        return Err(io::Error::other(format!(
            "the measuring wrapper failed ({})",
            wrapper.outcome.describe()
        )));
    }
    let text = std::fs::read_to_string(result)?;
    parse_result(&text).ok_or_else(|| io::Error::other(format!("bad wrapper result {text:?}")))
}

fn format_result(m: &Measured) -> String {
    let (kind, value) = match m.outcome {
        Outcome::Exited(c) => ("exited", c),
        Outcome::Signaled(s) => ("signaled", s),
        Outcome::TimedOut => ("timed_out", 0),
    };
    format!(
        "{} {} {} {} {kind} {value}\n",
        m.spawned_ns,
        m.wall.as_nanos(),
        m.cpu.as_nanos(),
        m.max_rss_kib
    )
}

fn parse_result(text: &str) -> Option<Measured> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [spawned, wall, cpu, rss, kind, value] = f.as_slice() else {
        return None;
    };
    let value: i32 = value.parse().ok()?;
    Some(Measured {
        spawned_ns: spawned.parse().ok()?,
        wall: Duration::from_nanos(wall.parse().ok()?),
        cpu: Duration::from_nanos(cpu.parse().ok()?),
        max_rss_kib: rss.parse().ok()?,
        outcome: match *kind {
            "exited" => Outcome::Exited(value),
            "signaled" => Outcome::Signaled(value),
            "timed_out" => Outcome::TimedOut,
            _ => return None,
        },
    })
}

/// `bench __measure RESULT TIMEOUT PROGRAM ARGS…`: runs PROGRAM with
/// ARGS (stdio, environment and directory inherited), writes the figures
/// to RESULT. Exits 0 if it measured, 2 if it could not.
pub fn wrapper_main(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let (Some(result), Some(timeout), Some(program)) = (args.next(), args.next(), args.next()) else {
        eprintln!("bench {WRAPPER_ARG}: usage: RESULT TIMEOUT PROGRAM [ARGS…]");
        return ExitCode::from(2);
    };
    let Some(timeout) = timeout
        .to_str()
        .and_then(|t| t.parse::<f64>().ok())
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
    else {
        eprintln!("bench {WRAPPER_ARG}: bad timeout {timeout:?}");
        return ExitCode::from(2);
    };
    let measured = match run(Command::new(&program).args(args), timeout) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench {WRAPPER_ARG}: cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match std::fs::write(&result, format_result(&measured)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench {WRAPPER_ARG}: {}: {e}", Path::new(&result).display());
            ExitCode::from(2)
        }
    }
}

struct Waited {
    status: libc::c_int,
    rusage: libc::rusage,
    at: Instant,
}

/// Spawns `cmd` and waits at most `timeout` for it (then kills it): its
/// exit code (`None` if killed, or ended by a signal) and its wall time.
/// For runs measured by the fake's statistics, not by `wait4`.
pub fn spawn_and_wait(cmd: &mut Command, timeout: Duration) -> Result<(Option<i32>, Duration), String> {
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))?;
    let exit = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status.code();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((exit, started.elapsed()))
}

/// Spawns `cmd`, waits for it (at most `timeout`, then SIGKILL) and measures it.
pub fn run(cmd: &mut Command, timeout: Duration) -> io::Result<Measured> {
    let spawned_ns = mono_ns();
    let started = Instant::now();
    let child = cmd.spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("bench-wait4".to_owned())
        .spawn(move || {
            let _ = tx.send(wait4(pid));
        })?;
    let (waited, timed_out) = match rx.recv_timeout(timeout) {
        Ok(waited) => (waited?, false),
        Err(RecvTimeoutError::Timeout) => {
            // The child is not reaped until wait4 returns, so the pid is still ours.
            // SAFETY: kill(2) with a pid we spawned and have not reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let waited = rx.recv().map_err(|_| io::Error::other("wait4 thread died"))??;
            (waited, true)
        }
        Err(RecvTimeoutError::Disconnected) => return Err(io::Error::other("wait4 thread died")),
    };
    // Reaped by wait4 above; dropping a `Child` neither waits nor kills.
    drop(child);
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let outcome = if timed_out {
        Outcome::TimedOut
    } else if libc::WIFEXITED(waited.status) {
        Outcome::Exited(libc::WEXITSTATUS(waited.status))
    } else {
        Outcome::Signaled(libc::WTERMSIG(waited.status))
    };
    Ok(Measured {
        spawned_ns,
        wall: waited.at - started,
        cpu: tv(waited.rusage.ru_utime) + tv(waited.rusage.ru_stime),
        max_rss_kib: waited.rusage.ru_maxrss.max(0) as u64,
        outcome,
    })
}

fn wait4(pid: libc::pid_t) -> io::Result<Waited> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; all-zero is a valid value.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            return Ok(Waited {
                status,
                rusage,
                at: Instant::now(),
            });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child() {
        // A shell that grows to a few MiB, then exits 3.
        let m = run(
            Command::new("sh").args(["-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); exit 3"]),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(m.outcome, Outcome::Exited(3));
        assert!(m.max_rss_kib > 1000, "{m:?}");
    }

    #[test]
    fn kills_after_the_timeout() {
        let m = run(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert_eq!(m.outcome, Outcome::TimedOut);
        assert!(m.wall < Duration::from_secs(10));
    }

    #[test]
    fn results_round_trip() {
        for outcome in [Outcome::Exited(1), Outcome::Signaled(9), Outcome::TimedOut] {
            let m = Measured {
                spawned_ns: 123,
                wall: Duration::from_nanos(4_567_890),
                cpu: Duration::from_micros(12),
                max_rss_kib: 2048,
                outcome,
            };
            assert_eq!(parse_result(&format_result(&m)), Some(m));
        }
        assert_eq!(parse_result("1 2 3"), None);
    }

    #[test]
    fn instants_map_to_the_monotonic_clock() {
        let before = mono_ns();
        let t = Instant::now();
        let after = mono_ns();
        let ns = instant_ns(t);
        assert!(before.saturating_sub(1_000_000) <= ns && ns <= after + 1_000_000);
    }
}
