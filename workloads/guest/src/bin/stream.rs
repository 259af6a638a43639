//! `stream`: VM0 sends `count` messages to VM1, which receives and checks them all
//! (parameters and samples: [`pageflip_guest::abi::probes::ipc_workloads`]).
//!
//! VM1 posts its landing pages and begins its measured phase; both VMs meet at a barrier;
//! VM0 begins its phase. VM0's phase is the send loop and the final flush (until every
//! message is delivered), VM1's the start barrier and the receive loop. A second barrier follows; then VM1 checks that
//! nothing more arrives, and both record their checks and report samples (VM1: the
//! inter-arrival TSC ticks of the first messages). Other VMs exit at once.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::ipc::workload::Workload;
use pageflip_guest::{boot_info, println};

pageflip_guest::entry!(main);

fn main() -> u64 {
    let bi = boot_info();
    if bi.vm_id > 1 {
        println!(
            "stream: VM {} has no role (VM0 sends, VM1 receives)",
            bi.vm_id
        );
        return 0;
    }
    let Some(mut w) = Workload::setup() else {
        return 1;
    };
    let count = w.params.count;
    if bi.vm_id == 0 {
        let Some(mut s) = w.sender(1) else { return 1 };
        w.prefault();
        println!(
            "stream: sending {count} messages of {} bytes to VM1",
            w.params.size
        );
        w.send_all(&mut s);
    } else {
        let Some(mut r) = w.receiver(1 << 0) else {
            return 1;
        };
        w.prefault();
        println!("stream: receiving {count} messages from VM0");
        w.receive_all(&mut r, "stream");
    }
    0
}
