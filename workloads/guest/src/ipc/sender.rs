//! Streams of messages: [`StreamSender`] sends numbered messages to one VM and resends the
//! ones refused with [`IpcStatus::QueueFull`] (backpressure) in order, counting the retries;
//! [`StreamReceiver`] checks every message it receives and reports named checks.

use core::fmt::{self, Write};

use pageflip_abi::ipc::{
    IpcStatus, RecvEntry, SendDesc, FLAG_URGENT, MAX_MSG_PAGES, SEND_RING_LEN,
};
use pageflip_abi::{MAX_VMS, PAGE_SIZE};

use super::{Ipc, Landing, SendSlot};
use crate::arena::{is_free_page, is_payload_page, zero_pages};
use crate::params::RecvMode;
use crate::payload::{fill_payload, pages_for, verify_payload, Coverage};
use crate::results::check;
use crate::text::SliceWriter;
use crate::tsc::{spin_ticks, ticks_per_us, Deadline};

/// Message buffers of a [`StreamSender`]: at most this many messages are in flight.
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

/// What a [`StreamSender`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Messages started ([`StreamSender::send`] calls that placed one).
    pub started: u64,
    /// Messages delivered (status Ok).
    pub delivered: u64,
    /// Sends of a message after it was refused with QueueFull.
    pub retries: u64,
    /// Descriptors refused with QueueFull.
    pub queue_full: u64,
    /// Messages refused with another status (lost for good).
    pub failed: u64,
    /// Messages delivered while an earlier message of the stream was still refused: the VMM
    /// delivered them out of order.
    pub reordered: u64,
    /// The first message refused for good: (sequence number, raw status).
    pub first_failure: Option<(u64, u32)>,
    /// Whether the sender gave up waiting (no message delivered for the idle timeout).
    pub timed_out: bool,
}

/// Sends a stream of numbered messages of one size from this VM to VM `dst`, each filled
/// with its [`crate::payload::pattern_word`] pattern, in order and without loss: messages refused
/// with [`IpcStatus::QueueFull`] are sent again, in order and with one flush, after a short
/// wait that grows while they keep being refused, before any later message is placed.
///
/// The sender owns [`SEND_BUFFERS`] message buffers of `pages_for(len)` pages each; a
/// buffer is reused once its message was delivered (with remap the sender's page is a fresh
/// zeroed page by then).
#[derive(Debug)]
pub struct StreamSender {
    src: u32,
    dst: u32,
    len: u32,
    npages: usize,
    buf_base: u64,
    coverage: Coverage,
    urgent_every: u64,
    idle_ms: u64,
    queue: [Inflight; SEND_BUFFERS],
    head: usize,
    count: usize,
    free: u64,
    backoff_us: u64,
    stats: SendStats,
}

impl StreamSender {
    /// Pages of buffer memory a sender of `len`-byte messages needs.
    pub const fn buffer_pages(len: u64) -> u64 {
        SEND_BUFFERS as u64 * pages_for(len)
    }

    /// A sender from this VM (`src`) to `dst` of `len`-byte messages (1 to 64 KiB), its
    /// buffers at `buf_base` ([`StreamSender::buffer_pages`] pages of free memory). Every
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
        let npages = pages_for(u64::from(len)) as usize;
        assert!(
            len > 0 && npages <= MAX_MSG_PAGES,
            "a message has 1 to {} bytes, not {len}",
            MAX_MSG_PAGES as u64 * PAGE_SIZE
        );
        for i in 0..Self::buffer_pages(u64::from(len)) {
            let page = buf_base + i * PAGE_SIZE;
            assert!(is_free_page(page), "{page:#x} is not a page of free memory");
        }
        StreamSender {
            src,
            dst,
            len,
            npages,
            buf_base,
            coverage,
            urgent_every,
            idle_ms,
            queue: [NO_INFLIGHT; SEND_BUFFERS],
            head: 0,
            count: 0,
            free: u64::MAX,
            backoff_us: BACKOFF_MIN_US,
            stats: SendStats::default(),
        }
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
            npages: 0,
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

    /// The pages of buffer `buf`.
    fn pages(&self, buf: u8) -> [u64; MAX_MSG_PAGES] {
        let mut pages = [0; MAX_MSG_PAGES];
        let base = self.buf_base + u64::from(buf) * (self.npages as u64) * PAGE_SIZE;
        for (i, p) in pages[..self.npages].iter_mut().enumerate() {
            *p = base + i as u64 * PAGE_SIZE;
        }
        pages
    }

    fn entry(&mut self, i: usize) -> &mut Inflight {
        &mut self.queue[(self.head + i) % SEND_BUFFERS]
    }

    fn has_resend(&self) -> bool {
        (0..self.count).any(|i| self.queue[(self.head + i) % SEND_BUFFERS].state == State::Resend)
    }

