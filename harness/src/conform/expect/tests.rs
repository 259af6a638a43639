//! Each kind of expectation passes on a good result and fails, with a reason naming
//! expected and seen, on a result broken in the way it is meant to catch.
use std::collections::BTreeMap;
use std::time::Duration;

use pageflip_interface::{
    DeathReport, HostInfo, Stats, TransportConfig, VmConfig, VmmIdentity, INTERFACE_VERSION,
};

use super::*;
use crate::run::vmm::VmmRun;

/// One VM of 16 MiB with params [2], and what a good VMM made of it.
struct Fixture {
    config: RunConfig,
    result: RunResult,
    elapsed: Duration,
}

fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn fixture() -> Fixture {
    let records = vec![
        Record {
            name: "boot-info".into(),
            status: RecordStatus::Pass,
            message: String::new(),
        },
        Record {
            name: "console".into(),
            status: RecordStatus::Pass,
            message: "printed 20 bytes".into(),
        },
    ];
    let vm = VmResult {
        id: 0,
        name: "vm0".into(),
        status: VmStatus::Done { exit_code: 0 },
        death: None,
        console: "hello from VM 0 of 1\n".into(),
        summary: Summary::of(&records),
        records,
        samples: vec![7],
        doorbells: 3,
        guest_errors: Vec::new(),
        guest_errors_total: 0,
        boot_us: Some(1500),
        first_record_us: Some(1600),
        stats: Stats {
            available: true,
            measured: Some(StatsDelta {
                vcpu: counters(&[("exits", 3), ("mmio_exits", 3)]),
                vm: counters(&[("pages_4k", 0)]),
            }),
            run: Some(StatsDelta {
                vcpu: counters(&[("exits", 40), ("mmio_exits", 30)]),
                vm: counters(&[("pages_4k", 12)]),
            }),
            unavailable: vec!["io_exits".into()],
        },
    };
    Fixture {
        config: RunConfig {
            version: INTERFACE_VERSION,
            vms: vec![VmConfig {
                name: None,
                image: "/img/hello.elf".into(),
                memory_mib: 16,
                params: vec![2],
                cpu: None,
            }],
            transport: TransportConfig::None,
            timeout_ms: 1000,
            stop_on_failure: true,
            pre_fault: false,
        },
        result: RunResult {
            version: INTERFACE_VERSION,
            vmm: VmmIdentity {
                name: "test-vmm".into(),
                version: "1".into(),
            },
            host: HostInfo {
                kvm_flavour: "kvm_pvm".into(),
                kernel: "6.1".into(),
                cpu_model: "cpu".into(),
                tsc_khz: Some(2_000_000),
            },
            outcome: RunOutcome::Completed,
            wall_us: 5000,
            vms: vec![vm],
            transport: None,
        },
        elapsed: Duration::from_millis(300),
    }
}

fn reasons(checks: Vec<Check>, f: &Fixture) -> Vec<String> {
    let planned = Planned {
        config: Some(f.config.clone()),
        image_paths: vec!["/img/hello.elf".into()],
    };
    let seen = Observed {
        run: VmmRun {
            exit: VmmExit::Code(0),
            elapsed: f.elapsed,
        },
        stderr: String::new(),
        result: ResultFile::Parsed(Box::new(f.result.clone())),
    };
    evaluate(&Expect::Run(checks), &planned, &seen)
}

fn vm0(f: &mut Fixture) -> &mut VmResult {
    &mut f.result.vms[0]
}

fn died(f: &mut Fixture) {
    let v = vm0(f);
    v.status = VmStatus::Shutdown;
    v.death = Some(DeathReport {
        message: "triple fault".into(),
        registers: counters(&[("rip", 0x20_1000), ("rsp", 0x1f_fff0)]),
        console_tail: vec!["before".into(), "about to fault".into()],
    });
}

fn unowned(f: &mut Fixture) {
    died(f);
    vm0(f).status = VmStatus::UnownedMmio {
        gpa: (16 << 20) + 0x1000,
        write: false,
    };
}

fn nothing(_: &mut Fixture) {}

type Mutation = fn(&mut Fixture);

