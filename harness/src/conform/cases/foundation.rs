//! The foundation cases: boot and boot info, guest panics and faults, memory isolation, the
//! watchdog and stop-on-failure, the exact exit counts of the measured phase, and the
//! pageflip device's refusal of malformed requests.

use pageflip_abi::phase::PHASE_END_EXITS;
use pageflip_abi::probes::{doorbell, fault, hello, isolation};
use pageflip_abi::{EXIT_PANIC, IMAGE_BASE, MAX_PARAMS, MAX_VMS, PAGE_SIZE};
use pageflip_interface::{RecordStatus, RunConfig, RunOutcome, RunResult};

use crate::conform::cases::build::{record, run, status};
use crate::conform::cases::{Case, HOST_EXITS_COUNTER};
use crate::conform::expect::{Check, Count, Phase, Scope, StatusIs};
use crate::run::layout::{Layout, VmSpec};

pub(super) fn console(vm: usize, contains: &'static str) -> Check {
    Check::Console { vm, contains }
}

fn measured_vcpu(counter: &'static str, value: Count) -> Check {
    Check::Stat {
        vm: 0,
        phase: Phase::Measured,
        scope: Scope::Vcpu,
        counter,
        value,
    }
}

/// An unowned-MMIO read at `mem_size + 0x1000`, where the probes read.
const UNOWNED_READ: StatusIs = StatusIs::UnownedMmio {
    above_mem_size: fault::UNOWNED_OFFSET,
    write: false,
};

/// The foundation cases.
pub fn all() -> Vec<Case> {
    let mut cases =
        vec![
        run(
            "boot-hello",
            "one VM boots `hello`: records, console, boot time and stats are reported",
            Layout::of(vec![VmSpec::guest(pageflip_workloads::HELLO, 64, &[])]),
            vec![
                Check::Outcome(RunOutcome::Completed),
                status(0, StatusIs::Success),
                Check::AllRecordsPass { vm: 0, at_least: 2 },
                record(0, "boot-info", RecordStatus::Pass),
                record(0, "console", RecordStatus::Pass),
                console(0, "hello from VM 0 of 1"),
                Check::BootTime { vm: 0 },
                Check::StatsConsistent { vm: 0 },
            ],
        ),
        run(
            "boot-info",
            "three VMs get the boot info their config asks for (ids, peers, memory, params, TSC)",
            Layout::of(vec![
                VmSpec::guest(pageflip_workloads::HELLO, 16, &[1, 2, 3]),
                VmSpec::guest(pageflip_workloads::HELLO, 32, &[]),
                VmSpec::guest(pageflip_workloads::HELLO, 64, &sixteen_params()),
            ]),
            (0..3)
                .flat_map(|vm| {
                    [
                        status(vm, StatusIs::Success),
                        Check::AllRecordsPass { vm, at_least: 2 },
                        Check::StatsConsistent { vm },
                    ]
                })
                .chain([Check::Custom {
                    name: "hello samples",
                    check: hello_samples_match_config,
                }])
                .collect(),
        ),
        run(
            "guest-panic",
            "a guest panic is caught by the guest runtime: exit code EXIT_PANIC and a FAIL record",
            Layout::of(vec![VmSpec::guest(pageflip_workloads::PANIC, 16, &[])]),
            vec![
                status(0, StatusIs::Done(EXIT_PANIC)),
                Check::Record {
                    vm: 0,
                    name: "panic",
                    status: RecordStatus::Fail,
                    message_contains: Some("deliberate panic 42"),
                },
                console(0, "deliberate panic 42"),
            ],
        ),
        run(
            "isolation",
            "two VMs cannot see each other's memory; a read beyond memory stops only that VM",
            Layout {
                stop_on_failure: false,
                ..Layout::of(vec![
                    VmSpec::guest(pageflip_workloads::ISOLATION, 16, &[isolation::PROBE_BEYOND]),
                    VmSpec::guest(pageflip_workloads::ISOLATION, 16, &[0]),
                ])
            },
            vec![
                Check::Outcome(RunOutcome::Completed),
                record(0, "no-peer-secret", RecordStatus::Pass),
                record(0, "own-memory-intact", RecordStatus::Pass),
                record(1, "no-peer-secret", RecordStatus::Pass),
                record(1, "own-memory-intact", RecordStatus::Pass),
                status(0, UNOWNED_READ),
                Check::DeathConsoleTail {
                    vm: 0,
                    contains: "reading beyond memory",
                },
                status(1, StatusIs::Success),
            ],
        ),
        fault_case(
            "fault-null-write",
            "a write to the unmapped null page shuts the VM down with a death report",
            fault::NULL_WRITE,
        ),
        fault_case(
            "fault-invalid-opcode",
            "an invalid opcode (ud2) shuts the VM down with a death report",
            fault::INVALID_OPCODE,
        ),
        run(
            "fault-unowned-mmio",
            "a read of a GPA no device owns (mem_size + 0x1000) stops the VM",
            Layout::of(vec![VmSpec::guest(pageflip_workloads::FAULT, 16, &[fault::UNOWNED_READ])]),
            vec![
                status(0, UNOWNED_READ),
                record(0, "before-fault", RecordStatus::Pass),
            ],
        ),
        run(
            "watchdog",
            "the watchdog stops a spinning guest and the VMM exits soon after",
            Layout {
                timeout_ms: 1000,
                ..Layout::of(vec![VmSpec::guest(pageflip_workloads::SPIN, 16, &[])])
            },
            vec![
                Check::Outcome(RunOutcome::Timeout),
                status(0, StatusIs::Timeout),
                console(0, "spinning forever"),
                Check::ExitsAfterWatchdogWithin { slack_ms: 3000 },
            ],
        ),
        run(
            "stop-on-failure",
            "with stop_on_failure, one VM's death stops the others at once",
            Layout {
                timeout_ms: 30_000,
                ..Layout::of(vec![
                    VmSpec::guest(pageflip_workloads::FAULT, 16, &[fault::NULL_WRITE]),
                    VmSpec::guest(pageflip_workloads::SPIN, 16, &[]),
                ])
            },
            vec![
                Check::Outcome(RunOutcome::Completed),
                status(0, StatusIs::Shutdown),
                status(1, StatusIs::Stopped),
            ],
        ),
    ];
    for (k, name) in EXIT_FIDELITY {
        cases.push(run(
            name,
            "K doorbell writes in the measured phase cost exactly K + 1 MMIO exits and no other guest exit",
            Layout::of(vec![VmSpec::guest(pageflip_workloads::DOORBELL, 16, &[k])]),
            exit_fidelity_checks(),
        ));
    }
    cases.push(run(
        "hostile-requests",
        "malformed device requests are refused, counted in guest_errors_total (past the 1,000 listed), and the guest runs on",
        Layout::of(vec![VmSpec::guest(pageflip_workloads::HOSTILE, 16, &[])]),
        vec![
            status(0, StatusIs::Success),
            Check::AllRecordsPass {
                vm: 0,
                at_least: 19,
            },
            Check::Custom {
                name: "guest errors",
                check: hostile_errors_listed,
            },
        ],
    ));
    cases
}

