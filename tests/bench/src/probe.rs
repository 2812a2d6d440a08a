//! The fake alone: a trivial client of blocking keep-alive HTTP/1.1
//! connections (one thread per connection, `concurrency` of them) that
//! sends as many tag-detail GETs as our cleaner's pass needs requests.
//! Its wall time against the request-latency bound is what the fake server
//! and the timer can do at best; our cleaner cannot beat it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the trivial client achieved.
#[derive(Debug, Clone, Copy)]
pub struct Probed {
    pub wall: Duration,
    pub requests: u64,
    /// Answers that were not 200, or connections that failed.
    pub errors: u64,
}

/// Sends one GET per entry of `paths` (cycling is the caller's business)
/// over `concurrency` connections.
pub fn run(addr: SocketAddr, token: &str, paths: Vec<String>, concurrency: usize) -> Probed {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (paths, next, token) = (Arc::clone(&paths), Arc::clone(&next), token.to_owned());
            std::thread::spawn(move || worker(addr, &token, &paths, &next))
        })
        .collect();
    let mut requests = 0;
    let mut errors = 0;
    for w in workers {
        match w.join() {
            Ok((ok, failed)) => {
                requests += ok + failed;
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    Probed {
        wall: started.elapsed(),
        requests,
        errors,
    }
}

fn worker(addr: SocketAddr, token: &str, paths: &[String], next: &AtomicUsize) -> (u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(i) else { break };
        if conn.is_none() {
            conn = connect(addr).ok();
        }
        let result = match conn.as_mut() {
            Some((w, r)) => get(w, r, addr, token, path),
            None => Err(io::Error::other("connect failed")),
        };
        match result {
            Ok(200) => ok += 1,
            Ok(_) => failed += 1,
            Err(_) => {
                failed += 1;
                conn = None;
            }
        }
    }
    (ok, failed)
}

fn connect(addr: SocketAddr) -> io::Result<(TcpStream, BufReader<TcpStream>)> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let reader = BufReader::new(stream.try_clone()?);
    Ok((stream, reader))
}

/// One request on a kept-alive connection; returns the status.
fn get(w: &mut TcpStream, r: &mut BufReader<TcpStream>, addr: SocketAddr, token: &str, path: &str) -> io::Result<u16> {
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {token}\r\nAccept: */*\r\n\r\n"
    )?;
    w.flush()?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(io::Error::other)?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(status)
}
