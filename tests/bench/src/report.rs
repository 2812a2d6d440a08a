//! The markdown report: a summary across latencies, then per latency the
//! ratios, the medians per tool and every run, then the scale series.

use std::fmt::Write;

use crate::measure::{Outcome, instant_ns};
use crate::scenario::{Api, EXPIRED_AGE, LIMIT_DAYS, Scenario, YOUNG_AGE};
use crate::{Args, Context, Run, Series, Tool};

/// The median; the mean of the two middle values for an even count.
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "**no**" }
}

fn of(runs: &[Run], tool: Tool) -> Vec<&Run> {
    runs.iter().filter(|r| r.tool == tool).collect()
}

fn med(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(runs.iter().map(|r| f(r)).collect())
}

fn wall(r: &Run) -> f64 {
    r.measured.wall.as_secs_f64()
}

fn rss(r: &Run) -> f64 {
    r.measured.max_rss_kib as f64
}

/// The tools compared in the summary and the ratios, in that order.
const COMPARED: [Tool; 3] = [Tool::Ours, Tool::OursGraphql, Tool::Python];

/// One tool's medians in one series.
#[derive(Debug, Clone, Copy)]
struct Medians {
    wall: f64,
    rss: f64,
    requests: f64,
    /// Some run was killed: its wall time is a lower bound.
    timed_out: bool,
}

impl Medians {
    fn of(runs: &[&Run]) -> Option<Medians> {
        (!runs.is_empty()).then(|| Medians {
            wall: med(runs, wall),
            rss: med(runs, rss),
            requests: med(runs, |r| r.traffic.total as f64),
            timed_out: runs.iter().any(|r| r.measured.outcome == Outcome::TimedOut),
        })
    }

    /// `31.217` or `≥ 900.012` after a timeout.
    fn wall_s(&self) -> String {
        format!("{}{:.3}", if self.timed_out { "≥ " } else { "" }, self.wall)
    }
}

/// `a ÷ b` as `12.3×`, `≥ 12.3×` when `a` timed out, `≤ …` when `b` did.
fn ratio(a: &Medians, b: &Medians, f: impl Fn(&Medians) -> f64) -> (f64, String) {
    let r = f(a) / f(b);
    let bound = match (a.timed_out, b.timed_out) {
        (true, false) => "≥ ",
        (false, true) => "≤ ",
        _ => "",
    };
    (r, format!("{bound}{r:.1}×"))
}

/// The fastest of the compared tools (median wall time).
fn fastest(series: &Series) -> Option<(Tool, Medians)> {
    COMPARED
        .iter()
        .filter_map(|&t| Medians::of(&of(&series.runs, t)).map(|m| (t, m)))
        .min_by(|a, b| a.1.wall.total_cmp(&b.1.wall))
}

pub fn render(ctx: &Context, args: &Args, series: &[Series], scale: &[(Scenario, Run)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Benchmark: gitlab-registry-cleaner (REST and GraphQL) vs the Python tool\n"
    );
    let _ = writeln!(s, "- Machine: {}", ctx.machine);
    let _ = writeln!(s, "- Ours: {}", ctx.ours);
    match &ctx.python {
        Ok(py) => {
            let _ = writeln!(s, "- Python tool: {} (`{}`)", py.versions, py.exe.display());
        }
        Err(e) => {
            let _ = writeln!(s, "- Python tool: {e}");
        }
    }
    if let Some(kib) = ctx.rss_floor_kib {
        let _ = writeln!(
            s,
            "- Peak RSS is the child's own `ru_maxrss` from `wait4`, taken by a small wrapper process; \
             the least it can show (measured on `true`) is {:.1} MiB.",
            mib(kib as f64)
        );
    }
    let _ = writeln!(
        s,
        "- Command: `cargo run --release -p bench --{}{}`",
        if ctx.args_line.is_empty() { "" } else { " " },
        ctx.args_line
    );
    if let Some(first) = series.first() {
        let scenario = &first.scenario;
        let python_rounds = if ctx.python.is_ok() {
            format!(", {} of the Python tool", args.python_rounds())
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "- Data: {}, concurrency {} (ours), latency {}. Expired tags are {} days old, young ones {} hour, \
             the limit is {LIMIT_DAYS} days (legacy config `{{\"delete_older_than\": {{\"days\": {LIMIT_DAYS}}}}}`, \
             one entry per project, given by id). {} round(s) of ours{python_rounds} per latency; every run gets a \
             fresh fake with the same data; figures are medians.",
            scenario.describe_data(),
            scenario.concurrency,
            series
                .iter()
                .map(|x| x.scenario.latency_label())
                .collect::<Vec<_>>()
                .join(", "),
            EXPIRED_AGE.as_secs() / 86_400,
            YOUNG_AGE.as_secs() / 3_600,
            args.rounds,
        );
        let _ = writeln!(
            s,
            "- Runs: {}: `once --concurrency {} --api rest --log-level warn`; {}: the same with `--api graphql` \
             (tags 20 per GraphQL query with their dates, 20 deleted per mutation, no detail GETs); {}: \
             `gitlab_async_cleaner -u URL -t TOKEN -c CONFIG`; {}: `--api rest` with the default logs (a line per \
             deleted tag); the fake alone: a trivial client sending as many tag-detail GETs as REST needs.",
            Tool::Ours.label(),
            scenario.concurrency,
            Tool::OursGraphql.label(),
            Tool::Python.label(),
            Tool::OursInfo.label(),
        );
        summary_section(&mut s, series);
        for x in series {
            main_section(&mut s, x);
        }
    }
    if !scale.is_empty() {
        scale_section(&mut s, scale);
    }
    s
}

