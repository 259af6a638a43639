//! `pingpong`: VM0 sends message r to VM1, VM1 answers with a message of the same size,
//! for `count` rounds; VM0 samples each round trip in TSC ticks (parameters and samples:
//! [`pageflip_guest::abi::probes::ipc_workloads`]).
//!
//! Both VMs post landing pages and meet at a barrier; VM1 begins its measured phase before
//! the barrier, VM0 after it, so that every delivery falls inside the receiving VM's phase. With a deferred batch (B > 1) the sends do not exit: with blocking receive the
//! `IPC_RECV_WAIT` read that follows drains them; with polling each send is flushed at once
//! (nothing else would exit). Both check every message they receive and record
//! `all-delivered`. Other VMs exit at once.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::ipc::stream::{RecvMode, StreamReceiver, StreamSender};
use pageflip_guest::ipc::workload::Workload;
use pageflip_guest::{barrier, boot_info, phase_begin, phase_end, println, rdtsc};

pageflip_guest::entry!(main);

/// Waits until the `round`-th message (0-based) from `peer` has been accepted, resending
/// this VM's refused messages meanwhile; `false` after the idle timeout.
fn await_message(
    w: &mut Workload,
    s: &mut StreamSender,
    r: &mut StreamReceiver,
    peer: u32,
    round: u64,
) -> bool {
    let mut deadline = w.idle_deadline();
    while r.accepted_from(peer) <= round {
        s.pump(&mut w.ipc);
        let e = match w.params.mode {
            RecvMode::Poll => w.ipc.recv_poll(),
            RecvMode::Block => w.ipc.recv_wait(),
        };
        match e {
            Some(e) => {
                r.handle(&mut w.ipc, &e);
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

/// Sends message `seq` and, for a deferred send with polling, flushes it at once.
fn ping(w: &mut Workload, s: &mut StreamSender, seq: u64) -> bool {
    if !s.send(&mut w.ipc, seq) {
        return false;
    }
    if w.params.batch > 1 && w.params.mode == RecvMode::Poll && w.ipc.pending() != 0 {
        w.ipc.flush();
    }
    true
}

fn main() -> u64 {
    let bi = boot_info();
    if bi.vm_id > 1 {
        println!("pingpong: VM {} has no role (VM0 and VM1 play)", bi.vm_id);
        return 0;
    }
    let Some(mut w) = Workload::setup() else {
        return 1;
    };
    let me = bi.vm_id;
    let peer = 1 - me;
    let count = w.params.count;
    let Some(mut s) = w.sender(peer) else {
        return 1;
    };
    let Some(mut r) = w.receiver(1 << peer) else {
        return 1;
    };
    w.prefault();
    println!(
        "pingpong: VM{me} plays {count} rounds of {} bytes with VM{peer}",
        w.params.size
    );
    // VM1 receives first: its phase begins before the start barrier, VM0's after it, so that
    // every delivery into either VM falls inside its phase.
    if me == 1 {
        phase_begin();
        barrier();
    } else {
        barrier();
        phase_begin();
    }
    let t0 = rdtsc();
    for round in 0..count {
        if me == 0 {
            let start = rdtsc();
            if !ping(&mut w, &mut s, round) || !await_message(&mut w, &mut s, &mut r, peer, round) {
                break;
            }
            w.per_message(rdtsc().wrapping_sub(start));
        } else {
            if !await_message(&mut w, &mut s, &mut r, peer, round) || !ping(&mut w, &mut s, round) {
                break;
            }
        }
    }
    s.finish(&mut w.ipc);
    let t = rdtsc().wrapping_sub(t0);
    phase_end();
    let received = r.received();
    barrier();
    let extra = r.drain_extra(&mut w.ipc);
    if extra != 0 {
        println!("pingpong: {extra} entries arrived after the last expected message");
    }
    let st = s.stats();
    s.record(count);
    r.record();
    w.report(t, st.delivered, received, st.retries);
    0
}
