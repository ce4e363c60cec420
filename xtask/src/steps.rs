//! Running a sequence of steps that all run, are all timed and are all reported.
//!
//! CI is more useful when it shows every broken thing at once, so a failing step
//! does not stop the ones after it; [`Steps::finish`] turns any failure into an
//! error at the very end.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// The step ran and succeeded.
    Passed,
    /// The step ran and failed, or could not be started; the text says how.
    Failed(String),
    /// The step was not run; the text says why.
    Skipped(String),
}

/// Why a step run in-process (see [`Steps::check`]) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The full account, printed when the step fails.
    report: String,
    /// A few words for the summary.
    reason: String,
}

impl Failure {
    /// A failure with its full `report` and the short `reason` for the summary.
    pub(crate) fn new(report: String, reason: &str) -> Self {
        Self {
            report,
            reason: reason.to_owned(),
        }
    }
}

/// The record of one finished step.
#[derive(Debug, Clone)]
struct Outcome {
    /// Short name shown in the summary, such as `lint: clippy`.
    name: String,
    /// How it ended.
    status: Status,
    /// Wall-clock time it took.
    elapsed: Duration,
}

/// An ordered list of steps, run one after another and summarised at the end.
#[derive(Debug)]
pub(crate) struct Steps {
    /// Name of the whole run (`lint`, `ci`, …), used in headers and the summary.
    title: &'static str,
    /// Every step recorded so far, in order.
    outcomes: Vec<Outcome>,
    /// When the run started, for the total.
    started: Instant,
}

impl Steps {
    /// Starts an empty run called `title`.
    pub(crate) fn new(title: &'static str) -> Self {
        Self {
            title,
            outcomes: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Runs `command` as the step `name`, printing a header before and the
    /// outcome after. Returns whether it passed.
    pub(crate) fn run(&mut self, name: &str, command: &mut Command) -> bool {
        println!();
        println!("==> [{}] {name}: {}", self.title, describe(command));
        let started = Instant::now();
        let status = match command.status() {
            Ok(exit) if exit.success() => Status::Passed,
            Ok(exit) => Status::Failed(format!("exited with {exit}")),
            Err(error) => Status::Failed(format!("could not start: {error}")),
        };
        self.record(name, status, started.elapsed())
    }

    /// Runs `command` as the step `name` like [`Steps::run`], but captures its
    /// standard output (its standard error still goes to the terminal).
    /// Returns the output when the step passed.
    pub(crate) fn run_captured(&mut self, name: &str, command: &mut Command) -> Option<String> {
        println!();
        println!("==> [{}] {name}: {}", self.title, describe(command));
        let started = Instant::now();
        let outcome = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output();
        let (status, stdout) = match outcome {
            Ok(output) if output.status.success() => (
                Status::Passed,
                Some(String::from_utf8_lossy(&output.stdout).into_owned()),
            ),
            Ok(output) => (
                Status::Failed(format!("exited with {}", output.status)),
                None,
            ),
            Err(error) => (Status::Failed(format!("could not start: {error}")), None),
        };
        self.record(name, status, started.elapsed());
        stdout
    }

    /// Runs `check` in-process as the step `name` (described by `what`),
    /// printing what it found: its message when it passes, its full report
    /// when it fails. Returns whether it passed.
    pub(crate) fn check(
        &mut self,
        name: &str,
        what: &str,
        check: impl FnOnce() -> Result<String, Failure>,
    ) -> bool {
        println!();
        println!("==> [{}] {name}: {what}", self.title);
        let started = Instant::now();
        let status = match check() {
            Ok(message) => {
                println!("{message}");
                Status::Passed
            }
            Err(failure) => {
                println!("{}", failure.report);
                Status::Failed(failure.reason)
            }
        };
        self.record(name, status, started.elapsed())
    }

    /// Records a step that failed before it could run a command (a missing
    /// tool, a missing input): prints `message` now and keeps it for the summary.
    pub(crate) fn fail(&mut self, name: &str, message: &str) {
        println!();
        println!("==> [{}] {name}: {message}", self.title);
        self.record(name, Status::Failed(message.to_owned()), Duration::ZERO);
    }

    /// Records a step that was not run: prints `message` in full now and
    /// keeps the short `reason` for the summary.
    pub(crate) fn skip(&mut self, name: &str, message: &str, reason: &str) {
        println!();
        println!("==> [{}] {name}: {message}", self.title);
        self.record(name, Status::Skipped(reason.to_owned()), Duration::ZERO);
    }

    /// Stores the outcome of a step, prints it and returns whether it passed.
    fn record(&mut self, name: &str, status: Status, elapsed: Duration) -> bool {
        let passed = status == Status::Passed;
        println!(
            "<== [{}] {name}: {} ({})",
            self.title,
            status_word(&status),
            format_duration(elapsed)
        );
        self.outcomes.push(Outcome {
            name: name.to_owned(),
            status,
            elapsed,
        });
        passed
    }

    /// Prints the summary of all steps and fails if any step failed, naming them.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        let width = self
            .outcomes
            .iter()
            .map(|outcome| outcome.name.len())
            .max()
            .unwrap_or(0);
        let mut summary = String::new();
        for outcome in &self.outcomes {
            let detail = match &outcome.status {
                Status::Passed => String::new(),
                Status::Failed(text) | Status::Skipped(text) => format!("  ({text})"),
            };
            // Writing into a String cannot fail.
            let _ = writeln!(
                summary,
                "  {:<width$}  {:<7}  {:>8}{detail}",
                outcome.name,
                status_word(&outcome.status),
                format_duration(outcome.elapsed),
            );
        }
        println!();
        println!(
            "==> [{}] summary (total {})",
            self.title,
            format_duration(self.started.elapsed())
        );
        print!("{summary}");

        let failed: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|outcome| matches!(outcome.status, Status::Failed(_)))
            .map(|outcome| outcome.name.as_str())
            .collect();
        if failed.is_empty() {
            println!("==> [{}] all steps passed", self.title);
            Ok(())
        } else {
            bail!(
                "{}: {} step(s) failed: {}",
                self.title,
                failed.len(),
                failed.join(", ")
            )
        }
    }
}

