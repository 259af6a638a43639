//! What the workloads `stream`, `pingpong` and `fanin` share: their parameters
//! ([`pageflip_abi::probes::ipc_workloads`]), transport, memory, send and receive loops and
//! samples.
//!
//! [`run`] is the entry point: it reads the [`Params`], brings up the run's transport as a
//! [`Link`] and runs a [`Program`] on a [`Workload`] over it. Programs are generic over the
//! link, so each transport gets its own compiled loops and the per-message path of the
//! remap/copy queues is what it was before the other transports existed.

use core::ptr;

use pageflip_abi::probes::ipc_records::{MEMORY_SIZE, TRANSPORT};
use pageflip_abi::probes::ipc_workloads::{
    PER_MESSAGE_MAX, S_DRAINS, S_HEADER, S_LOOP_TSC, S_NOTIFICATIONS, S_PER_MESSAGE, S_RECEIVED,
    S_RETRIES, S_SENT, S_SUPPRESSED,
};
use pageflip_abi::{
    PAGE_SIZE, TRANSPORT_NONE, TRANSPORT_QUEUES, TRANSPORT_SHMEM, TRANSPORT_VIRTIO,
};

use crate::arena::{zero_pages, Arena};
use crate::check::StreamReceiver;
use crate::ipc::Ipc;
use crate::link::{Link, Notifications, OutOfMemory, Queues, Shmem, Virtio};
use crate::params::Params;
use crate::prefault::prefault;
use crate::results::{fail, pass_with};
use crate::tsc::Deadline;
use crate::{boot_info, sample};

/// Records FAIL `memory-size`: `what` did not fit in free memory.
pub fn out_of_memory(what: &str, pages: u64, arena: &Arena) {
    fail(
        MEMORY_SIZE,
        format_args!(
            "{what} needs {pages} pages of free memory, {} left (of {} MiB)",
            arena.left() / PAGE_SIZE,
            boot_info().mem_size >> 20
        ),
    );
}

/// A workload's body, run by [`run`] over the run's transport.
pub trait Program {
    /// Runs on `w` (parameters read, transport up, `ipc-transport` recorded); returns the
    /// exit code.
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64;
}

/// The transports [`run`] can bring up.
enum Transport {
    Queues,
    Virtio,
    Shmem,
}

/// The entry point of the workloads: reads and records the parameters ([`Params::from_boot`]),
/// sets aside the per-message samples, brings up the run's transport (from the boot info's
/// `transport`) as a [`Link`], records PASS `ipc-transport` with its name, and runs `program`
/// on the [`Workload`]. Records a FAIL (`params`, `memory-size` or `ipc-transport`) and
/// returns 1 if one of them fails.
///
/// A boot info with transport [`TRANSPORT_NONE`] and the IPC header's magic set is a
/// remap/copy run of a VMM that does not fill in `transport`.
pub fn run<P: Program>(program: P) -> u64 {
    let Some(params) = Params::from_boot() else {
        return 1;
    };
    let mut arena = Arena::new();
    let pages = (PER_MESSAGE_MAX as u64 * 8).div_ceil(PAGE_SIZE);
    let Some(per_message) = arena.alloc(pages) else {
        out_of_memory("the per-message samples", pages, &arena);
        return 1;
    };
    zero_pages(per_message, pages);
    let transport = match boot_info().transport {
        TRANSPORT_QUEUES | TRANSPORT_NONE => Transport::Queues,
        TRANSPORT_VIRTIO => Transport::Virtio,
        TRANSPORT_SHMEM => Transport::Shmem,
        other => {
            fail(
                TRANSPORT,
                format_args!("unknown transport {other} in the boot info"),
            );
            return 1;
        }
    };
    match transport {
        Transport::Queues => {
            let Some(ipc) = Ipc::init(params.batch, params.wait_timeout_us) else {
                fail(
                    TRANSPORT,
                    if boot_info().transport == TRANSPORT_NONE {
                        "the run has no transport (and the IPC header's magic is not set): \
                         run with transport remap, copy, virtio or shmem"
                    } else {
                        "the boot info says remap-IPC queues, but the IPC header's magic is not set"
                    },
                );
                return 1;
            };
            let link = Queues::new(ipc, &params);
            Workload::new(link, params, arena, per_message).run(program)
        }
        Transport::Virtio => match Virtio::new(&params, &mut arena) {
            Ok(link) => Workload::new(link, params, arena, per_message).run(program),
            Err(e) => {
                fail(TRANSPORT, format_args!("virtio: {e}"));
                1
            }
        },
        Transport::Shmem => {
            let link = Shmem::new(&params);
            Workload::new(link, params, arena, per_message).run(program)
        }
    }
}

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
    fn new(link: L, params: Params, arena: Arena, per_message: u64) -> Workload<L> {
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

    fn run<P: Program>(mut self, program: P) -> u64 {
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

    /// A receiver of `count` messages from each VM in `senders` (a bit mask), the link set
    /// up to receive from them ([`Link::open_receiver`]: remap/copy posts
    /// [`pageflip_abi::ipc::POST_RING_LEN`] landing pages), or FAIL `memory-size`.
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
