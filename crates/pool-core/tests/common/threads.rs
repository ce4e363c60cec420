//! Counting this process's live threads by name, from `/proc/self/task`, to
//! prove that a pool joined its workers.
//!
//! Include it with `#[path = "common/threads.rs"] mod threads;` (or as
//! `common::threads` once `common/mod.rs` declares it).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

/// The kernel's `PF_EXITING` task flag (`include/linux/sched.h`).
const PF_EXITING: u64 = 0x4;

/// How many threads of this process have a name starting with `prefix` and
/// have not begun to exit; `None` where there is no `/proc/self/task` (not
/// Linux), so callers skip the check there.
///
/// A thread that `join` has returned for may still be listed for a moment:
/// the kernel wakes the joiner (it clears the thread-id futex in `exit_mm`)
/// before it unlists the thread (in `exit_notify`). Such a thread already has
/// `PF_EXITING` in its flags, which `do_exit` sets before either step, and
/// which a running or blocked thread never has. So the count is exact right
/// after `join`, without waiting or retrying.
///
/// A count can come out **too low, never too high**: the kernel lists a
/// process's threads by walking from one to the next, and ends the listing
/// early when the thread it stands on is unlisted meanwhile (`next_tid` in
/// `fs/proc/base.c`), which happens whenever another thread of the process
/// finishes exiting during the read. So "none left" (`== Some(0)`) is a sound
/// check as it is, while a check that expects threads to be there should use
/// [`most_live_threads_named`].
///
/// Linux shows at most 15 bytes of a name: keep `prefix` shorter than that.
pub fn live_threads_named(prefix: &str) -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut live = 0;
    for task in tasks {
        // A thread that ends between the listing and these reads is gone: skip it.
        let Ok(task) = task else { continue };
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if !is_exiting(&stat) {
            live += 1;
        }
    }
    Some(live)
}

/// The highest of up to `reads` counts of [`live_threads_named`], stopping
/// early at one that reaches `expected`: since a count can only come out too
/// low, the highest is the best, and a short listing (rare: another thread
/// must finish exiting during the read) does not fail the check. A bounded
/// number of reads, not a wait: if fewer threads are there, it returns fewer.
pub fn most_live_threads_named(prefix: &str, expected: usize, reads: usize) -> Option<usize> {
    let mut most = live_threads_named(prefix)?;
    for _ in 1..reads {
        if most >= expected {
            break;
        }
        most = most.max(live_threads_named(prefix)?);
    }
    Some(most)
}

/// Whether a `/proc/<pid>/task/<tid>/stat` line has `PF_EXITING` set.
fn is_exiting(stat: &str) -> bool {
    // Field 2, the name, is in parentheses and may itself hold spaces and
    // parentheses; after the last ')' come state (3), ppid, pgrp, session,
    // tty_nr, tpgid and flags (9).
    let name_end = stat
        .rfind(')')
        .expect("a stat line holds the name in parentheses");
    let flags: u64 = stat[name_end + 1..]
        .split_whitespace()
        .nth(6)
        .expect("a stat line has a flags field")
        .parse()
        .expect("the flags field is a number");
    flags & PF_EXITING != 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_flags_field_is_read_after_the_name() {
        let running = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0";
        let exiting = "42 (a) b (c)) R 1 42 42 0 -1 4194564 0 0";
        assert!(!super::is_exiting(running));
        assert!(super::is_exiting(exiting));
    }
}
