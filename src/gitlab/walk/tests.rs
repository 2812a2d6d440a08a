//! The walk against an in-memory GitLab: a sorted list in a collation that
//! is not byte order, pages of twenty, `after` as the registry reads it.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// The fake's collation: letters and digits, lowercase, first; then bytes.
fn collate(a: &str, b: &str) -> Ordering {
    let key = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    key(a).cmp(&key(b)).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

struct Server {
    names: Vec<String>,
    name_cursors: bool,
}

struct Answer {
    names: Vec<String>,
    has_next: bool,
    end_cursor: Option<String>,
}

impl Server {
    fn new(names: impl IntoIterator<Item = String>, name_cursors: bool) -> Server {
        let mut names: Vec<String> = names.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        names.sort_by(|a, b| collate(a, b));
        Server { names, name_cursors }
    }

    fn page(&self, direction: Direction, after: Option<&str>) -> Answer {
        let list: Vec<&String> = match direction {
            Direction::Ascending => self.names.iter().collect(),
            Direction::Descending => self.names.iter().rev().collect(),
        };
        let start = match after {
            None => 0,
            Some(after) if self.name_cursors => {
                if !after.chars().any(|c| c.is_alphanumeric() || c == '_') {
                    return Answer {
                        names: Vec::new(),
                        has_next: false,
                        end_cursor: None,
                    };
                }
                match direction {
                    Direction::Ascending => list.partition_point(|n| collate(n, after).is_le()),
                    Direction::Descending => list.partition_point(|n| collate(n, after).is_ge()),
                }
            }
            Some(after) => after.strip_prefix("o:").unwrap().parse::<usize>().unwrap() + 1,
        };
        let names: Vec<String> = list
            .iter()
            .skip(start)
            .take(TAGS_PER_PAGE)
            .map(|n| (*n).clone())
            .collect();
        let has_next = start + names.len() < list.len();
        let end_cursor = match self.name_cursors {
            true => names.last().cloned(),
            false => (!names.is_empty()).then(|| format!("o:{}", start + names.len() - 1)),
        };
        Answer {
            names,
            has_next,
            end_cursor,
        }
    }
}

/// How many walkers: as the client decides from the concurrency limit, or
/// exactly this many.
#[derive(Clone, Copy)]
enum Width {
    Concurrency(usize),
    Walkers(usize),
}

/// What one simulated walk did.
struct Outcome {
    listed: Vec<String>,
    requests: usize,
    /// Round trips, when every page in flight is answered in each round.
    rounds: usize,
    walk: Walk,
}

/// Drives a walk. `pick(n)` chooses which of `n` answers in flight comes
/// next (`None`: all of them, in order, as one round); `start(point)` may
/// replace a probe's start point.
fn simulate(
    server: &mut Server,
    concurrency: Width,
    mut pick: impl FnMut(usize) -> Option<usize>,
    mut start: impl FnMut(&str) -> String,
    mut meanwhile: impl FnMut(&mut Server),
) -> Outcome {
    let mut walk = Walk::new();
    let first = server.page(Direction::Ascending, None);
    let count = Some(server.names.len() as u64);
    let width = match concurrency {
        Width::Concurrency(n) => walkers_for(count, n, first.has_next, server.name_cursors),
        // Any number of walkers on any repository, small ones too.
        Width::Walkers(n) if first.has_next => n.min(if server.name_cursors { n } else { 2 }),
        Width::Walkers(_) => 1,
    };
    walk.widen(width, count);
    if let Width::Walkers(_) = concurrency {
        // Split small sets too, into pieces of a page or two.
        walk.pages_per_start = 1;
        walk.min_split_pages = 1;
    }
    let mut listed = Vec::new();
    let mut take = |walk: &mut Walk, w: usize, answer: Answer| {
        let names: Vec<&str> = answer.names.iter().map(String::as_str).collect();
        let fresh = walk
            .take(w, &names, answer.has_next, answer.end_cursor.as_deref(), "Q")
            .unwrap();
        listed.extend(
            names
                .iter()
                .zip(fresh)
                .filter(|(_, f)| *f)
                .map(|(n, _)| (*n).to_owned()),
        );
    };
    take(&mut walk, 0, first);
    let (mut requests, mut rounds) = (1, 1);
    let mut in_flight: Vec<(usize, Answer)> = Vec::new();
    loop {
        for ask in walk.asks() {
            let mut after = ask.after.clone();
            if walk.walkers[ask.walker].split_of.is_some()
                && let Some(point) = &ask.after
            {
                let point = start(point);
                walk.walkers[ask.walker].after = Some(point.clone());
                after = Some(point);
            }
            requests += 1;
            in_flight.push((ask.walker, server.page(ask.direction, after.as_deref())));
        }
        if in_flight.is_empty() {
            break;
        }
        assert!(requests < 100_000, "the walk does not end");
        meanwhile(server);
        match pick(in_flight.len()) {
            Some(i) => {
                let (w, answer) = in_flight.swap_remove(i);
                take(&mut walk, w, answer);
            }
            None => {
                rounds += 1;
                for (w, answer) in std::mem::take(&mut in_flight) {
                    take(&mut walk, w, answer);
                }
            }
        }
    }
    assert!(walk.is_done());
    Outcome {
        listed,
        requests,
        rounds,
        walk,
    }
}

fn rounds(server: &mut Server, concurrency: usize) -> Outcome {
    simulate(server, Width::Concurrency(concurrency), |_| None, str::to_owned, |_| {})
}

/// Realistic CI tag names: many `main-<sha>`, merge requests, feature
/// branches, releases; spelled several ways the collation folds together.
fn ci_names(n: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let sha = format!("{:08x}", next() as u32);
            match i % 20 {
                0..=11 => format!("main-{sha}"),
                12..=15 => format!("mr-{}-{sha}", next() % 400),
                16 | 17 => format!("feature-{}-{sha}", ["login", "cache", "x", "search"][i % 4]),
                18 => format!("v{}.{}.{}", next() % 5, next() % 20, next() % 30),
                _ => format!("{}-{sha}", ["Main", "MR", "main_x", "Feature"][i % 4]),
            }
        })
        .collect()
}

