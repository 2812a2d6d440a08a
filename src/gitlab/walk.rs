//! Listing one large repository's tags with several walkers at once
//! (`docs/performance.md#one-large-repository`).
//!
//! GitLab pages a repository's tags twenty at a time. One page after another,
//! 20,000 tags at 50 ms a request take 50 s whatever the concurrency limit.
//! Where the registry has its metadata database, a name-sorted page's
//! `endCursor` is the raw name of its last tag and `after` may be any string
//! (`docs/gitlab-api.md#graphql-tag-pages`), so the name space can be walked
//! from several start points at once; otherwise (opaque offset cursors) from
//! both ends.
//!
//! # The walkers
//!
//! - `W0` ascends from the beginning (its first page also reads `tagsCount`
//!   and decides the plan);
//! - `D` descends from the end (`sort: NAME_DESC`);
//! - probes ascend from synthetic `after` points between names GitLab
//!   returned ([`midpoint`]); a probe whose first page is new ground becomes
//!   a walker.
//!
//! How many: one (page after page, as before) when the concurrency limit is
//! 1 or `tagsCount` says at most [`SEQUENTIAL_PAGES`] pages (up to 1,000
//! tags); two (`W0` and
//! `D`) with opaque cursors; otherwise `pages ÷ PAGES_PER_WALKER`, at least
//! two and at most the concurrency limit. Each walker has one page in flight,
//! so the walk never has more requests out than walkers; every request goes
//! through the client's funnel (its limit, retries, deadline).
//!
//! # Why the union is the whole listing
//!
//! Walkers meet by names they have seen, never by comparing names: GitLab's
//! order is a database collation, not byte order. The rules, applied to each
//! page as it arrives, one page at a time:
//!
//! 1. every name goes into one set, and is handed to the pass the first
//!    time only;
//! 2. an ascending walker registers the first name of its first page as its
//!    *start* — unless another walker has seen that name already; then it
//!    stops at once and registers nothing;
//! 3. an ascending walker stops after a page that holds another ascending
//!    walker's start, or a name `D` has seen;
//! 4. `D` stops after a page that holds a name any ascending walker has seen;
//! 5. otherwise a walker goes on until GitLab says there is no next page.
//!
//! Take any name `x` and, among the registered starts at or before `x`, the
//! last one, `s` (`W0`'s start is the first name, so there is one); its
//! walker `A` lists contiguously from `s`. If `A` stopped before `x`, then
//! (5) it reached the end — no, `x` is after it — or (3) its last page held
//! another walker's start `s'`: starts are distinct names, so `s < s' ≤ x`,
//! against the choice of `s`; or (3) its last page held a name `y` that `D`
//! saw: `D` lists contiguously from the end down to `y < x`, so `D` listed
//! `x`. Hence every name is listed. Two ascending walkers never stop merely
//! because they saw each other's names: with pages in flight both could
//! stop, and what lies beyond both would never be walked. Where a walker
//! starts only changes the balance, never the result; a start point that
//! lands on ground already walked costs one request (counted as *wasted*).
//!
//! This holds for a repository that does not change during the walk. Tags
//! others push or delete meanwhile are what they are for a sequential
//! listing too: a deleted start only makes the walker below it walk on
//! further (more requests, the same names), a pushed tag may or may not be
//! listed, and the completeness check on GitLab's counts before and after
//! applies to the union (`backend.rs`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::client::GitlabClient;
use super::error::ApiError;
use super::graphql::{Cursors, MAX_PAGES, Sort, TAGS_PER_PAGE, TagNode, TagsListed};

