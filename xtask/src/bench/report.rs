//! The one table the benchmark prints (Markdown, so it can be pasted into
//! BENCHMARKS.md as it is), and the targets of issue 7 judged on it.

use std::fmt::Write as _;

use super::server::Memory;

/// The figures ratios are taken against.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    pub rps: Option<f64>,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    /// Sessions stored when the row was measured.
    pub sessions: u64,
    pub requests: u64,
    /// None where throughput means nothing (one request at a time).
    pub rps: Option<f64>,
    pub p50_us: f64,
    pub p99_us: f64,
    /// What the ratios of this row are to; None for a baseline itself.
    pub baseline: Option<Baseline>,
    /// The server's memory right after the row.
    pub memory: Option<Memory>,
    /// The server's CPU time (all threads, user and system) per request
    /// during the run, in µs: steadier than throughput on a shared machine.
    pub cpu_us: Option<f64>,
}

impl Row {
    pub fn rps_ratio(&self) -> Option<f64> {
        Some(self.rps? / self.baseline?.rps?)
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn latency(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 100_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.0} ms", us / 1000.0)
    }
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}"),
        _ => "—".into(),
    }
}

/// Megabytes (10^6 bytes), as the targets are written.
pub fn mb(kib: u64) -> String {
    format!("{:.0} MB", kib as f64 * 1024.0 / 1e6)
}

/// The rows as a Markdown table with aligned columns.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "Scenario",
        "Sessions",
        "Requests",
        "Req/s",
        "p50",
        "p99",
        "Req/s ÷ base",
        "p50 ÷ base",
        "p99 ÷ base",
        "Server CPU/req",
        "Server RSS (peak)",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for row in rows {
        let base = row.baseline;
        cells.push(vec![
            row.scenario.clone(),
            thousands(row.sessions),
            thousands(row.requests),
            row.rps
                .map(|r| thousands(r.round() as u64))
                .unwrap_or_else(|| "—".into()),
            latency(row.p50_us),
            latency(row.p99_us),
            match base {
                None if row.rps.is_some() => "base".into(),
                _ => ratio(row.rps_ratio()),
            },
            match base {
                None => "base".into(),
                Some(b) => ratio(Some(row.p50_us / b.p50_us)),
            },
            match base {
                None => "base".into(),
                Some(b) => ratio(Some(row.p99_us / b.p99_us)),
            },
            row.cpu_us
                .map(|us| format!("{us:.0} µs"))
                .unwrap_or_else(|| "—".into()),
            row.memory
                .map(|m| format!("{} ({})", mb(m.rss_kib), mb(m.peak_kib)))
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        out.push('|');
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            // Text left, figures right.
            if c == 0 {
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{cell} |", " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            for (c, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(*w);
                if c == 0 {
                    let _ = write!(out, " {dashes} |");
                } else {
                    let _ = write!(out, " {}: |", &dashes[1..]);
                }
            }
            out.push('\n');
        }
    }
    out
}

/// A target of the issue, judged.
pub struct Verdict {
    pub target: String,
    pub met: bool,
    /// The figures, and by how much a missed target is missed.
    pub detail: String,
}

impl Verdict {
    pub fn line(&self) -> String {
        format!(
            "- {} {}: {}",
            if self.met { "MET   " } else { "MISSED" },
            self.target,
            self.detail
        )
    }
}

/// `at least` of a ratio: e.g. 0.52 against 0.60 is "8 points short; 1.15x
/// the throughput would reach it".
pub fn shortfall(actual: f64, wanted: f64) -> String {
    format!(
        "{:.0} points short; {:.2}x the throughput would reach it",
        (wanted - actual) * 100.0,
        wanted / actual
    )
}
