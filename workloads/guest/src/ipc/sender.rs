//! [`StreamSender`]: sends numbered messages to one VM over the send ring and resends the
//! ones refused with [`IpcStatus::QueueFull`] (backpressure) in order, counting the retries;
//! [`StatusName`] names a descriptor's status.

use core::fmt::{self, Write};

use pageflip_abi::ipc::{Extent, IpcStatus, SendDesc, FLAG_URGENT, MAX_MSG_PAGES, SEND_RING_LEN};
use pageflip_abi::PAGE_SIZE;

use super::{BufferLayout, Ipc, SendSlot};
use crate::arena::is_free_range;
use crate::check::SendStats;
use crate::payload::{fill_payload, Coverage, Extents};
use crate::results::check;
use crate::text::Text;
use crate::tsc::{spin_ticks, ticks_per_us, Deadline};

/// Most message buffers of a [`StreamSender`] (one per send-ring slot): at most this many
/// messages are in flight; [`StreamSender::layout`] says how many a size gets.
pub const SEND_BUFFERS: usize = SEND_RING_LEN as usize;

/// Shortest wait before a refused message is sent again, in microseconds.
const BACKOFF_MIN_US: u64 = 1;
/// Longest wait before a refused message is sent again, in microseconds.
const BACKOFF_MAX_US: u64 = 200;

/// Where a message of a [`StreamSender`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In the send ring (pending or consumed, not yet looked at).
    Placed,
    /// Refused with QueueFull: to be sent again.
    Resend,
    /// Finished: delivered, or refused for good.
    Done,
}

#[derive(Clone, Copy, Debug)]
struct Inflight {
    seq: u64,
    flags: u32,
    buf: u8,
    slot: SendSlot,
    state: State,
}

const NO_INFLIGHT: Inflight = Inflight {
    seq: 0,
    flags: 0,
    buf: 0,
    slot: SendSlot(0),
    state: State::Done,
};

/// Sends a stream of numbered messages of one size from this VM to VM `dst`, each filled
/// with its [`crate::payload::pattern_word`] pattern, in order and without loss: messages refused
/// with [`IpcStatus::QueueFull`] are sent again, in order and with one flush, after a short
/// wait that grows while they keep being refused, before any later message is placed.
///
/// The sender owns the message buffers of [`StreamSender::layout`] (up to [`SEND_BUFFERS`],
/// within 32 MiB); a buffer is reused once its message was delivered (with remap the
/// sender's pages are fresh zeroed pages by then). A message is sent as its buffer's
/// [`Extents::contiguous`]: one extent, or runs of 512 pages.
#[derive(Debug)]
pub struct StreamSender {
    src: u32,
    dst: u32,
    len: u32,
    layout: BufferLayout,
    buf_base: u64,
    coverage: Coverage,
    urgent_every: u64,
    idle_ms: u64,
    queue: [Inflight; SEND_BUFFERS],
    head: usize,
    count: usize,
    /// Bit i set: buffer i is free (only the layout's `count` bits are ever set).
    free: u64,
    backoff_us: u64,
    stats: SendStats,
    /// A forwarder ([`StreamSender::forwarder`]): buffer i is `forwarded[i]`, landing extents
    /// of this VM posted again once their message is finished.
    forwarding: bool,
    forwarded: [Extents; SEND_BUFFERS],
}

impl StreamSender {
    /// The message buffers of a sender of `len`-byte messages: allocate
    /// [`BufferLayout::total_pages`] pages aligned to [`BufferLayout::align`].
    pub const fn layout(len: u64) -> BufferLayout {
        BufferLayout::new(len, SEND_BUFFERS as u64)
    }

