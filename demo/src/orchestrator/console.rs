//! What the orchestrator shows while it runs: a progress bar per phase, and notes above them.
//!
//! Everything goes to stderr, so stdout carries only the results table. When stderr is not a
//! terminal (CI, `make test`, a pipe), indicatif draws nothing and notes are plain lines.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

const BAR_TEMPLATE: &str = "{prefix:>6} {elapsed:>4} [{wide_bar:.cyan/blue}] {pos}/{len} deliveries {msg}";
const SPINNER_TEMPLATE: &str = "{prefix:>6} {spinner} {msg}";

pub struct Console {
    multi: MultiProgress,
}

impl Default for Console {
    fn default() -> Console {
        Console { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()) }
    }
}

impl Console {
    /// A line of narration, printed above any bar.
    pub fn note(&self, line: impl AsRef<str>) {
        if self.multi.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            // Only fails if the terminal is gone, and then there is no one to tell.
            let _ = self.multi.println(line.as_ref());
        }
    }

    /// A bar counting `deliveries` to their end (acknowledged or out of attempts).
    pub fn deliveries_bar(&self, prefix: &str, deliveries: u64) -> ProgressBar {
        let style = ProgressStyle::with_template(BAR_TEMPLATE).expect("a valid template").progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(deliveries).with_style(style).with_prefix(prefix.to_owned()));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A spinner for a step without a count.
    pub fn spinner(&self, prefix: &str, message: impl Into<String>) -> ProgressBar {
        let style = ProgressStyle::with_template(SPINNER_TEMPLATE).expect("a valid template");
        let spinner = self.multi.add(
            ProgressBar::new_spinner().with_style(style).with_prefix(prefix.to_owned()).with_message(message.into()),
        );
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    }
}
