//! Prometheus metrics, rendered by hand in the text exposition format.
//!
//! One small registry per coordinator (not a process-global recorder), so several
//! coordinators can run in one process (tests) without sharing counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The coordinator's measurements.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    phase: u8,
    round_id: u64,
    distinct_masks: usize,
    /// (phase, outcome, reason) → count.
    messages: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// phase → (seconds, count).
    phase_durations: BTreeMap<&'static str, (f64, u64)>,
    /// (seconds, count) of message processing.
    processing: (f64, u64),
    rounds_failed: u64,
    rounds_completed: u64,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut g) = self.inner.lock() {
            f(&mut g);
        }
    }

    /// The current phase and round.
    pub fn set_phase(&self, phase_id: u8, round_id: u64) {
        self.with(|m| {
            m.phase = phase_id;
            m.round_id = round_id;
        });
    }

    /// Number of distinct masks voted for.
    pub fn set_distinct_masks(&self, n: usize) {
        self.with(|m| m.distinct_masks = n);
    }

    /// One message outcome.
    pub fn message(&self, phase: &'static str, outcome: &'static str, reason: &'static str) {
        self.with(|m| *m.messages.entry((phase, outcome, reason)).or_default() += 1);
    }

    /// A phase ended after `seconds`.
    pub fn phase_duration(&self, phase: &'static str, seconds: f64) {
        self.with(|m| {
            let e = m.phase_durations.entry(phase).or_default();
            e.0 += seconds;
            e.1 += 1;
        });
    }

    /// A message took `seconds` from arrival to verdict.
    pub fn processing_time(&self, seconds: f64) {
        self.with(|m| {
            m.processing.0 += seconds;
            m.processing.1 += 1;
        });
    }

    /// A round ended.
    pub fn round_end(&self, failed: bool) {
        self.with(|m| {
            if failed {
                m.rounds_failed += 1
            } else {
                m.rounds_completed += 1
            }
        });
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        let _ = writeln!(out, "# HELP xaynet_phase Current phase (0 idle, 1 sum, 2 update, 3 sum2, 4 unmask, 5 failure, 6 shutdown).");
        let _ = writeln!(out, "# TYPE xaynet_phase gauge\nxaynet_phase {}", m.phase);
        let _ = writeln!(out, "# HELP xaynet_round_id Current round number.");
        let _ = writeln!(
            out,
            "# TYPE xaynet_round_id gauge\nxaynet_round_id {}",
            m.round_id
        );
        let _ = writeln!(
            out,
            "# HELP xaynet_masks_distinct Distinct masks submitted in the current Sum2 phase."
        );
        let _ = writeln!(
            out,
            "# TYPE xaynet_masks_distinct gauge\nxaynet_masks_distinct {}",
            m.distinct_masks
        );
        let _ = writeln!(
            out,
            "# HELP xaynet_rounds_total Rounds that ended, by result."
        );
        let _ = writeln!(out, "# TYPE xaynet_rounds_total counter");
        let _ = writeln!(
            out,
            "xaynet_rounds_total{{result=\"completed\"}} {}",
            m.rounds_completed
        );
        let _ = writeln!(
            out,
            "xaynet_rounds_total{{result=\"failed\"}} {}",
            m.rounds_failed
        );
        let _ = writeln!(
            out,
            "# HELP xaynet_messages_total Messages by phase, outcome and reason."
        );
        let _ = writeln!(out, "# TYPE xaynet_messages_total counter");
        for ((phase, outcome, reason), n) in &m.messages {
            let _ = writeln!(out, "xaynet_messages_total{{phase=\"{phase}\",outcome=\"{outcome}\",reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP xaynet_phase_duration_seconds Durations of completed phases."
        );
        let _ = writeln!(out, "# TYPE xaynet_phase_duration_seconds summary");
        for (phase, (sum, count)) in &m.phase_durations {
            let _ = writeln!(
                out,
                "xaynet_phase_duration_seconds_sum{{phase=\"{phase}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "xaynet_phase_duration_seconds_count{{phase=\"{phase}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP xaynet_message_processing_seconds Time from arrival to verdict of a message."
        );
        let _ = writeln!(out, "# TYPE xaynet_message_processing_seconds summary");
        let _ = writeln!(
            out,
            "xaynet_message_processing_seconds_sum {}",
            m.processing.0
        );
        let _ = writeln!(
            out,
            "xaynet_message_processing_seconds_count {}",
            m.processing.1
        );
        out
    }
}

/// CPU seconds used so far by this process's live threads whose names start with `prefix`
/// (the whole process, exited threads included, for `""`; Linux: `/proc/self/task/*/stat`,
/// user + system time). `None` where
/// that is not readable. Benchmarks and `xaynet simulate` use it to tell the coordinator's CPU
/// time from the participants' when both run in one process.
pub fn thread_cpu_seconds(prefix: &str) -> Option<f64> {
    if prefix.is_empty() {
        // The whole process, threads that have exited included.
        return cpu_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?);
    }
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3 of the full line; utime and stime are 14 and 15.
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    // USER_HZ, the unit of these fields, is 100 on every Linux architecture we run on.
    Some(ticks as f64 / 100.0)
}

/// User + system seconds of one `/proc/…/stat` line.
fn cpu_of_stat(stat: &str) -> Option<f64> {
    // "pid (comm) state …": comm may hold spaces, so split at the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ, the unit of these fields, is 100 on every Linux architecture we run on.
    Some((utime + stime) as f64 / 100.0)
}