fn assert_exact(outcome: &Outcome, server: &Server) {
    let mut listed = outcome.listed.clone();
    listed.sort_by(|a, b| collate(a, b));
    assert_eq!(listed.len(), outcome.listed.len());
    assert_eq!(listed, server.names, "every name, once");
}

#[test]
fn a_small_repository_is_listed_page_after_page() {
    let mut server = Server::new(ci_names(80), true);
    let outcome = rounds(&mut server, 16);
    assert_exact(&outcome, &server);
    assert_eq!(outcome.walk.walkers.len(), 1);
    assert_eq!(outcome.requests, 4);
}

#[test]
fn a_large_repository_is_split_evenly_for_ci_names() {
    for (tags, concurrency) in [(20_000, 32), (2_000, 16), (5_000, 8)] {
        let mut server = Server::new(ci_names(tags), true);
        let pages = server.names.len().div_ceil(TAGS_PER_PAGE);
        let outcome = rounds(&mut server, concurrency);
        assert_exact(&outcome, &server);
        let walkers = outcome.walk.walkers_started();
        eprintln!(
            "{tags} tags, concurrency {concurrency}: {} requests for {pages} pages, {} rounds, {walkers} walkers, {} wasted",
            outcome.requests, outcome.rounds, outcome.walk.wasted
        );
        eprintln!("  rounds {} vs {pages} sequential", outcome.rounds);
        assert!(outcome.requests * 100 <= pages * 107, "{} requests", outcome.requests);
        assert!(walkers >= outcome.walk.width.min(4), "{walkers} walkers");
        // The 20,000 tags of the benchmark: at least 5× fewer round trips.
        let speedup = if tags >= 20_000 { 5 } else { 2 };
        assert!(outcome.rounds * speedup <= pages + 10, "{} rounds", outcome.rounds);
    }
}

#[test]
fn small_sets_are_split_too_when_asked_so_the_properties_below_see_probes() {
    let mut server = Server::new(ci_names(300), true);
    let outcome = simulate(&mut server, Width::Walkers(8), |_| None, str::to_owned, |_| {});
    assert_exact(&outcome, &server);
    assert!(
        outcome.walk.walkers_started() >= 4,
        "{}",
        outcome.walk.walkers_started()
    );
}

#[test]
fn opaque_cursors_are_walked_from_both_ends() {
    let mut server = Server::new(ci_names(2_000), false);
    let outcome = rounds(&mut server, 16);
    assert_exact(&outcome, &server);
    assert_eq!(outcome.walk.walkers.len(), 2);
    let mut server = Server::new(ci_names(900), true);
    assert_eq!(
        rounds(&mut server, 16).walk.walkers.len(),
        1,
        "under 1,000 tags: page after page"
    );
    assert!(outcome.requests <= 102, "{}", outcome.requests);
    assert!(outcome.rounds <= 52, "{}", outcome.rounds);
}

/// Names that collide in the collation, sort differently by bytes, or
/// differ only in punctuation.
fn trap_names() -> impl Strategy<Value = Vec<String>> {
    let prefix = prop::sample::select(vec![
        "main-",
        "Main_",
        "main",
        "MAIN.",
        "MR-",
        "mr-",
        "v1.",
        "V1_",
        "a-b",
        "ab",
        "A_b",
        "feature-x-",
        "",
        "_",
        "z",
        "0",
    ]);
    let suffix = prop::string::string_regex("[0-9a-f.]{0,5}").unwrap();
    prop::collection::vec((prefix, suffix), 0..300).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(p, s)| format!("{p}{s}"))
            .filter(|n| n.chars().any(|c| c.is_ascii_alphanumeric()))
            .collect()
    })
}

