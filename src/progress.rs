//! Stage progress on stderr (indicatif), hidden with `--quiet`/`--no-progress` or when stderr
//! is not a terminal, so logs of nightly batches stay clean.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

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
        self.bar.set_prefix(name);
        self.bar.set_message(message.into());
        self.current = Some((name, Instant::now()));
    }

    fn end_stage(&mut self) {
        if let Some((name, start)) = self.current.take() {
            self.timings.push((name, start.elapsed()));
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
