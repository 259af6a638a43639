//! `bench`'s progress on stderr: a bar on a terminal; elsewhere (a CI log, a file) one plain
//! line per finished VMM run, with the elapsed time and the ETA, so a long run's log is never
//! empty until the end.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Where the runner's steps are shown.
pub enum Progress {
    /// An interactive terminal: an indicatif bar.
    Bar(ProgressBar),
    /// Anything else: plain lines.
    Lines(Lines),
}

/// The plain-line form: the step under way, and how many have finished.
pub struct Lines {
    total: u64,
    done: u64,
    current: Option<String>,
    started: Instant,
}

impl Progress {
    /// A bar if stderr is a terminal, else plain lines, for `total` VMM runs.
    pub fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar(
                ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} [{elapsed_precise}, eta {eta}] {msg}",
                    )
                    .expect("valid template"),
                ),
            )
        } else {
            Progress::Lines(Lines::new(total))
        }
    }

    /// The runner's report before a VMM run (`step` says which), or a warning (a `step` that
    /// starts with `warning:`), which is shown and not counted.
    pub fn step(&mut self, step: &str) {
        let warning = step.starts_with("warning:");
        match self {
            Progress::Bar(bar) if warning => bar.println(format!("bench: {step}")),
            Progress::Bar(bar) => {
                bar.set_message(step.to_string());
                bar.inc(1);
            }
            Progress::Lines(_) if warning => eprintln!("bench: {step}"),
            Progress::Lines(lines) => {
                if let Some(line) = lines.start(step, Instant::now()) {
                    eprintln!("{line}");
                }
            }
        }
    }

    /// The end of the run: clears the bar, or reports the last run as finished.
    pub fn finish(self) {
        match self {
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Lines(mut lines) => {
                if let Some(line) = lines.finish_current(Instant::now()) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Lines {
    fn new(total: u64) -> Lines {
        Lines {
            total,
            done: 0,
            current: None,
            started: Instant::now(),
        }
    }

    /// `step` starts at `now`: the line for the step it ends, if any.
    fn start(&mut self, step: &str, now: Instant) -> Option<String> {
        let line = self.finish_current(now);
        self.current = Some(step.to_string());
        line
    }

    /// The step under way finished at `now`: its line.
    fn finish_current(&mut self, now: Instant) -> Option<String> {
        let step = self.current.take()?;
        self.done += 1;
        let elapsed = now.duration_since(self.started);
        let left = self.total.saturating_sub(self.done);
        let eta = elapsed.mul_f64(left as f64 / self.done as f64);
        Some(format!(
            "bench: {}/{} done: {step} (elapsed {}, eta {})",
            self.done,
            self.total,
            clock(elapsed),
            clock(eta)
        ))
    }
}

/// `h:mm:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_finished_run_with_elapsed_and_eta() {
        let mut l = Lines::new(4);
        let t0 = l.started;
        assert_eq!(l.start("round 1/2 (rep): floor", t0), None);
        let line = l.start("round 1/2 (rep): a", t0 + Duration::from_secs(10));
        assert_eq!(
            line.as_deref(),
            Some("bench: 1/4 done: round 1/2 (rep): floor (elapsed 0:00:10, eta 0:00:30)")
        );
        let line = l.finish_current(t0 + Duration::from_secs(3700));
        assert_eq!(
            line.as_deref(),
            Some("bench: 2/4 done: round 1/2 (rep): a (elapsed 1:01:40, eta 1:01:40)")
        );
        assert_eq!(l.finish_current(t0), None);
    }
}
