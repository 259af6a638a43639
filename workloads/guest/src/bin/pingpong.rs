//! `pingpong`: VM0 sends message r to VM1, VM1 answers with a message of the same size,
//! for `count` rounds; VM0 samples each round trip in TSC ticks (parameters and samples:
//! [`pageflip_guest::abi::probes::ipc_workloads`]), over the run's transport
//! ([`pageflip_guest::link`]).
//!
//! Both VMs set up sender and receiver (remap/copy: post landing pages) and meet at a
//! barrier; VM1 begins its measured phase before the barrier, VM0 after it, so that every
//! delivery falls inside the receiving VM's phase. Remap/copy with a deferred batch (B > 1):
//! the sends do not exit; with blocking receive the `IPC_RECV_WAIT` read that follows drains
//! them; with polling each send is flushed at once (nothing else would exit: [`Link::push`]).
//! Both check every message they receive and record `all-delivered`. Other VMs exit at once.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::check::StreamReceiver;
use pageflip_guest::link::Link;
use pageflip_guest::workload::{self, Program, Workload};
use pageflip_guest::{barrier, boot_info, println, rdtsc};

pageflip_guest::entry!(main);

/// Waits until the `round`-th message (0-based) from `peer` has been accepted, looking after
/// this VM's messages in flight meanwhile; `false` after the idle timeout.
fn await_message<L: Link>(
    w: &mut Workload<L>,
    r: &mut StreamReceiver,
    peer: u32,
    round: u64,
) -> bool {
    let mut deadline = w.idle_deadline();
    while r.accepted_from(peer) <= round {
        w.link.pump();
        match w.link.recv() {
            Some(m) => {
                w.link.deliver(r, m);
                deadline = w.idle_deadline();
            }
            None => {
                if deadline.expired() {
                    return false;
                }
            }
        }
    }
    true
}

/// Sends message `seq` and makes it reach the peer now.
fn ping<L: Link>(w: &mut Workload<L>, seq: u64) -> bool {
    if !w.link.send(seq) {
        return false;
    }
    w.link.push();
    true
}

struct PingPong;

impl Program for PingPong {
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64 {
        let me = boot_info().vm_id;
        let peer = 1 - me;
        let count = w.params.count;
        if !w.open_sender(peer) {
            return 1;
        }
        let Some(mut r) = w.receiver(1 << peer) else {
            return 1;
        };
        w.prefault();
        println!(
            "pingpong: VM{me} plays {count} rounds of {} bytes with VM{peer} over {}",
            w.params.size,
            L::NAME
        );
        // VM1 receives first: its phase begins before the start barrier, VM0's after it, so
        // that every delivery into either VM falls inside its phase.
        if me == 1 {
            w.phase_begin();
            barrier();
        } else {
            barrier();
            w.phase_begin();
        }
        let t0 = rdtsc();
        for round in 0..count {
            if me == 0 {
                let start = rdtsc();
                if !ping(w, round) || !await_message(w, &mut r, peer, round) {
                    break;
                }
                w.per_message(rdtsc().wrapping_sub(start));
            } else if !await_message(w, &mut r, peer, round) || !ping(w, round) {
                break;
            }
        }
        w.link.finish();
        let t = rdtsc().wrapping_sub(t0);
        w.phase_end();
        let received = r.received();
        barrier();
        let extra = w.drain_extra(&mut r);
        if extra != 0 {
            println!("pingpong: {extra} entries arrived after the last expected message");
        }
        let st = w.link.send_stats();
        w.link.record_sender(count);
        r.record();
        w.report(t, st.delivered, received, st.retries);
        0
    }
}

fn main() -> u64 {
    let bi = boot_info();
    if bi.vm_id > 1 {
        println!("pingpong: VM {} has no role (VM0 and VM1 play)", bi.vm_id);
        return 0;
    }
    workload::run(PingPong)
}