/// A check, the set-up of its good result, and breakages with a substring of their reason.
type Row = (Check, Mutation, Vec<(Mutation, &'static str)>);

fn table() -> Vec<Row> {
    let measured_exits = Check::Stat {
        vm: 0,
        phase: Phase::Measured,
        scope: Scope::Vcpu,
        counter: "exits",
        value: Count::Param { index: 0, plus: 1 },
    };
    vec![
        (
            Check::Outcome(RunOutcome::Completed),
            nothing,
            vec![(
                |f| f.result.outcome = RunOutcome::Timeout,
                "outcome: expected completed, seen timeout",
            )],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::Success,
            },
            nothing,
            vec![
                (
                    died,
                    "vm0 status: expected done with exit code 0, seen shutdown (triple fault)",
                ),
                (
                    |f| vm0(f).status = VmStatus::Done { exit_code: 1 },
                    "seen done with exit code 1",
                ),
            ],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::Done(101),
            },
            |f| vm0(f).status = VmStatus::Done { exit_code: 101 },
            vec![(
                |f| vm0(f).status = VmStatus::Done { exit_code: 0 },
                "expected done with exit code 101, seen done with exit code 0",
            )],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::UnownedMmio {
                    above_mem_size: 0x1000,
                    write: false,
                },
            },
            unowned,
            vec![
                (
                    |f| {
                        vm0(f).status = VmStatus::UnownedMmio {
                            gpa: 16 << 20,
                            write: false,
                        }
                    },
                    "expected unowned_mmio read at 0x1001000 (mem_size + 0x1000), seen unowned_mmio read at 0x1000000",
                ),
                (
                    |f| {
                        vm0(f).status = VmStatus::UnownedMmio {
                            gpa: (16 << 20) + 0x1000,
                            write: true,
                        }
                    },
                    "seen unowned_mmio write at 0x1001000",
                ),
                (died, "seen shutdown"),
            ],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::Timeout,
            },
            |f| vm0(f).status = VmStatus::Timeout,
            vec![(
                |f| vm0(f).status = VmStatus::Stopped,
                "expected timeout, seen stopped",
            )],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::Stopped,
            },
            |f| vm0(f).status = VmStatus::Stopped,
            vec![(
                |f| {
                    vm0(f).status = VmStatus::VmmError {
                        message: "ioctl".into(),
                    }
                },
                "expected stopped, seen vmm_error (ioctl)",
            )],
        ),
        (
            Check::Status {
                vm: 0,
                is: StatusIs::Shutdown,
            },
            died,
            vec![(
                |f| vm0(f).status = VmStatus::InternalError { suberror: 1 },
                "expected shutdown, seen internal_error (suberror 1)",
            )],
        ),
        (
            Check::Status {
                vm: 3,
                is: StatusIs::Shutdown,
            },
            |_| {},
            vec![],
        ),
        (
            Check::AllRecordsPass { vm: 0, at_least: 2 },
            nothing,
            vec![
                (
                    |f| {
                        let v = vm0(f);
                        v.records[1].status = RecordStatus::Fail;
                        v.records[1].message = "wrong".into();
                        v.summary = Summary::of(&v.records);
                    },
                    "vm0 records: expected all to pass, seen 1 of 2 not passing: console fail (wrong)",
                ),
                (
                    |f| {
                        let v = vm0(f);
                        v.records[0].status = RecordStatus::Skip;
                        v.summary = Summary::of(&v.records);
                    },
                    "boot-info skip",
                ),
                (
                    |f| {
                        let v = vm0(f);
                        v.records.pop();
                        v.summary = Summary::of(&v.records);
                    },
                    "vm0 records: expected at least 2, seen 1",
                ),
            ],
        ),
        (
            Check::Record {
                vm: 0,
                name: "console",
                status: RecordStatus::Pass,
                message_contains: Some("20 bytes"),
            },
            nothing,
            vec![
                (
                    |f| {
                        let v = vm0(f);
                        v.records.pop();
                        v.summary = Summary::of(&v.records);
                    },
                    "vm0 record \"console\": expected pass, seen no such record (records: [\"boot-info\"])",
                ),
                (
                    |f| {
                        let v = vm0(f);
                        v.records[1].status = RecordStatus::Fail;
                        v.summary = Summary::of(&v.records);
                    },
                    "expected pass, seen console fail (printed 20 bytes)",
                ),
                (
                    |f| vm0(f).records[1].message = "printed 19 bytes".into(),
                    "expected its message to contain \"20 bytes\", seen \"printed 19 bytes\"",
                ),
            ],
        ),
        (
            Check::Console {
                vm: 0,
                contains: "hello from VM 0 of 1",
            },
            nothing,
            vec![(
                |f| vm0(f).console = "hello from VM 1 of 1\n".into(),
                "vm0 console: expected it to contain \"hello from VM 0 of 1\", seen \"hello from VM 1 of 1\\n\"",
            )],
        ),
        (
            Check::DeathConsoleTail {
                vm: 0,
                contains: "about to fault",
            },
            died,
            vec![
                (
                    |f| {
                        let v = vm0(f);
                        v.death = None;
                        v.status = VmStatus::Done { exit_code: 0 };
                    },
                    "expected one whose console tail contains \"about to fault\", seen none (status done with exit code 0)",
                ),
                (
                    |f| vm0(f).death.as_mut().unwrap().console_tail.clear(),
                    "expected its console tail to contain \"about to fault\", seen []",
                ),
            ],
        ),
        (
            Check::DeathRegister {
                vm: 0,
                register: "rip",
            },
            died,
            vec![
                (
                    |f| {
                        vm0(f).death.as_mut().unwrap().registers.remove("rip");
                    },
                    "vm0 death report: expected register rip, seen registers [\"rsp\"]",
                ),
                (|f| vm0(f).death = None, "expected one with register rip, seen none"),
            ],
        ),
        (
            Check::BootTime { vm: 0 },
            nothing,
            vec![(
                |f| vm0(f).boot_us = None,
                "vm0 boot_us: expected a value, seen null",
            )],
        ),
        (
            Check::StatsConsistent { vm: 0 },
            nothing,
            vec![
                (
                    |f| {
                        vm0(f).stats.run.as_mut().unwrap().vcpu.remove("exits");
                    },
                    "vm0 stats: expected stats.run.vcpu to have exits (stats are available), seen it without",
                ),
                (
                    |f| vm0(f).stats.run = None,
                    "expected stats.run (stats are available), seen null",
                ),
                (
                    |f| {
                        vm0(f)
                            .stats
                            .measured
                            .as_mut()
                            .unwrap()
                            .vm
                            .insert("io_exits".into(), 0);
                    },
                    "expected io_exits (listed in stats.unavailable) absent, seen it in stats.measured.vm",
                ),
            ],
        ),
        (
            measured_exits,
            nothing,
            vec![
                (
                    |f| {
                        vm0(f)
                            .stats
                            .measured
                            .as_mut()
                            .unwrap()
                            .vcpu
                            .insert("exits".into(), 4);
                    },
                    "vm0 stats.measured.vcpu.exits: expected 3 (params[0] + 1), seen 4",
                ),
                (
                    |f| {
                        vm0(f).stats.measured.as_mut().unwrap().vcpu.remove("exits");
                    },
                    "vm0 stats.measured.vcpu.exits: expected 3 (params[0] + 1), but counter exits is missing from stats.measured.vcpu: unavailable on this host",
                ),
                (
                    |f| vm0(f).stats.unavailable.push("exits".into()),
                    "counter exits is unavailable on this host (listed in stats.unavailable)",
                ),
                (
                    |f| vm0(f).stats.available = false,
                    "KVM binary stats are unavailable on this host (stats.available = false)",
                ),
                (
                    |f| vm0(f).stats.measured = None,
                    "the result has no measured phase (stats.measured is null)",
                ),
                (
                    |f| f.config.vms[0].params.clear(),
                    "case error: vm0 has no params[0]",
                ),
            ],
        ),
        (
            Check::Stat {
                vm: 0,
                phase: Phase::Run,
                scope: Scope::Vcpu,
                counter: "exits",
                value: Count::ParamPlusCounter {
                    index: 0,
                    plus: 8,
                    counter: "mmio_exits",
                },
            },
            nothing,
            vec![
                (
                    |f| {
                        vm0(f).stats.run.as_mut().unwrap().vcpu.insert("mmio_exits".into(), 29);
                    },
                    "vm0 stats.run.vcpu.exits: expected 39 (params[0] + 8 + mmio_exits 29), seen 40",
                ),
                (
                    |f| {
                        vm0(f).stats.run.as_mut().unwrap().vcpu.remove("mmio_exits");
                    },
                    "vm0 stats.run.vcpu.mmio_exits: needed for the expected value, but counter mmio_exits is missing from stats.run.vcpu: unavailable on this host",
                ),
            ],
        ),
        (
            Check::Stat {
                vm: 0,
                phase: Phase::Run,
                scope: Scope::Vm,
                counter: "pages_4k",
                value: Count::Exact(12),
            },
            nothing,
            vec![
                (
                    |f| {
                        vm0(f).stats.run.as_mut().unwrap().vm.insert("pages_4k".into(), 0);
                    },
                    "vm0 stats.run.vm.pages_4k: expected 12, seen 0",
                ),
                (
                    |f| vm0(f).stats.run = None,
                    "the result has no run stats (stats.run is null)",
                ),
            ],
        ),
        (
            Check::Doorbells {
                vm: 0,
                value: Count::Param { index: 0, plus: 1 },
            },
            nothing,
            vec![(
                |f| vm0(f).doorbells = 2,
                "vm0 doorbells: expected 3 (params[0] + 1), seen 2",
            )],
        ),
        (
            Check::ExitsAfterWatchdogWithin { slack_ms: 1000 },
            |f| f.elapsed = Duration::from_millis(1900),
            vec![(
                |f| f.elapsed = Duration::from_millis(2100),
                "VMM process: expected to exit within 1000 ms after the 1000 ms watchdog (by 2000 ms), seen it exit after 2100 ms",
            )],
        ),
        (
            Check::Custom {
                name: "sample seven",
                check: |_, r| match r.vms[0].samples.first() {
                    Some(7) => Ok(()),
                    other => Err(format!("expected samples[0] = 7, seen {other:?}")),
                },
            },
            nothing,
            vec![(
                |f| vm0(f).samples.clear(),
                "sample seven: expected samples[0] = 7, seen None",
            )],
        ),
    ]
}

