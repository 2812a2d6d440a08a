//! What can go wrong talking to GitLab, and what an operator should check.

use reqwest::Method;

/// Why a GraphQL answer carried errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphqlFailure {
    /// Refused before running: parse, validation, complexity or size
    /// (no `data`). A GitLab whose schema differs; `auto` falls back to REST.
    Rejected,
    /// Ran, but a field failed (timeout, permission, registry error).
    Field,
    /// The project, group or repository is not there or not visible.
    NotFound,
}

/// A failed API call, with the request it belongs to. Never holds the token.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ApiError {
    /// GitLab answered with an error status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// The status code.
        status: u16,
        /// GitLab's message, or the start of the body.
        message: String,
    },
    /// No answer: connection refused, TLS failure, timeout, dropped connection.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// The cause chain, one line.
        reason: String,
    },
    /// A 2xx whose body is not what GitLab sends.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        /// Request method.
        method: Method,
        /// Request path, without query.
        path: String,
        /// What did not decode.
        reason: String,
    },
    /// Pagination headers that cannot be followed safely.
    #[error("{path}: {reason}")]
    Pagination {
        /// Request path, without query.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A GraphQL answer with errors.
    #[error("GraphQL {operation}: {message}")]
    Graphql {
        /// The operation's name.
        operation: &'static str,
        /// Refused, failed in a field, or nothing there.
        kind: GraphqlFailure,
        /// GitLab's messages, joined.
        message: String,
    },
    /// GitLab listed fewer tags than it counts, before and after: it cut the
    /// listing short without an error.
    #[error("GitLab listed {listed} tags but counts {before} before and {after} after the listing: it was cut short")]
    ListingIncomplete {
        /// Distinct names listed.
        listed: u64,
        /// GitLab's count before (or while) listing.
        before: u64,
        /// GitLab's count after listing.
        after: u64,
    },
    /// A whole answer that cannot be trusted to tell what is gone: a branch
    /// list that names no branch, or fewer than GitLab counts.
    #[error("{path}: {reason}")]
    Untrusted {
        /// Request path, without query.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Shutdown was requested; the request was not sent.
    #[error("not sent: shutting down")]
    Cancelled,
    /// The pass reached its `pass_timeout`; the request was not sent.
    #[error("not sent: the pass reached its pass_timeout")]
    Deadline,
}

impl ApiError {
    /// Not sent at all: shutdown, or the pass's deadline.
    pub(crate) fn not_sent(&self) -> bool {
        matches!(self, ApiError::Cancelled | ApiError::Deadline)
    }

    /// The HTTP status, if GitLab answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 403 for the token's scope, not for the tag: no tag is gone behind it.
    pub(crate) fn is_scope_error(&self) -> bool {
        matches!(self, ApiError::Status { status: 403, message, .. } if message.contains("insufficient_scope"))
    }

    /// GitLab's message says the tag is protected.
    pub(crate) fn says_protected(&self) -> bool {
        match self {
            ApiError::Status { message, .. } | ApiError::Graphql { message, .. } => message.contains("protected"),
            _ => false,
        }
    }

    /// A GraphQL "no permission" refusal: GitLab did not act.
    pub(crate) fn is_permission_refusal(&self) -> bool {
        matches!(self, ApiError::Graphql { message, .. }
            if message.contains("permission") || message.contains("resource that you are attempting to access"))
    }
    /// Whether GraphQL is not usable here, so that `api: auto` uses REST:
    /// no `/api/graphql` (404/405, e.g. a proxy that passes only `/api/v4`)
    /// or a query this GitLab's schema refuses.
    pub(crate) fn graphql_unavailable(&self) -> bool {
        match self {
            ApiError::Status { path, status, .. } => path.ends_with("/api/graphql") && matches!(status, 404 | 405),
            ApiError::Graphql { kind, .. } => *kind == GraphqlFailure::Rejected,
            _ => false,
        }
    }

    /// Whether GitLab may have acted although the request failed: no answer,
    /// or a 5xx/429 (a proxy's 502 can hide a delete that happened).
    pub(crate) fn may_have_acted(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// What an operator should check, for the statuses with a usual cause.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            ApiError::Status {
                status: 401 | 403 | 404,
                path,
                ..
            } if path.ends_with("/repository/branches")
                || path.ends_with("/repository/tags")
                || path.ends_with("/merge_requests") =>
            {
                Some(
                    "delete_when_ref_gone reads the project's branches and merge requests: the token needs read_api (or api) \
                 and its user Reporter or higher, and the project its repository and merge requests enabled",
                )
            }
            ApiError::Status { status: 401, .. } => Some(
                "the token is invalid, expired or revoked; create a new one with scope api (read_api for dry runs)",
            ),
            ApiError::Status {
                status: 403, message, ..
            } if message.contains("insufficient_scope") => {
                Some("the token lacks scope api (read_api and read_registry cannot delete)")
            }
            ApiError::Status {
                status: 403, message, ..
            } if message.contains("protected") => Some(
                "the tag is protected by a tag protection rule: only the role it names (Maintainer, Owner or Admin) may delete it, and nobody an immutable tag",
            ),
            ApiError::Status { status: 403, .. } => {
                Some("the token's user lacks the role: Reporter or higher to list, Developer or higher to delete tags")
            }
            ApiError::Status { status: 404, path, .. } if path.ends_with("/api/graphql") => Some(
                "GitLab's GraphQL endpoint is not reachable (a proxy that passes only /api/v4?); use api \"rest\" or \"auto\"",
            ),
            ApiError::Status { status: 404, .. }
            | ApiError::Graphql {
                kind: GraphqlFailure::NotFound,
                ..
            } => Some("no such project or group, or the token's user cannot see it; check the id or path"),
            ApiError::Graphql {
                kind: GraphqlFailure::Rejected,
                ..
            } => Some("this GitLab refuses the GraphQL query (an older version?); api \"auto\" uses REST instead"),
            ApiError::Graphql { message, .. } if message.contains("permission") => Some(
                "the token lacks scope api (read_api cannot delete), or its user lacks the Developer role on the project",
            ),
            ApiError::ListingIncomplete { .. } => Some(
                "GitLab turned a registry error into a short listing without reporting it; every tag of the repository is kept, and the next pass lists it again",
            ),
            ApiError::Transport { reason, .. } if reason.contains("certificate") => Some(
                "GitLab's TLS certificate is not trusted; give its CA with --ssl-path (or, at your own risk, --insecure)",
            ),
            _ => None,
        }
    }

    /// The message with its hint, for logs and `check`.
    pub(crate) fn explain(&self) -> String {
        match self.hint() {
            Some(hint) => format!("{self} ({hint})"),
            None => self.to_string(),
        }
    }
}

/// An error and its causes on one line, each cause once.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        let text = current.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ")
}
