//! [`Workload`]: one VM of a workload, its link, parameters, free memory, measured phase and
//! per-message samples.

use core::ptr;

use pageflip_abi::probes::ipc_records::TRANSPORT;
use pageflip_abi::probes::ipc_workloads::{
    PER_MESSAGE_MAX, S_DRAINS, S_HEADER, S_LOOP_TSC, S_NOTIFICATIONS, S_PER_MESSAGE, S_RECEIVED,
    S_RETRIES, S_SENT, S_SUPPRESSED,
};

use super::{out_of_memory, Program};
use crate::arena::Arena;
use crate::check::StreamReceiver;
use crate::link::{Link, Notifications, OutOfMemory};
use crate::params::Params;
use crate::prefault::prefault;
use crate::results::pass_with;
use crate::sample;
use crate::tsc::Deadline;

/// One VM of a workload: its link, parameters, free memory and per-message samples.
pub struct Workload<L: Link> {
    /// The transport.
    pub link: L,
    /// The parameters.
    pub params: Params,
    arena: Arena,
    per_message: u64,
    per_message_len: usize,
    /// Notifications when the measured phase began.
    phase_notifications: Notifications,
    /// Notifications made in the measured phase.
    notifications: Notifications,
}

impl<L: Link> Workload<L> {
    pub(super) fn new(link: L, params: Params, arena: Arena, per_message: u64) -> Workload<L> {
        Workload {
            link,
            params,
            arena,
            per_message,
            per_message_len: 0,
            phase_notifications: Notifications::default(),
            notifications: Notifications::default(),
        }
    }

    pub(super) fn run<P: Program>(mut self, program: P) -> u64 {
        pass_with(TRANSPORT, L::NAME);
        program.run(&mut self)
    }

    /// Records FAIL `memory-size` for `e`.
    fn out_of_memory(&self, e: OutOfMemory) {
        out_of_memory(e.what, e.pages, &self.arena);
    }

    /// Sets up sending to `dst` ([`Link::open_sender`]); `false` after FAIL `memory-size`.
    pub fn open_sender(&mut self, dst: u32) -> bool {
        match self.link.open_sender(dst, &mut self.arena) {
            Ok(()) => true,
            Err(e) => {
                self.out_of_memory(e);
                false
            }
        }
    }

    /// Sets up forwarding to `dst` ([`Link::open_forwarder`]); `false` after FAIL
    /// `memory-size`.
    pub fn open_forwarder(&mut self, dst: u32) -> bool {
        match self.link.open_forwarder(dst, &mut self.arena) {
            Ok(()) => true,
            Err(e) => {
                self.out_of_memory(e);
                false
            }
        }
    }

    /// A receiver of `count` messages from each VM in `senders` (a bit mask), the link set
    /// up to receive from them ([`Link::open_receiver`]: remap/copy posts up to
    /// [`pageflip_abi::ipc::POST_RING_LEN`] landing areas), or FAIL `memory-size`.
    pub fn receiver(&mut self, senders: u32) -> Option<StreamReceiver> {
        let bitmap = StreamReceiver::bitmap_pages(self.params.count);
        let Some(bitmap_base) = self.arena.alloc(bitmap) else {
            out_of_memory("the receiver's bitmap", bitmap, &self.arena);
            return None;
        };
        if let Err(e) = self.link.open_receiver(senders, &mut self.arena) {
            self.out_of_memory(e);
            return None;
        }
        let mut r = StreamReceiver::new(
            senders,
            self.params.count,
            self.params.size,
            self.params.coverage,
            self.params.touch,
            bitmap_base,
        );
        r.set_landing_text(L::LANDING, L::LANDING_WANT);
        Some(r)
    }

    /// Touches the image, the transport's memory and 64 KiB of stack before the measured
    /// phase.
    pub fn prefault(&mut self) {
        prefault(64 * 1024);
        self.link.prefault();
    }

    /// The next message, waiting as the receive mode says (where the transport can block;
    /// else polling), or `None` after `deadline`.
    #[inline]
    pub fn receive(&mut self, deadline: &Deadline) -> Option<L::Msg> {
        loop {
            let m = self.link.recv();
            if m.is_some() {
                return m;
            }
            if deadline.expired() {
                return None;
            }
            if !self.link.blocks() {
                core::hint::spin_loop();
            }
        }
    }

    /// Takes every message still queued (call it once the senders have finished) and checks
    /// it with `r` like any other: after every expected message, each one is a duplicate or
    /// out of range. Returns how many there were.
    pub fn drain_extra(&mut self, r: &mut StreamReceiver) -> u64 {
        let mut n = 0;
        while let Some(m) = self.link.poll() {
            n += 1;
            self.link.deliver(r, m);
        }
        n
    }

    /// A deadline `idle_ms` from now.
    pub fn idle_deadline(&self) -> Deadline {
        Deadline::after_ms(self.params.idle_ms)
    }

    /// Begins the measured phase ([`crate::phase_begin`]), noting the link's notifications.
    pub fn phase_begin(&mut self) {
        self.phase_notifications = self.link.notifications();
        crate::phase_begin();
    }

    /// Ends the measured phase ([`crate::phase_end`]), keeping the notifications the link
    /// made in it for [`Workload::report`].
    pub fn phase_end(&mut self) {
        self.notifications = self.link.notifications().since(self.phase_notifications);
        crate::phase_end();
    }

    /// Keeps `value` as the next per-message sample (the first [`PER_MESSAGE_MAX`] only).
    #[inline]
    pub fn per_message(&mut self, value: u64) {
        if self.per_message_len < PER_MESSAGE_MAX {
            let p = (self.per_message + 8 * self.per_message_len as u64) as *mut u64;
            // SAFETY: the per-message area is PER_MESSAGE_MAX words of free memory set
            // aside for it (`run`), and the index is below PER_MESSAGE_MAX.
            unsafe { ptr::write_volatile(p, value) };
            self.per_message_len += 1;
        }
    }

    /// Reports the samples: the header ([`S_HEADER`] values) and the per-message samples.
    pub fn report(&self, loop_tsc: u64, sent: u64, received: u64, retries: u64) {
        let mut header = [0u64; S_HEADER];
        header[S_LOOP_TSC] = loop_tsc;
        header[S_SENT] = sent;
        header[S_RECEIVED] = received;
        header[S_RETRIES] = retries;
        header[S_DRAINS] = self.link.drains();
        header[S_PER_MESSAGE] = self.per_message_len as u64;
        header[S_NOTIFICATIONS] = self.notifications.made;
        header[S_SUPPRESSED] = self.notifications.suppressed;
        for v in header {
            sample(v);
        }
        for i in 0..self.per_message_len {
            let p = (self.per_message + 8 * i as u64) as *const u64;
            // SAFETY: as in `per_message`: a word of the per-message area that was written.
            sample(unsafe { ptr::read_volatile(p) });
        }
    }
}
