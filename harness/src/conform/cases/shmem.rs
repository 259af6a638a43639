//! The conformance cases of the shmem transport: delivery, fan-in and ping-pong over a shared
//! region with the same workloads and checks as the other transports, and its zero exits.

use pageflip_abi::phase::WORKLOAD_VM_MAX_BOOKKEEPING_EXITS;
use pageflip_abi::probes::ipc_workloads as w;
use pageflip_interface::{RunConfig, RunResult, TransportConfig};

use crate::conform::cases::build::{
    both, custom, ipc_layout, link_params, measured, pingpong_counts, run, stream, workload_counts,
};
use crate::conform::cases::Case;

/// Shared memory: in every VM's measured phase, no MMIO exit beyond the phase's own writes,
/// no exit that is not one of those, an interrupt or a page fault (`exits` ≤ `irq_exits` +
/// `pf_taken` + `mmio_exits`; kvm_pvm also counts each MMIO exit in `pf_taken`), no remote
/// TLB flush request, and at most one vCPU TLB flush per 100 messages.
///
/// Page faults and the flush allowance are there because the host may drop shadow or nested
/// page tables at any time (reclaim, migration); the reference VMM's guests take none in this
/// case on kvm_pvm (docs/TESTING.md).
pub fn shmem_no_exits(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let count = config.vms[0].params.get(w::COUNT).copied().unwrap_or(0);
    for vm in 0..config.vms.len() {
        let mmio = measured(result, vm, "mmio_exits")?;
        let exits = measured(result, vm, "exits")?;
        let irq = measured(result, vm, "irq_exits")?;
        let pf = measured(result, vm, "pf_taken")?;
        // kvm_pvm counts each MMIO exit in `pf_taken` too, kvm_amd does not: at most the sum.
        if mmio > WORKLOAD_VM_MAX_BOOKKEEPING_EXITS || exits > irq + pf + mmio {
            return Err(format!(
                "VM{vm}: measured exits {exits} (mmio {mmio}, irq {irq}, pf_taken {pf}): expected only the phase's own 1-2 MMIO exits, interrupts and page faults"
            ));
        }
        let remote = measured(result, vm, "remote_tlb_flush_requests")?;
        let flushes = measured(result, vm, "tlb_flush")?;
        if remote != 0 || flushes * 100 > count {
            return Err(format!(
                "VM{vm}: measured remote_tlb_flush_requests {remote} (expected 0), tlb_flush {flushes} for {count} messages"
            ));
        }
    }
    let t = result
        .transport
        .as_ref()
        .ok_or("the result has no `transport` report")?;
    if t.kind != "shmem" {
        return Err(format!("transport kind {:?}, expected \"shmem\"", t.kind));
    }
    workload_counts(config, result)
}

/// The shmem cases.
pub fn all() -> Vec<Case> {
    let shmem = TransportConfig::Shmem;
    let mut cases = Vec::new();
    cases.extend([
        run(
            "shmem-delivery",
            "100,000 messages over shared memory: every byte intact, FIFO, gap-free, no duplicates, nothing lost",
            ipc_layout(&shmem, stream(&link_params(100_000, 64, w::RECV_POLL, true, 0), 2, pageflip_workloads::STREAM)),
            [both(2), vec![custom("transport counts", workload_counts)]].concat(),
        ),
        run(
            "shmem-fanin",
            "three senders, one receiver over shared memory",
            ipc_layout(&shmem, stream(&link_params(2000, 4096, w::RECV_POLL, true, 0), 4, pageflip_workloads::FANIN)),
            [both(4), vec![custom("transport counts", workload_counts)]].concat(),
        ),
        run(
            "shmem-pingpong",
            "ping-pong over shared memory",
            ipc_layout(&shmem, stream(&link_params(2000, 4096, w::RECV_POLL, true, 0), 2, pageflip_workloads::PINGPONG)),
            [both(2), vec![custom("transport counts", pingpong_counts)]].concat(),
        ),
        run(
            "shmem-zero-exits",
            "shared memory moves 64 KiB messages with no exit and no TLB flush",
            ipc_layout(
                &shmem,
                stream(&link_params(2000, 64 * 1024, w::RECV_POLL, true, 0), 2, pageflip_workloads::STREAM),
            ),
            [both(2), vec![custom("no exits", shmem_no_exits)]].concat(),
        ),
    ]);
    cases
}
