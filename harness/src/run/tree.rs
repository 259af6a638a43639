//! A VMM process and everything it started: a timed-out VMM is killed with its whole tree of
//! descendants, so a wrapper script's real VMM (or anything else it forked) is not left
//! running to skew the next case or benchmark.
//!
//! The tree is read from `/proc/<pid>/task/<tid>/children` (Linux 3.5+,
//! `CONFIG_PROC_CHILDREN`). The harness does not move the VMM into a process group of its own,
//! so a Ctrl-C at the terminal still reaches the VMM and its children as it reaches the
//! harness.

use std::fs;

/// The pids of `pid`'s children (of every thread), as the kernel lists them.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Every descendant of `pid` (not `pid` itself), parents before their children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = children(pid);
    while let Some(p) = next.pop() {
        found.push(p);
        next.extend(children(p));
    }
    found
}

/// Kills every descendant of `pid` with SIGKILL, until none is left (a process that forks
/// while the tree is killed is caught by the next pass; at most 50 passes). `pid` itself is
/// left to its caller, which kills and reaps it after: killed first, its children would be
/// re-parented and out of reach.
pub fn kill_descendants(pid: u32) {
    for _ in 0..50 {
        let tree = descendants(pid);
        if tree.is_empty() {
            return;
        }
        // Stop them all first, so that none forks between the listing and the kill.
        for &p in &tree {
            // SAFETY: kill(2) with a pid read from /proc just now and a valid signal; at
            // worst the process has exited (ESRCH), which is ignored.
            unsafe { libc::kill(p as libc::pid_t, libc::SIGSTOP) };
        }
        for &p in &tree {
            // SAFETY: as above.
            unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn kills_grandchildren_and_lists_them() {
        // sh -> sh -> sleep: two generations below the child.
        let mut child = Command::new("sh")
            .args(["-c", "sh -c 'sleep 600; :' & sleep 600; :"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while descendants(pid).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let tree = descendants(pid);
        assert_eq!(
            tree.len(),
            3,
            "sh, its sh and two sleeps below {pid}: {tree:?}"
        );
        kill_descendants(pid);
        assert!(descendants(pid).is_empty());
        for p in tree {
            let gone = !std::path::Path::new(&format!("/proc/{p}")).exists()
                || fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')));
            assert!(gone, "descendant {p} is still running");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
