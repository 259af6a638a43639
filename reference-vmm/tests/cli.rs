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

/// Asserts that `args` is a usage error: exit code 2 and one line that says `want` and
/// where to look.
fn assert_usage_error(args: &[&str], want: &str) {
    let r = vmm(args);
    assert_eq!(r.status.code(), Some(2), "{args:?}");
    let e = stderr(&r);
    assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
    assert!(
        e.starts_with("pageflip-vmm: error: ") && e.contains("--help") && e.contains(want),
        "{args:?}: {e}"
    );
}

#[test]
fn usage_errors_are_one_line() {
    for args in [vec!["run"], vec!["bogus"], vec!["run", "--config"]] {
        assert_usage_error(&args, "");
    }
}

#[test]
fn a_slowdown_out_of_range_is_refused_in_one_line() {
    for (value, want) in [
        ("0", "0 us is out of range: give 1 to 100000 microseconds"),
        ("100001", "100001 us is out of range"),
        ("fast", "\"fast\" is not a whole number of microseconds"),
    ] {
        let args = [
            "run",
            "--config",
            "/nonexistent.json",
            "--out",
            "/nonexistent-dir/r.json",
            "--inject-slowdown-us",
            value,
        ];
        assert_usage_error(&args, want);
        assert_usage_error(&args, "--inject-slowdown-us");
    }
}

/// Runs `pageflip-vmm run` on `config` with `extra` arguments and returns its result.
fn run_config(
    dir: &Path,
    config: &pageflip_interface::RunConfig,
    extra: &[&str],
) -> (pageflip_interface::RunResult, String) {
    let path = dir.join("c.json");
    std::fs::write(&path, serde_json::to_string(config).unwrap()).unwrap();
    let out = dir.join("r.json");
    let mut args = vec![
        "run",
        "--config",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = vmm(&args);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let text = std::fs::read_to_string(&out).unwrap();
    (
        pageflip_interface::RunResult::from_json(&text).unwrap(),
        stderr(&r),
    )
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn an_injected_slowdown_is_spent_in_the_vmms_move_time() {
    use pageflip_abi::probes::ipc_workloads as w;
    const MESSAGES: u64 = 200;
    const SLOWDOWN_NS: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let stream = common::guest(dir.path(), "stream");
    let mut params = vec![0; 8];
    params[w::COUNT] = MESSAGES;
    params[w::SIZE] = 4096;
    params[w::IDLE_TIMEOUT_MS] = 10_000;
    let vm = (stream, w::MIN_MEMORY_MIB, params);
    let mut cfg = common::config(&[vm.clone(), vm], 60_000);
    cfg.transport = pageflip_interface::TransportConfig::Remap;
    // The VMM's own time per remapped page (`move_ns` includes the spin by construction).
    let per_page = |extra: &[&str]| {
        let (r, err) = run_config(dir.path(), &cfg, extra);
        for vm in &r.vms {
            assert!(vm.status.is_success(), "{extra:?}: {}", vm.console);
        }
        let t = &r.transport.expect("a remap run reports its transport").vms[0];
        assert_eq!(
            (t.sent, t.pages_remapped),
            (MESSAGES, MESSAGES),
            "{extra:?}"
        );
        (t.move_ns / t.pages_remapped, err)
    };
    let (plain, plain_err) = per_page(&[]);
    let (slow, slow_err) = per_page(&["--inject-slowdown-us", "200"]);
    eprintln!("VMM move_ns per remapped page: {plain} without, {slow} with a 200 us slowdown");
    assert!(!plain_err.contains("slowdown"), "{plain_err}");
    assert_eq!(
        slow_err.matches("injected slowdown: 200 us").count(),
        1,
        "logged once: {slow_err}"
    );
    assert!(slow >= SLOWDOWN_NS, "{slow} ns per page");
    // Generous: half the spin, against run-to-run noise in the remap itself.
    assert!(
        slow >= plain + SLOWDOWN_NS / 2,
        "{slow} ns per page with the slowdown, {plain} without"
    );
}
