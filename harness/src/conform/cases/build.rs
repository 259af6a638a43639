//! The case-building helpers every area shares: cases, layouts, the common checks, and the
//! workload params.

use pageflip_abi::probes::ipc_workloads as w;
use pageflip_interface::{RecordStatus, RunConfig, RunResult, TransportConfig};

use crate::conform::cases::Case;
use crate::conform::expect::{Check, Expect, StatusIs};
use crate::run::layout::{Input, Layout, VmSpec};

/// Guest memory of the VMs of the transport cases.
pub(super) const MIB: u64 = w::MIN_MEMORY_MIB;

pub(super) fn case(
    name: &'static str,
    description: &'static str,
    input: Input,
    expect: Expect,
) -> Case {
    Case {
        name,
        description,
        input,
        expect,
        skip: None,
    }
}

pub(super) fn run(
    name: &'static str,
    description: &'static str,
    layout: Layout,
    checks: Vec<Check>,
) -> Case {
    case(name, description, Input::Run(layout), Expect::Run(checks))
}

pub(super) fn status(vm: usize, is: StatusIs) -> Check {
    Check::Status { vm, is }
}

pub(super) fn record(vm: usize, name: &'static str, status: RecordStatus) -> Check {
    Check::Record {
        vm,
        name,
        status,
        message_contains: None,
    }
}

/// Every VM of `n` succeeds and every record it writes passes (at least one).
pub(super) fn both(n: usize) -> Vec<Check> {
    (0..n)
        .flat_map(|vm| {
            [
                status(vm, StatusIs::Success),
                Check::AllRecordsPass { vm, at_least: 1 },
            ]
        })
        .collect()
}

/// A check in code named `name`.
pub(super) fn custom(
    name: &'static str,
    check: fn(&RunConfig, &RunResult) -> Result<(), String>,
) -> Check {
    Check::Custom { name, check }
}

/// Every remap run ends with a clean ownership audit; every IPC run reports its transport.
pub fn audit_clean(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let t = result
        .transport
        .as_ref()
        .ok_or("the result has no `transport` report")?;
    if t.vms.len() != config.vms.len() {
        return Err(format!(
            "transport report for {} VMs, config has {}",
            t.vms.len(),
            config.vms.len()
        ));
    }
    match (&config.transport, &t.ownership) {
        (t, None) if t.remaps() => Err("a remap run without an ownership audit".into()),
        (_, Some(a)) if !a.violations.is_empty() => Err(format!(
            "ownership audit: {} violations, first: {}",
            a.violations.len(),
            a.violations[0]
        )),
        (_, Some(a)) => {
            let sum: u64 = a.pages_per_owner.values().sum();
            if sum != a.total_pages {
                return Err(format!(
                    "pages per owner add up to {sum}, the pool has {}",
                    a.total_pages
                ));
            }
            // Remapping never changes how many pages a VM has.
            for (i, vm) in config.vms.iter().enumerate() {
                let name = config.vm_name(i);
                let want = (vm.memory_mib << 20) / 4096;
                let got = a.pages_per_owner.get(&name).copied().unwrap_or(0);
                if got != want {
                    return Err(format!(
                        "{name} owns {got} pages at the end, expected its {want}"
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The VMM's message counts agree with the workload's: every sender's `count` messages
/// were delivered, every receiver got them.
pub fn workload_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    audit_clean(config, result)?;
    let t = result.transport.as_ref().expect("checked");
    let sent: u64 = t.vms.iter().map(|v| v.sent).sum();
    let received: u64 = t.vms.iter().map(|v| v.received).sum();
    let count = config.vms[0].params.get(w::COUNT).copied().unwrap_or(0);
    let senders = match config.vms.len() {
        2 => 1,
        n => n as u64 - 1,
    };
    let want = count * senders;
    if sent != want || received != want {
        return Err(format!(
            "VMM counts {sent} sent and {received} received, expected {want} each"
        ));
    }
    Ok(())
}

/// A KVM counter of a VM's measured phase, or why there is none.
pub(super) fn measured(result: &RunResult, vm: usize, counter: &str) -> Result<u64, String> {
    let m = result.vms[vm]
        .stats
        .measured
        .as_ref()
        .ok_or_else(|| format!("VM{vm} has no measured-phase stats"))?;
    m.counter(counter)
        .ok_or_else(|| format!("the host does not maintain {counter} (unavailable)"))
}

/// A layout of `vms` with `transport` and the IPC cases' 300 s watchdog.
pub(super) fn ipc_layout(transport: &TransportConfig, vms: Vec<VmSpec>) -> Layout {
    Layout {
        // A hang guard, not a duration assertion: ipc-delivery-remap takes ~12 s here and
        // ~150 s on kvm_amd under QEMU's emulator (ci/hw-kvm, docs/TESTING.md).
        timeout_ms: 300_000,
        ..Layout::of(vms).with_transport(transport.clone())
    }
}

/// `n` VMs booting `image` with `params`.
pub(super) fn stream(params: &[u64], n: usize, image: &'static str) -> Vec<VmSpec> {
    stream_in(params, n, image, MIB)
}

/// [`stream`] with `memory_mib` MiB per VM.
pub(super) fn stream_in(
    params: &[u64],
    n: usize,
    image: &'static str,
    memory_mib: u64,
) -> Vec<VmSpec> {
    (0..n)
        .map(|_| VmSpec::guest(image, memory_mib, params))
        .collect()
}

/// A workload VM gives up after this long without progress: long for a correct VMM (a
/// message takes well under a millisecond), short enough that a VMM that loses messages
/// fails its case in seconds.
pub(super) const IDLE_TIMEOUT_MS: u64 = 3_000;

/// Params of a workload: count, size, receive mode, EVENT_IDX on or off, depth.
pub(super) fn link_params(
    count: u64,
    size: u64,
    recv: u64,
    event_idx: bool,
    depth: u64,
) -> Vec<u64> {
    let mut p = vec![0; 10];
    p[w::COUNT] = count;
    p[w::SIZE] = size;
    p[w::RECV_MODE] = recv;
    p[w::CHECK] = w::CHECK_FULL;
    p[w::IDLE_TIMEOUT_MS] = IDLE_TIMEOUT_MS;
    p[w::EVENT_IDX] = u64::from(!event_idx);
    p[w::DEPTH] = depth;
    p
}

/// Ping-pong: both VMs send `count` messages and receive `count`, as the transport counts.
pub fn pingpong_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let t = result
        .transport
        .as_ref()
        .ok_or("the result has no `transport` report")?;
    let count = config.vms[0].params.get(w::COUNT).copied().unwrap_or(0);
    for (vm, v) in t.vms.iter().enumerate() {
        if v.sent != count || v.received != count {
            return Err(format!(
                "VM{vm}: the VMM counts {} sent and {} received, expected {count} each",
                v.sent, v.received
            ));
        }
    }
    Ok(())
}