    /// A sender from this VM (`src`) to `dst` of `len`-byte messages (1 to 8 MiB), its
    /// buffers at `buf_base` (as [`StreamSender::layout`] says, in free memory). Every
    /// `urgent_every`-th message (sequence numbers `urgent_every - 1`, `2 * urgent_every - 1`,
    /// ...) is flagged [`FLAG_URGENT`] (0: none); the sender gives up after `idle_ms`
    /// milliseconds without a delivery.
    pub fn new(
        src: u32,
        dst: u32,
        len: u32,
        buf_base: u64,
        coverage: Coverage,
        urgent_every: u64,
        idle_ms: u64,
    ) -> StreamSender {
        let layout = Self::layout(u64::from(len));
        assert!(
            len > 0 && layout.pages <= u64::from(MAX_MSG_PAGES),
            "a message has 1 to {} bytes, not {len}",
            u64::from(MAX_MSG_PAGES) * PAGE_SIZE
        );
        assert!(
            buf_base % layout.align == 0 && is_free_range(buf_base, layout.total_pages()),
            "{buf_base:#x} + {} pages is not free memory aligned to {:#x}",
            layout.total_pages(),
            layout.align
        );
        StreamSender {
            src,
            dst,
            len,
            layout,
            buf_base,
            coverage,
            urgent_every,
            idle_ms,
            queue: [NO_INFLIGHT; SEND_BUFFERS],
            head: 0,
            count: 0,
            free: u64::MAX >> (64 - layout.count),
            backoff_us: BACKOFF_MIN_US,
            stats: SendStats::default(),
            forwarding: false,
            forwarded: [Extents::empty(); SEND_BUFFERS],
        }
    }

    /// A sender from this VM (`src`) to `dst` of `len`-byte messages that owns no buffers: it
    /// sends received messages on as they are ([`StreamSender::forward`]: their landing
    /// extents, zero-copy in the guest), up to [`SEND_BUFFERS`] in flight, and posts each
    /// message's extents again once it is finished (delivered, or refused for good). Urgent
    /// flags and the idle timeout as in [`StreamSender::new`].
    pub fn forwarder(
        src: u32,
        dst: u32,
        len: u32,
        urgent_every: u64,
        idle_ms: u64,
    ) -> StreamSender {
        let mut s = StreamSender::detached();
        s.src = src;
        s.dst = dst;
        s.len = len;
        s.layout.pages = crate::payload::pages_for(u64::from(len));
        s.urgent_every = urgent_every;
        s.idle_ms = idle_ms;
        s.forwarding = true;
        s
    }

    /// A sender that has no buffers and no destination: every message it is asked to send
    /// is empty and addressed to VM `u32::MAX`, so the VMM refuses it for good (and
    /// [`StreamSender::record`] reports it). It stands in where a VM does not send (see
    /// [`crate::link::queues::Queues`]), so that sending needs no check for a sender.
    pub const fn detached() -> StreamSender {
        StreamSender {
            src: 0,
            dst: u32::MAX,
            len: 0,
            layout: BufferLayout {
                pages: 0,
                align: PAGE_SIZE,
                stride: 0,
                count: SEND_BUFFERS as u64,
            },
            buf_base: 0,
            coverage: Coverage::Full,
            urgent_every: 0,
            idle_ms: 0,
            queue: [NO_INFLIGHT; SEND_BUFFERS],
            head: 0,
            count: 0,
            free: u64::MAX,
            backoff_us: BACKOFF_MIN_US,
            stats: SendStats {
                started: 0,
                delivered: 0,
                retries: 0,
                queue_full: 0,
                failed: 0,
                reordered: 0,
                first_failure: None,
                timed_out: false,
            },
            forwarding: false,
            forwarded: [Extents::empty(); SEND_BUFFERS],
        }
    }

