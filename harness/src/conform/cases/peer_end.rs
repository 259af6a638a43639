//! The cases of a receiver's misbehaviour and end (`docs/remap-ipc.md`, "When a VM ends"):
//! the `ipc_peer_end` probe on the remap and copy transports. Bad posts are examined once,
//! a good `IPC_RECV_WAIT` read sets `STATUS`, and sends to a VM that has ended get
//! `dest_down` promptly, the sender keeping its pages.

use pageflip_abi::probes::ipc_landing::{VARIANT_COPY, VARIANT_REMAP, VARIANT_REMAP_PER_PAGE};
use pageflip_abi::probes::ipc_peer_end as spec;
use pageflip_interface::{RecordStatus, RunConfig, RunResult, TransportConfig};

use crate::conform::cases::build::{
    audit_clean, both, custom, ipc_layout, record, run, stream_in, MIB,
};
use crate::conform::cases::Case;

/// The VMM's counts agree with the probe: a clean audit (remap), VM0's refused descriptors
/// include `queue_full` (the flood, and the wait for VM1's end) and at least 2 `dest_down`
/// (the end), and VM1's 2 bad requests are counted in `guest_errors_total`.
pub fn peer_end_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    audit_clean(config, result)?;
    let t = result
        .transport
        .as_ref()
        .ok_or("expected a transport report, seen none")?;
    let vm0 = t.vms.first().ok_or("expected vm0's transport report")?;
    let refused = |name: &str| vm0.refused.get(name).copied().unwrap_or(0);
    let full = u64::from(spec::FLOOD_SENDS - 1);
    if refused("queue_full") < full || refused("dest_down") < 2 {
        return Err(format!(
            "vm0 refused {:?}: expected at least {full} queue_full and 2 dest_down",
            vm0.refused
        ));
    }
    let vm1 = result.vms.get(1).ok_or("expected vm1's result")?;
    if vm1.guest_errors_total != 2 {
        return Err(format!(
            "vm1: guest_errors_total {}, expected 2 (its two writes to no register)",
            vm1.guest_errors_total
        ));
    }
    Ok(())
}

/// The peer-end cases: remap, remap-per-page and copy.
pub fn all() -> Vec<Case> {
    [
        ("ipc-peer-end-remap", TransportConfig::Remap, VARIANT_REMAP),
        (
            "ipc-peer-end-remap-per-page",
            TransportConfig::RemapPerPage,
            VARIANT_REMAP_PER_PAGE,
        ),
        ("ipc-peer-end-copy", TransportConfig::Copy, VARIANT_COPY),
    ]
    .into_iter()
    .map(|(name, transport, v)| {
        let mut checks = both(2);
        checks.extend(
            spec::RECORDS
                .iter()
                .map(|&(vm, n)| record(vm, n, RecordStatus::Pass)),
        );
        checks.push(custom("refused counts", peer_end_counts));
        run(
            name,
            "bad posts are examined once, IPC_RECV_WAIT sets STATUS, and sends to an ended VM get dest_down at once with the pages left to the sender",
            ipc_layout(
                &transport,
                stream_in(&[v], 2, pageflip_workloads::IPC_PEER_END, MIB),
            ),
            checks,
        )
    })
    .collect()
}
