//! The `pageflip-vmm` binary: exit codes and one-line errors for bad input, and the memory
//! it really uses.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn vmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pageflip-vmm"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let out = dir.path().join("r.json");
    let o = out.to_str().unwrap();
    for (args, want) in [
        (
            vec!["run", "--config", "/nonexistent.json", "--out", o],
            "cannot read config /nonexistent.json",
        ),
        (
            vec!["run", "--config", bad_json.to_str().unwrap(), "--out", o],
            "not a valid run config",
        ),
    ] {
        let r = vmm(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let e = stderr(&r);
        assert!(e.contains(want), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert!(!e.contains("panicked"));
        assert!(
            !Path::new(&out).exists(),
            "no result for a run that did not happen"
        );
    }
    let r = vmm(&["run", "--bogus"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("--bogus"));
}

#[test]
fn unwritable_result_path_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        r#"{"version":1,"timeout_ms":1000,"vms":[{"image":"x","memory_mib":4}]}"#,
    )
    .unwrap();
    let r = vmm(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        "/nonexistent-dir/r.json",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("cannot write result /nonexistent-dir/r.json"),
        "{}",
        stderr(&r)
    );
}

fn children_max_rss_kib() -> i64 {
    // SAFETY: rusage is plain data and getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage to write into.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) }, 0);
    u.ru_maxrss
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn rss_grows_with_touched_memory_not_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let hello = common::guest(dir.path(), "hello");
    let cfg = common::config(&[(hello.clone(), 64, vec![]), (hello, 64, vec![])], 10_000);
    let path = dir.path().join("c.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let out = dir.path().join("r.json");
    let r = vmm(&[
        "run",
        "--config",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let rss = children_max_rss_kib();
    eprintln!("VMM max RSS with two 64 MiB VMs: {rss} KiB");
    assert!(
        rss < 64 * 1024,
        "max RSS {rss} KiB is as large as a whole VM's memory"
    );
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn host_reports_flavour_and_counters() {
    let r = vmm(&["host"]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let flavour = v["host"]["kvm_flavour"].as_str().unwrap();
    assert!(
        ["kvm_intel", "kvm_amd", "kvm_pvm"].contains(&flavour),
        "{flavour}"
    );
    let vcpu = v["binary_stats"]["vcpu"].as_array().unwrap();
    assert!(vcpu.iter().any(|n| n == "exits"), "{vcpu:?}");
}

#[test]
fn usage_errors_are_one_line() {
    for args in [vec!["run"], vec!["bogus"], vec!["run", "--config"]] {
        let r = vmm(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let e = stderr(&r);
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        assert!(
            e.starts_with("pageflip-vmm: error: ") && e.contains("--help"),
            "{e}"
        );
    }
}