#[test]
fn every_kind_of_check_passes_good_and_fails_broken_results() {
    for (check, setup, breakages) in table() {
        let mut good = fixture();
        setup(&mut good);
        let vm_missing = matches!(check, Check::Status { vm: 3, .. });
        let seen = reasons(vec![check.clone()], &good);
        if vm_missing {
            assert_eq!(seen, ["vm3: expected in the result, seen no such VM"]);
            continue;
        }
        assert_eq!(seen, Vec::<String>::new(), "{check:?} on its good result");
        assert!(!breakages.is_empty(), "{check:?} has no breakage");
        for (breakage, needle) in breakages {
            let mut bad = fixture();
            setup(&mut bad);
            breakage(&mut bad);
            let seen = reasons(vec![check.clone()], &bad);
            assert_eq!(seen.len(), 1, "{check:?}: {seen:?}");
            assert!(
                seen[0].contains(needle),
                "{check:?}:\n{}\nlacks\n{needle}",
                seen[0]
            );
        }
    }
}

#[test]
fn every_result_must_have_the_configured_shape() {
    let mut f = fixture();
    f.result.vms[0].name = "other".into();
    assert_eq!(
        reasons(vec![], &f),
        ["result: expected vms[0] to be id 0 named \"vm0\", seen id 0 named \"other\""]
    );
    let mut f = fixture();
    f.result.vms[0].summary.pass = 5;
    assert!(reasons(vec![], &f)[0].starts_with("vm0 summary: expected the counts of its records"));
    let mut f = fixture();
    f.result.vms.clear();
    assert_eq!(
        reasons(vec![], &f),
        ["result: expected 1 VM entries (one per configured VM), seen 0"]
    );
}

