//! The shared-memory transport ([`pageflip_abi::shmem`]) as a [`Link`]: the guest side of the
//! single-producer single-consumer rings in the region every VM of the run maps at
//! [`SHMEM_GPA`](pageflip_abi::shmem::SHMEM_GPA). No exits: both sides poll.
//!
//! This VM produces into the ring (me, dst) and consumes from the rings (src, me) of its
//! senders, exactly as the ABI says:
//!
//! - producer: waits while `head - tail == RING_SLOTS`; writes the payload into slot
//!   `head % RING_SLOTS` and its [`SlotHeader`]; release fence; `head += 1`;
//! - consumer: reads `head`; acquire fence; reads the header and the payload; release fence;
//!   `tail += 1`.
//!
//! Each side keeps its own index in a local copy (it is the only writer) and reads the other
//! side's with volatile loads; every access to the region is volatile, so the compiler neither
//! caches nor elides them. On x86 the fences emit no instruction (TSO: stores are seen in
//! order, and no load passes an earlier load or is passed by a later store); they keep the
//! compiler from moving the accesses across them.
//!
//! The region is memory the VMM maps into every VM: no Rust object lives there, and another
//! VM may write any of it at any time. Nothing read from it is trusted: a header is only
//! numbers, checked by the receiver.

use core::ptr::{self, addr_of, addr_of_mut};
use core::sync::atomic::{fence, Ordering};

use pageflip_abi::ipc::{Extent, RecvEntry, MAX_EXTENTS};
use pageflip_abi::probes::ipc_records::{self, TRANSPORT_SHMEM};
use pageflip_abi::shmem::{
    ring_gpa, slot_gpa, slot_header_gpa, RingControl, SlotHeader, RING_SLOTS, SLOT_BYTES,
};
use pageflip_abi::{MAX_VMS, PAGE_SIZE};

use super::{Link, Notifications, OutOfMemory};
use crate::arena::Arena;
use crate::check::{Landing, SendStats, StreamReceiver, Verdict};
use crate::params::Params;
use crate::payload::{extent, fill_payload, pages_for, Coverage};
use crate::results::check;
use crate::text::Text;
use crate::tsc::Deadline;

/// The ring's control block from `src` to `dst`.
fn control(src: u32, dst: u32) -> *mut RingControl {
    ring_gpa(src, dst) as *mut RingControl
}

/// Reads `head` of the ring from `src` to `dst`.
fn read_head(src: u32, dst: u32) -> u64 {
    // SAFETY: the control block of a ring inside the shared region (src, dst < MAX_VMS, which
    // the callers keep to), mapped read-write; no Rust object lives there; a volatile load of
    // a u64 is valid for any bytes.
    unsafe { ptr::read_volatile(addr_of!((*control(src, dst)).head)) }
}

/// Reads `tail` of the ring from `src` to `dst`.
fn read_tail(src: u32, dst: u32) -> u64 {
    // SAFETY: as in `read_head`.
    unsafe { ptr::read_volatile(addr_of!((*control(src, dst)).tail)) }
}

/// Pages in a slot.
const SLOT_PAGES: u64 = SLOT_BYTES / PAGE_SIZE;

/// The first `pages` pages (at most [`SLOT_PAGES`]) of slot `index` of the ring from `src` to
/// `dst`, as one extent.
fn slot_extent(src: u32, dst: u32, index: u64, pages: u64) -> Extent {
    extent(slot_gpa(src, dst, index), pages.min(SLOT_PAGES) as u32)
}

/// A message in a ring this VM consumes: valid until released (then the producer may
/// overwrite its slot).
pub struct ShmemMsg {
    entry: RecvEntry,
    /// The ring's source.
    src: u32,
    /// Its index in the ring.
    index: u64,
}

/// This VM's side of the shared-memory rings.
pub struct Shmem {
    me: u32,
    len: u32,
    npages: u64,
    coverage: Coverage,
    idle_ms: u64,
    // Producer: the ring (me, dst).
    dst: u32,
    head: u64,
    /// `tail` when the sender was opened (messages consumed before this run's).
    tail_start: u64,
    started: u64,
    timed_out: bool,
    // Consumer: the rings (src, me) of the senders.
    srcs: [u32; MAX_VMS],
    nsrcs: usize,
    next_src: usize,
    tails: [u64; MAX_VMS],
}

