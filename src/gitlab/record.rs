//! A tag as the backend hands it to the pass: typed, whichever API read it.

use std::fmt;

use crate::policy::TagDate;

/// One tag of a repository, with what GitLab says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagRecord {
    /// The tag's name.
    pub name: String,
    /// The manifest digest, where GitLab gave it.
    pub digest: Option<Digest>,
    /// `created_at` / `createdAt`. With the registry's metadata database this
    /// is the tag's first push; without it, the image's build date.
    pub created: TagDate,
    /// `publishedAt`, the last push: `None` where GitLab gives none (REST, or
    /// GraphQL without the metadata database). A value that is not a date is
    /// `Some(TagDate::Unparsable)`, never `None`: only a missing date may be
    /// replaced by `created`.
    pub published: Option<TagDate>,
    /// Bytes, where GitLab says.
    pub size: Option<u64>,
    /// Whether the token's user may delete it, where GitLab says (GraphQL on
    /// 17.8+): `Some(false)` for a tag a protection rule above the user's
    /// role, or an immutable rule, covers.
    pub deletable: Option<bool>,
}

/// A date field as sent: a string is parsed, `null` or absent is missing,
/// anything else is warned about and counts as unparsable (so never usable).
pub(super) fn date_field(tag: &str, field: &'static str, value: Option<&serde_json::Value>) -> Option<TagDate> {
    match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(TagDate::parse(Some(text))),
        Some(odd) => {
            tracing::warn!(tag_name = %tag, field, value = %odd, "the tag's date is not a string; the tag is kept as undated");
            Some(TagDate::Unparsable)
        }
    }
}

/// A manifest digest, kept small: a repository's records are all held until
/// the policy has decided, so `sha256:<64 hex>` is kept as its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Digest {
    /// `sha256:` and 64 lower-case hex digits.
    Sha256([u8; 32]),
    /// Anything else, as sent.
    Other(Box<str>),
}

impl Digest {
    /// Reads a digest as GitLab sends it.
    pub(crate) fn parse(text: &str) -> Digest {
        let sha256 = || -> Option<[u8; 32]> {
            let hex = text.strip_prefix("sha256:")?.as_bytes();
            if hex.len() != 64 {
                return None;
            }
            let nibble = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            let mut bytes = [0u8; 32];
            for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
                *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            Some(bytes)
        };
        match sha256() {
            Some(bytes) => Digest::Sha256(bytes),
            None => Digest::Other(text.into()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Sha256(bytes) => {
                f.write_str("sha256:")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Digest::Other(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sha256_digests_are_bytes_and_print_as_sent() {
        let text = "sha256:c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4";
        assert!(matches!(Digest::parse(text), Digest::Sha256(_)));
        assert_eq!(Digest::parse(text).to_string(), text);
        for odd in ["", "sha256:", "sha256:ABCD", "sha512:00", "sha256:zz"] {
            assert_eq!(Digest::parse(odd), Digest::Other(odd.into()));
        }
    }

    proptest! {
        #[test]
        fn any_digest_prints_as_sent(text in "(sha256:)?[0-9a-fA-F]{0,66}|.{0,80}") {
            prop_assert_eq!(Digest::parse(&text).to_string(), text);
        }
    }
}