/// At most this many pages by `tagsCount`: one page after another. Below
/// two walkers' worth of pages a split gains little, and a repository
/// others push to and delete from while it is listed is best read in one
/// direction (a walker from the end misses what is pushed there after it
/// passed, where page after page would reach it).
const SEQUENTIAL_PAGES: u64 = 2 * PAGES_PER_WALKER;
/// Pages per walker: each walker costs about one page of overlap where it
/// meets the next one, so fewer walkers than pages ÷ 25 keeps the request
/// count within a few percent of a sequential listing.
const PAGES_PER_WALKER: u64 = 25;
/// At most one probe (a start point tried between names, whether it finds
/// new ground or not) per this many pages of the repository.
const PAGES_PER_START: u128 = 20;
/// What a `tagsCount` of 0 (GitLab's count call failed) or at its cap is
/// taken for when choosing the number of walkers.
const UNKNOWN_COUNT: u64 = 10_000;
/// Hidden knob, for the benchmark's comparison only (not a setting, not
/// documented for operators): the most walkers a listing may use; `1`
/// lists page after page.
const MAX_WALKERS_ENV: &str = "GITLAB_REGISTRY_CLEANER_MAX_WALKERS";

/// A walker is split only when it has about this many pages left: each
/// split costs a page of overlap, or a probe that finds walked ground.
const MIN_SPLIT_PAGES: u128 = 6;

/// After this many probes in a row found walked ground, a walker's ground
/// is not split any more: it is smaller than its estimate.
const MAX_WASTED_IN_A_ROW: u32 = 4;

/// Positions of a name's key that [`midpoint`] and the span estimates look at.
const KEY_DIGITS: usize = 24;
/// Letters and digits, and "end of the name" below them.
const RADIX: u128 = 37;

/// The direction a walker pages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Ascending,
    Descending,
}

/// A page a walker asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageAsk {
    pub walker: usize,
    pub direction: Direction,
    pub after: Option<String>,
}