/// The doorbell counts K of the exit-fidelity cases, with their case names.
const EXIT_FIDELITY: [(u64, &str); 5] = [
    (0, "exit-fidelity-k0"),
    (1, "exit-fidelity-k1"),
    (10, "exit-fidelity-k10"),
    (100, "exit-fidelity-k100"),
    (1000, "exit-fidelity-k1000"),
];

/// The expectations of the exit-fidelity cases: the one place they are kept.
fn exit_fidelity_checks() -> Vec<Check> {
    let k_plus = |plus| Count::Param { index: 0, plus };
    vec![
        status(0, StatusIs::Success),
        Check::AllRecordsPass { vm: 0, at_least: 1 },
        measured_vcpu("mmio_exits", k_plus(PHASE_END_EXITS)),
        measured_vcpu(
            "exits",
            Count::ParamPlusCounter {
                index: 0,
                plus: PHASE_END_EXITS,
                counter: HOST_EXITS_COUNTER,
            },
        ),
        Check::Doorbells {
            vm: 0,
            value: k_plus(doorbell::WARMUP),
        },
    ]
}

fn fault_case(name: &'static str, description: &'static str, param: u64) -> Case {
    run(
        name,
        description,
        Layout::of(vec![VmSpec::guest(pageflip_workloads::FAULT, 16, &[param])]),
        vec![
            status(0, StatusIs::Shutdown),
            Check::DeathRegister {
                vm: 0,
                register: "rip",
            },
            Check::DeathConsoleTail {
                vm: 0,
                contains: "about to fault",
            },
            record(0, "before-fault", RecordStatus::Pass),
        ],
    )
}

