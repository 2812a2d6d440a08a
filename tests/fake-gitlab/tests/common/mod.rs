//! What the fake's black-box tests share: one HTTP/1.1 request on its own
//! connection, and the answer as status, headers and body.

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fake_gitlab::FakeGitlab;
use serde_json::Value;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request, with `token` as `PRIVATE-TOKEN` if given, on a fresh connection.
pub fn send(fake: &FakeGitlab, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    let mut stream = TcpStream::connect(fake.addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        fake.addr(),
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("PRIVATE-TOKEN: {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}