/// Latency × tool: wall time, requests, peak RSS, and the fastest.
fn summary_section(s: &mut String, series: &[Series]) {
    let tools: Vec<Tool> = COMPARED
        .into_iter()
        .filter(|&t| series.iter().any(|x| x.runs.iter().any(|r| r.tool == t)))
        .collect();
    let _ = writeln!(s, "\n### Summary across latencies (medians)\n");
    let mut head = "| latency |".to_owned();
    let mut rule = "|---|".to_owned();
    for t in &tools {
        let _ = write!(head, " {0} wall s | {0} requests | {0} peak RSS MiB |", t.short());
        rule.push_str("---|---|---|");
    }
    let _ = writeln!(s, "{head} fastest |");
    let _ = writeln!(s, "{rule}---|");
    for x in series {
        let mut row = format!("| {} |", x.scenario.latency_label());
        for &t in &tools {
            match Medians::of(&of(&x.runs, t)) {
                Some(m) => {
                    let _ = write!(row, " {} | {:.0} | {:.1} |", m.wall_s(), m.requests, mib(m.rss));
                }
                None => row.push_str(" — | — | — |"),
            }
        }
        let best = fastest(x).map_or_else(|| "—".to_owned(), |(t, _)| t.short().to_owned());
        let _ = writeln!(s, "{row} {best} |");
    }
}