impl Shmem {
    /// This VM's side of the rings, for `params`.
    pub fn new(params: &Params) -> Shmem {
        Shmem {
            me: crate::boot_info().vm_id,
            len: params.size,
            npages: pages_for(u64::from(params.size)),
            coverage: params.coverage,
            idle_ms: params.idle_ms,
            dst: u32::MAX,
            head: 0,
            tail_start: 0,
            started: 0,
            timed_out: false,
            srcs: [0; MAX_VMS],
            nsrcs: 0,
            next_src: 0,
            tails: [0; MAX_VMS],
        }
    }

    /// Whether a sender was opened (and `dst` names a ring).
    fn sending(&self) -> bool {
        (self.dst as usize) < MAX_VMS
    }

    /// Waits until the ring (me, dst) has a free slot: `false` after the idle timeout without
    /// the consumer taking a message.
    #[cold]
    fn wait_for_room(&mut self) -> bool {
        let head = self.head;
        self.wait_for_tail(|tail| head.wrapping_sub(tail) < RING_SLOTS)
    }

    /// Polls `tail` of the ring (me, dst) until `done(tail)`: `false` (and timed out) once the
    /// consumer has taken nothing for the idle timeout.
    fn wait_for_tail(&mut self, done: impl Fn(u64) -> bool) -> bool {
        let mut deadline = Deadline::after_ms(self.idle_ms);
        let mut tail = read_tail(self.me, self.dst);
        while !done(tail) {
            core::hint::spin_loop();
            let now = read_tail(self.me, self.dst);
            if now != tail {
                tail = now;
                deadline = Deadline::after_ms(self.idle_ms);
            } else if deadline.expired() {
                self.timed_out = true;
                return false;
            }
        }
        true
    }

    /// Messages of this run the consumer has taken from the ring (me, dst).
    fn consumed(&self) -> u64 {
        if !self.sending() {
            return 0;
        }
        read_tail(self.me, self.dst).wrapping_sub(self.tail_start)
    }

    /// Reads the message at index `tail` of the ring (`src`, me), whose head is past it.
    fn take(&self, src: u32, tail: u64) -> ShmemMsg {
        let h = slot_header_gpa(src, self.me, tail) as *const SlotHeader;
        // SAFETY: a slot header inside the ring (src, me) of the shared region (src < MAX_VMS:
        // a sender of `open_receiver`), mapped, no Rust object; volatile loads of integer
        // fields are valid for any bytes. The producer wrote it before advancing `head`
        // (read before this, then an acquire fence) and leaves it alone until `tail` passes
        // it.
        let (seq, hsrc, hdst, len) = unsafe {
            (
                ptr::read_volatile(addr_of!((*h).seq)),
                ptr::read_volatile(addr_of!((*h).src)),
                ptr::read_volatile(addr_of!((*h).dst)),
                ptr::read_volatile(addr_of!((*h).len)),
            )
        };
        let mut extents = [Extent::default(); MAX_EXTENTS];
        extents[0] = slot_extent(src, self.me, tail, pages_for(u64::from(len)));
        ShmemMsg {
            entry: RecvEntry {
                seq,
                src: hsrc,
                dst: hdst,
                len,
                nextents: 1,
                extents,
            },
            src,
            index: tail,
        }
    }

    /// Publishes message `seq` into the next slot of the ring (me, dst): waits for room (the
    /// idle timeout), calls `fill` with the slot's payload pages, writes the header and
    /// advances `head`. `false` if there is no sender or it gave up.
    fn publish(&mut self, seq: u64, fill: impl FnOnce(Extent)) -> bool {
        if !self.sending() {
            return false;
        }
        if self.head.wrapping_sub(read_tail(self.me, self.dst)) >= RING_SLOTS
            && !self.wait_for_room()
        {
            return false;
        }
        // The consumer is done with the slot (it advanced `tail` past it, read above) before
        // it is overwritten.
        fence(Ordering::Acquire);
        fill(slot_extent(self.me, self.dst, self.head, self.npages));
        let h = slot_header_gpa(self.me, self.dst, self.head) as *mut SlotHeader;
        // SAFETY: the header of a free slot of this VM's producer ring in the shared region
        // (mapped read-write, no Rust object); the consumer reads it only after `head` passes
        // it.
        unsafe {
            ptr::write_volatile(addr_of_mut!((*h).seq), seq);
            ptr::write_volatile(addr_of_mut!((*h).src), self.me);
            ptr::write_volatile(addr_of_mut!((*h).dst), self.dst);
            ptr::write_volatile(addr_of_mut!((*h).len), self.len);
            ptr::write_volatile(addr_of_mut!((*h).flags), 0);
        }
        // The payload and the header are written before the consumer can see the new head.
        fence(Ordering::Release);
        self.head = self.head.wrapping_add(1);
        // SAFETY: `head` of this VM's producer ring (as in `read_head`); only this VM writes
        // it.
        unsafe { ptr::write_volatile(addr_of_mut!((*control(self.me, self.dst)).head), self.head) };
        self.started += 1;
        true
    }

