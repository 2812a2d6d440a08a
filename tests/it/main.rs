//! Integration tests: the real binary, run as a user would, against the fake GitLab.

mod cli;
mod daemon;
mod faults;
mod pass;
mod support;
