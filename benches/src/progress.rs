//! The progress line on stderr: which table, which repetition, which
//! implementation, and how many runs of the whole invocation are done.
//!
//! On a terminal the line is rewritten in place; elsewhere (CI logs) each
//! step is its own line, so a hang shows what was running.

use std::io::{IsTerminal as _, Write as _};

/// Counts runs and prints where the benchmark is.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Runs started so far.
    done: usize,
    /// Runs planned for the whole invocation.
    total: usize,
    /// Whether stderr is a terminal (rewrite the line in place).
    in_place: bool,
    /// Whether a line is showing that must be cleared before other output.
    showing: bool,
}

impl Progress {
    /// Progress over `total` planned runs.
    pub(crate) fn new(total: usize) -> Self {
        Self {
            done: 0,
            total,
            in_place: std::io::stderr().is_terminal(),
            showing: false,
        }
    }

    /// Announces the next run: `[W3 workers=8] rep 2/5 threadpool (12/45)`.
    pub(crate) fn start(&mut self, label: &str, what: &str) {
        self.done += 1;
        let line = line(label, what, self.done, self.total);
        self.show(&line);
    }

    /// Shows a line about the current run without counting a new one (the
    /// wake-up measurement's tries).
    pub(crate) fn update(&mut self, label: &str, what: &str) {
        let line = line(label, what, self.done, self.total);
        self.show(&line);
    }

    /// Prints `line` in place or as its own line.
    fn show(&mut self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        if self.in_place {
            let _ = write!(stderr, "\r\x1b[2K{line}");
            self.showing = true;
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    /// Clears an in-place line before something else is printed.
    pub(crate) fn clear(&mut self) {
        if self.showing {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
            self.showing = false;
        }
    }
}

/// The text of one progress line.
fn line(label: &str, what: &str, done: usize, total: usize) -> String {
    format!("{label} {what} ({done}/{total})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_run_and_the_overall_count() {
        assert_eq!(
            line("[W3 workers=8]", "rep 2/5 threadpool execute", 12, 45),
            "[W3 workers=8] rep 2/5 threadpool execute (12/45)"
        );
        let mut progress = Progress::new(2);
        progress.in_place = false;
        progress.start("[W1 workers=2]", "warm-up sequential");
        progress.update("[W1 workers=2]", "still warming up");
        assert_eq!(progress.done, 1);
    }
}
