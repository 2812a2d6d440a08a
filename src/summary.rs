//! The summary table printed on stderr after `plan` (and `once`/`apply`
//! with `--summary`): a row per repository with anything to delete, then a
//! total row over every repository. Plain text within [`WIDTH`] columns.
//!
//! A small formatter rather than a table crate: the layout is fixed (right-
//! aligned numbers, one truncatable column), a name that does not fit is cut
//! in the middle (a path's two ends say the most), and the golden test pins
//! every character.

use std::fmt::Write;

/// The table never takes more columns than this.
pub(crate) const WIDTH: usize = 100;
/// The entry column's most columns; the repository column takes the rest.
const ENTRY_WIDTH: usize = 16;
const GAP: &str = "  ";

/// One repository's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SummaryRow {
    /// The config entry.
    pub entry: String,
    /// The repository's path.
    pub repository: String,
    /// Tags listed.
    pub tags_seen: u64,
    /// Tags to delete, or deleted.
    pub delete: u64,
    /// Tags kept.
    pub kept: u64,
    /// Bytes to free, or freed (where GitLab gave sizes).
    pub bytes: u64,
    /// Of `delete`, by the rule that chose them (entries with `rules`):
    /// name, tags, bytes — a line each under the repository's.
    pub by_rule: Vec<(String, u64, u64)>,
    /// Of `delete`, those whose branch or merge request is gone: tags,
    /// bytes — a `ref_gone` line under the repository's (and the rules').
    pub ref_gone: (u64, u64),
}

/// Whether the table tells what would be done or what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tense {
    /// `plan`, or a dry run.
    Planned,
    /// A pass that deleted.
    Done,
}

