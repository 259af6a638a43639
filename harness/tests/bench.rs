//! The `bench run` binary end to end on the reference VMM (needs /dev/kvm): the results file
//! it writes, the exact counts it must agree on, and bad input.

use std::process::{Command, Output};

use pageflip_results::{metric as m, Results};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("bench runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The CI smoke matrix: every transport, stream, ping-pong, a deferred batch and fan-in.
const SMOKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/smoke-matrix.json");

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm")]
fn smoke_matrix_results_are_complete_and_counts_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let keep = dir.path().join("keep");
    let o = bench(&[
        "run",
        "--matrix",
        SMOKE,
        "--out",
        out.to_str().unwrap(),
        "--no-perf",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = Results::load(&out).unwrap();
    assert!(!r.run.interrupted);
    assert_eq!(r.run.repetitions, 2);
    // --keep keeps every run: each round's floor runs and each case, none overwritten.
    for round in ["round-01", "round-02"] {
        let runs = ["floor-exit", "floor-ioeventfd", "floor-remap"]
            .into_iter()
            .map(String::from)
            .chain(r.cases.iter().map(|c| c.id.clone()));
        for run in runs {
            let result = keep.join(round).join(&run).join("result.json");
            assert!(result.is_file(), "{} is missing", result.display());
        }
    }
    for f in ["exit_ns", "ioeventfd_exit_ns", "memcpy_4k_ns", "remap_ns"] {
        let v = &r.floor.metrics[f];
        assert_eq!(v.values.len(), 2, "{f}");
        assert!(v.values.iter().all(|x| *x > 0.0), "{f}: {:?}", v.values);
    }
    // An in-kernel exit is cheaper than an exit to the VMM (the reason ioeventfds exist).
    assert!(
        r.floor.metrics["ioeventfd_exit_ns"].summary.median
            < r.floor.metrics["exit_ns"].summary.median
    );
    // Every transport of the catalog is there.
    for t in pageflip_interface::TransportConfig::catalog() {
        assert!(
            r.cases.iter().any(|c| c.params.transport == t.name()),
            "{}",
            t.name()
        );
    }
    for c in &r.cases {
        assert!(c.errors.is_empty(), "{}: {:?}", c.id, c.errors);
        for name in [
            m::EXITS_PER_MSG,
            m::TIME_PER_MSG_NS,
            m::THROUGHPUT_MIB,
            m::LATENCY_P50_NS,
        ] {
            let v = c
                .metrics
                .get(name)
                .unwrap_or_else(|| panic!("{}: no {name}", c.id));
            assert_eq!(v.values.len(), 2, "{}: {name}", c.id);
        }
        // The guests' own notification count is KVM's, exactly.
        let x = c
            .cross_checks
            .iter()
            .find(|x| x.what.starts_with("notifications"))
            .unwrap_or_else(|| panic!("{}: no notification cross-check", c.id));
        assert!(x.agree, "{}: {:?}", c.id, x.sources);
        let n = c.metrics[m::NOTIFICATIONS_PER_MSG].summary.mean;
        let user = c.metrics[m::USERSPACE_EXITS_PER_MSG].summary.mean;
        match c.params.transport.as_str() {
            // Immediate sends: one doorbell exit per message at least (more on retries).
            "remap" | "copy" if c.params.batch == 1 => assert!(n >= 1.0, "{}: {n}", c.id),
            // Deferred sends: one exit per batch (plus retries and flushes).
            "remap" | "copy" => assert!(n < 0.5, "{}: {n}", c.id),
            "shmem" => {
                assert_eq!(n, 0.0, "{}", c.id);
                assert_eq!(user, 0.0, "{}", c.id);
            }
            "virtio-ioeventfd" => assert_eq!(user, 0.0, "{}: userspace exits", c.id),
            _ => {}
        }
        let per_page = || c.metrics[m::REMOTE_TLB_FLUSHES_PER_PAGE].summary.min;
        match c.params.transport.as_str() {
            // One remote flush request on the sender per page moved (KVM skips a page the
            // sender's tables did not hold: rarely).
            "remap-per-page" => assert!(per_page() >= 0.9, "{}", c.id),
            // By extents, a one-page immediate message is one move: one request at least.
            "remap" if c.params.batch == 1 && c.params.size == 4096 => {
                assert!(per_page() >= 1.0, "{}", c.id)
            }
            // A 2 MiB extent costs a few requests, not one per page.
            "remap" | "remap-huge" if c.params.size == 2 << 20 => {
                assert!(per_page() < 0.05, "{}: {}", c.id, per_page())
            }
            _ => {}
        }
        if c.params.transport == "copy" || c.params.transport == "shmem" {
            assert!(
                !c.metrics.contains_key(m::REMOTE_TLB_FLUSHES_PER_PAGE),
                "{}",
                c.id
            );
        }
    }
}

#[test]
fn bad_matrices_and_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"repetitions": 2, "messages": 1, "rounds": 1, "groups": [{"workloads": ["stream"], "sizes": [3]}]}"#).unwrap();
    let o = bench(&["run", "--matrix", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("size 3"), "{}", stderr(&o));
    let o = bench(&["run", "--matrix", "/nonexistent/m.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read the matrix file"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["run", "--profile", "huge"]);
    assert_eq!(o.status.code(), Some(2));
    let o = bench(&["run", "--vmm", "/bin/true", "--inject-slowdown-us", "10"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("built-in reference VMM only"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["run", "--reps", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("repetitions"), "{}", stderr(&o));
}

#[test]
fn list_shows_every_transport_of_the_quick_profile() {
    let o = bench(&["run", "--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for t in pageflip_interface::TransportConfig::catalog() {
        assert!(text.contains(&t.name()), "{}", t.name());
    }
    assert!(text.contains("47 cases"), "{text}");
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm")]
fn ctrl_c_keeps_the_finished_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let matrix = dir.path().join("m.json");
    std::fs::write(
        &matrix,
        r#"{"repetitions": 200, "warmup": 0, "messages": 200, "rounds": 50, "floor_count": 200,
            "groups": [{"workloads": ["stream"], "transports": ["copy", "shmem"], "sizes": [4096]}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--no-perf", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bench starts");
    // The file appears after the first measured round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !out.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no results file after 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) with a valid pid and signal has no memory effects.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    let r = Results::load(&out).unwrap();
    assert!(r.run.interrupted);
    assert_eq!(r.cases.len(), 2);
    for c in &r.cases {
        let n = c.metrics[m::TIME_PER_MSG_NS].values.len();
        assert!((1..200).contains(&n), "{}: {n} repetitions kept", c.id);
        assert!(c.errors.is_empty(), "{}: {:?}", c.id, c.errors);
    }
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm")]
fn transports_writes_results_and_the_table_and_keeps_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.json");
    let keep = dir.path().join("keep");
    let o = bench(&[
        "transports",
        "--count",
        "640",
        "--rounds",
        "50",
        "--no-perf",
        "--json",
        out.to_str().unwrap(),
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = Results::load(&out).unwrap();
    assert_eq!(r.run.profile, "transports");
    // Every transport of the catalog, stream and ping-pong; remap and copy deferred too;
    // virtio with and without EVENT_IDX.
    let case = |workload: &str, transport: &str, policy: &str, batch: u64| {
        r.cases
            .iter()
            .find(|c| {
                let p = &c.params;
                p.workload == workload
                    && p.transport == transport
                    && p.policy == policy
                    && p.batch == batch
            })
            .unwrap_or_else(|| panic!("no case {workload} {transport} {policy} B={batch}"))
    };
    let mean = |c: &pageflip_results::CaseResult, k: &str| c.metrics[k].summary.mean;
    for t in ["remap", "copy"] {
        assert!(
            mean(
                case("stream", t, "immediate", 1),
                m::USERSPACE_EXITS_PER_MSG
            ) >= 1.0
        );
        assert!(mean(case("stream", t, "deferred", 32), m::NOTIFICATIONS_PER_MSG) < 0.5);
        case("pingpong", t, "immediate", 1);
    }
    for policy in ["event-idx", "no-event-idx"] {
        // Batches are a remap-IPC dimension: the other transports' cases have batch 0.
        let io = case("stream", "virtio-ioeventfd", policy, 0);
        assert_eq!(mean(io, m::USERSPACE_EXITS_PER_MSG), 0.0, "{}", io.id);
        case("stream", "virtio-userspace", policy, 0);
    }
    let shmem = case("stream", "shmem", "polling", 0);
    for k in [m::USERSPACE_EXITS_PER_MSG, m::NOTIFICATIONS_PER_MSG] {
        assert_eq!(mean(shmem, k), 0.0, "shmem {k}");
    }
    // The table on stdout is report's view of the same file, one row per stream case.
    let table = String::from_utf8(o.stdout).unwrap();
    let rows = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| transport"))
        .count();
    let streams = r
        .cases
        .iter()
        .filter(|c| c.params.workload == "stream")
        .count();
    assert_eq!(rows, streams, "{table}");
    assert!(table.contains("| shmem | polling | 4096 |"), "{table}");
    // Every run is kept, none overwritten by the next.
    let round = keep.join("round-01");
    for run in ["floor-exit", "floor-ioeventfd", "floor-remap"]
        .into_iter()
        .map(String::from)
        .chain(r.cases.iter().map(|c| c.id.clone()))
    {
        assert!(round.join(&run).join("result.json").is_file(), "{run}");
    }
}