    /// Looks at the consumed descriptors: delivered messages free their buffer, refused
    /// ones are marked for resending.
    fn reap(&mut self, ipc: &Ipc) {
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
                        self.free |= 1 << e.buf;
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
                        self.free |= 1 << e.buf;
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
            let pages = self.pages(e.buf);
            let mut desc = SendDesc {
                seq: e.seq,
                dst: self.dst,
                flags: e.flags,
                len: self.len,
                npages: self.npages as u32,
                status: IpcStatus::Pending as u32,
                reserved: 0,
                pages,
            };
            desc.pages[self.npages..].fill(0);
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
        let mut deadline = Deadline::after_ms(self.idle_ms);
        let mut delivered = self.stats.delivered;
        loop {
            self.pump(ipc);
            if !self.has_resend() && self.count < SEND_BUFFERS {
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
                return false;
            }
        }
        let buf = self.free.trailing_zeros() as u8;
        self.free &= !(1 << buf);
        let pages = self.pages(buf);
        fill_payload(
            &pages[..self.npages],
            u64::from(self.len),
            self.src,
            seq,
            self.coverage,
        );
        let flags = if self.urgent_every != 0 && (seq + 1) % self.urgent_every == 0 {
            FLAG_URGENT
        } else {
            0
        };
        let slot = ipc.send(self.dst, &pages[..self.npages], self.len, seq, flags);
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
        true
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

/// A short text built in place (for record messages).
pub struct Text {
    buf: [u8; 200],
    len: usize,
}

impl Text {
    /// An empty text.
    pub const fn new() -> Text {
        Text {
            buf: [0; 200],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever appended (SliceWriter cuts at boundaries).
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut w = SliceWriter::new(&mut self.buf[self.len..]);
        let _ = w.write_str(s);
        self.len += w.len();
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One named check over many messages: how many failed, and what the first failure was.
#[derive(Clone, Copy)]
pub struct Tally {
    failures: u64,
    first: [u8; 160],
    first_len: usize,
}

impl Tally {
    /// No failures yet.
    pub const fn new() -> Tally {
        Tally {
            failures: 0,
            first: [0; 160],
            first_len: 0,
        }
    }

    /// Counts a failure; the first one's description is kept.
    pub fn fail(&mut self, what: fmt::Arguments<'_>) {
        if self.failures == 0 {
            let mut w = SliceWriter::new(&mut self.first);
            let _ = w.write_fmt(what);
            self.first_len = w.len();
        }
        self.failures += 1;
    }

    /// Failures so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The first failure's description.
    pub fn first(&self) -> &str {
        core::str::from_utf8(&self.first[..self.first_len]).unwrap_or("")
    }

    /// Records `name`: PASS with `pass` if nothing failed, else FAIL with the count and the
    /// first failure. Returns whether it passed.
    pub fn record(&self, name: &str, pass: fmt::Arguments<'_>) -> bool {
        if self.failures == 0 {
            check(name, true, pass)
        } else {
            check(
                name,
                false,
                format_args!("{} failures; first: {}", self.failures, self.first()),
            )
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

/// What [`StreamReceiver::handle`] made of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new message from a legitimate sender with a sequence number in range (its payload
    /// and order may still have failed a check).
    Accepted {
        /// The source VM.
        src: u32,
        /// Its sequence number.
        seq: u64,
    },
    /// Not counted: an unknown source, a sequence number out of range, or a duplicate.
    Rejected,
}

/// Checks the messages of one or more streams: `count` messages of `len` bytes from each
/// VM in `senders`, to this VM, each with its pattern. Keeps, per check, the number of
/// failures and the first:
///
/// - `delivery-integrity`: length, page count, pages inside free memory, every byte of the
///   payload ([`verify_payload`]);
/// - `fifo-per-sender`: each sender's sequence numbers arrive increasing;
/// - `gap-free`: each arrives as the previous one + 1, from 0;
/// - `no-duplicates`: no (source, sequence number) twice, nothing after the last one;
/// - `ids`: the source is a legitimate sender, the destination this VM;
/// - `landing-pages`: the message is where the transport must put it (remap/copy: the pages
///   are the next pages this VM posted, in order; the transport decides, see
///   [`StreamReceiver::handle_entry`]);
/// - `count`: every expected message arrived.
///
/// [`StreamReceiver::handle`] posts received pages again; other transports release their
/// messages themselves ([`crate::link::Link::deliver`]).
pub struct StreamReceiver {
    me: u32,
    senders: u32,
    count: u64,
    len: u32,
    coverage: Coverage,
    seen_base: u64,
    next: [u64; MAX_VMS],
    last: [u64; MAX_VMS],
    got: [u64; MAX_VMS],
    received: u64,
    integrity: Tally,
    fifo: Tally,
    gap: Tally,
    dup: Tally,
    ids: Tally,
    landing: Tally,
    landing_pass: &'static str,
    landing_want: &'static str,
}

/// No message seen yet (in `StreamReceiver::last`).
const NONE: u64 = u64::MAX;

impl StreamReceiver {
    /// Pages of free memory the receiver's seen-bitmap needs: one bit per (VM, sequence
    /// number).
    pub const fn bitmap_pages(count: u64) -> u64 {
        (MAX_VMS as u64 * count).div_ceil(8).div_ceil(PAGE_SIZE)
    }

    /// A receiver of `count` messages of `len` bytes from each VM whose bit is set in
    /// `senders`, checked as `coverage` says, with its bitmap at `bitmap_base`
    /// ([`StreamReceiver::bitmap_pages`] pages of free memory, zeroed here).
    pub fn new(
        senders: u32,
        count: u64,
        len: u32,
        coverage: Coverage,
        bitmap_base: u64,
    ) -> StreamReceiver {
        zero_pages(bitmap_base, Self::bitmap_pages(count));
        StreamReceiver {
            me: crate::boot_info().vm_id,
            senders,
            count,
            len,
            coverage,
            seen_base: bitmap_base,
            next: [0; MAX_VMS],
            last: [NONE; MAX_VMS],
            got: [0; MAX_VMS],
            received: 0,
            integrity: Tally::new(),
            fifo: Tally::new(),
            gap: Tally::new(),
            dup: Tally::new(),
            ids: Tally::new(),
            landing: Tally::new(),
            landing_pass: "every entry landed in the next posted pages",
            landing_want: "posted",
        }
    }

    /// Describes the `landing-pages` check of another transport than remap/copy: `pass` is
    /// the PASS message, `want` names the expected GPA in a failure ("posted" by default).
    pub fn set_landing_text(&mut self, pass: &'static str, want: &'static str) {
        self.landing_pass = pass;
        self.landing_want = want;
    }

    /// Entries handled so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages accepted from VM `src`.
    pub fn accepted_from(&self, src: u32) -> u64 {
        self.got.get(src as usize).copied().unwrap_or(0)
    }

    /// Whether every expected message has been accepted.
    pub fn complete(&self) -> bool {
        (0..MAX_VMS as u32)
            .filter(|&id| self.senders & (1 << id) != 0)
            .all(|id| self.got[id as usize] >= self.count)
    }

    /// Flips the seen-bit of (`src`, `seq`); returns whether it was set before.
    fn seen(&mut self, src: u32, seq: u64) -> bool {
        let bit = u64::from(src) * self.count + seq;
        let p = (self.seen_base + bit / 8) as *mut u8;
        let mask = 1u8 << (bit % 8);
        // SAFETY: the bitmap lies in free memory set aside for it (bitmap_pages cover
        // MAX_VMS * count bits; src < MAX_VMS and seq < count were checked by the caller).
        unsafe {
            let old = core::ptr::read_volatile(p);
            core::ptr::write_volatile(p, old | mask);
            old & mask != 0
        }
    }

    /// Checks the entry `e` just taken from `ipc`'s receive ring and posts its pages again.
    #[inline]
    pub fn handle(&mut self, ipc: &mut Ipc, e: &RecvEntry) -> Verdict {
        let verdict = self.handle_entry(e, ipc.last_landing());
        ipc.repost(e);
        verdict
    }

    /// Checks a message received over any transport, given as the entry it would be in the
    /// receive ring (its pages: where its payload is now, readable until the caller
    /// releases it), and `landing`: whether the transport found it where it must be, and if
    /// not the first page that is elsewhere and where it should be.
    pub fn handle_entry(&mut self, e: &RecvEntry, landing: Landing) -> Verdict {
        self.received += 1;
        if !landing.ok {
            self.landing.fail(format_args!(
                "src {} seq {}: page {} at {:#x}, {} {:#x}",
                e.src, e.seq, landing.index, landing.got, self.landing_want, landing.posted
            ));
        }
        self.check(e)
    }

    fn check(&mut self, e: &RecvEntry) -> Verdict {
        let (src, seq) = (e.src, e.seq);
        let legit = (src as usize) < MAX_VMS && self.senders & (1 << src) != 0;
        if !legit || e.dst != self.me {
            self.ids.fail(format_args!(
                "seq {seq}: src {src}, dst {} (want a sender in {:#x}, dst {})",
                e.dst, self.senders, self.me
            ));
        }
        // The payload.
        let npages = pages_for(u64::from(self.len));
        let pages_ok = (e.npages as usize) <= MAX_MSG_PAGES
            && e.pages[..e.npages as usize]
                .iter()
                .all(|&p| is_payload_page(p));
        if e.len != self.len || u64::from(e.npages) != npages {
            self.integrity.fail(format_args!(
                "src {src} seq {seq}: len {} in {} pages (want {} in {npages})",
                e.len, e.npages, self.len
            ));
        } else if !pages_ok {
            self.integrity.fail(format_args!(
                "src {src} seq {seq}: a page is outside free memory: {:#x?}",
                &e.pages[..e.npages as usize]
            ));
        } else if let Err(m) = verify_payload(
            &e.pages[..e.npages as usize],
            u64::from(e.len),
            src,
            seq,
            self.coverage,
        ) {
            self.integrity.fail(format_args!(
                "src {src} seq {seq}: byte {} differs: word {:#018x}, want {:#018x}",
                m.offset, m.got, m.want
            ));
        }
        if !legit {
            return Verdict::Rejected;
        }
        let s = src as usize;
        if seq >= self.count {
            if self.got[s] >= self.count {
                self.dup.fail(format_args!(
                    "src {src}: seq {seq} after all {} messages",
                    self.count
                ));
            } else {
                self.gap.fail(format_args!(
                    "src {src}: seq {seq} out of range (0..{})",
                    self.count
                ));
            }
            return Verdict::Rejected;
        }
        if self.seen(src, seq) {
            self.dup.fail(format_args!("src {src}: seq {seq} twice"));
            return Verdict::Rejected;
        }
        if self.last[s] != NONE && seq < self.last[s] {
            self.fifo.fail(format_args!(
                "src {src}: seq {seq} after seq {}",
                self.last[s]
            ));
        }
        if seq != self.next[s] {
            self.gap.fail(format_args!(
                "src {src}: seq {seq} where {} was due",
                self.next[s]
            ));
        }
        if self.last[s] == NONE || seq > self.last[s] {
            self.last[s] = seq;
        }
        self.next[s] = seq + 1;
        self.got[s] += 1;
        Verdict::Accepted { src, seq }
    }

    /// Takes every entry still queued (call it once the senders have finished) and checks
    /// it like any other: after every expected message, each one is a duplicate or out of
    /// range. Returns how many entries there were.
    pub fn drain_extra(&mut self, ipc: &mut Ipc) -> u64 {
        let mut n = 0;
        while let Some(e) = ipc.recv_poll() {
            n += 1;
            self.handle(ipc, &e);
        }
        n
    }

    /// Records the checks (see the type's documentation).
    pub fn record(&self) -> bool {
        let nsenders = self.senders.count_ones();
        let expected = self.count * u64::from(nsenders);
        let total: u64 = self.got.iter().sum();
        let mut ok = true;
        ok &= self.integrity.record(
            crate::abi::probes::ipc_records::DELIVERY_INTEGRITY,
            format_args!(
                "{} messages of {} bytes, {}",
                self.received,
                self.len,
                match self.coverage {
                    Coverage::Full => "every byte checked",
                    Coverage::Light => "first word of each page and the last word checked",
                }
            ),
        );
        ok &= self.fifo.record(
            crate::abi::probes::ipc_records::FIFO_PER_SENDER,
            format_args!("{nsenders} senders"),
        );
        ok &= self.gap.record(
            crate::abi::probes::ipc_records::GAP_FREE,
            format_args!("{nsenders} senders, seq 0..{} each", self.count),
        );
        ok &= self.dup.record(
            crate::abi::probes::ipc_records::NO_DUPLICATES,
            format_args!("{} entries, none twice, none after the end", self.received),
        );
        ok &= self.ids.record(
            crate::abi::probes::ipc_records::IDS,
            format_args!("senders {:#x}, dst {}", self.senders, self.me),
        );
        ok &= self.landing.record(
            crate::abi::probes::ipc_records::LANDING_PAGES,
            format_args!("{}", self.landing_pass),
        );
        let mut missing = Text::new();
        for id in 0..MAX_VMS {
            if self.senders & (1 << id) != 0 && self.got[id] != self.count {
                let _ = write!(missing, " VM{id}: {}/{}", self.got[id], self.count);
            }
        }
        ok &= check(
            crate::abi::probes::ipc_records::COUNT,
            total == expected && missing.as_str().is_empty(),
            format_args!(
                "{total} of {expected} messages ({} per sender){}",
                self.count, missing
            ),
        );
        ok
    }
}

/// The next entry, waiting as `mode` says, or `None` once `deadline` has passed.
pub fn receive(ipc: &mut Ipc, mode: RecvMode, deadline: &Deadline) -> Option<RecvEntry> {
    loop {
        let e = match mode {
            RecvMode::Poll => ipc.recv_poll(),
            RecvMode::Block => ipc.recv_wait(),
        };
        if e.is_some() {
            return e;
        }
        if deadline.expired() {
            return None;
        }
        if mode == RecvMode::Poll {
            core::hint::spin_loop();
        }
    }
}