    /// Whether the message is in the slot where its header says it must be: the next slot
    /// of the ring from its source to its destination.
    fn landing(&self, m: &ShmemMsg) -> Landing {
        let e = &m.entry;
        let want = if (e.src as usize) < MAX_VMS && (e.dst as usize) < MAX_VMS {
            slot_gpa(e.src, e.dst, m.index)
        } else {
            0
        };
        let got = e.extents[0].gpa;
        if want == got {
            Landing::OK
        } else {
            Landing {
                ok: false,
                index: 0,
                posted: extent(want, e.extents[0].pages),
                got: e.extents[0],
            }
        }
    }
}

impl Link for Shmem {
    const NAME: &'static str = TRANSPORT_SHMEM;
    const LANDING: &'static str = "every message was in the next slot of its source's ring";
    const LANDING_WANT: &'static str = "its slot at";

    type Msg = ShmemMsg;

    /// Takes over the ring (me, `dst`) as its producer: its `head` as it is. Needs no memory.
    fn open_sender(&mut self, dst: u32, _arena: &mut Arena) -> Result<(), OutOfMemory> {
        assert!(
            (dst as usize) < MAX_VMS && dst != self.me,
            "shmem: no ring from VM {} to VM {dst}",
            self.me
        );
        assert!(
            u64::from(self.len) <= SLOT_BYTES,
            "shmem: a {}-byte message does not fit a slot",
            self.len
        );
        self.dst = dst;
        self.head = read_head(self.me, dst);
        self.tail_start = read_tail(self.me, dst);
        Ok(())
    }

    /// Takes over the rings (src, me) of the `senders` as their consumer: their `tail`s as
    /// they are. Needs no memory.
    fn open_receiver(&mut self, senders: u32, _arena: &mut Arena) -> Result<(), OutOfMemory> {
        self.nsrcs = 0;
        for src in 0..MAX_VMS as u32 {
            if senders & (1 << src) != 0 && src != self.me {
                self.srcs[self.nsrcs] = src;
                self.tails[src as usize] = read_tail(src, self.me);
                self.nsrcs += 1;
            }
        }
        Ok(())
    }

    /// Writes every page of this VM's producer ring (its first word, with the value it
    /// holds) and reads every page of its consumer rings, so that the host has backed them
    /// all before the measured phase.
    fn prefault(&mut self) {
        let touch = |src: u32, dst: u32, write: bool| {
            let mut gpa = ring_gpa(src, dst);
            let end = slot_gpa(src, dst, RING_SLOTS - 1) + SLOT_BYTES;
            while gpa < end {
                let p = gpa as *mut u64;
                // SAFETY: a word of a ring of the shared region, mapped read-write, no Rust
                // object. A write stores the value just read, to the first word of a page of
                // this VM's producer ring: in the control page that is `head`, which only
                // this VM writes; in a slot, payload the consumer reads only after a later
                // `head` publishes it.
                unsafe {
                    let v = ptr::read_volatile(p);
                    if write {
                        ptr::write_volatile(p, v);
                    }
                }
                gpa += PAGE_SIZE;
            }
        };
        if self.sending() {
            touch(self.me, self.dst, true);
        }
        for &src in &self.srcs[..self.nsrcs] {
            // Write `tail` (only this VM writes it) back once, before reading the ring, so
            // that no write in the measured phase is a first one: under a shadow MMU, the
            // first write to a 2 MiB page whose dirty bit is clear moves it to a new shadow
            // page, and each page read before would fault again (the reference VMM sets the
            // dirty bits up front; this keeps the phase clean on a VMM that does not).
            let tail = read_tail(src, self.me);
            // SAFETY: `tail` of a consumer ring of this VM in the shared region, mapped
            // read-write; only this VM writes it, and it writes the value it holds.
            unsafe { ptr::write_volatile(addr_of_mut!((*control(src, self.me)).tail), tail) };
            touch(src, self.me, false);
        }
    }

