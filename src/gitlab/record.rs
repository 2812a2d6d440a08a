//! A tag as the backend hands it to the pass: typed, whichever API read it.

use crate::policy::TagDate;

/// One tag of a repository, with what GitLab says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagRecord {
    /// The tag's name.
    pub name: String,
    /// The manifest digest, where GitLab gave it.
    pub digest: Option<String>,
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
