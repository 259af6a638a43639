//! The two sides of the one-way workloads `stream` and `fanin`: [`Workload::send_all`] and
//! [`Workload::receive_all`].

use super::Workload;
use crate::check::StreamReceiver;
use crate::link::Link;

/// The one-way workloads' sides.
impl<L: Link> Workload<L> {
    /// The sending side of `stream` and `fanin` ([`Workload::open_sender`] first): meets the
    /// receivers at the start barrier, sends messages 0..count in its measured phase (waiting
    /// out backpressure, then until every message is delivered), meets them again, and
    /// records and reports.
    pub fn send_all(&mut self) {
        let count = self.params.count;
        crate::barrier();
        self.phase_begin();
        let t0 = crate::rdtsc();
        for seq in 0..count {
            if !self.link.send(seq) {
                break;
            }
        }
        self.link.finish();
        let t = crate::rdtsc().wrapping_sub(t0);
        self.phase_end();
        crate::barrier();
        let st = self.link.send_stats();
        self.link.record_sender(count);
        self.report(t, st.delivered, 0, st.retries);
    }

    /// The receiving side of `stream` and `fanin`: begins the measured phase (before the
    /// start barrier, so that every delivery into this VM and its TLB flushes fall inside
    /// it), meets the senders at the barrier, receives until `r` has every expected message
    /// (or the idle timeout), ends the phase, meets them again, checks that nothing more
    /// arrives, and records and reports. `name` prefixes console lines.
    pub fn receive_all(&mut self, r: &mut StreamReceiver, name: &str) {
        self.phase_begin();
        crate::barrier();
        let t0 = crate::rdtsc();
        let mut prev = t0;
        let mut deadline = self.idle_deadline();
        while !r.complete() {
            let Some(m) = self.receive(&deadline) else {
                break;
            };
            let now = crate::rdtsc();
            self.per_message(now.wrapping_sub(prev));
            prev = now;
            self.link.deliver(r, m);
            deadline = self.idle_deadline();
        }
        let t = crate::rdtsc().wrapping_sub(t0);
        self.phase_end();
        let received = r.received();
        crate::barrier();
        let extra = self.drain_extra(r);
        if extra != 0 {
            crate::println!("{name}: {extra} entries arrived after the last expected message");
        }
        r.record();
        self.report(t, 0, received, 0);
    }
}