fn observed(exit: VmmExit, stderr: &str, result: ResultFile) -> Observed {
    Observed {
        run: VmmRun {
            exit,
            elapsed: Duration::from_millis(10),
        },
        stderr: stderr.into(),
        result,
    }
}

#[test]
fn a_run_needs_exit_code_0_and_a_valid_result() {
    let f = fixture();
    let planned = Planned {
        config: Some(f.config.clone()),
        image_paths: vec![],
    };
    let run = Expect::Run(vec![Check::Outcome(RunOutcome::Completed)]);
    let cases = [
        (
            observed(VmmExit::Code(1), "pageflip-vmm: error: boom\n", ResultFile::Absent),
            "VMM: expected exit code 0 (the run was carried out), seen exit code 1 (VMM internal failure); stderr: \"pageflip-vmm: error: boom\"",
        ),
        (
            observed(VmmExit::Signal(11), "", ResultFile::Absent),
            "seen killed by signal 11",
        ),
        (
            observed(
                VmmExit::TimedOut(Duration::from_secs(60)),
                "",
                ResultFile::Absent,
            ),
            "seen still running after the per-case timeout of 60 s; killed",
        ),
        (
            observed(VmmExit::Code(0), "", ResultFile::Absent),
            "expected a result file after exit code 0, seen none written",
        ),
        (
            observed(
                VmmExit::Code(0),
                "",
                ResultFile::Invalid("not a valid run result: EOF".into()),
            ),
            "VMM result file: not a valid run result: EOF",
        ),
    ];
    for (seen, needle) in cases {
        let r = evaluate(&run, &planned, &seen);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].contains(needle), "{}\nlacks\n{needle}", r[0]);
    }
    let good = observed(
        VmmExit::Code(0),
        "",
        ResultFile::Parsed(Box::new(f.result.clone())),
    );
    assert!(evaluate(&run, &planned, &good).is_empty());
    let no_config = Planned::default();
    assert_eq!(
        evaluate(&run, &no_config, &good),
        ["case error: the case's config is not a valid run config"]
    );
}

