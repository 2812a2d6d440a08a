//! The markdown report: ratios first, then medians per tool, then every run,
//! then the scale series.

use std::fmt::Write;

use crate::measure::{Outcome, instant_ns};
use crate::scenario::{EXPIRED_AGE, LIMIT_DAYS, Scenario, YOUNG_AGE};
use crate::{Args, Context, ProbeRun, Run, Tool};

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

pub fn render(
    ctx: &Context,
    args: &Args,
    scenario: &Scenario,
    main_series: bool,
    runs: &[Run],
    probes: &[ProbeRun],
    scale: &[(Scenario, Run)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Benchmark: gitlab-registry-cleaner vs the Python tool\n");
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
    if main_series {
        let _ = writeln!(
            s,
            "- Data: {}. Expired tags are {} days old, young ones {} hour, the limit is {LIMIT_DAYS} days \
             (legacy config `{{\"delete_older_than\": {{\"days\": {LIMIT_DAYS}}}}}`, one entry per project). \
             {} round(s); every run gets a fresh fake with the same data; figures are medians.",
            scenario.describe(),
            EXPIRED_AGE.as_secs() / 86_400,
            YOUNG_AGE.as_secs() / 3_600,
            args.rounds
        );
        main_section(&mut s, scenario, runs, probes);
    }
    if !scale.is_empty() {
        scale_section(&mut s, scale);
    }
    s
}

fn main_section(s: &mut String, scenario: &Scenario, runs: &[Run], probes: &[ProbeRun]) {
    let ours = of(runs, Tool::Ours);
    let info = of(runs, Tool::OursInfo);
    let py = of(runs, Tool::Python);
    let ours_wall = med(&ours, wall);
    let ours_rss = med(&ours, rss);
    let ours_requests = med(&ours, |r| r.traffic.total as f64).round() as u64;
    let bound = scenario.latency_bound(ours_requests).as_secs_f64();
    let probe_wall = median(probes.iter().map(|p| p.probed.wall.as_secs_f64()).collect());

    let _ = writeln!(s, "\n### Ratios (the figures that count)\n");
    let _ = writeln!(s, "| figure | value | target | met |");
    let _ = writeln!(s, "|---|---|---|---|");
    if !py.is_empty() {
        let timed_out = py.iter().any(|r| r.measured.outcome == Outcome::TimedOut);
        let at_least = if timed_out { "≥ " } else { "" };
        let t = med(&py, wall) / ours_wall;
        let m = med(&py, rss) / ours_rss;
        let _ = writeln!(
            s,
            "| wall time, Python ÷ ours | {at_least}{t:.1}× | ≥ 5× | {} |",
            yes(t >= 5.0)
        );
        let _ = writeln!(s, "| peak RSS, Python ÷ ours | {m:.1}× | ≥ 3× | {} |", yes(m >= 3.0));
    }
    if bound > 0.0 {
        let r = ours_wall / bound;
        let _ = writeln!(
            s,
            "| ours ÷ request-latency bound ({ours_requests} requests × {} ms ÷ {} = {bound:.3} s) | {r:.2}× | ≤ 1.5× | {} |",
            scenario.latency.as_secs_f64() * 1000.0,
            scenario.concurrency,
            yes(r <= 1.5)
        );
        if !probes.is_empty() {
            let _ = writeln!(
                s,
                "| fake alone ÷ the same bound (trivial client, {} keep-alive connections, {} GETs) | {:.2}× | — | the floor on this machine |",
                scenario.concurrency,
                scenario.minimum_total(),
                probe_wall / bound
            );
        }
    }
    if !probes.is_empty() {
        let _ = writeln!(
            s,
            "| ours ÷ fake alone | {:.2}× | — | what our process adds |",
            ours_wall / probe_wall
        );
    }
    let minimal = ours.iter().all(|r| r.traffic.is_minimal(scenario));
    let _ = writeln!(
        s,
        "| ours' requests, every run | {} (minimum {}; {}), {} repeated | exactly the minimum, no repeats | {} |",
        ours_requests,
        scenario.minimum_total(),
        scenario
            .minimum_requests()
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        ours.iter().map(|r| r.traffic.repeats).max().unwrap_or(0),
        yes(minimal)
    );
    let correct = ours.iter().chain(&info).all(|r| r.is_correct());
    let _ = writeln!(
        s,
        "| ours deleted exactly the expired tags and exited 0, every run | {} of {} | all | {} |",
        ours.iter().chain(&info).filter(|r| r.is_correct()).count(),
        ours.len() + info.len(),
        yes(correct)
    );
    if !info.is_empty() {
        let _ = writeln!(
            s,
            "| ours with `info` logs ÷ ours with `warn` (wall) | {:.2}× | — | the cost of a log line per deleted tag |",
            med(&info, wall) / ours_wall
        );
    }

    let _ = writeln!(s, "\n### Per tool (medians)\n");
    let _ = writeln!(
        s,
        "Requests are split as repository pages / tag pages / tag details / DELETEs. \
         \"Repeated\": requests for a resource or page already asked for in that run (GitLab's paging defaults `page=1`, `per_page=20` made explicit).\n"
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
    for (tool, group) in [(Tool::Ours, &ours), (Tool::Python, &py), (Tool::OursInfo, &info)] {
        if group.is_empty() {
            continue;
        }
        let walls: Vec<f64> = group.iter().map(|r| wall(r)).collect();
        let (lo, hi) = min_max(&walls);
        let first = group[0];
        let mut exits: Vec<String> = group.iter().map(|r| r.measured.outcome.describe()).collect();
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

    let _ = writeln!(s, "\n### Every run\n");
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
            yes(group.iter().all(|r| r.traffic.is_minimal(sc))),
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

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
