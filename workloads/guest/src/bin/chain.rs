//! `chain`: K VMs in a line (K = the run's VMs, 2 to 8; 2 is `stream`): VM0 sends `count`
//! messages to VM1, each middle VM i receives them from VM i-1, checks only their headers
//! (the first 64 bytes) and forwards them to VM i+1 as they are, and the last VM checks them
//! as `CHECK` and `TOUCH` say (parameters and samples:
//! [`pageflip_guest::abi::probes::ipc_workloads`]), over the run's transport
//! ([`pageflip_guest::link`]). Every payload keeps VM0's pattern; each entry's source is the
//! VM that forwarded it.
//!
//! The receivers (every VM but VM0) set up their receivers and begin their measured phases;
//! all VMs meet at a barrier; VM0 begins its phase. VM0's phase is the send loop and the wait
//! until every message is delivered, a middle VM's the start barrier, the receive-and-forward
//! loop and the wait until every forward is delivered, the last VM's the start barrier and
//! the receive loop. A second barrier follows; then the receivers check that nothing more
//! arrives, and all record their checks (VM0 `all-delivered`, the middle VMs `forwarded`,
//! the last VM the receiver's checks) and report samples (the last VM: the inter-arrival TSC
//! ticks of the first messages).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::ipc_records::PARAMS;
use pageflip_guest::link::Link;
use pageflip_guest::payload::Touch;
use pageflip_guest::workload::{self, Program, Workload};
use pageflip_guest::{boot_info, fail, println};

pageflip_guest::entry!(main);

/// The chain's first VM, whose pattern every payload holds.
const FIRST: u32 = 0;

struct Chain;

impl Program for Chain {
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64 {
        let bi = boot_info();
        let (me, k) = (bi.vm_id, bi.num_vms);
        let count = w.params.count;
        if me == FIRST {
            if !w.open_sender(1) {
                return 1;
            }
            w.prefault();
            println!(
                "chain: sending {count} messages of {} bytes along {k} VMs over {}",
                w.params.size,
                L::NAME
            );
            w.send_all();
            return 0;
        }
        let Some(mut r) = w.receiver(1 << (me - 1)) else {
            return 1;
        };
        r.set_pattern_src(FIRST);
        if me + 1 < k {
            r.set_touch(Touch::Header);
            if !w.open_forwarder(me + 1) {
                return 1;
            }
            w.prefault();
            println!(
                "chain: forwarding {count} messages from VM{} to VM{} over {}",
                me - 1,
                me + 1,
                L::NAME
            );
            w.forward_all(&mut r);
        } else {
            w.prefault();
            println!(
                "chain: receiving {count} messages from VM{} over {}",
                me - 1,
                L::NAME
            );
            w.receive_all(&mut r, "chain");
        }
        0
    }
}

fn main() -> u64 {
    if boot_info().num_vms < 2 {
        fail(
            PARAMS,
            "chain needs 2 to 8 VMs (VM0 sends, the last receives)",
        );
        return 1;
    }
    workload::run(Chain)
}
