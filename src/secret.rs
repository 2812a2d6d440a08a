//! A token that cannot leak through `Debug` or `Display`.

use std::fmt;

/// A GitLab access token. It has no `Display`, and its `Debug` prints a mask,
/// so a `{:?}` of any settings struct is safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Secret {
        Secret(token.into())
    }

    /// The token itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_masks_the_token() {
        let s = super::Secret::new("glpat-abcdef");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "glpat-abcdef");
    }
}
