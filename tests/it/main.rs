//! Integration tests: the real binary, run as a user would, against the fake GitLab.

mod chaos;
mod cli;
mod daemon;
mod faults;
mod graphql;
mod modern;
mod pass;
mod plan;
mod refs;
mod rules;
mod secrets;
mod support;
mod tls;
mod traffic;
mod walk;