/// One word for a status, as shown in headers and the summary.
fn status_word(status: &Status) -> &'static str {
    match status {
        Status::Passed => "ok",
        Status::Failed(_) => "FAILED",
        Status::Skipped(_) => "skipped",
    }
}

/// Formats a duration as seconds with one decimal, or minutes and seconds.
pub(crate) fn format_duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = elapsed.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Renders a command the way a person would type it: environment overrides
/// first, then the program (by file name) and its arguments.
fn describe(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            value.map(|value| format!("{}={:?}", key.to_string_lossy(), value.to_string_lossy()))
        })
        .collect();
    let program = std::path::Path::new(command.get_program())
        .file_name()
        .map_or_else(
            || command.get_program().to_string_lossy().into_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
    parts.push(program);
    parts.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(1_250)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn commands_are_described_with_their_environment() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .args(["doc", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            describe(&command),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --no-deps"
        );
    }

    #[test]
    fn a_failed_step_fails_the_run_but_later_steps_still_run() {
        let mut steps = Steps::new("test");
        steps.record(
            "first",
            Status::Failed("exited with 1".to_owned()),
            Duration::ZERO,
        );
        steps.skip("second", "tool not installed: skipped", "not installed");
        steps.record("third", Status::Passed, Duration::ZERO);
        assert!(!steps.check("fourth", "a check", || Err(Failure::new(
            "the long report".to_owned(),
            "short"
        ))));
        assert!(steps.check("fifth", "a check", || Ok("fine".to_owned())));
        assert_eq!(steps.outcomes[3].status, Status::Failed("short".to_owned()));
        assert_eq!(steps.outcomes.len(), 5);
        let error = steps.finish().expect_err("a failed step fails the run");
        assert!(error.to_string().contains("first, fourth"), "{error}");
    }
}