/// How many walkers a listing uses, from its first page.
pub(super) fn walkers_for(count: Option<u64>, concurrency: usize, more_pages: bool, name_cursors: bool) -> usize {
    let count = match count {
        Some(n) if (1..UNKNOWN_COUNT).contains(&n) => n,
        _ => UNKNOWN_COUNT,
    };
    let pages = count.div_ceil(TAGS_PER_PAGE as u64);
    let knob = std::env::var(MAX_WALKERS_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n >= 1);
    let concurrency = knob.map_or(concurrency, |n| n.min(concurrency));
    if !more_pages || concurrency <= 1 || pages <= SEQUENTIAL_PAGES {
        1
    } else if !name_cursors {
        2
    } else {
        usize::try_from(pages / PAGES_PER_WALKER)
            .unwrap_or(usize::MAX)
            .clamp(2, concurrency)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct SeenBy {
    ascending: bool,
    descending: bool,
}

#[derive(Debug)]
struct Walker {
    direction: Direction,
    /// The `after` of its next page.
    after: Option<String>,
    in_flight: bool,
    done: bool,
    /// Pages it has had.
    pages: u32,
    /// The last name it listed.
    frontier: Option<String>,
    /// Ascending: a guess of where its ground ends (the next start, a
    /// probe point that found walked ground); only balance depends on it.
    upper: Option<String>,
    /// A probe: the walker it splits, and the upper bound it inherits.
    split_of: Option<(usize, Option<String>)>,
    /// A probe of this walker's ground is out.
    probing: bool,
    /// No point lies between its frontier and its upper bound, or too
    /// many probes in a row found walked ground.
    unsplittable: bool,
    /// Probes of its ground in a row that found walked ground.
    wasted_in_a_row: u32,
    /// How far (in [`key_value`]s) a page reaches: the less of its last
    /// page's reach and its average since its start — the density that
    /// estimates how much ground it has left (rather more than less, so
    /// that a walker in a dense family is split).
    page_span: u128,
    /// The [`key_value`] of its first name.
    start_value: u128,
    cursors: Cursors,
}

impl Walker {
    fn new(direction: Direction, after: Option<String>) -> Walker {
        Walker {
            direction,
            after,
            in_flight: false,
            done: false,
            pages: 0,
            frontier: None,
            upper: None,
            split_of: None,
            probing: false,
            unsplittable: false,
            wasted_in_a_row: 0,
            page_span: 0,
            start_value: 0,
            cursors: Cursors::default(),
        }
    }
}

/// The shared state of one walk: the decisions, without any I/O. The driver
/// feeds it one page at a time (see the module docs for the rules).
#[derive(Debug)]
pub(super) struct Walk {
    walkers: Vec<Walker>,
    /// Every name seen, and by which direction.
    seen: HashMap<String, SeenBy>,
    /// Registered starts → their walker.
    starts: HashMap<String, usize>,
    /// The most walkers (D included) at a time.
    width: usize,
    /// The descending walker, once there is one.
    descending: Option<usize>,
    /// GitLab's count, when it proves something (below its cap).
    count: Option<u64>,
    /// [`PAGES_PER_START`] and [`MIN_SPLIT_PAGES`] (tests split small sets).
    pages_per_start: u128,
    min_split_pages: u128,
    /// Probes whose first page was walked ground.
    pub wasted: u32,
}

impl Walk {
    /// A walk whose first page (`W0`'s, no `after`) is being fetched.
    pub(super) fn new() -> Walk {
        let mut first = Walker::new(Direction::Ascending, None);
        first.in_flight = true;
        Walk {
            walkers: vec![first],
            seen: HashMap::new(),
            starts: HashMap::new(),
            width: 1,
            descending: None,
            count: None,
            pages_per_start: PAGES_PER_START,
            min_split_pages: MIN_SPLIT_PAGES,
            wasted: 0,
        }
    }

    /// Sets how many walkers may run (from the first page: see
    /// [`walkers_for`]) and GitLab's count of the tags.
    pub(super) fn widen(&mut self, width: usize, count: Option<u64>) {
        self.width = width.max(1);
        self.count = count.filter(|n| (1..UNKNOWN_COUNT).contains(n));
    }

    /// Walkers that found ground of their own (`W0`, probes that became
    /// walkers), and `D`.
    pub(super) fn walkers_started(&self) -> usize {
        self.starts.len() + usize::from(self.descending.is_some())
    }

    /// Whether every walker is done and nothing is in flight.
    pub(super) fn is_done(&self) -> bool {
        self.walkers.iter().all(|w| w.done && !w.in_flight)
    }

    /// The pages to ask for now; each is marked in flight.
    pub(super) fn asks(&mut self) -> Vec<PageAsk> {
        if self.width >= 2 && self.descending.is_none() && self.walkers[0].pages > 0 && !self.walkers[0].done {
            self.walkers.push(Walker::new(Direction::Descending, None));
            self.descending = Some(self.walkers.len() - 1);
        }
        if self.descending.is_some() {
            self.split();
        }
        let mut asks = Vec::new();
        for (i, walker) in self.walkers.iter_mut().enumerate() {
            if !walker.done && !walker.in_flight {
                walker.in_flight = true;
                asks.push(PageAsk {
                    walker: i,
                    direction: walker.direction,
                    after: walker.after.clone(),
                });
            }
        }
        asks
    }

    fn running(&self) -> usize {
        self.walkers.iter().filter(|w| !w.done).count()
    }

    /// Starts probes while there is room: each splits the ascending walker
    /// with the most ground left by estimate, if that is worth a walker.
    ///
    /// The estimate: the walker's ground reaches to its upper bound (or
    /// `D`'s lowest name), at the density of its last page — capped by its
    /// share of the names GitLab counts and nobody has seen. The probe goes
    /// half-way through that estimate, never past the key midpoint of the
    /// ground. CI names crowd into families (`main-<sha>`, `mr-<n>-<sha>`)
    /// with wide gaps between them, so the density finds the middle of a
    /// family where the key midpoint would land in a gap; a probe that
    /// lands on walked ground moves the upper bound down to it (bisection).
    fn split(&mut self) {
        let Some(d) = self.descending else { return };
        if self.walkers[d].pages == 0 {
            return;
        }
        let floor = self.walkers[d].frontier.clone().filter(|_| !self.walkers[d].done);
        let ascending = self
            .walkers
            .iter()
            .filter(|w| w.direction == Direction::Ascending && !w.done)
            .count()
            .max(1) as u128;
        // GitLab's count; where it proves nothing (0, or its cap), a guess:
        // at least the cap, and twice what was listed so far.
        let seen = self.seen.len() as u64;
        let total = self.count.unwrap_or(UNKNOWN_COUNT.max(seen.saturating_mul(2)));
        let pages_left = u128::from(total.saturating_sub(seen)).div_ceil(TAGS_PER_PAGE as u128);
        let share = Some(pages_left / ascending);
        // Splitting ground smaller than a walker's fair share costs
        // more requests than it saves time.
        let total_pages = u128::from(total).div_ceil(TAGS_PER_PAGE as u128);
        let worth = self.min_split_pages.max(total_pages / self.width as u128);
        // Each walker costs about a page where it meets the next one, and a
        // probe that finds walked ground a request: at most one probe per
        // PAGES_PER_START pages keeps that within a few percent.
        let budget = usize::try_from(total_pages / self.pages_per_start).unwrap_or(usize::MAX);
        while self.running() < self.width && self.walkers.len() < budget.max(2) {
            // (pages, walker, from, to, the point by density)
            let mut best: Option<(u128, usize, String, String, u128)> = None;
            for (i, w) in self.walkers.iter().enumerate() {
                if w.done || w.probing || w.unsplittable || w.split_of.is_some() && w.pages == 0 || w.page_span == 0 {
                    continue;
                }
                let Some(frontier) = &w.frontier else { continue };
                // D is not split: the ascending walker below it has D's
                // lowest name as its upper bound, and splits that ground.
                if w.direction == Direction::Descending {
                    continue;
                }
                // An upper bound the walker went past (a probe point that
                // came back after it) says nothing any more.
                let upper = w.upper.as_ref().filter(|u| key_value(u) > key_value(frontier));
                let (from, to) = match (upper, &floor) {
                    (Some(u), Some(f)) if key_value(f) < key_value(u) => (frontier, f),
                    (Some(u), _) => (frontier, u),
                    (None, Some(f)) => (frontier, f),
                    (None, None) => continue,
                };
                let ground = key_value(to).saturating_sub(key_value(from));
                let pages = share.map_or(ground / w.page_span, |share| (ground / w.page_span).min(share));
                let by_density = key_value(frontier).saturating_add(w.page_span.saturating_mul(pages / 2));
                if pages >= worth && best.as_ref().is_none_or(|(p, ..)| pages > *p) {
                    best = Some((pages, i, from.clone(), to.clone(), by_density));
                }
            }
            let Some((_, i, from, to, by_density)) = best else {
                return;
            };
            let point = match midpoint(&from, &to) {
                Some(middle) if by_density < key_value(&middle) => Some(point_at(by_density, &from, &middle)),
                other => other,
            };
            match point {
                Some(point) => {
                    self.walkers[i].probing = true;
                    let mut probe = Walker::new(Direction::Ascending, Some(point));
                    probe.split_of = Some((i, Some(to)));
                    self.walkers.push(probe);
                }
                None => self.walkers[i].unsplittable = true,
            }
        }
    }

    /// Takes walker `w`'s page: `names` in GitLab's order, whether there is
    /// a next page and its cursor. Returns, for each name, whether it is new
    /// (to be handed to the pass). An answer that says "more" without a new
    /// cursor is an error, as for a sequential listing.
    pub(super) fn take(
        &mut self,
        w: usize,
        names: &[&str],
        has_next: bool,
        end_cursor: Option<&str>,
        operation: &'static str,
    ) -> Result<Vec<bool>, ApiError> {
        let direction = self.walkers[w].direction;
        let first_page = self.walkers[w].pages == 0;
        // A loop guard, as for a sequential listing.
        let pages: u64 = self.walkers.iter().map(|w| u64::from(w.pages)).sum();
        if pages >= u64::from(MAX_PAGES) {
            return Err(ApiError::Pagination {
                path: operation.to_owned(),
                reason: format!("more than {MAX_PAGES} pages; refusing to go on"),
            });
        }
        self.walkers[w].in_flight = false;
        self.walkers[w].pages += 1;
        let mut stop = false;
        if direction == Direction::Ascending && first_page {
            stop = self.register_start(w, names.first().copied());
        }
        // Rules 3 and 4, against what the others had seen before this page.
        for name in names {
            let by = self.seen.get(*name).copied().unwrap_or_default();
            stop |= match direction {
                Direction::Ascending => by.descending || self.starts.get(*name).is_some_and(|&s| s != w),
                Direction::Descending => by.ascending,
            };
        }
        let fresh = names
            .iter()
            .map(|name| {
                let mark = |by: &mut SeenBy| match direction {
                    Direction::Ascending => by.ascending = true,
                    Direction::Descending => by.descending = true,
                };
                match self.seen.entry((*name).to_owned()) {
                    Entry::Occupied(mut seen) => {
                        mark(seen.get_mut());
                        false
                    }
                    Entry::Vacant(slot) => {
                        mark(slot.insert(SeenBy::default()));
                        true
                    }
                }
            })
            .collect();
        let walker = &mut self.walkers[w];
        if let Some(last) = names.last() {
            walker.frontier = Some((*last).to_owned());
        }
        if let (Some(first), true) = (names.first(), first_page) {
            walker.start_value = key_value(first);
        }
        if let [first, .., last] = names {
            let (first, last) = (key_value(first), key_value(last));
            let reach = |from: u128, to: u128| match direction {
                Direction::Ascending => to.saturating_sub(from),
                Direction::Descending => from.saturating_sub(to),
            };
            walker.page_span = match walker.pages {
                1 => reach(first, last),
                pages => (reach(walker.start_value, last) / u128::from(pages)).min(reach(first, last)),
            };
        }
        if stop || !has_next {
            walker.done = true;
        } else {
            let page = super::graphql::PageInfo {
                has_next_page: has_next,
                end_cursor: end_cursor.map(str::to_owned),
            };
            walker.after = walker.cursors.next(operation, &page)?;
        }
        Ok(fresh)
    }

    /// Rule 2 for an ascending walker's first page; whether it stops at once.
    /// A probe's outcome also moves the split walker's upper bound.
    fn register_start(&mut self, w: usize, first: Option<&str>) -> bool {
        let split = self.walkers[w].split_of.take();
        let new_ground = first.filter(|name| !self.seen.contains_key(*name));
        if let Some(name) = new_ground {
            self.starts.insert(name.to_owned(), w);
        }
        if let Some((of, upper)) = split {
            let point = self.walkers[w].after.clone();
            self.walkers[of].probing = false;
            match new_ground {
                Some(start) => {
                    self.walkers[w].upper = upper;
                    self.walkers[of].upper = Some(start.to_owned());
                    self.walkers[of].wasted_in_a_row = 0;
                }
                None => {
                    // Walked ground (or nothing) after the point: the split
                    // walker's ground ends before it.
                    self.wasted += 1;
                    self.walkers[of].upper = point;
                    self.walkers[of].wasted_in_a_row += 1;
                    self.walkers[of].unsplittable |= self.walkers[of].wasted_in_a_row >= MAX_WASTED_IN_A_ROW;
                }
            }
        }
        new_ground.is_none()
    }
}

/// The key [`midpoint`] works on: a name's letters and digits, lowercase.
fn key(name: &str) -> Vec<u8> {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase() as u8)
        .collect()
}

fn digit(c: u8) -> u128 {
    match c {
        b'0'..=b'9' => u128::from(c - b'0') + 1,
        _ => u128::from(c - b'a') + 11,
    }
}

fn char_of(d: u128) -> char {
    match d {
        1..=10 => (b'0' + (d - 1) as u8) as char,
        _ => (b'a' + (d - 11) as u8) as char,
    }
}

/// A key's first [`KEY_DIGITS`] positions as a base-37 fraction, scaled to an integer.
fn value_of(key: &[u8]) -> u128 {
    (0..KEY_DIGITS).fold(0, |v, i| v * RADIX + key.get(i).map_or(0, |&c| digit(c)))
}

fn key_value(name: &str) -> u128 {
    value_of(&key(name))
}

/// The key a value stands for, up to its first "end of name".
fn key_of(value: u128) -> Vec<u8> {
    let mut digits = [0u128; KEY_DIGITS];
    let mut v = value;
    for d in digits.iter_mut().rev() {
        *d = v % RADIX;
        v /= RADIX;
    }
    digits
        .iter()
        .take_while(|&&d| d != 0)
        .map(|&d| char_of(d) as u8)
        .collect()
}

/// The key at `value` (positions from the start of the key), or `fallback`
/// where that is not strictly after `low`'s key.
fn point_at(value: u128, low: &str, fallback: &str) -> String {
    let point = key_of(value);
    match !point.is_empty() && value_of(&point) > key_value(low) {
        true => String::from_utf8(point).expect("ASCII"),
        false => fallback.to_owned(),
    }
}

/// A start point between two names GitLab returned: a lowercase
/// alphanumeric string whose key lies strictly between theirs, about
/// half-way when the keys are read as base-37 fractions (end of name
/// lowest) over [`KEY_DIGITS`] positions after their common prefix. `None`
/// when there is no such string at that precision. Never empty, and always
/// with a word character (GitLab answers an empty page to an `after`
/// without one).
pub(super) fn midpoint(low: &str, high: &str) -> Option<String> {
    let (low, high) = (key(low), key(high));
    let common = low.iter().zip(&high).take_while(|(a, b)| a == b).count();
    let (a, b) = (value_of(&low[common..]), value_of(&high[common..]));
    if b <= a.checked_add(1)? {
        return None;
    }
    let middle = a + (b - a) / 2;
    let mut tail = key_of(middle);
    if value_of(&tail) <= a {
        // Cut at an "end of name" inside: round up at that position instead.
        let at = tail.len();
        if at >= KEY_DIGITS {
            return None;
        }
        tail.push(b'0');
        if value_of(&tail) >= b {
            return None;
        }
    }
    let mut point = low[..common].to_vec();
    point.extend(tail);
    (!point.is_empty()).then(|| String::from_utf8(point).expect("ASCII"))
}

impl GitlabClient {
    /// Hands every tag of a repository, with its dates, to `each` once, as
    /// its page arrives, walking the name space with up to `concurrency`
    /// walkers (module docs). The listing is complete only when this returns
    /// `Ok`; any page's error ends the walk (pages in flight are dropped).
    pub(super) async fn for_each_graphql_tag(
        &self,
        repository_gid: &str,
        concurrency: usize,
        mut each: impl FnMut(TagNode),
    ) -> Result<TagsListed, ApiError> {
        const OPERATION: &str = "RepositoryTags";
        let mut walk = Walk::new();
        let (count, first) = self.graphql_tag_page(repository_gid, Sort::NameAsc, None, true).await?;
        let name_cursors = match (first.nodes.last(), first.page_info.end_cursor.as_deref()) {
            (Some(last), Some(cursor)) => last.name == cursor,
            _ => false,
        };
        walk.widen(
            walkers_for(count, concurrency, first.page_info.has_next_page, name_cursors),
            count,
        );
        let mut hand_over = |walk: &mut Walk, w: usize, page: super::graphql::Connection<TagNode>| {
            let names: Vec<&str> = page.nodes.iter().map(|n| n.name.as_str()).collect();
            let cursor = page.page_info.end_cursor.as_deref();
            let fresh = walk.take(w, &names, page.page_info.has_next_page, cursor, OPERATION)?;
            page.nodes
                .into_iter()
                .zip(fresh)
                .filter(|(_, fresh)| *fresh)
                .for_each(|(node, _)| each(node));
            Ok::<(), ApiError>(())
        };
        hand_over(&mut walk, 0, first)?;
        let mut in_flight = FuturesUnordered::new();
        loop {
            for ask in walk.asks() {
                let sort = match ask.direction {
                    Direction::Ascending => Sort::NameAsc,
                    Direction::Descending => Sort::NameDesc,
                };
                in_flight.push(async move {
                    let page = self
                        .graphql_tag_page(repository_gid, sort, ask.after.as_deref(), false)
                        .await;
                    (ask.walker, page)
                });
            }
            match in_flight.next().await {
                Some((w, page)) => hand_over(&mut walk, w, page?.1)?,
                None => break,
            }
        }
        debug_assert!(walk.is_done());
        if walk.walkers_started() > 1 {
            tracing::debug!(
                repository = repository_gid,
                walkers = walk.walkers_started(),
                wasted_probes = walk.wasted,
                "listed in parallel"
            );
        }
        Ok(TagsListed { count })
    }
}

#[cfg(test)]
mod tests;