    /// What the sender did so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Messages started and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.count
    }

    /// The extents of buffer `buf`.
    fn extents(&self, buf: u8) -> Extents {
        if self.forwarding {
            return self.forwarded[usize::from(buf)];
        }
        Extents::contiguous(
            self.layout.area(self.buf_base, u64::from(buf)),
            self.layout.pages,
        )
    }

    fn entry(&mut self, i: usize) -> &mut Inflight {
        &mut self.queue[(self.head + i) % SEND_BUFFERS]
    }

    /// Frees buffer `buf` of a finished message; a forwarder posts its landing extents
    /// again (remap: fresh zeroed pages by now; copy or refused: the message's, discarded).
    fn release(&mut self, ipc: &mut Ipc, buf: u8) {
        self.free |= 1 << buf;
        if self.forwarding {
            ipc.repost_extents(self.forwarded[usize::from(buf)].as_slice());
        }
    }

    fn has_resend(&self) -> bool {
        (0..self.count).any(|i| self.queue[(self.head + i) % SEND_BUFFERS].state == State::Resend)
    }

    /// Looks at the consumed descriptors: delivered messages free their buffer, refused
    /// ones are marked for resending.
    fn reap(&mut self, ipc: &mut Ipc) {
        let mut earlier_refused = false;
        for i in 0..self.count {
            let e = *self.entry(i);
            match e.state {
                State::Done => {}
                State::Resend => earlier_refused = true,
                State::Placed => {
                    if !ipc.consumed(e.slot) {
                        continue;
                    }
                    let raw = ipc.status_raw(e.slot);
                    if raw == IpcStatus::Ok as u32 {
                        self.entry(i).state = State::Done;
                        self.release(ipc, e.buf);
                        self.stats.delivered += 1;
                        self.backoff_us = BACKOFF_MIN_US;
                        if earlier_refused {
                            self.stats.reordered += 1;
                        }
                    } else if raw == IpcStatus::QueueFull as u32 {
                        self.entry(i).state = State::Resend;
                        self.stats.queue_full += 1;
                        earlier_refused = true;
                    } else {
                        self.entry(i).state = State::Done;
                        self.release(ipc, e.buf);
                        self.stats.failed += 1;
                        if self.stats.first_failure.is_none() {
                            self.stats.first_failure = Some((e.seq, raw));
                        }
                    }
                }
            }
        }
        while self.count > 0 && self.queue[self.head].state == State::Done {
            self.head = (self.head + 1) % SEND_BUFFERS;
            self.count -= 1;
        }
    }

    /// Looks at the consumed descriptors; if messages were refused, waits a little (longer
    /// after each refusal, up to 200 us) and places them again, in order, with one flush:
    /// all of them, or, while the receiver keeps refusing, only the oldest (a probe). Makes
    /// exits only to resend.
    pub fn pump(&mut self, ipc: &mut Ipc) {
        self.reap(ipc);
        if !self.has_resend() {
            return;
        }
        if ipc.pending() != 0 {
            // Defensive (new messages are not placed while one is refused): drain the ring
            // so that nothing is left behind the messages placed again.
            ipc.flush();
            self.reap(ipc);
        }
        spin_ticks(self.backoff_us * ticks_per_us());
        // After a round that was refused again, only the oldest refused message probes the
        // receiver; once one gets through (backoff reset), all are sent again.
        let probe = self.backoff_us > BACKOFF_MIN_US;
        for i in 0..self.count {
            let e = *self.entry(i);
            if e.state != State::Resend {
                continue;
            }
            let extents = self.extents(e.buf);
            let desc = SendDesc {
                seq: e.seq,
                dst: self.dst,
                flags: e.flags,
                len: self.len,
                nextents: extents.as_slice().len() as u32,
                status: IpcStatus::Pending as u32,
                reserved: 0,
                extents: extents.slots(),
            };
            let slot = ipc.place(&desc);
            self.stats.retries += 1;
            let entry = self.entry(i);
            entry.slot = slot;
            entry.state = State::Placed;
            if probe {
                break;
            }
        }
        ipc.flush();
        let queue_full_before = self.stats.queue_full;
        self.reap(ipc);
        if self.stats.queue_full != queue_full_before {
            self.backoff_us = (self.backoff_us * 2).min(BACKOFF_MAX_US);
        }
    }

    /// Sends message `seq`: waits (pumping) until no refused message is left and a buffer
    /// is free, fills the buffer with the message's pattern and sends it ([`Ipc::send`]:
    /// immediate or deferred as the batch size says). `false` if it gave up (idle timeout).
    pub fn send(&mut self, ipc: &mut Ipc, seq: u64) -> bool {
        let Some(buf) = self.take_buffer(ipc) else {
            return false;
        };
        let extents = self.extents(buf);
        fill_payload(
            extents.as_slice(),
            u64::from(self.len),
            self.src,
            seq,
            self.coverage,
        );
        self.place_new(ipc, buf, seq, &extents);
        true
    }

    /// A forwarder's send ([`StreamSender::forwarder`]): waits as [`StreamSender::send`]
    /// does, then sends message `seq` as the landing `extents` it arrived in, untouched.
    /// `false` if it gave up (idle timeout; the extents are posted again).
    pub fn forward(&mut self, ipc: &mut Ipc, seq: u64, extents: &[Extent]) -> bool {
        assert!(self.forwarding, "forward needs a StreamSender::forwarder");
        let Some(buf) = self.take_buffer(ipc) else {
            ipc.repost_extents(extents);
            return false;
        };
        let extents = Extents::from_slice(extents);
        self.forwarded[usize::from(buf)] = extents;
        self.place_new(ipc, buf, seq, &extents);
        true
    }

    /// Waits (pumping) until no refused message is left and a buffer is free, and takes the
    /// buffer. `None` if it gave up (idle timeout).
    fn take_buffer(&mut self, ipc: &mut Ipc) -> Option<u8> {
        let mut deadline = Deadline::after_ms(self.idle_ms);
        let mut delivered = self.stats.delivered;
        loop {
            self.pump(ipc);
            if !self.has_resend() && (self.count as u64) < self.layout.count {
                break;
            }
            if !self.has_resend() && ipc.pending() != 0 {
                // Every buffer is in the ring: drain it.
                ipc.flush();
            }
            if self.stats.delivered != delivered {
                delivered = self.stats.delivered;
                deadline = Deadline::after_ms(self.idle_ms);
            } else if deadline.expired() {
                self.stats.timed_out = true;
                return None;
            }
        }
        let buf = self.free.trailing_zeros() as u8;
        self.free &= !(1 << buf);
        Some(buf)
    }

    /// Sends message `seq` in buffer `buf` (at `extents`), urgent if its turn, and keeps it
    /// in flight.
    fn place_new(&mut self, ipc: &mut Ipc, buf: u8, seq: u64, extents: &Extents) {
        let flags = if self.urgent_every != 0 && (seq + 1) % self.urgent_every == 0 {
            FLAG_URGENT
        } else {
            0
        };
        let slot = ipc.send(self.dst, extents.as_slice(), self.len, seq, flags);
        let i = self.count;
        *self.entry(i) = Inflight {
            seq,
            flags,
            buf,
            slot,
            state: State::Placed,
        };
        self.count += 1;
        self.stats.started += 1;
    }

    /// Flushes the ring and resends refused messages until every message started has been
    /// delivered (or refused for good). `false` if it gave up (idle timeout).
    pub fn finish(&mut self, ipc: &mut Ipc) -> bool {
        let mut deadline = Deadline::after_ms(self.idle_ms);
        let mut delivered = self.stats.delivered;
        loop {
            self.pump(ipc);
            if self.count == 0 {
                return true;
            }
            if ipc.pending() != 0 {
                ipc.flush();
                continue;
            }
            if self.stats.delivered != delivered {
                delivered = self.stats.delivered;
                deadline = Deadline::after_ms(self.idle_ms);
            } else if deadline.expired() {
                self.stats.timed_out = true;
                return false;
            }
        }
    }

    /// Records `all-delivered`: every one of the `expected` messages was delivered (retries
    /// after QueueFull allowed and reported).
    pub fn record(&self, expected: u64) -> bool {
        let s = &self.stats;
        let ok = s.delivered == expected
            && s.started == expected
            && s.failed == 0
            && !s.timed_out
            && s.reordered == 0;
        let mut msg = Text::new();
        let _ = write!(
            msg,
            "{} of {expected} delivered to VM {}; {} queue_full, {} retries",
            s.delivered, self.dst, s.queue_full, s.retries
        );
        if s.started != expected {
            let _ = write!(msg, "; {} started", s.started);
        }
        if s.failed != 0 {
            let _ = write!(msg, "; {} refused for good", s.failed);
            if let Some((seq, raw)) = s.first_failure {
                let _ = write!(msg, " (first: seq {seq}, status {})", StatusName(raw));
            }
        }
        if s.reordered != 0 {
            let _ = write!(
                msg,
                "; {} delivered while an earlier message was refused (out of order)",
                s.reordered
            );
        }
        if s.timed_out {
            let _ = write!(
                msg,
                "; gave up after {} ms without a delivery",
                self.idle_ms
            );
        }
        check(
            crate::abi::probes::ipc_records::ALL_DELIVERED,
            ok,
            msg.as_str(),
        )
    }
}

/// An [`IpcStatus`] value by name, or the number.
pub struct StatusName(pub u32);

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match IpcStatus::from_u32(self.0) {
            Some(s) => f.write_str(s.name()),
            None => write!(f, "unknown status {}", self.0),
        }
    }
}
