//! The conformance cases of the `chain` workload: K VMs in a line, the middle ones checking
//! headers and forwarding (zero-copy over the remap-IPC queues and virtio, a copy over
//! shmem), over every transport of the catalog (remap-huge with 2 MiB messages).

use pageflip_abi::probes::{ipc_records as rec, ipc_workloads as w};
use pageflip_interface::{NotifyMode, RecordStatus, RunConfig, RunResult, TransportConfig};

use crate::conform::cases::build::{
    both, custom, ipc_layout, link_params, record, run, stream, stream_in, workload_counts,
};
use crate::conform::cases::remap_ipc::vm_map_ops_exact;
use crate::conform::cases::Case;
use crate::conform::expect::Check;

/// Messages of the small-message cases.
const COUNT: u64 = 3000;
/// Size of the small-message cases' messages.
const SIZE: u64 = 1024;
/// Messages of the 2 MiB case: more than 97, so that every hop meets the mutant
/// `drop-every-nth` (it drops each destination's 97th delivery).
const HUGE_COUNT: u64 = 100;
/// Guest memory of the 2 MiB case (as `ipc-huge-remap-huge`'s).
const HUGE_MIB: u64 = 64;

/// Every hop delivered `count` messages, as the VMM counts them: VM0 sent `count`, each
/// middle VM received and sent `count`, the last VM received `count` (in all (K-1) * count
/// sent and received); the run's audit is clean ([`workload_counts`]); and each VM's
/// messages cost the exact host mapping operations of one-extent messages
/// ([`vm_map_ops_exact`]: a forwarded landing area moves as one extent too).
pub fn chain_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let t = result.transport.as_ref().expect("checked");
    let count = config.vms[0].params.get(w::COUNT).copied().unwrap_or(0);
    let k = t.vms.len();
    for (vm, v) in t.vms.iter().enumerate() {
        let sent = if vm + 1 < k { count } else { 0 };
        let received = if vm > 0 { count } else { 0 };
        if v.sent != sent || v.received != received {
            return Err(format!(
                "VM{vm}: the VMM counts {} sent and {} received, expected {sent} and {received}",
                v.sent, v.received
            ));
        }
        vm_map_ops_exact(&config.transport, v).map_err(|e| format!("VM{vm}: {e}"))?;
    }
    Ok(())
}

/// The checks of a chain of `k` VMs: every VM succeeds with every record passing, VM0
/// delivered everything, each middle VM forwarded everything, the last VM got every message
/// intact, and the VMM's counts and audit agree.
fn checks(k: usize) -> Vec<Check> {
    let mut c = both(k);
    c.push(record(0, rec::ALL_DELIVERED, RecordStatus::Pass));
    for vm in 1..k - 1 {
        c.push(record(vm, rec::FORWARDED, RecordStatus::Pass));
    }
    for name in [rec::DELIVERY_INTEGRITY, rec::COUNT, rec::LANDING_PAGES] {
        c.push(record(k - 1, name, RecordStatus::Pass));
    }
    c.push(custom("hop counts and audit", chain_counts));
    c
}

/// The chain cases.
pub fn all() -> Vec<Case> {
    let small = link_params(COUNT, SIZE, w::RECV_POLL, true, 0);
    let three: [(&'static str, TransportConfig); 6] = [
        ("chain-3-remap", TransportConfig::Remap),
        ("chain-3-remap-per-page", TransportConfig::RemapPerPage),
        ("chain-3-copy", TransportConfig::Copy),
        (
            "chain-3-virtio-ioeventfd",
            TransportConfig::Virtio {
                notify: NotifyMode::Ioeventfd,
            },
        ),
        (
            "chain-3-virtio-userspace",
            TransportConfig::Virtio {
                notify: NotifyMode::Userspace,
            },
        ),
        ("chain-3-shmem", TransportConfig::Shmem),
    ];
    let mut cases: Vec<Case> = three
        .into_iter()
        .map(|(name, t)| {
            run(
                name,
                "3 VMs in a line: VM1 checks headers and forwards 3,000 messages, VM2 checks every byte",
                ipc_layout(&t, stream(&small, 3, pageflip_workloads::CHAIN)),
                checks(3),
            )
        })
        .collect();
    cases.push(run(
        "chain-8-remap",
        "8 VMs in a line over remap: six forwarders, every hop delivers every message",
        ipc_layout(
            &TransportConfig::Remap,
            stream(
                &link_params(2000, SIZE, w::RECV_POLL, true, 0),
                8,
                pageflip_workloads::CHAIN,
            ),
        ),
        checks(8),
    ));
    cases.push(run(
        "chain-3-remap-huge",
        "remap-huge: 2 MiB messages forwarded as whole huge pages through a middle VM, every byte checked at the end",
        ipc_layout(
            &TransportConfig::RemapHuge,
            stream_in(
                &link_params(HUGE_COUNT, 2 << 20, w::RECV_POLL, true, 0),
                3,
                pageflip_workloads::CHAIN,
                HUGE_MIB,
            ),
        ),
        checks(3),
    ));
    cases
}
