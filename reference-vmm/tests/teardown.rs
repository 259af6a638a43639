//! A run leaves no thread behind, also when the watchdog has to stop a spinning guest.
//! (One test in its own binary, so the process's thread count is not disturbed by others.)

mod common;

use std::time::Instant;

use pageflip_interface::{RunOutcome, VmStatus};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn runs_leave_no_threads_behind() {
    let dir = tempfile::tempdir().unwrap();
    let before = threads();
    let hello = common::guest(dir.path(), "hello");
    let spin = common::guest(dir.path(), "spin");
    let cfg = common::config(
        &[
            (hello.clone(), 16, vec![]),
            (hello, 16, vec![]),
            (spin, 16, vec![]),
        ],
        500,
    );
    let mut cfg_no_stop = cfg.clone();
    cfg_no_stop.stop_on_failure = false;
    let r = pageflip_vmm::runner::run(&cfg_no_stop, Instant::now(), Default::default()).unwrap();
    assert_eq!(r.outcome, RunOutcome::Timeout);
    assert!(r.vms[0].status.is_success() && r.vms[1].status.is_success());
    assert_eq!(r.vms[2].status, VmStatus::Timeout);
    assert_eq!(
        threads(),
        before,
        "vCPU threads left behind after a watchdog stop"
    );
}
