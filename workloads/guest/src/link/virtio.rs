//! The virtio datagram device as a [`Link`]: an adapter over the driver
//! ([`crate::virtio::DgramDevice`]), which owns the virtqueues, the tx and rx buffers and the
//! notifications. The adapter adds what the workloads need: waiting out a full tx queue with
//! the idle timeout, the sender's accounting, and the `landing-pages` check of received
//! messages.
//!
//! What the adapter assumes of the driver (its API: see [`crate::virtio`]):
//!
//! - [`DgramDevice::init`] takes the driver's memory (tx and rx buffers, rings) from the
//!   arena, and posts its rx buffers;
//! - `DriverStats::tx_completed` counts every tx chain the device returned, with any status,
//!   `tx_errors` those whose status was not ok: a message is delivered iff it completed ok;
//! - an [`RxMsg`]'s `pages[..npages]` hold its payload, page-aligned and contiguous, from the
//!   first page (so the checked entry names them as one extent); `npages` may exceed the
//!   payload's pages (the buffer's size), never fall short of them;
//! - an rx buffer is identified by its descriptor id: the same id is always the same buffer.

use core::fmt::Write;

use pageflip_abi::ipc::{Extent, RecvEntry, MAX_EXTENTS};
use pageflip_abi::probes::ipc_records::{self, TRANSPORT_VIRTIO};
use pageflip_abi::virtio::{TxStatus, HEADER_SIZE};
use pageflip_abi::PAGE_SIZE;

use super::{Link, Notifications, OutOfMemory};
use crate::arena::Arena;
use crate::check::{Landing, SendStats, StreamReceiver, Verdict};
use crate::params::Params;
use crate::payload::{extent, fill_payload, pages_for, Coverage};
use crate::results::check;
use crate::text::Text;
use crate::tsc::Deadline;
use crate::virtio::{DgramDevice, InitError, Options, RxMsg};

/// Descriptor ids whose rx buffer the adapter remembers (a virtqueue has at most 256
/// descriptors).
const IDS: usize = 256;

/// This VM's virtio datagram device.
pub struct Virtio {
    dev: DgramDevice,
    me: u32,
    dst: u32,
    len: u32,
    coverage: Coverage,
    idle_ms: u64,
    started: u64,
    timed_out: bool,
    /// Free tx buffers right after init: all of them.
    tx_buffers: u32,
    /// The memory the driver took from the arena: `[mem_start, mem_end)`.
    mem_start: u64,
    mem_end: u64,
    /// The first payload page of each descriptor id's rx buffer, once seen (0: not yet).
    buffer_of: [u64; IDS],
}

impl Virtio {
    /// Calls `put(device, destination)` until it takes a tx buffer (true), reaping completed
    /// chains between tries; false once nothing completed for the idle timeout.
    fn until_tx(&mut self, mut put: impl FnMut(&mut DgramDevice, u32) -> bool) -> bool {
        let mut deadline: Option<Deadline> = None;
        loop {
            if put(&mut self.dev, self.dst) {
                self.started += 1;
                return true;
            }
            if self.dev.tx_reap() != 0 {
                deadline = None;
            } else {
                let d = *deadline.get_or_insert_with(|| Deadline::after_ms(self.idle_ms));
                if d.expired() {
                    self.timed_out = true;
                    return false;
                }
                core::hint::spin_loop();
            }
        }
    }

    /// Brings the device up for `params` (`EVENT_IDX`, `DEPTH`, messages of `params.size`
    /// bytes), the driver's memory from `arena`.
    pub fn new(params: &Params, arena: &mut Arena) -> Result<Virtio, InitError> {
        let mem_start = arena.position();
        let dev = DgramDevice::init(
            Options {
                event_idx: params.event_idx,
                depth: params.depth,
            },
            arena,
            params.size,
        )?;
        let mem_end = arena.position();
        let tx_buffers = dev.tx_free();
        Ok(Virtio {
            dev,
            me: crate::boot_info().vm_id,
            dst: u32::MAX,
            len: params.size,
            coverage: params.coverage,
            idle_ms: params.idle_ms,
            started: 0,
            timed_out: false,
            tx_buffers,
            mem_start,
            mem_end,
            buffer_of: [0; IDS],
        })
    }

    /// Whether VIRTIO_F_EVENT_IDX was negotiated.
    pub fn event_idx(&self) -> bool {
        self.dev.event_idx()
    }

    /// The message as the entry the receiver checks. Its length is what the header says,
    /// but no more than the device wrote after the header (a shorter used length fails
    /// `delivery-integrity`); its one extent is the payload's pages from the buffer's first
    /// page (contiguous: [`Virtio::landing`] checks that).
    fn entry(m: &RxMsg) -> RecvEntry {
        let h = &m.header;
        let len = h.len.min(m.used_len.saturating_sub(HEADER_SIZE));
        let npages = u64::from(m.npages).min(pages_for(u64::from(len))) as u32;
        let mut extents = [Extent::default(); MAX_EXTENTS];
        extents[0] = extent(m.pages[0], npages);
        RecvEntry {
            seq: h.seq,
            src: h.src,
            dst: h.dst,
            len,
            nextents: 1,
            extents,
        }
    }

