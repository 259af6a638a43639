//! `fanin`: VMs 1..n-1 each send `count` messages to VM0, which receives and checks them
//! all, per sender (parameters and samples: [`pageflip_guest::abi::probes::ipc_workloads`]).
//!
//! VM0 posts its landing pages and begins its measured phase; all VMs meet at a barrier; the
//! senders begin theirs (senders: the send loop and the final flush; VM0: the start barrier
//! and the receive loop). A
//! second barrier follows; then VM0 checks that nothing more arrives, and all record their
//! checks and report samples (VM0: the inter-arrival TSC ticks of the first messages).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::ipc_records::PARAMS;
use pageflip_guest::ipc::workload::Workload;
use pageflip_guest::{boot_info, fail, println};

pageflip_guest::entry!(main);

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms < 2 {
        fail(
            PARAMS,
            "fanin needs 2 or more VMs (VM0 receives from all others)",
        );
        return 1;
    }
    let Some(mut w) = Workload::setup() else {
        return 1;
    };
    let count = w.params.count;
    if bi.vm_id != 0 {
        let Some(mut s) = w.sender(0) else { return 1 };
        w.prefault();
        w.send_all(&mut s);
    } else {
        let senders = ((1u32 << bi.num_vms) - 1) & !1;
        let Some(mut r) = w.receiver(senders) else {
            return 1;
        };
        w.prefault();
        println!(
            "fanin: receiving {count} messages from each of VMs 1..{}",
            bi.num_vms - 1
        );
        w.receive_all(&mut r, "fanin");
    }
    0
}
