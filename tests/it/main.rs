//! Integration tests: the real binary against the fake GitLab.