fn main_section(s: &mut String, series: &Series) {
    let Series { scenario, runs, probes } = series;
    let ours = of(runs, Tool::Ours);
    let graphql = of(runs, Tool::OursGraphql);
    let info = of(runs, Tool::OursInfo);
    let py = of(runs, Tool::Python);
    let (m_rest, m_graphql, m_py) = (Medians::of(&ours), Medians::of(&graphql), Medians::of(&py));
    let probe_wall = median(probes.iter().map(|p| p.probed.wall.as_secs_f64()).collect());
    let latency_ms = scenario.latency.as_secs_f64() * 1000.0;

    let _ = writeln!(s, "\n### {} latency\n", scenario.latency_label());
    let _ = writeln!(s, "{}.", scenario.describe());
    let _ = writeln!(s, "\n#### Ratios (the figures that count)\n");
    let _ = writeln!(s, "| figure | value | target | met |");
    let _ = writeln!(s, "|---|---|---|---|");
    if let (Some(r), Some(g)) = (&m_rest, &m_graphql) {
        let (q, _) = ratio(r, g, |m| m.requests);
        let _ = writeln!(
            s,
            "| requests, REST ÷ GraphQL | {q:.1}× ({:.0} ÷ {:.0}) | ≥ 10× | {} |",
            r.requests,
            g.requests,
            yes(q >= 10.0)
        );
        let (_, t) = ratio(r, g, |m| m.wall);
        let _ = writeln!(
            s,
            "| wall time, REST ÷ GraphQL | {t} ({} s ÷ {} s) | — | |",
            r.wall_s(),
            g.wall_s()
        );
    }
    if let (Some(p), Some(g)) = (&m_py, &m_graphql) {
        let (_, t) = ratio(p, g, |m| m.wall);
        let (_, m) = ratio(p, g, |m| m.rss);
        let _ = writeln!(s, "| wall time, Python ÷ GraphQL | {t} | — | |");
        let _ = writeln!(s, "| peak RSS, Python ÷ GraphQL | {m} | — | |");
    }
    if let (Some(p), Some(r)) = (&m_py, &m_rest) {
        let (t, ts) = ratio(p, r, |m| m.wall);
        let (m, ms) = ratio(p, r, |m| m.rss);
        let _ = writeln!(s, "| wall time, Python ÷ REST | {ts} | ≥ 5× | {} |", yes(t >= 5.0));
        let _ = writeln!(s, "| peak RSS, Python ÷ REST | {ms} | ≥ 3× | {} |", yes(m >= 3.0));
    }
    if let (Some(g), Some(r)) = (&m_graphql, &m_rest) {
        let (_, m) = ratio(g, r, |m| m.rss);
        let _ = writeln!(
            s,
            "| peak RSS, GraphQL ÷ REST | {m} ({:.1} MiB ÷ {:.1} MiB) | — | |",
            mib(g.rss),
            mib(r.rss)
        );
    }
    if let Some((tool, m)) = fastest(series) {
        let met = if m_graphql.is_some() {
            yes(tool == Tool::OursGraphql)
        } else {
            "—"
        };
        let _ = writeln!(
            s,
            "| fastest | {} ({} s) | {} | {met} |",
            tool.label(),
            m.wall_s(),
            Tool::OursGraphql.short()
        );
    }
    if let Some(r) = &m_rest {
        let bound = scenario.latency_bound(r.requests.round() as u64).as_secs_f64();
        if bound > 0.0 {
            let _ = writeln!(
                s,
                "| REST ÷ request-latency bound ({:.0} requests × {latency_ms} ms ÷ {} = {bound:.3} s) | {:.2}× | ≤ 1.5× | {} |",
                r.requests,
                scenario.concurrency,
                r.wall / bound,
                yes(r.wall / bound <= 1.5)
            );
            if !probes.is_empty() {
                let _ = writeln!(
                    s,
                    "| fake alone ÷ the same bound (trivial client, {} keep-alive connections, {} GETs) | {:.2}× | — | the floor on this machine |",
                    scenario.concurrency,
                    scenario.minimum_total(Api::Rest),
                    probe_wall / bound
                );
            }
        }
        if !probes.is_empty() {
            let _ = writeln!(
                s,
                "| REST ÷ fake alone | {:.2}× | — | what our process adds |",
                r.wall / probe_wall
            );
        }
    }
    if let Some(g) = &m_graphql {
        let bound = scenario.graphql_bound().as_secs_f64();
        if bound > 0.0 {
            let _ = writeln!(
                s,
                "| GraphQL ÷ its latency bound (the longer of {} requests × {latency_ms} ms ÷ {} and the chain lookup → repository list → {} tag pages one after another → last mutation: {bound:.3} s) | {:.2}× | — | |",
                scenario.minimum_total(Api::Graphql),
                scenario.concurrency,
                scenario.tags.div_ceil(20).max(1),
                g.wall / bound
            );
        }
    }
    for (api, group) in [(Api::Rest, &ours), (Api::Graphql, &graphql)] {
        if group.is_empty() {
            continue;
        }
        let name = if api == Api::Rest { "REST" } else { "GraphQL" };
        let _ = writeln!(
            s,
            "| {name} requests, every run | {} (minimum {} = {}), {} repeated | exactly the minimum, no repeats | {} |",
            distinct(group.iter().map(|r| r.traffic.total)),
            scenario.minimum_total(api),
            scenario.describe_minimum(api),
            group.iter().map(|r| r.traffic.repeats).max().unwrap_or(0),
            yes(group.iter().all(|r| r.traffic.is_minimal(scenario, api)))
        );
    }
    for (name, group) in [
        (
            "REST (`warn` and `info` logs)",
            ours.iter().chain(&info).copied().collect::<Vec<_>>(),
        ),
        ("GraphQL", graphql.clone()),
    ] {
        if group.is_empty() {
            continue;
        }
        let correct = group.iter().filter(|r| r.is_correct()).count();
        let _ = writeln!(
            s,
            "| {name}: deleted exactly the expired tags and exited 0, every run | {correct} of {} | all | {} |",
            group.len(),
            yes(correct == group.len())
        );
    }
    if let (false, Some(r)) = (info.is_empty(), &m_rest) {
        let _ = writeln!(
            s,
            "| REST with `info` logs ÷ REST with `warn` (wall) | {:.2}× | — | the cost of a log line per deleted tag |",
            med(&info, wall) / r.wall
        );
    }

    let _ = writeln!(s, "\n#### Per tool (medians)\n");
    let _ = writeln!(
        s,
        "Requests are split, for REST, as repository pages / tag pages / tag details / DELETEs; for GraphQL as \
         queries (repository lists and tag pages) / mutations; anything else by route (`GET project`: the project \
         lookup GraphQL needs, the config giving projects by id). \
         \"Repeated\": requests (method, path and query, body) already made in that run (GitLab's paging defaults \
         `page=1`, `per_page=20` made explicit). \"Listing done\": the last repository page, tag page or GraphQL \
         query answered.\n"
    );
    let _ = writeln!(
        s,
        "| run | wall s (min–max) | CPU s | peak RSS MiB | requests | split | repeated | most in flight | mean in flight | fake's ms per request | start → first request ms | listing done after ms | last answer → exit ms | non-2xx | exactly the expired deleted | exits | ERROR lines | output lines |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    if !probes.is_empty() {
        let walls: Vec<f64> = probes.iter().map(|p| p.probed.wall.as_secs_f64()).collect();
        let (lo, hi) = min_max(&walls);
        let _ = writeln!(
            s,
            "| fake alone (trivial client) | {:.3} ({lo:.3}–{hi:.3}) | — | — | {} | all tag details | — | {} | {:.1} | {:.2} | — | — | — | {} errors | — | — | — | — |",
            median(walls.clone()),
            probes[0].probed.requests,
            median(probes.iter().map(|p| p.traffic.max_in_flight as f64).collect()),
            median(
                probes
                    .iter()
                    .map(|p| p.traffic.held_s / p.probed.wall.as_secs_f64())
                    .collect()
            ),
            median(probes.iter().map(|p| p.traffic.server_ms).collect()),
            probes.iter().map(|p| p.probed.errors).sum::<u64>()
        );
    }
    for (tool, group) in [
        (Tool::Ours, &ours),
        (Tool::OursGraphql, &graphql),
        (Tool::Python, &py),
        (Tool::OursInfo, &info),
    ] {
        if group.is_empty() {
            continue;
        }
        let walls: Vec<f64> = group.iter().map(|r| wall(r)).collect();
        let (lo, hi) = min_max(&walls);
        let first = group[0];
        let mut exits: Vec<String> = group.iter().map(|r| r.measured.outcome.describe()).collect();
        exits.sort();
        exits.dedup();
        let _ = writeln!(
            s,
            "| {} | {:.3} ({lo:.3}–{hi:.3}) | {:.2} | {:.1} | {:.0} | {} | {:.0} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {} of {} | {} | {:.0} | {:.0} |",
            tool.label(),
            median(walls.clone()),
            med(group, |r| r.measured.cpu.as_secs_f64()),
            mib(med(group, rss)),
            med(group, |r| r.traffic.total as f64),
            first.traffic.split(),
            med(group, |r| r.traffic.repeats as f64),
            med(group, |r| r.traffic.max_in_flight as f64),
            med(group, |r| r.traffic.held_s / wall(r)),
            med(group, |r| r.traffic.server_ms),
            med(group, startup_ms),
            med(group, |r| r.traffic.listing_s * 1000.0),
            med(group, shutdown_ms),
            med(group, |r| r.traffic.non_2xx as f64),
            group.iter().filter(|r| r.verdict.exact).count(),
            group.len(),
            exits.join(", "),
            med(group, |r| r.error_lines as f64),
            med(group, |r| r.log_lines as f64),
        );
    }

    let _ = writeln!(s, "\n#### Every run\n");
    let _ = writeln!(
        s,
        "| round | run | wall s | CPU s | peak RSS MiB | requests | most in flight | fake's ms per request | exactly the expired deleted | exit |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let rounds = runs
        .iter()
        .map(|r| r.round)
        .chain(probes.iter().map(|p| p.round))
        .max()
        .unwrap_or(0);
    for round in 1..=rounds {
        for p in probes.iter().filter(|p| p.round == round) {
            let _ = writeln!(
                s,
                "| {round} | fake alone | {:.3} | — | — | {} | {} | {:.2} | — | {} errors |",
                p.probed.wall.as_secs_f64(),
                p.probed.requests,
                p.traffic.max_in_flight,
                p.traffic.server_ms,
                p.probed.errors
            );
        }
        for r in runs.iter().filter(|r| r.round == round) {
            let _ = writeln!(
                s,
                "| {round} | {} | {:.3} | {:.2} | {:.1} | {} | {} | {:.2} | {} | {} |",
                r.tool.label(),
                wall(r),
                r.measured.cpu.as_secs_f64(),
                mib(rss(r)),
                r.traffic.total,
                r.traffic.max_in_flight,
                r.traffic.server_ms,
                r.verdict.describe(),
                r.measured.outcome.describe()
            );
        }
    }
}

/// `752` when every run made as many requests, else `750–752`.
fn distinct(xs: impl Iterator<Item = u64>) -> String {
    let xs: Vec<u64> = xs.collect();
    match (xs.iter().min(), xs.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => "—".to_owned(),
    }
}

/// From spawning the process to the first request reaching the fake.
fn startup_ms(r: &Run) -> f64 {
    r.traffic.span.map_or(f64::NAN, |(first, _)| {
        instant_ns(first).saturating_sub(r.measured.spawned_ns) as f64 / 1e6
    })
}

/// From the last answer the fake gave to the process's exit.
fn shutdown_ms(r: &Run) -> f64 {
    r.traffic.span.map_or(f64::NAN, |(_, last)| {
        let exited = r.measured.spawned_ns + r.measured.wall.as_nanos() as u64;
        exited.saturating_sub(instant_ns(last)) as f64 / 1e6
    })
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    })
}