/// The table, ending in a newline.
pub(crate) fn render(rows: &[SummaryRow], tense: Tense) -> String {
    let (delete_head, bytes_head) = match tense {
        Tense::Planned => ("to delete", "to free"),
        Tense::Done => ("deleted", "freed"),
    };
    let total = SummaryRow {
        entry: "total".to_owned(),
        repository: match rows.len() {
            1 => "1 repository".to_owned(),
            n => format!("{n} repositories"),
        },
        tags_seen: rows.iter().map(|r| r.tags_seen).sum(),
        delete: rows.iter().map(|r| r.delete).sum(),
        kept: rows.iter().map(|r| r.kept).sum(),
        bytes: rows.iter().map(|r| r.bytes).sum(),
        by_rule: Vec::new(),
        ref_gone: (0, 0),
    };
    let shown: Vec<&SummaryRow> = rows.iter().filter(|r| r.delete > 0).collect();
    // A rule's line is a row of its own for the layout: `rule NAME` in the
    // repository column, only the tags and bytes it chose.
    let rule_rows: Vec<SummaryRow> = shown.iter().flat_map(|row| share_rows(row)).collect();
    let everything: Vec<&SummaryRow> = shown.iter().copied().chain(&rule_rows).chain([&total]).collect();

    let number_width = |head: &str, value: fn(&SummaryRow) -> String| {
        everything
            .iter()
            .map(|r| value(r).len())
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let seen_w = number_width("seen", |r| r.tags_seen.to_string());
    let delete_w = number_width(delete_head, |r| r.delete.to_string());
    let kept_w = number_width("kept", |r| r.kept.to_string());
    let bytes_w = number_width(bytes_head, |r| human_bytes(r.bytes));
    let entry_w = everything
        .iter()
        .map(|r| width(&r.entry))
        .chain([width("entry")])
        .max()
        .unwrap_or(0)
        .min(ENTRY_WIDTH);
    let fixed = entry_w + seen_w + delete_w + kept_w + bytes_w + 5 * GAP.len();
    let repository_w = everything
        .iter()
        .map(|r| width(&r.repository))
        .chain([width("repository")])
        .max()
        .unwrap_or(0)
        .min(WIDTH.saturating_sub(fixed));

    let line = |cells: [&str; 6]| {
        let [entry, repository, seen, delete, kept, bytes] = cells;
        let (entry, entry_cut) = fit(entry, entry_w);
        let (repository, repository_cut) = fit(repository, repository_w);
        let text = format!(
            "{entry}{}{GAP}{repository}{}{GAP}{seen:>seen_w$}{GAP}{delete:>delete_w$}{GAP}{kept:>kept_w$}{GAP}{bytes:>bytes_w$}",
            " ".repeat(entry_w - width(&entry)),
            " ".repeat(repository_w - width(&repository)),
        );
        (text, entry_cut || repository_cut)
    };
    let cells = |row: &SummaryRow| {
        line([
            &row.entry,
            &row.repository,
            &row.tags_seen.to_string(),
            &row.delete.to_string(),
            &row.kept.to_string(),
            &human_bytes(row.bytes),
        ])
    };
    let mut lines = vec![line(["entry", "repository", "seen", delete_head, "kept", bytes_head])];
    for row in &shown {
        lines.push(cells(row));
        for share in share_rows(row) {
            lines.push(line([
                "",
                &share.repository,
                "",
                &share.delete.to_string(),
                "",
                &human_bytes(share.bytes),
            ]));
        }
    }
    lines.push(("-".repeat(fixed + repository_w), false));
    lines.push(cells(&total));
    let mut out = String::new();
    for (text, _) in &lines {
        let _ = writeln!(out, "{}", text.trim_end());
    }
    if lines.iter().any(|(_, cut)| *cut) {
        let _ = writeln!(out, "(… marks a name shortened in the middle to fit {WIDTH} columns)");
    }
    out
}

/// The layout rows of a repository's shares: each rule's (`rule NAME`),
/// then the gone branches' and merge requests' (`ref_gone`).
fn share_rows(row: &SummaryRow) -> Vec<SummaryRow> {
    let share = |label: String, delete: u64, bytes: u64| SummaryRow {
        entry: String::new(),
        repository: label,
        tags_seen: 0,
        delete,
        kept: 0,
        bytes,
        by_rule: Vec::new(),
        ref_gone: (0, 0),
    };
    let rules = row
        .by_rule
        .iter()
        .map(|(rule, delete, bytes)| share(format!("  rule {rule}"), *delete, *bytes));
    let (gone, gone_bytes) = row.ref_gone;
    let gone = (gone > 0).then(|| share("  ref_gone".to_owned(), gone, gone_bytes));
    rules.chain(gone).collect()
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `120.6 MiB`, `2.0 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// `text` within `max` columns: whole, or its two ends around `…`.
fn fit(text: &str, max: usize) -> (String, bool) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return (text.to_owned(), false);
    }
    if max == 0 {
        return (String::new(), true);
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(entry: &str, repository: &str, seen: u64, delete: u64, bytes: u64) -> SummaryRow {
        SummaryRow {
            entry: entry.to_owned(),
            repository: repository.to_owned(),
            tags_seen: seen,
            delete,
            kept: seen - delete,
            bytes,
            by_rule: Vec::new(),
            ref_gone: (0, 0),
        }
    }

    /// The layout, pinned: change it here and in docs/operator-guide.md.
    #[test]
    fn golden_table() {
        let rows = [
            row("web", "platform/web/app", 51, 12, 1_234_567_890),
            row("web", "platform/web/tools", 8, 0, 0),
            row(
                "ci-caches-of-every-team",
                "group/ci/cache-with-a-really-long-name-that-goes-on-and-on-and-on-and-ends-here",
                4_000,
                3_990,
                734_003,
            ),
        ];
        let expected = "\
entry             repository                                        seen  to delete  kept    to free
web               platform/web/app                                    51         12    39    1.1 GiB
ci-cache…ry-team  group/ci/cache-with-a-re…on-and-on-and-ends-here  4000       3990    10  716.8 KiB
----------------------------------------------------------------------------------------------------
total             3 repositories                                    4059       4002    57    1.2 GiB
(… marks a name shortened in the middle to fit 100 columns)
";
        let table = render(&rows, Tense::Planned);
        assert_eq!(table, expected, "\n{table}");
        assert!(table.lines().all(|l| l.chars().count() <= WIDTH), "{table}");
    }

    /// An entry with `rules`: each rule's share under its repository.
    #[test]
    fn golden_table_with_rules() {
        let mut app = row("web", "platform/web/app", 51, 12, 3 << 30);
        app.by_rule = vec![("branches".to_owned(), 10, 2 << 30), ("scratch".to_owned(), 2, 1 << 30)];
        let expected = "\
entry  repository        seen  to delete  kept  to free
web    platform/web/app    51         12    39  3.0 GiB
         rule branches                10        2.0 GiB
         rule scratch                  2        1.0 GiB
-------------------------------------------------------
total  1 repository        51         12    39  3.0 GiB
";
        let table = render(&[app], Tense::Planned);
        assert_eq!(table, expected, "\n{table}");
    }

    /// Tags of gone branches and merge requests: their share under the
    /// repository, after the rules'.
    #[test]
    fn golden_table_with_ref_gone() {
        let mut app = row("web", "platform/web/app", 51, 12, 3 << 30);
        app.by_rule = vec![("branches".to_owned(), 12, 3 << 30)];
        app.ref_gone = (7, 1 << 30);
        let mut tools = row("tools", "platform/tools", 9, 4, 4 << 20);
        tools.ref_gone = (4, 4 << 20);
        let expected = "\
entry  repository        seen  to delete  kept  to free
web    platform/web/app    51         12    39  3.0 GiB
         rule branches                12        3.0 GiB
         ref_gone                      7        1.0 GiB
tools  platform/tools       9          4     5  4.0 MiB
         ref_gone                      4        4.0 MiB
-------------------------------------------------------
total  2 repositories      60         16    44  3.0 GiB
";
        let table = render(&[app, tools], Tense::Planned);
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    proptest! {
        #[test]
        fn every_line_fits_and_the_total_adds_up(
            names in proptest::collection::vec(("[a-z-]{1,40}", "[a-z/é-]{1,150}", 0u64..1_000_000, 0u64..1 << 50), 0..8)
        ) {
            let rows: Vec<SummaryRow> = names
                .iter()
                .map(|(entry, repository, seen, bytes)| row(entry, repository, *seen, seen / 2, *bytes))
                .collect();
            let table = render(&rows, Tense::Done);
            for line in table.lines() {
                prop_assert!(line.chars().count() <= WIDTH, "{}", line);
            }
            let total_line = table.lines().find(|l| l.starts_with("total")).unwrap();
            let delete: u64 = rows.iter().map(|r| r.delete).sum();
            let shown_total = total_line.split_whitespace().nth(4).unwrap().parse::<u64>().unwrap();
            prop_assert_eq!(shown_total, delete);
        }
    }
}