    /// Whether the message is in an rx buffer of the driver: its pages lie in the driver's
    /// memory, contiguous, and its descriptor id names the buffer it named before.
    fn landing(&mut self, m: &RxMsg, e: &RecvEntry) -> Landing {
        let first = e.extents[0].gpa;
        let page = |gpa: u64| extent(gpa, 1);
        for (i, &got) in m.pages[..e.extents[0].pages as usize].iter().enumerate() {
            let want = first.wrapping_add(i as u64 * PAGE_SIZE);
            let inside = got % PAGE_SIZE == 0
                && got >= self.mem_start
                && got
                    .checked_add(PAGE_SIZE)
                    .is_some_and(|end| end <= self.mem_end);
            if got != want || !inside {
                return Landing {
                    ok: false,
                    index: i as u32,
                    posted: page(if inside { want } else { self.mem_start }),
                    got: page(got),
                };
            }
        }
        match self.buffer_of.get_mut(usize::from(m.id)) {
            Some(b) if *b == 0 => *b = first,
            Some(b) if *b != first => {
                return Landing {
                    ok: false,
                    index: 0,
                    posted: page(*b),
                    got: page(first),
                }
            }
            Some(_) => {}
            None => {
                return Landing {
                    ok: false,
                    index: 0,
                    posted: page(0),
                    got: page(first),
                }
            }
        }
        Landing::OK
    }
}

impl Link for Virtio {
    const NAME: &'static str = TRANSPORT_VIRTIO;
    const LANDING: &'static str =
        "every message was in an rx buffer of the driver (the same buffer for each id)";
    const LANDING_WANT: &'static str = "expected";

    type Msg = RxMsg;

    /// Needs no memory: the driver's tx buffers were set up with the device.
    fn open_sender(&mut self, dst: u32, _arena: &mut Arena) -> Result<(), OutOfMemory> {
        self.dst = dst;
        Ok(())
    }

    /// Needs no memory: the driver posted its rx buffers with the device.
    fn open_receiver(&mut self, _senders: u32, _arena: &mut Arena) -> Result<(), OutOfMemory> {
        Ok(())
    }

    /// Nothing more: the driver's memory was written when the device was set up.
    fn prefault(&mut self) {}

    /// Waits for a free tx buffer (reaping completed chains), then sends.
    fn send(&mut self, seq: u64) -> bool {
        let (src, len, coverage) = (self.me, self.len, self.coverage);
        self.until_tx(|dev, dst| {
            dev.send(dst, seq, len, 0, |extents| {
                fill_payload(extents, u64::from(len), src, seq, coverage)
            })
        })
    }

    #[inline]
    fn pump(&mut self) {
        self.dev.tx_reap();
    }

    /// Nothing: the driver notifies the device (or leaves it out) as it sends.
    #[inline]
    fn push(&mut self) {}

    /// Reaps tx chains until every message started has completed (every tx buffer is free
    /// again).
    fn finish(&mut self) -> bool {
        let mut deadline = Deadline::after_ms(self.idle_ms);
        loop {
            let reaped = self.dev.tx_reap();
            if self.dev.tx_free() >= self.tx_buffers
                || self.dev.stats().tx_completed >= self.started
            {
                return true;
            }
            if reaped != 0 {
                deadline = Deadline::after_ms(self.idle_ms);
            } else if deadline.expired() {
                self.timed_out = true;
                return false;
            }
            core::hint::spin_loop();
        }
    }

    #[inline]
    fn recv(&mut self) -> Option<RxMsg> {
        self.dev.recv()
    }

    #[inline]
    fn poll(&mut self) -> Option<RxMsg> {
        self.dev.recv()
    }

    #[inline]
    fn blocks(&self) -> bool {
        false
    }

    /// Checks the message in its rx buffer.
    fn check(&mut self, r: &mut StreamReceiver, msg: &RxMsg) -> Verdict {
        let e = Self::entry(msg);
        let landing = self.landing(msg, &e);
        r.handle_entry(&e, landing)
    }

    /// Zero-copy ([`DgramDevice::forward`]): a tx chain over the rx buffer's payload, the
    /// buffer kept until the chain completes (then recycled by the reaping). Waits for a
    /// free tx buffer as [`Link::send`] does.
    fn forward(&mut self, msg: RxMsg) -> bool {
        let len = Self::entry(&msg).len;
        let sent = self.until_tx(|dev, dst| dev.forward(dst, len, &msg));
        if !sent {
            self.dev.recycle(&msg);
        }
        sent
    }

    fn release(&mut self, msg: RxMsg) {
        self.dev.recycle(&msg);
    }

    /// `delivered`: tx chains completed with status ok; `failed`: with another status.
    fn send_stats(&self) -> SendStats {
        let st = self.dev.stats();
        SendStats {
            started: self.started,
            delivered: st.tx_completed.saturating_sub(st.tx_errors),
            failed: st.tx_errors,
            first_failure: st.first_tx_error,
            timed_out: self.timed_out,
            ..SendStats::default()
        }
    }

    fn record_sender(&self, expected: u64) -> bool {
        let s = self.send_stats();
        let ok = s.delivered == expected && s.started == expected && s.failed == 0 && !s.timed_out;
        let mut msg = Text::new();
        let _ = write!(
            msg,
            "{} of {expected} delivered to VM {} (tx status ok); {} started",
            s.delivered, self.dst, s.started
        );
        if s.failed != 0 {
            let _ = write!(msg, "; {} tx errors", s.failed);
            if let Some((seq, raw)) = s.first_failure {
                match TxStatus::from_u32(raw) {
                    Some(st) => {
                        let _ = write!(msg, " (first: seq {seq}, status {})", st.name());
                    }
                    None => {
                        let _ = write!(msg, " (first: seq {seq}, unknown status {raw})");
                    }
                }
            }
        }
        if s.timed_out {
            let _ = write!(msg, "; gave up after {} ms without progress", self.idle_ms);
        }
        check(ipc_records::ALL_DELIVERED, ok, msg.as_str())
    }

    fn drains(&self) -> u64 {
        0
    }

    fn notifications(&self) -> Notifications {
        let st = self.dev.stats();
        Notifications {
            made: st.notifications,
            suppressed: st.suppressed,
        }
    }
}