#[test]
fn a_rejection_needs_the_exit_code_no_result_and_the_error_line() {
    let planned = Planned {
        config: None,
        image_paths: vec!["/img/bad-not-elf.elf".into()],
    };
    let reject = Expect::Reject {
        exit_code: exit::BAD_INPUT,
        stderr: vec![Needle::ImagePath(0), Needle::Text("not an ELF file".into())],
    };
    let line = "pageflip-vmm: error: guest image /img/bad-not-elf.elf: not an ELF file\n";
    let ok = observed(VmmExit::Code(2), line, ResultFile::Absent);
    assert!(evaluate(&reject, &planned, &ok).is_empty());

    let r = evaluate(
        &reject,
        &planned,
        &observed(VmmExit::Code(0), line, ResultFile::Absent),
    );
    assert_eq!(r, ["VMM: expected exit code 2 (bad input, nothing ran), seen exit code 0 (the run was carried out); stderr: \"pageflip-vmm: error: guest image /img/bad-not-elf.elf: not an ELF file\""]);

    let with_result = observed(VmmExit::Code(2), line, ResultFile::Invalid("empty".into()));
    assert_eq!(
        evaluate(&reject, &planned, &with_result),
        ["VMM: expected no result file for a refused input (nothing may run), seen one written"]
    );

    let silent = observed(VmmExit::Code(2), "", ResultFile::Absent);
    assert_eq!(
        evaluate(&reject, &planned, &silent),
        ["stderr: expected one error line `<vmm>: error: <message>`, seen \"\""]
    );

    let other = observed(
        VmmExit::Code(2),
        "pageflip-vmm: error: guest image /img/hello.elf: not x86-64\n",
        ResultFile::Absent,
    );
    let r = evaluate(&reject, &planned, &other);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0], "stderr: expected the error line to contain \"/img/bad-not-elf.elf\", seen \"pageflip-vmm: error: guest image /img/hello.elf: not x86-64\"");
    assert!(r[1].contains("contain \"not an ELF file\""));

    let two = observed(
        VmmExit::Code(2),
        &format!("{line}pageflip-vmm: error: and another\n"),
        ResultFile::Absent,
    );
    let r = evaluate(&reject, &planned, &two);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("stderr: expected one error line `<vmm>: error: <message>`, seen 2: "));

    let with_warning = observed(
        VmmExit::Code(2),
        &format!("[WARN] something\n{line}"),
        ResultFile::Absent,
    );
    assert!(evaluate(&reject, &planned, &with_warning).is_empty());
}

#[test]
fn long_text_is_shown_by_its_tail() {
    let long = "x".repeat(1000) + "END";
    let q = quote_tail(&long, 10);
    assert_eq!(q, "\"…xxxxxxxEND\"");
}
