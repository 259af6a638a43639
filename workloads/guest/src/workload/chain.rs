//! The middle VMs of `chain`: [`Workload::forward_all`] receives every message from the
//! previous VM, checks its header and forwards it to the next ([`Link::forward`]).

use core::fmt::Write;

use pageflip_abi::probes::ipc_records::FORWARDED;

use super::Workload;
use crate::check::{StreamReceiver, Verdict};
use crate::link::Link;
use crate::results::check;
use crate::text::Text;

/// `chain`'s middle VMs.
impl<L: Link> Workload<L> {
    /// A middle VM of `chain` ([`Workload::open_forwarder`] and a receiver from the previous
    /// VM first, `r` reading only headers): begins the measured phase before the start
    /// barrier (it receives first), meets the others, then until `r` has every expected
    /// message (or the idle timeout): receives one, checks it with `r` and forwards it to the
    /// next VM; waits until every forward was delivered, ends the phase, meets the others
    /// again, checks that nothing more arrives, and records `forwarded` and reports.
    ///
    /// While no message is there it looks after the forwards in flight ([`Link::pump`],
    /// [`Link::push`]): remap/copy post a landing area again only once its forward was seen
    /// delivered, so a VM that only waited would starve its sender of landing areas.
    pub fn forward_all(&mut self, r: &mut StreamReceiver) {
        let count = self.params.count;
        self.phase_begin();
        crate::barrier();
        let t0 = crate::rdtsc();
        let mut deadline = self.idle_deadline();
        let mut lost = 0u64;
        while !r.complete() {
            self.link.pump();
            let Some(m) = self.link.recv() else {
                if deadline.expired() {
                    break;
                }
                self.link.push();
                if !self.link.blocks() {
                    core::hint::spin_loop();
                }
                continue;
            };
            match self.link.check(r, &m) {
                Verdict::Accepted { .. } => {
                    if !self.link.forward(m) {
                        lost += 1;
                        break;
                    }
                }
                // Not one of the stream's messages: not passed on.
                Verdict::Rejected => self.link.release(m),
            }
            deadline = self.idle_deadline();
        }
        let finished = self.link.finish();
        let t = crate::rdtsc().wrapping_sub(t0);
        self.phase_end();
        let received = r.received();
        crate::barrier();
        let extra = self.drain_extra(r);
        let st = self.link.send_stats();
        let mut msg = Text::new();
        let ok = match r.first_failure() {
            Some((name, n, first)) => {
                let _ = write!(msg, "{name}: {n} failures; first: {first}");
                false
            }
            None if !r.complete() || extra != 0 => {
                let _ = write!(
                    msg,
                    "{} of {count} messages received, {extra} more after the last",
                    received
                );
                false
            }
            None if !finished || lost != 0 || st.delivered != count || st.failed != 0 => {
                let _ = write!(
                    msg,
                    "{} of {count} forwards delivered; {} refused for good{}",
                    st.delivered,
                    st.failed,
                    if finished && lost == 0 {
                        ""
                    } else {
                        "; gave up waiting"
                    }
                );
                false
            }
            None => {
                let _ = write!(
                    msg,
                    "{count} messages received (headers checked) and delivered onward"
                );
                true
            }
        };
        check(FORWARDED, ok, msg.as_str());
        self.report(t, st.delivered, received, st.retries);
    }
}
