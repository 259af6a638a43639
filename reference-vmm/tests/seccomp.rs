//! The seccomp filters of the `pageflip-vmm` binary: a disallowed system call in a thread of
//! each kind ends the run with exit code 1 and a line naming the thread kind and the call;
//! with `--no-seccomp` the same call is harmless.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use pageflip_interface::{NotifyMode, RunConfig, RunResult, TransportConfig};

/// What the self-test calls (`pageflip_vmm::seccomp::SELFTEST_SYSCALL`).
const CALL: &str = "system call 110 (getppid)";

/// A run that starts threads of every kind: two `stream` VMs over virtio with ioeventfd
/// notifications (the backend thread).
fn every_kind(dir: &Path) -> RunConfig {
    use pageflip_abi::probes::ipc_workloads as w;
    let stream = common::guest(dir, "stream");
    let mut params = vec![0; 8];
    params[w::COUNT] = 50;
    params[w::SIZE] = 4096;
    params[w::IDLE_TIMEOUT_MS] = 10_000;
    let vm = (stream, w::MIN_MEMORY_MIB, params);
    let mut cfg = common::config(&[vm.clone(), vm], 30_000);
    cfg.transport = TransportConfig::Virtio {
        notify: NotifyMode::Ioeventfd,
    };
    cfg
}

/// Runs the binary on `cfg` with `extra` arguments.
fn run(dir: &Path, cfg: &RunConfig, extra: &[&str]) -> (Output, String) {
    let path = dir.join("c.json");
    std::fs::write(&path, serde_json::to_string(cfg).unwrap()).unwrap();
    let out = dir.join("r.json");
    let _ = std::fs::remove_file(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_pageflip-vmm"))
        .args(["run", "--config", path.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, stderr)
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn a_disallowed_call_is_reported_with_its_thread_kind_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = every_kind(dir.path());
    for kind in ["main", "vcpu", "backend"] {
        let (o, stderr) = run(dir.path(), &cfg, &["--seccomp-selftest", kind]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{kind}: {:?}, stderr: {stderr}",
            o.status
        );
        let want = format!(
            "pageflip-vmm: error: seccomp: the {kind} thread made {CALL}, which its filter does not \
             allow; rerun with --no-seccomp to debug"
        );
        assert!(stderr.contains(&want), "{kind}: {stderr}");
        assert_eq!(
            stderr.matches("pageflip-vmm: error: seccomp:").count(),
            1,
            "{stderr}"
        );
    }
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn without_seccomp_the_same_call_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = every_kind(dir.path());
    for kind in ["main", "vcpu", "backend"] {
        let (o, stderr) = run(
            dir.path(),
            &cfg,
            &["--seccomp-selftest", kind, "--no-seccomp"],
        );
        assert_eq!(o.status.code(), Some(0), "{kind}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "seccomp self-test: the {kind} thread makes {CALL}"
            )),
            "{kind}: the call was made: {stderr}"
        );
        assert!(
            !stderr.contains("pageflip-vmm: error: seccomp:"),
            "{stderr}"
        );
        let text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
        let r = RunResult::from_json(&text).unwrap();
        for vm in &r.vms {
            assert!(vm.status.is_success(), "{kind}: {}", vm.console);
        }
    }
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn every_kind_runs_under_its_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (o, stderr) = run(dir.path(), &every_kind(dir.path()), &[]);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("seccomp"), "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    for vm in &RunResult::from_json(&text).unwrap().vms {
        assert!(vm.status.is_success(), "{}", vm.console);
    }
}