/// Sixteen distinct params using all 64 bits.
fn sixteen_params() -> Vec<u64> {
    (0..MAX_PARAMS as u64)
        .map(|i| 0xa5a5_0000_0000_0000 | (i << 32) | (i + 1))
        .collect()
}

/// The samples of every `hello` VM equal its boot info as the config asked for it
/// (layout `pageflip_abi::probes::hello`).
pub fn hello_samples_match_config(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let mut problems = Vec::new();
    let n = config.vms.len();
    for (i, (vm_config, vm)) in config.vms.iter().zip(&result.vms).enumerate() {
        let s = &vm.samples;
        if s.len() != hello::COUNT {
            problems.push(format!(
                "vm{i}: expected {} samples, seen {}",
                hello::COUNT,
                s.len()
            ));
            continue;
        }
        let mut expected = vec![0u64; hello::COUNT];
        expected[hello::VM_ID] = i as u64;
        expected[hello::NUM_VMS] = n as u64;
        expected[hello::MEM_SIZE] = vm_config.memory_mib << 20;
        expected[hello::NUM_PEERS] = n as u64 - 1;
        let peers = (0..n as u64).filter(|&p| p != i as u64);
        for (slot, peer) in expected[hello::PEER_IDS..hello::PEER_IDS + MAX_VMS]
            .iter_mut()
            .zip(peers.map(Some).chain(std::iter::repeat(None)))
        {
            *slot = peer.unwrap_or(u64::MAX);
        }
        expected[hello::NUM_PARAMS] = vm_config.params.len() as u64;
        for (slot, param) in expected[hello::PARAMS..].iter_mut().zip(&vm_config.params) {
            *slot = *param;
        }
        expected[hello::TSC_KHZ] = result.host.tsc_khz.unwrap_or(0);
        for (index, (want, seen)) in expected.iter().zip(s).enumerate() {
            if index != hello::FREE_START && want != seen {
                problems.push(format!(
                    "vm{i}: expected {} = {want:#x}, seen {seen:#x}",
                    hello_sample_name(index)
                ));
            }
        }
        let free = s[hello::FREE_START];
        if free % PAGE_SIZE != 0 || free < IMAGE_BASE || free >= expected[hello::MEM_SIZE] {
            problems.push(format!(
                "vm{i}: expected free_start page-aligned in [{IMAGE_BASE:#x}, mem_size), seen {free:#x}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn hello_sample_name(index: usize) -> String {
    match index {
        hello::VM_ID => "vm_id".to_string(),
        hello::NUM_VMS => "num_vms".to_string(),
        hello::MEM_SIZE => "mem_size".to_string(),
        hello::NUM_PEERS => "num_peers".to_string(),
        hello::NUM_PARAMS => "num_params".to_string(),
        hello::TSC_KHZ => "tsc_khz".to_string(),
        hello::FREE_START => "free_start".to_string(),
        i if (hello::PEER_IDS..hello::PEER_IDS + MAX_VMS).contains(&i) => {
            format!("peer_ids[{}]", i - hello::PEER_IDS)
        }
        i => format!("params[{}]", i - hello::PARAMS),
    }
}

/// The `hostile` guest's refused requests are all counted (`guest_errors_total` is the
/// guest's count, `samples[0]`, which passes the list limit) and the first
/// `GUEST_ERRORS_LISTED` are listed, none with status `ok`.
pub fn hostile_errors_listed(_config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let vm = result.vms.first().ok_or("expected vm0, seen no VM")?;
    let counted = *vm
        .samples
        .first()
        .ok_or("expected samples[0] = the guest's count of refused requests, seen no samples")?;
    let mut problems = Vec::new();
    if vm.guest_errors_total != counted {
        problems.push(format!(
            "expected guest_errors_total {counted} (samples[0]), seen {}",
            vm.guest_errors_total
        ));
    }
    let listed = counted.min(pageflip_abi::mmio::GUEST_ERRORS_LISTED);
    if vm.guest_errors.len() as u64 != listed {
        problems.push(format!(
            "expected the first {listed} of {counted} refused requests listed in guest_errors, seen {}",
            vm.guest_errors.len()
        ));
    }
    for (i, e) in vm.guest_errors.iter().enumerate() {
        if e.status == pageflip_abi::mmio::Status::Ok.name() {
            problems.push(format!(
                "guest_errors[{i}] ({}: {}): expected a status other than ok, seen ok",
                e.register, e.detail
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
