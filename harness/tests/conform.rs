//! The `conform` binary end to end. Tests marked `no_kvm` need `/dev/kvm` and run the real
//! reference VMM; the others use fake VMM scripts and run anywhere.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conform"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("conform runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn case_names() -> Vec<String> {
    let o = conform(&["--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// A fake VMM: a shell script with `body`.
fn fake_vmm(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-vmm");
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Checks that `text` is a TAP13 document and returns its test lines' (ok, name) in order.
fn parse_tap13(text: &str) -> Vec<(bool, String)> {
    let mut lines = text.lines().peekable();
    assert_eq!(lines.next(), Some("TAP version 13"));
    let plan = lines.next().expect("a plan line");
    let planned: usize = plan
        .strip_prefix("1..")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad plan line {plan:?}"));
    let mut tests = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            continue;
        }
        let (ok, rest) = if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("not ok ") {
            (false, rest)
        } else {
            panic!("not a TAP test line: {line:?}");
        };
        let (number, description) = rest.split_once(" - ").expect("number - description");
        assert_eq!(
            number.parse::<usize>().ok(),
            Some(tests.len() + 1),
            "{line}"
        );
        let name = description.split(" # ").next().unwrap().to_string();
        if lines.peek() == Some(&"  ---") {
            lines.next();
            loop {
                let yaml = lines.next().expect("the YAML block ends with `  ...`");
                if yaml == "  ..." {
                    break;
                }
                assert!(yaml.starts_with("  "), "YAML line not indented: {yaml:?}");
            }
        }
        tests.push((ok, name));
    }
    assert_eq!(tests.len(), planned, "the plan says {planned} tests");
    tests
}

#[test]
fn list_shows_every_case_with_a_description() {
    let o = conform(&["--list"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for name in [
        "boot-hello",
        "isolation",
        "watchdog",
        "bad-elf-not-elf",
        "exit-fidelity-k1000",
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"));
        assert!(line.len() > name.len() + 10, "{line}");
    }
    let filtered = stdout(&conform(&["--list", "--filter", "bad-config"]));
    assert_eq!(filtered.lines().count(), 8, "{filtered}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--format", "xml"][..],
        &["--timeout", "-1"][..],
        &["--filter", "no-such-case"][..],
        &["--vmm", "/nonexistent/vmm"][..],
        &["--vmm", "/"][..],
        &["--output", "/nonexistent/dir/report.txt"][..],
        &["--keep", "/proc/version/keep"][..],
    ] {
        let o = conform(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("conform: error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let err = stderr(&conform(&["--vmm", "/nonexistent/vmm"]));
    assert!(
        err.contains("--vmm /nonexistent/vmm: no such file"),
        "{err}"
    );
    let err = stderr(&conform(&["--output", "/nonexistent/dir/report.txt"]));
    assert!(
        err.contains("--output /nonexistent/dir/report.txt"),
        "{err}"
    );
}

#[test]
fn a_vmm_reporting_a_host_problem_means_the_suite_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let vmm = fake_vmm(
        dir.path(),
        "echo 'pageflip-vmm: error: cannot open /dev/kvm: No such file or directory' >&2; exit 3",
    );
    let o = conform(&["--vmm", vmm.to_str().unwrap(), "--filter", "boot-hello"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("the suite cannot run on this host"), "{err}");
    assert!(err.contains("cannot open /dev/kvm"), "{err}");
    let tap = conform(&[
        "--vmm",
        vmm.to_str().unwrap(),
        "--filter",
        "boot-hello",
        "--format",
        "tap",
    ]);
    assert_eq!(tap.status.code(), Some(2));
    let text = stdout(&tap);
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("Bail out! the suite cannot run")),
        "{text}"
    );
}

#[test]
fn a_broken_vmm_fails_cases_with_reasons_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // Exits 0 without writing a result, whatever it is asked.
    let vmm = fake_vmm(dir.path(), "exit 0");
    let vmm = vmm.to_str().unwrap();
    let filters = ["--filter", "boot-hello", "--filter", "bad-config-version"];
    let run = |extra: &[&str]| conform(&[&["--vmm", vmm][..], &filters, extra].concat());

    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("[1/2] FAIL boot-hello"), "{text}");
    assert!(
        text.contains("- VMM: expected a result file after exit code 0, seen none written"),
        "{text}"
    );
    assert!(text.contains("FAIL bad-config-version-2"), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 2 failed, 0 skipped"));

    let tap = stdout(&run(&["--format", "tap"]));
    assert_eq!(
        parse_tap13(&tap),
        [
            (false, "boot-hello".to_string()),
            (false, "bad-config-version-2".to_string())
        ]
    );
    assert!(
        tap.contains("  reasons:\n    - |\n      VMM: expected exit code 2"),
        "{tap}"
    );

    let junit_path = dir.path().join("report.xml");
    let o = run(&[
        "--format",
        "junit",
        "--output",
        junit_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let junit = fs::read_to_string(&junit_path).unwrap();
    assert!(junit.contains("failures=\"2\""), "{junit}");
    assert!(stderr(&o).contains("[2/2] FAIL bad-config-version-2"));

    let json: serde_json::Value =
        serde_json::from_slice(&run(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json["failed"], 2);
    assert_eq!(json["cases"][0]["status"], "fail");
}

#[test]
fn a_hanging_vmm_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let vmm = fake_vmm(dir.path(), "exec sleep 30");
    let start = std::time::Instant::now();
    let o = conform(&[
        "--vmm",
        vmm.to_str().unwrap(),
        "--filter",
        "boot-hello",
        "--timeout",
        "0.5",
    ]);
    assert!(start.elapsed().as_secs() < 10);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("seen still running after the per-case timeout of 0.5 s; killed"),
        "{}",
        stdout(&o)
    );
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn the_full_suite_passes_against_the_reference_vmm() {
    let names = case_names();
    // The cases `--list` marks skipped on this host (the pre-fault pair: one of the two).
    let list = stdout(&conform(&["--list"]));
    let skipped: Vec<bool> = list.lines().map(|l| l.contains("[skipped: ")).collect();
    let n_skipped = skipped.iter().filter(|&&s| s).count();
    assert_eq!(
        n_skipped, 1,
        "exactly one of the pre-fault cases applies:\n{list}"
    );
    let o = conform(&[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}\n{}", stderr(&o));
    for (i, name) in names.iter().enumerate() {
        let verdict = if skipped[i] { "SKIP" } else { "PASS" };
        let head = format!("/{}] {verdict} {name} ", names.len());
        assert!(
            text.lines().nth(i).is_some_and(|l| l.contains(&head)),
            "line {i} is not {head:?}:\n{text}"
        );
    }
    assert_eq!(
        text.lines().last(),
        Some(
            format!(
                "{} passed, 0 failed, {n_skipped} skipped",
                names.len() - n_skipped
            )
            .as_str()
        )
    );
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn filter_runs_only_matching_cases() {
    let o = conform(&["--filter", "boot-", "--filter", "k10"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let ran: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| {
            let after = l.split_once("] ").unwrap().1;
            after.split_whitespace().nth(1).unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ran,
        [
            "boot-hello",
            "boot-info",
            "exit-fidelity-k10",
            "exit-fidelity-k100",
            "exit-fidelity-k1000"
        ]
    );
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn tap_json_and_kept_files_against_the_reference_vmm() {
    let filters = [
        "--filter",
        "boot-hello",
        "--filter",
        "bad-elf",
        "--filter",
        "fault-null",
        "--filter",
        "fault-invalid",
        "--filter",
        "fault-unowned",
    ];
    let o = conform(&[&filters[..], &["--format", "tap"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let tests = parse_tap13(&stdout(&o));
    assert_eq!(tests.len(), 8);
    assert!(tests.iter().all(|(ok, _)| *ok), "{tests:?}");

    let keep = tempfile::tempdir().unwrap();
    let o = conform(&[
        "--filter",
        "boot-hello",
        "--format",
        "json",
        "--keep",
        keep.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["passed"], 1);
    assert!(
        json["vmm"]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{json}"
    );
    assert_eq!(json["cases"][0]["name"], "boot-hello");
    let case_dir = keep.path().join("boot-hello");
    for file in ["run.json", "result.json", "stderr.txt"] {
        assert!(case_dir.join(file).is_file(), "{file} not kept");
    }
    assert!(keep.path().join("images/hello.elf").is_file());
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn results_tampered_after_the_reference_vmm_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    // The real VMM, then a corrupted result: `$5` is the --out path.
    let vmm = fake_vmm(
        dir.path(),
        &format!(
            "{} __vmm \"$@\"; rc=$?\n[ -f \"$5\" ] && sed -i -e 's/hello from VM/hullo from VM/' -e 's/\"doorbells\": [0-9]*/\"doorbells\": 7/' \"$5\"\nexit $rc",
            env!("CARGO_BIN_EXE_conform")
        ),
    );
    let o = conform(&[
        "--vmm",
        vmm.to_str().unwrap(),
        "--filter",
        "boot-hello",
        "--filter",
        "exit-fidelity-k10",
    ]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("- vm0 console: expected it to contain \"hello from VM 0 of 1\", seen \"hullo from VM 0 of 1"),
        "{text}"
    );
    assert!(
        text.contains("- vm0 doorbells: expected 11 (params[0] + 1), seen 7"),
        "{text}"
    );
    assert!(text.contains("FAIL exit-fidelity-k100 "), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 4 failed, 0 skipped"));
}