/// A start point anywhere, word characters or not, as GitLab would read it.
fn any_point() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::string::string_regex("[a-zA-Z0-9._-]{1,6}").unwrap(), 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_name_is_listed_exactly_once(
        names in trap_names(),
        name_cursors in any::<bool>(),
        walkers in 1usize..12,
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..64),
        points in any_point(),
        random_points in any::<bool>(),
    ) {
        // Few names per walker, so that small sets are split too.
        let mut server = Server::new(names, name_cursors);
        let (mut p, mut q) = (0, 0);
        let outcome = simulate(
            &mut server,
            Width::Walkers(walkers),
            |n| {
                p += 1;
                Some(picks[p % picks.len()].index(n))
            },
            |point| {
                q += 1;
                if random_points { points[q % points.len()].clone() } else { point.to_owned() }
            },
            |_| {},
        );
        assert_exact(&outcome, &server);
    }

    #[test]
    fn tags_there_throughout_are_listed_while_others_come_and_go(
        names in trap_names(),
        walkers in 2usize..12,
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..64),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..40),
    ) {
        let mut server = Server::new(names, true);
        let original: BTreeSet<String> = server.names.iter().cloned().collect();
        let mut removed = BTreeSet::new();
        let (mut p, mut c) = (0, 0);
        let outcome = simulate(
            &mut server,
            Width::Walkers(walkers),
            |n| {
                p += 1;
                Some(picks[p % picks.len()].index(n))
            },
            str::to_owned,
            |server| {
                let Some((at, delete)) = changes.get(c) else { return };
                c += 1;
                if server.names.is_empty() {
                    return;
                }
                let i = at.index(server.names.len());
                if *delete {
                    removed.insert(server.names.remove(i));
                } else {
                    let name = format!("{}-pushed{c}", server.names[i]);
                    let at = server.names.partition_point(|n| collate(n, &name).is_le());
                    server.names.insert(at, name);
                }
            },
        );
        let listed: BTreeSet<&String> = outcome.listed.iter().collect();
        prop_assert_eq!(listed.len(), outcome.listed.len(), "no name twice");
        for name in original.difference(&removed) {
            prop_assert!(listed.contains(name), "{name} was there all along and not listed");
        }
    }
}

mod midpoints {
    use super::*;

    fn alnum_key(s: &str) -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn examples() {
        assert_eq!(midpoint("a", "c").as_deref(), Some("b"));
        let p = midpoint("main-0000", "main-ffff").unwrap();
        assert!(p.starts_with("main7") || p.starts_with("main8"), "{p}");
        assert_eq!(
            midpoint("v1.9", "v1.10"),
            None,
            "v19 sorts after v110: the wrong way round"
        );
        assert_eq!(midpoint("ab", "A_b"), None, "the same key");
        let p = midpoint("a", "b").unwrap();
        assert!(p.as_str() > "a" && p.as_str() < "b", "{p}");
        assert_eq!(midpoint("a", "a0"), None, "a0 comes right after a");
        let p = midpoint("v1.10", "v1.9").unwrap();
        assert!(p.as_str() > "v110" && p.as_str() < "v19", "{p}");
    }

    proptest! {
        #[test]
        fn a_midpoint_lies_strictly_between_and_has_a_word_character(
            a in "[a-zA-Z0-9._-]{0,30}",
            b in "[a-zA-Z0-9._-]{0,30}",
        ) {
            let (low, high) = if alnum_key(&a) <= alnum_key(&b) { (a, b) } else { (b, a) };
            let (kl, kh) = (alnum_key(&low), alnum_key(&high));
            match midpoint(&low, &high) {
                Some(p) => {
                    prop_assert!(!p.is_empty());
                    prop_assert!(p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{}", p);
                    prop_assert!(kl < p && p < kh, "{} < {} < {}", kl, p, kh);
                }
                // At [`KEY_DIGITS`] positions after the common prefix, no
                // key lies between; an extra position always would.
                None => {
                    let common = kl.bytes().zip(kh.bytes()).take_while(|(x, y)| x == y).count();
                    let (vl, vh) = (value_of(&kl.as_bytes()[common..]), value_of(&kh.as_bytes()[common..]));
                    prop_assert!(vh <= vl + 1 || kl.len() >= common + KEY_DIGITS, "{} .. {}", kl, kh);
                }
            }
        }
    }
}
