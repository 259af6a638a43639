//! `fanin`: VMs 1..n-1 each send `count` messages to VM0, which receives and checks them
//! all, per sender (parameters and samples: [`pageflip_guest::abi::probes::ipc_workloads`]),
//! over the run's transport ([`pageflip_guest::link`]).
//!
//! VM0 sets up its receiver (remap/copy: posts its landing pages) and begins its measured
//! phase; all VMs meet at a barrier; the senders begin theirs (senders: the send loop and the
//! wait until every message is delivered; VM0: the start barrier and the receive loop). A
//! second barrier follows; then VM0 checks that nothing more arrives, and all record their
//! checks and report samples (VM0: the inter-arrival TSC ticks of the first messages).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::ipc_records::PARAMS;
use pageflip_guest::link::Link;
use pageflip_guest::workload::{self, Program, Workload};
use pageflip_guest::{boot_info, fail, println};

pageflip_guest::entry!(main);

struct Fanin;

impl Program for Fanin {
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64 {
        let bi = boot_info();
        let count = w.params.count;
        if bi.vm_id != 0 {
            if !w.open_sender(0) {
                return 1;
            }
            w.prefault();
            w.send_all();
        } else {
            let senders = ((1u32 << bi.num_vms) - 1) & !1;
            let Some(mut r) = w.receiver(senders) else {
                return 1;
            };
            w.prefault();
            println!(
                "fanin: receiving {count} messages from each of VMs 1..{} over {}",
                bi.num_vms - 1,
                L::NAME
            );
            w.receive_all(&mut r, "fanin");
        }
        0
    }
}

fn main() -> u64 {
    if boot_info().num_vms < 2 {
        fail(
            PARAMS,
            "fanin needs 2 or more VMs (VM0 receives from all others)",
        );
        return 1;
    }
    workload::run(Fanin)
}
