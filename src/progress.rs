//! Stage progress on stderr (indicatif), hidden with `--quiet`/`--no-progress` or when stderr
//! is not a terminal, so logs of nightly batches stay clean. With `--log-format json`,
//! stderr carries one JSON object per event instead (stage starts and ends with their
//! timings here; warnings, errors and the final summary from the command line), for
//! schedulers.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static JSON: AtomicBool = AtomicBool::new(false);

/// Switches stderr to JSON events for the rest of the process.
pub fn set_json_log(on: bool) {
    JSON.store(on, Ordering::SeqCst);
}

pub fn json_log() -> bool {
    JSON.load(Ordering::SeqCst)
}

/// Writes one event as a JSON line on stderr, with its time; `fields` is an object.
pub fn log_event(event: &str, fields: serde_json::Value) {
    let mut object = serde_json::Map::new();
    object.insert(
        "time".into(),
        crate::clock::log_time(std::time::SystemTime::now()).into(),
    );
    object.insert("event".into(), event.into());
    if let serde_json::Value::Object(more) = fields {
        object.extend(more);
    }
    let line = serde_json::Value::Object(object).to_string();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports the stage being worked on and remembers how long each took.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    current: Option<(&'static str, Instant)>,
    timings: Vec<(&'static str, Duration)>,
}

impl Progress {
    /// `visible` is the caller's wish; the bar still stays hidden when stderr is not a terminal.
    pub fn new(visible: bool) -> Self {
        let bar = if visible && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:>10} {msg} [{elapsed}]")
                    .expect("static template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            current: None,
            timings: Vec::new(),
        }
    }

    pub fn hidden() -> Self {
        Self::new(false)
    }

    /// Ends the current stage (if any) and starts `name`.
    pub fn stage(&mut self, name: &'static str, message: impl Into<String>) {
        self.end_stage();
        let message = message.into();
        if json_log() {
            log_event(
                "stage_start",
                serde_json::json!({ "stage": name, "detail": message }),
            );
        }
        self.bar.set_prefix(name);
        self.bar.set_message(message);
        self.current = Some((name, Instant::now()));
    }

    fn end_stage(&mut self) {
        if let Some((name, start)) = self.current.take() {
            let took = start.elapsed();
            if json_log() {
                log_event(
                    "stage_end",
                    serde_json::json!({ "stage": name, "ms": took.as_millis() as u64 }),
                );
            }
            self.timings.push((name, took));
        }
    }

    /// A handle that updates the current stage's message from any thread (long stages
    /// report their progress, e.g. Monte Carlo runs).
    pub fn ticker(&self) -> impl Fn(String) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |message| bar.set_message(message)
    }

    /// Ends the last stage, clears the bar and returns the stage timings.
    pub fn finish(mut self) -> Vec<(&'static str, Duration)> {
        self.end_stage();
        self.bar.finish_and_clear();
        std::mem::take(&mut self.timings)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// This process's peak resident memory so far (`VmHWM`), in MiB; None where /proc is not.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}