    fn send(&mut self, seq: u64) -> bool {
        let (len, me, coverage) = (u64::from(self.len), self.me, self.coverage);
        self.publish(seq, |slot| fill_payload(&[slot], len, me, seq, coverage))
    }

    #[inline]
    fn pump(&mut self) {}

    #[inline]
    fn push(&mut self) {}

    /// Waits until the consumer has taken every message published.
    fn finish(&mut self) -> bool {
        if !self.sending() {
            return true;
        }
        let head = self.head;
        self.wait_for_tail(|tail| tail == head)
    }

    #[inline]
    fn recv(&mut self) -> Option<ShmemMsg> {
        self.poll()
    }

    /// Looks at the senders' rings in turn, from the one after the last that had a message.
    fn poll(&mut self) -> Option<ShmemMsg> {
        for k in 0..self.nsrcs {
            let i = (self.next_src + k) % self.nsrcs;
            let src = self.srcs[i];
            let tail = self.tails[src as usize];
            if read_head(src, self.me) == tail {
                continue;
            }
            // The header and the payload are read after the head that published them.
            fence(Ordering::Acquire);
            self.next_src = (i + 1) % self.nsrcs;
            return Some(self.take(src, tail));
        }
        None
    }

    #[inline]
    fn blocks(&self) -> bool {
        false
    }

    /// Checks the message in place.
    fn check(&mut self, r: &mut StreamReceiver, msg: &ShmemMsg) -> Verdict {
        r.handle_entry(&msg.entry, self.landing(msg))
    }

    /// Copies the slot's payload (the message's bytes, at most the run's size) into the next
    /// slot of the ring (me, dst) with the message's sequence number, then releases the slot.
    fn forward(&mut self, msg: ShmemMsg) -> bool {
        let e = &msg.entry;
        let from = e.extents[0];
        let bytes = u64::from(e.len.min(self.len)).min(u64::from(from.pages) * PAGE_SIZE);
        let ok = self.publish(e.seq, |to| {
            // SAFETY: `bytes` lie in `from`, the received slot's first pages (at most a slot:
            // `take`) in the ring (src, me), and in `to`, the run's size's pages (at least
            // `bytes`) of a free slot of the ring (me, dst):
            // both in the shared region, mapped, no Rust object, and different rings, so
            // they do not overlap. The producer of `from` leaves it alone until this VM
            // releases it (below); the consumer of `to` reads it only after `head` passes it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    from.gpa as *const u8,
                    to.gpa as *mut u8,
                    bytes.min(u64::from(to.pages) * PAGE_SIZE) as usize,
                )
            }
        });
        self.release(msg);
        ok
    }

    fn release(&mut self, msg: ShmemMsg) {
        // The slot is read completely before the producer may reuse it.
        fence(Ordering::Release);
        let tail = msg.index.wrapping_add(1);
        self.tails[msg.src as usize] = tail;
        // SAFETY: `tail` of the ring (msg.src, me) (as in `read_head`); only this VM writes
        // it.
        unsafe { ptr::write_volatile(addr_of_mut!((*control(msg.src, self.me)).tail), tail) };
    }

    /// `delivered`: messages published and consumed.
    fn send_stats(&self) -> SendStats {
        SendStats {
            started: self.started,
            delivered: self.consumed().min(self.started),
            timed_out: self.timed_out,
            ..SendStats::default()
        }
    }

    fn record_sender(&self, expected: u64) -> bool {
        let consumed = self.consumed();
        let ok = self.started == expected && consumed == expected && !self.timed_out;
        let mut msg = Text::new();
        let _ = core::fmt::Write::write_fmt(
            &mut msg,
            format_args!(
                "{consumed} of {expected} published and consumed by VM {}; {} published",
                self.dst, self.started
            ),
        );
        if self.timed_out {
            let _ = core::fmt::Write::write_fmt(
                &mut msg,
                format_args!("; gave up after {} ms without progress", self.idle_ms),
            );
        }
        check(ipc_records::ALL_DELIVERED, ok, msg.as_str())
    }

    fn drains(&self) -> u64 {
        0
    }

    fn notifications(&self) -> Notifications {
        Notifications::default()
    }
}
