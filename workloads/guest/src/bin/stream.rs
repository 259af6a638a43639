//! `stream`: VM0 sends `count` messages to VM1, which receives and checks them all
//! (parameters and samples: [`pageflip_guest::abi::probes::ipc_workloads`]), over the run's
//! transport ([`pageflip_guest::link`]).
//!
//! VM1 sets up its receiver (remap/copy: posts its landing pages) and begins its measured
//! phase; both VMs meet at a barrier; VM0 begins its phase. VM0's phase is the send loop and
//! the wait until every message is delivered, VM1's the start barrier and the receive loop. A
//! second barrier follows; then VM1 checks that nothing more arrives, and both record their
//! checks and report samples (VM1: the inter-arrival TSC ticks of the first messages). Other
//! VMs exit at once.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::link::Link;
use pageflip_guest::workload::{self, Program, Workload};
use pageflip_guest::{boot_info, println};

pageflip_guest::entry!(main);

struct Stream;

impl Program for Stream {
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64 {
        let count = w.params.count;
        if boot_info().vm_id == 0 {
            if !w.open_sender(1) {
                return 1;
            }
            w.prefault();
            println!(
                "stream: sending {count} messages of {} bytes to VM1 over {}",
                w.params.size,
                L::NAME
            );
            w.send_all();
        } else {
            let Some(mut r) = w.receiver(1 << 0) else {
                return 1;
            };
            w.prefault();
            println!(
                "stream: receiving {count} messages from VM0 over {}",
                L::NAME
            );
            w.receive_all(&mut r, "stream");
        }
        0
    }
}

fn main() -> u64 {
    let bi = boot_info();
    if bi.vm_id > 1 {
        println!(
            "stream: VM {} has no role (VM0 sends, VM1 receives)",
            bi.vm_id
        );
        return 0;
    }
    workload::run(Stream)
}