fn scale_section(s: &mut String, scale: &[(Scenario, Run)]) {
    let first = &scale[0].0;
    let _ = writeln!(
        s,
        "\n### Scale: one repository, ours only\n\n{} latency, concurrency {}, `--log-level warn`, {} % expired; medians of {} run(s) per size.\n",
        format_args!("{} ms", first.latency.as_secs_f64() * 1000.0),
        first.concurrency,
        first.expired * 100.0,
        scale.iter().filter(|(sc, _)| sc.tags == first.tags).count()
    );
    let _ = writeln!(
        s,
        "| tags | requests | wall s (min–max) | µs per tag | CPU s | listing done after s | peak RSS MiB (min–max) | RSS bytes per tag above the smallest size | minimal requests | exactly the expired deleted |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let mut sizes: Vec<u64> = scale.iter().map(|(sc, _)| sc.tags).collect();
    sizes.dedup();
    let mut base: Option<(u64, f64)> = None;
    let mut rows = Vec::new();
    for &tags in &sizes {
        let group: Vec<&Run> = scale.iter().filter(|(sc, _)| sc.tags == tags).map(|(_, r)| r).collect();
        let sc = &scale.iter().find(|(sc, _)| sc.tags == tags).expect("a size has runs").0;
        let walls: Vec<f64> = group.iter().map(|r| wall(r)).collect();
        let rsses: Vec<f64> = group.iter().map(|r| rss(r)).collect();
        let (lo, hi) = min_max(&walls);
        let (rlo, rhi) = min_max(&rsses);
        let w = median(walls.clone());
        let m = median(rsses.clone());
        let per_tag = match base {
            Some((t0, m0)) if tags > t0 => format!("{:.0}", (m - m0) * 1024.0 / (tags - t0) as f64),
            _ => "—".to_owned(),
        };
        if base.is_none() {
            base = Some((tags, m));
        }
        let _ = writeln!(
            s,
            "| {tags} | {:.0} | {w:.3} ({lo:.3}–{hi:.3}) | {:.1} | {:.2} | {:.3} | {:.1} ({:.1}–{:.1}) | {per_tag} | {} | {} of {} |",
            med(&group, |r| r.traffic.total as f64),
            w * 1e6 / tags.max(1) as f64,
            med(&group, |r| r.measured.cpu.as_secs_f64()),
            med(&group, |r| r.traffic.listing_s),
            mib(m),
            mib(rlo),
            mib(rhi),
            yes(group.iter().all(|r| r.traffic.is_minimal(sc, Api::Rest))),
            group.iter().filter(|r| r.is_correct()).count(),
            group.len()
        );
        rows.push((tags, w, m));
    }
    if let Some(&(tags, _, m)) = rows.iter().find(|(t, _, _)| *t == 100_000) {
        let _ = writeln!(
            s,
            "\nPeak RSS at {tags} tags: {:.1} MiB (target ≤ 64 MiB): {}.",
            mib(m),
            yes(mib(m) <= 64.0)
        );
    }
    for pair in rows.windows(2) {
        let ((t0, w0, m0), (t1, w1, m1)) = (pair[0], pair[1]);
        let _ = writeln!(
            s,
            "\n{t0} → {t1} tags ({:.0}×): wall time {:.1}×, peak RSS {:.2}×.",
            t1 as f64 / t0 as f64,
            w1 / w0,
            m1 / m0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::measure::Measured;
    use crate::scenario::{Traffic, Verdict};

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    /// A correct run of `tool` making exactly the requests in `by_route`.
    fn run(tool: Tool, round: usize, wall_s: f64, rss_mib: u64, by_route: &BTreeMap<String, u64>) -> Run {
        Run {
            tool,
            round,
            measured: Measured {
                spawned_ns: 0,
                wall: Duration::from_secs_f64(wall_s),
                cpu: Duration::from_millis(100),
                max_rss_kib: rss_mib * 1024,
                outcome: Outcome::Exited(0),
            },
            traffic: Traffic {
                total: by_route.values().sum(),
                by_route: by_route.clone(),
                ..Traffic::default()
            },
            verdict: Verdict {
                exact: true,
                young_deleted: 0,
                expired_left: 0,
                deletions: 5000,
            },
            error_lines: 0,
            log_lines: 0,
        }
    }

    #[test]
    fn renders_rest_graphql_and_python_per_latency() {
        let args = Args {
            rounds: 2,
            python_rounds: Some(1),
            ..Args::default()
        };
        let series: Vec<Series> = [(5.0, 2.7, 0.4, 31.0), (50.0, 24.0, 2.9, 120.0)]
            .into_iter()
            .map(|(latency, rest, graphql, python)| {
                let scenario = args.scenario_at(latency);
                let rest_routes = scenario.minimum_requests(Api::Rest);
                let graphql_routes = scenario.minimum_requests(Api::Graphql);
                // The Python tool reads no count.
                let mut python_routes = rest_routes.clone();
                python_routes.remove("GET repository");
                let mut runs = Vec::new();
                for round in 1..=2 {
                    runs.push(run(Tool::Ours, round, rest, 12, &rest_routes));
                    runs.push(run(Tool::OursGraphql, round, graphql, 10, &graphql_routes));
                    if round == 1 {
                        runs.push(run(Tool::Python, round, python, 83, &python_routes));
                    }
                }
                Series {
                    scenario,
                    runs,
                    probes: Vec::new(),
                }
            })
            .collect();
        let ctx = Context {
            machine: "test".to_owned(),
            rss_floor_kib: None,
            ours: "ours".to_owned(),
            python: Err("not installed".to_owned()),
            args_line: String::new(),
        };
        let text = render(&ctx, &args, &series, &[]);
        assert!(text.contains(
            "| latency | REST wall s | REST requests | REST peak RSS MiB | GraphQL wall s | GraphQL requests | GraphQL peak RSS MiB | Python wall s | Python requests | Python peak RSS MiB | fastest |"
        ));
        assert!(
            text.contains("| 5 ms | 2.700 | 15111 | 12.0 | 0.400 | 752 | 10.0 | 31.000 | 15101 | 83.0 | GraphQL |")
        );
        assert!(
            text.contains("| 50 ms | 24.000 | 15111 | 12.0 | 2.900 | 752 | 10.0 | 120.000 | 15101 | 83.0 | GraphQL |")
        );
        assert!(text.contains("### 5 ms latency") && text.contains("### 50 ms latency"));
        assert!(text.contains("| requests, REST ÷ GraphQL | 20.1× (15111 ÷ 752) | ≥ 10× | yes |"));
        assert!(text.contains("| wall time, Python ÷ REST | 5.0× | ≥ 5× | yes |"));
        assert!(text.contains("| fastest | ours, GraphQL (`--api graphql`) (2.900 s) | GraphQL | yes |"));
        assert!(text.contains(
            "| GraphQL requests, every run | 752 (minimum 752 = 1 GET project + 501 POST graphql + 250 POST graphql_mutation), 0 repeated | exactly the minimum, no repeats | yes |"
        ));
        assert!(
            text.contains("| GraphQL: deleted exactly the expired tags and exited 0, every run | 2 of 2 | all | yes |")
        );
        assert!(text.contains("| 2 | ours, GraphQL (`--api graphql`) | 2.900 |"));
        assert!(!text.contains("**no**"), "{text}");
    }
}
