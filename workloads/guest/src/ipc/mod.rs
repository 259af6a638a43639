//! Remap IPC for guests: the control structure the VMM shares with this VM
//! ([`pageflip_abi::ipc`], `docs/remap-ipc.md`), as a safe API.
//!
//! [`Ipc`] owns the guest side of the rings (ABI version 2: messages and posts are
//! [`Extent`]s): it places [`SendDesc`]s in the send ring and rings [`IPC_DOORBELL`] when a
//! send requires an immediate exit, posts landing areas ([`PostEntry`]s), and consumes the
//! receive ring (by polling, or blocking in an [`IPC_RECV_WAIT`] read); [`init_ipc`] takes it
//! or records why not. [`BufferLayout`] says how many message buffers or landing areas of a
//! size a VM keeps, and how they are aligned. Around it:
//!
//! - [`StreamSender`] (`sender.rs`): a sender on the send ring that retries refused messages
//!   in order; [`StatusName`] names a descriptor's status;
//! - `receive.rs`: the receive ring with a checker ([`StreamReceiver::handle`],
//!   [`StreamReceiver::drain_extra`], [`receive`](fn@receive)).
//!
//! Only the queues are here: free memory is [`crate::arena`], payloads [`crate::payload`],
//! the transport-neutral checks [`crate::check`](mod@crate::check), the workloads [`crate::workload`] over
//! [`crate::link`].
//!
//! # Memory ordering
//!
//! The control structure is ordinary guest memory (identity mapped). The guest writes its
//! indices and descriptors with volatile stores and reads the VMM's with volatile loads, with
//! fences between, so that the compiler neither caches nor reorders them:
//!
//! - a descriptor is written completely before `send_head` is advanced (release fence);
//! - the VMM reads the send ring only while this vCPU is stopped in an exit, and writes
//!   `send_tail` and the statuses only then, so volatile reads after an exit see them;
//! - the receive ring is written by *other* VMs' vCPU threads while this VM runs: the guest
//!   reads `recv_head`, then (acquire fence) the entries, and publishes `recv_tail` only after
//!   reading them (release fence). On x86 these fences emit no instruction (TSO); they keep
//!   the compiler from reordering the accesses.

use core::ptr::{self, addr_of, addr_of_mut};
use core::sync::atomic::{compiler_fence, fence, Ordering};

use pageflip_abi::ipc::{
    total_pages, Extent, IpcHeader, IpcStatus, PostEntry, RecvEntry, SendDesc, DOORBELL_FLUSH,
    DOORBELL_SEND, FLAG_URGENT, HUGE_PAGE_SIZE, IPC_HEADER_GPA, IPC_MAGIC, MAX_EXTENTS,
    MAX_MSG_PAGES, POST_RING_GPA, POST_RING_LEN, RECV_RING_GPA, RECV_RING_LEN, SEND_RING_GPA,
    SEND_RING_LEN,
};
use pageflip_abi::mmio::{IPC_DOORBELL, IPC_RECV_WAIT};
use pageflip_abi::probes::ipc_records::TRANSPORT;
use pageflip_abi::PAGE_SIZE;

use crate::arena::{is_free_range, PagePool};
use crate::check::Landing;
#[cfg(doc)]
use crate::check::StreamReceiver;
use crate::global::Global;
use crate::mmio::{mmio_read, mmio_write};
use crate::results::fail;

mod receive;
mod sender;

pub use receive::receive;
pub use sender::{StatusName, StreamSender, SEND_BUFFERS};

/// Set once [`Ipc::init`] has handed out the one [`Ipc`].
static TAKEN: Global<bool> = Global::new(false);

/// Flushes of a full send ring [`Ipc::place`] makes before it gives up on a VMM that does not
/// consume descriptors (and panics).
const FULL_RING_FLUSHES: u32 = 1000;

/// Reads a field of the [`IpcHeader`] with a volatile load.
macro_rules! header_get {
    ($field:ident) => {{
        // SAFETY: the header page at IPC_HEADER_GPA is guest memory, mapped read-write at
        // CPL3 (abi layout: reserved for transports' control structures) and holds no Rust
        // object; the field pointer is derived without creating a reference, and a volatile
        // load of an integer field is valid for any bytes.
        unsafe { ptr::read_volatile(addr_of!((*header()).$field)) }
    }};
}

/// Writes a field of the [`IpcHeader`] with a volatile store.
macro_rules! header_set {
    ($field:ident, $value:expr) => {{
        let value = $value;
        // SAFETY: as in `header_get`; the guest may write the fields it owns, and a store to
        // this page changes no Rust object.
        unsafe { ptr::write_volatile(addr_of_mut!((*header()).$field), value) }
    }};
}

/// The header of this VM's control structure.
fn header() -> *mut IpcHeader {
    IPC_HEADER_GPA as *mut IpcHeader
}

/// The send-ring slot of descriptor index `index`.
fn send_slot_ptr(index: u32) -> *mut SendDesc {
    (SEND_RING_GPA as *mut SendDesc).wrapping_add((index % SEND_RING_LEN) as usize)
}

/// The receive-ring slot of entry index `index`.
fn recv_slot_ptr(index: u32) -> *const RecvEntry {
    (RECV_RING_GPA as *const RecvEntry).wrapping_add((index % RECV_RING_LEN) as usize)
}

/// The post-ring slot of post index `index`.
fn post_slot_ptr(index: u32) -> *mut PostEntry {
    (POST_RING_GPA as *mut PostEntry).wrapping_add((index % POST_RING_LEN) as usize)
}

/// Bytes of message buffers (or of landing areas) a VM keeps for one stream, unless two
/// buffers take more: 32 MiB.
pub const IN_FLIGHT_BYTES: u64 = 32 << 20;

/// How a VM lays out its message buffers (a sender) or landing areas (a receiver) for
/// messages of one size: `count` areas of `pages` pages each, `stride` bytes apart, the first
/// at a multiple of `align`.
///
/// Messages of at least 2 MiB get 2 MiB-aligned areas whose stride is a multiple of 2 MiB, so
/// that `remap-huge` can move them whole (the guest does not know the variant); smaller ones
/// are page-aligned and contiguous. `count` is min(`ring`, max(2, [`IN_FLIGHT_BYTES`] /
/// `stride`)): as many as the ring can have in flight, within 32 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLayout {
    /// Pages in one area: the message's.
    pub pages: u64,
    /// Alignment of every area, bytes.
    pub align: u64,
    /// Bytes from one area to the next.
    pub stride: u64,
    /// Areas.
    pub count: u64,
}

impl BufferLayout {
    /// The layout for `len`-byte messages with a ring of `ring` slots.
    pub const fn new(len: u64, ring: u64) -> BufferLayout {
        let pages = crate::payload::pages_for(len);
        let bytes = pages * PAGE_SIZE;
        let (align, stride) = if len >= HUGE_PAGE_SIZE {
            (HUGE_PAGE_SIZE, bytes.next_multiple_of(HUGE_PAGE_SIZE))
        } else {
            (PAGE_SIZE, bytes)
        };
        let fit = IN_FLIGHT_BYTES / stride;
        let count = if fit < 2 { 2 } else { fit };
        BufferLayout {
            pages,
            align,
            stride,
            count: if count < ring { count } else { ring },
        }
    }

    /// Pages from the first area's start to the last one's end.
    pub const fn total_pages(&self) -> u64 {
        ((self.count - 1) * self.stride) / PAGE_SIZE + self.pages
    }

    /// The first GPA of area `i`, for areas from `base`.
    pub const fn area(&self, base: u64, i: u64) -> u64 {
        base + i * self.stride
    }

    /// The areas from `base` as a pool of landing areas.
    pub const fn pool(&self, base: u64) -> PagePool {
        PagePool::areas(base, self.count, self.pages as u32, self.stride)
    }
}

/// Takes the control structure ([`Ipc::init`] with `batch` and `wait_timeout_us`), or
/// records FAIL `ipc-transport` if the run has no IPC transport.
pub fn init_ipc(batch: u32, wait_timeout_us: u64) -> Option<Ipc> {
    let ipc = Ipc::init(batch, wait_timeout_us);
    if ipc.is_none() {
        fail(
            TRANSPORT,
            "the IPC header's magic is not set: run with transport remap or copy",
        );
    }
    ipc
}

/// A descriptor's place in the send ring: its free-running index (valid for [`Ipc::status`]
/// until [`SEND_RING_LEN`] later descriptors have been placed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendSlot(pub u32);

/// The guest side of this VM's remap-IPC control structure (one per VM: [`Ipc::init`]).
///
/// `Ipc` keeps its own copies of the indices the guest owns (`send_head`, `recv_tail`,
/// `post_head`) and writes them to the header when they change; it reads the VMM's
/// (`send_tail`, `recv_head`, `post_tail`, statuses, counters) from memory each time.
#[derive(Debug)]
pub struct Ipc {
    vm_id: u32,
    batch: u32,
    send_head: u32,
    recv_tail: u32,
    post_head: u32,
    /// Posted entries accounted for by the receive entries this VM has read.
    post_seen: u32,
    last_landing: Landing,
    landing_mismatches: u64,
    wait_mismatches: u64,
    /// Doorbell writes this VM made ([`Ipc::doorbells`]).
    doorbells: u64,
}

impl Ipc {
    /// Takes over this VM's control structure: `None` if the run has no IPC transport (the
    /// header's magic is not [`IPC_MAGIC`]).
    ///
    /// Writes the batch size B of deferred sends (0 or 1: every send exits at once; at most
    /// [`SEND_RING_LEN`]) and the blocking-receive timeout (`wait_timeout_us`, 0 = the VMM's
    /// default of 1 s). The header's `version` is the VMM's (blocking receive needs no
    /// setup).
    ///
    /// Panics if called a second time (two `Ipc`s would place descriptors over each other).
    pub fn init(batch: u32, wait_timeout_us: u64) -> Option<Ipc> {
        if header_get!(magic) != IPC_MAGIC {
            return None;
        }
        // SAFETY: TAKEN is only accessed here, by value, with no reference kept.
        let taken = unsafe { core::mem::replace(&mut *TAKEN.as_ptr(), true) };
        assert!(!taken, "Ipc::init called twice");
        let batch = batch.min(SEND_RING_LEN);
        header_set!(batch, batch);
        header_set!(wait_timeout_us, wait_timeout_us);
        let post_head = header_get!(post_head);
        let ipc = Ipc {
            vm_id: crate::boot_info().vm_id,
            batch,
            send_head: header_get!(send_head),
            recv_tail: header_get!(recv_tail),
            post_head,
            post_seen: header_get!(post_tail),
            last_landing: Landing::OK,
            landing_mismatches: 0,
            wait_mismatches: 0,
            doorbells: 0,
        };
        compiler_fence(Ordering::SeqCst);
        Some(ipc)
    }

    /// This VM's id.
    pub fn vm_id(&self) -> u32 {
        self.vm_id
    }

    /// The batch size B written to the header.
    pub fn batch(&self) -> u32 {
        self.batch
    }

    /// Changes the batch size B (0 or 1 = immediate). Descriptors already in the ring stay
    /// there until the next drain.
    pub fn set_batch(&mut self, batch: u32) {
        self.batch = batch.min(SEND_RING_LEN);
        header_set!(batch, self.batch);
    }

    /// A copy of the whole header, read field by field (volatile).
    pub fn header(&self) -> IpcHeader {
        IpcHeader {
            magic: header_get!(magic),
            batch: header_get!(batch),
            version: header_get!(version),
            wait_timeout_us: header_get!(wait_timeout_us),
            send_head: header_get!(send_head),
            send_tail: header_get!(send_tail),
            recv_head: header_get!(recv_head),
            recv_tail: header_get!(recv_tail),
            post_head: header_get!(post_head),
            post_tail: header_get!(post_tail),
            drains: header_get!(drains),
            sent: header_get!(sent),
            received: header_get!(received),
            refused: header_get!(refused),
            ring_error: header_get!(ring_error),
            reserved1: header_get!(reserved1),
            post_refused: header_get!(post_refused),
        }
    }

    /// The guest's `send_head`: descriptors placed so far.
    pub fn send_head(&self) -> u32 {
        self.send_head
    }

    /// The VMM's `send_tail`: descriptors it has consumed.
    pub fn send_tail(&self) -> u32 {
        header_get!(send_tail)
    }

    /// Descriptors placed and not yet consumed by the VMM.
    pub fn pending(&self) -> u32 {
        self.send_head.wrapping_sub(self.send_tail())
    }

    /// Whether the VMM has consumed the descriptor in `slot` (its status is final).
    pub fn consumed(&self, slot: SendSlot) -> bool {
        let tail = self.send_tail();
        // Free-running indices: `slot` is consumed iff it lies in [tail - 2^31, tail).
        (tail.wrapping_sub(slot.0) as i32) > 0
    }

    /// The VMM's drains of this VM's send ring that consumed at least one descriptor.
    pub fn drains(&self) -> u64 {
        header_get!(drains)
    }

    /// The last ring-level error the VMM reported ([`IpcStatus`] value, 0 = none).
    pub fn ring_error(&self) -> u32 {
        header_get!(ring_error)
    }

    /// Places `desc` in the send ring (its status set to [`IpcStatus::Pending`]) and advances
    /// `send_head`, **without** ringing the doorbell. If the ring is full, flushes it first
    /// ([`DOORBELL_FLUSH`]) until the VMM has consumed a descriptor (panics if it never does).
    ///
    /// The descriptor is taken as is: hostile probes use this to place descriptors that break
    /// the rules.
    pub fn place(&mut self, desc: &SendDesc) -> SendSlot {
        let mut flushes = 0;
        while self.pending() >= SEND_RING_LEN {
            assert!(
                flushes < FULL_RING_FLUSHES,
                "the send ring stays full: {flushes} flushes consumed no descriptor \
                 (send_head {}, send_tail {})",
                self.send_head,
                self.send_tail()
            );
            self.flush();
            flushes += 1;
        }
        let index = self.send_head;
        let p = send_slot_ptr(index);
        // SAFETY: `p` is a slot of the send ring (inside [SEND_RING_GPA, RECV_RING_GPA),
        // guest memory mapped read-write, no Rust object). The slot is free: the VMM consumed
        // its previous descriptor (pending < SEND_RING_LEN) and reads the ring only while
        // this vCPU is stopped in an exit, so nothing reads it concurrently.
        unsafe {
            ptr::write_volatile(addr_of_mut!((*p).seq), desc.seq);
            ptr::write_volatile(addr_of_mut!((*p).dst), desc.dst);
            ptr::write_volatile(addr_of_mut!((*p).flags), desc.flags);
            ptr::write_volatile(addr_of_mut!((*p).len), desc.len);
            ptr::write_volatile(addr_of_mut!((*p).nextents), desc.nextents);
            ptr::write_volatile(addr_of_mut!((*p).status), IpcStatus::Pending as u32);
            ptr::write_volatile(addr_of_mut!((*p).reserved), desc.reserved);
            ptr::write_volatile(addr_of_mut!((*p).extents), desc.extents);
        }
        // The descriptor is complete before the VMM can see the new head.
        fence(Ordering::Release);
        self.send_head = index.wrapping_add(1);
        header_set!(send_head, self.send_head);
        compiler_fence(Ordering::SeqCst);
        SendSlot(index)
    }

    /// Sends a message of `len` bytes in `extents` (of this VM, at most [`MAX_EXTENTS`]; see
    /// [`crate::payload::Extents::contiguous`]) to VM `dst` with sequence number `seq` and
    /// `flags` ([`FLAG_URGENT`] or 0): places the descriptor ([`Ipc::place`]), then rings
    /// [`DOORBELL_SEND`] iff the send requires an immediate exit — the batch size is 0 or 1,
    /// the descriptor is urgent, or the ring now holds at least a batch.
    ///
    /// After an immediate send the descriptor's status is final when this returns; after a
    /// deferred one it is [`IpcStatus::Pending`] until the VMM drains the ring at the next
    /// exit. Panics if there are more than [`MAX_EXTENTS`] extents or [`MAX_MSG_PAGES`]
    /// pages.
    pub fn send(
        &mut self,
        dst: u32,
        extents: &[Extent],
        len: u32,
        seq: u64,
        flags: u32,
    ) -> SendSlot {
        assert!(
            extents.len() <= MAX_EXTENTS && total_pages(extents) <= u64::from(MAX_MSG_PAGES),
            "a message has at most {MAX_EXTENTS} extents and {MAX_MSG_PAGES} pages, not {} \
             and {}",
            extents.len(),
            total_pages(extents)
        );
        let mut desc = SendDesc {
            seq,
            dst,
            flags,
            len,
            nextents: extents.len() as u32,
            status: IpcStatus::Pending as u32,
            reserved: 0,
            extents: [Extent::default(); MAX_EXTENTS],
        };
        desc.extents[..extents.len()].copy_from_slice(extents);
        let slot = self.place(&desc);
        if self.batch <= 1 || flags & FLAG_URGENT != 0 || self.pending() >= self.batch {
            self.ring(DOORBELL_SEND);
        }
        slot
    }

    /// Rings [`DOORBELL_FLUSH`]: the VMM drains whatever the send ring holds.
    pub fn flush(&mut self) {
        self.ring(DOORBELL_FLUSH);
    }

    /// Rings [`DOORBELL_SEND`] without placing anything (the VMM drains only if the ring
    /// holds a batch or an urgent descriptor).
    pub fn ring_send_doorbell(&mut self) {
        self.ring(DOORBELL_SEND);
    }

    /// Writes `value` to [`IPC_DOORBELL`] and counts the write.
    fn ring(&mut self, value: u64) {
        self.doorbells += 1;
        mmio_write(IPC_DOORBELL, value);
    }

    /// Doorbell writes ([`DOORBELL_SEND`], [`DOORBELL_FLUSH`]) this VM made so far, counted
    /// by the guest itself: each is one exit to the VMM.
    pub fn doorbells(&self) -> u64 {
        self.doorbells
    }

    /// The raw status word of the descriptor in `slot` (an [`IpcStatus`] value if the VMM
    /// keeps to the ABI). Panics if the slot has been reused by a later descriptor.
    pub fn status_raw(&self, slot: SendSlot) -> u32 {
        let age = self.send_head.wrapping_sub(slot.0);
        assert!(
            (1..=SEND_RING_LEN).contains(&age),
            "send slot {} is not among the last {SEND_RING_LEN} descriptors (send_head {})",
            slot.0,
            self.send_head
        );
        let p = send_slot_ptr(slot.0);
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `p` is a send-ring slot (see `place`); the status is a u32, valid for any
        // bytes, and the VMM writes it only while this vCPU is in an exit.
        unsafe { ptr::read_volatile(addr_of!((*p).status)) }
    }

    /// The status of the descriptor in `slot` ([`IpcStatus::Pending`] until the VMM consumed
    /// it). Panics if the VMM wrote a value that is no [`IpcStatus`] (an ABI violation; see
    /// [`Ipc::status_raw`]) or the slot has been reused.
    pub fn status(&self, slot: SendSlot) -> IpcStatus {
        let raw = self.status_raw(slot);
        match IpcStatus::from_u32(raw) {
            Some(s) => s,
            None => panic!(
                "send slot {} has status {raw}, which is no IpcStatus",
                slot.0
            ),
        }
    }

    /// The descriptor in `slot` as the ring holds it now (the VMM writes only its status).
    /// Panics if the slot has been reused by a later descriptor.
    pub fn descriptor(&self, slot: SendSlot) -> SendDesc {
        // Checks that the slot is still one of the last SEND_RING_LEN descriptors.
        let _ = self.status_raw(slot);
        // SAFETY: a send-ring slot (see `place`); SendDesc is made of integers, valid for
        // any bytes, and the VMM writes the ring only while this vCPU is in an exit.
        unsafe { ptr::read_volatile(send_slot_ptr(slot.0)) }
    }

    /// Writes `value` to the header's `send_head` without placing anything (for hostile
    /// probes: malformed ring indices). [`Ipc::restore_send_head`] undoes it.
    pub fn write_send_head_raw(&mut self, value: u32) {
        compiler_fence(Ordering::SeqCst);
        header_set!(send_head, value);
        compiler_fence(Ordering::SeqCst);
    }

    /// Writes this `Ipc`'s own `send_head` back to the header.
    pub fn restore_send_head(&mut self) {
        compiler_fence(Ordering::SeqCst);
        header_set!(send_head, self.send_head);
        compiler_fence(Ordering::SeqCst);
    }

    /// Writes `value` to the header's `recv_tail` (for hostile probes); the next
    /// [`Ipc::recv_poll`] or [`Ipc::restore_indices`] writes this `Ipc`'s own back.
    pub fn write_recv_tail_raw(&mut self, value: u32) {
        compiler_fence(Ordering::SeqCst);
        header_set!(recv_tail, value);
        compiler_fence(Ordering::SeqCst);
    }

    /// Writes `value` to the header's `post_head` (for hostile probes); the next post or
    /// [`Ipc::restore_indices`] writes this `Ipc`'s own back.
    pub fn write_post_head_raw(&mut self, value: u32) {
        compiler_fence(Ordering::SeqCst);
        header_set!(post_head, value);
        compiler_fence(Ordering::SeqCst);
    }

    /// Writes every index the guest owns (`send_head`, `recv_tail`, `post_head`) and the
    /// batch size back to the header, and clears `ring_error` (the guest may write 0).
    pub fn restore_indices(&mut self) {
        compiler_fence(Ordering::SeqCst);
        header_set!(send_head, self.send_head);
        header_set!(recv_tail, self.recv_tail);
        header_set!(post_head, self.post_head);
        header_set!(batch, self.batch);
        header_set!(ring_error, 0);
        compiler_fence(Ordering::SeqCst);
    }

    /// Counts every posted entry the VMM has taken (`post_tail`) as seen, so their slots can
    /// be posted again. [`Ipc::post_room`] only counts the entries that received messages
    /// landed in; a VMM that skips bad entries retires them without a message, and a guest
    /// that posts bad entries calls this to get their slots back. (A taken entry's slot may
    /// be reused at once: a receive entry carries its own landing extents.)
    pub fn resync_posts(&mut self) {
        let tail = self.post_tail();
        let ahead = tail.wrapping_sub(self.post_seen) as i32;
        let within = self.post_head.wrapping_sub(tail) as i32 >= 0;
        if ahead > 0 && within {
            self.post_seen = tail;
        }
    }

    /// Entries waiting in the receive ring (0 if none). Panics if the VMM's `recv_head` is
    /// more than [`RECV_RING_LEN`] ahead of `recv_tail` (an ABI violation).
    pub fn recv_queued(&self) -> u32 {
        let head = header_get!(recv_head);
        fence(Ordering::Acquire);
        let queued = head.wrapping_sub(self.recv_tail);
        assert!(
            queued <= RECV_RING_LEN,
            "the VMM's recv_head {head} is {queued} entries ahead of recv_tail {} \
             (the ring holds {RECV_RING_LEN})",
            self.recv_tail
        );
        queued
    }

    /// The next entry of the receive ring, if there is one, without taking it: its landing
    /// pages stay the receiver's, unchanged, until [`Ipc::recv_poll`] takes it (no later
    /// message can land on them while it is queued).
    pub fn recv_peek(&self) -> Option<RecvEntry> {
        if self.recv_queued() == 0 {
            return None;
        }
        // SAFETY: as in `recv_poll`: a filled receive-ring slot, integers only.
        Some(unsafe { ptr::read_volatile(recv_slot_ptr(self.recv_tail)) })
    }

    /// Takes the next entry of the receive ring, if there is one, without an exit.
    ///
    /// Also compares the entry's landing extents with the areas this VM posted (they must be
    /// the first pages of the next posted areas, in order): see [`Ipc::last_landing`].
    pub fn recv_poll(&mut self) -> Option<RecvEntry> {
        if self.recv_queued() == 0 {
            return None;
        }
        let p = recv_slot_ptr(self.recv_tail);
        // SAFETY: `p` is a receive-ring slot (inside [RECV_RING_GPA, POST_RING_GPA), guest
        // memory, no Rust object). The VMM filled it before advancing recv_head (read above,
        // acquire fence), and does not touch it again until recv_tail passes it.
        // RecvEntry is made of integers: any bytes are a valid value.
        let entry = unsafe { ptr::read_volatile(p) };
        // The entry is read before the VMM may reuse its slot.
        fence(Ordering::Release);
        self.recv_tail = self.recv_tail.wrapping_add(1);
        header_set!(recv_tail, self.recv_tail);
        compiler_fence(Ordering::SeqCst);
        self.account_landing(&entry);
        Some(entry)
    }

    /// Takes the next entry of the receive ring, blocking in the VMM if there is none: reads
    /// [`IPC_RECV_WAIT`] (one exit), which returns once an entry is queued or after the
    /// header's `wait_timeout_us`. `None` after a timeout.
    pub fn recv_wait(&mut self) -> Option<RecvEntry> {
        if let Some(entry) = self.recv_poll() {
            return Some(entry);
        }
        let queued = mmio_read(IPC_RECV_WAIT);
        let entry = self.recv_poll();
        if (queued != 0) != entry.is_some() {
            self.wait_mismatches += 1;
        }
        entry
    }

    /// How often [`IPC_RECV_WAIT`] returned a count that disagreed with the ring (nonzero
    /// with an empty ring, or 0 with an entry queued).
    pub fn wait_mismatches(&self) -> u64 {
        self.wait_mismatches
    }

    /// How the landing extents of the entry last returned by
    /// [`Ipc::recv_poll`]/[`Ipc::recv_wait`] compare with the areas this VM posted.
    pub fn last_landing(&self) -> Landing {
        self.last_landing
    }

    /// Entries so far whose landing extents were not the next posted areas.
    pub fn landing_mismatches(&self) -> u64 {
        self.landing_mismatches
    }

    /// Checks `entry`'s landing extents against the posted areas from `post_seen` on: the
    /// VMM fills the next posted areas in order, from their first page, each one whole except
    /// the last, which it may use in part. Then accounts for the areas the entry took.
    fn account_landing(&mut self, entry: &RecvEntry) {
        let landing = entry.landing();
        let mut result = Landing::OK;
        for (i, got) in landing.iter().enumerate() {
            let index = self.post_seen.wrapping_add(i as u32);
            let posted = if index.wrapping_sub(self.post_head) as i32 >= 0 {
                // Not posted at all.
                Extent::default()
            } else {
                // SAFETY: a post-ring slot (inside [POST_RING_GPA, IPC_END_GPA), guest
                // memory); `post` never overwrites a slot this VM has not accounted for
                // here, so it still holds what was posted (the VMM writes only `status`).
                let p = unsafe { ptr::read_volatile(post_slot_ptr(index)) };
                Extent {
                    gpa: p.gpa,
                    pages: p.pages,
                    reserved: 0,
                }
            };
            let last = i + 1 == landing.len();
            let fits = if last {
                got.pages >= 1 && got.pages <= posted.pages
            } else {
                got.pages == posted.pages
            };
            if got.gpa != posted.gpa || !fits {
                result = Landing {
                    ok: false,
                    index: i as u32,
                    posted,
                    got: *got,
                };
                break;
            }
        }
        if !result.ok {
            self.landing_mismatches += 1;
        }
        self.post_seen = self.post_seen.wrapping_add(landing.len() as u32);
        // Never past the VMM's post_tail: after [`Ipc::resync_posts`] an entry's landing
        // areas may already be counted, and a slot is only free once the VMM retired it.
        let tail = header_get!(post_tail);
        if self.post_seen.wrapping_sub(tail) as i32 > 0 {
            self.post_seen = tail;
        }
        // A VMM that used more areas than were posted must not make `post` overwrite
        // unposted slots.
        if self.post_seen.wrapping_sub(self.post_head) as i32 > 0 {
            self.post_seen = self.post_head;
        }
        self.last_landing = result;
    }

    /// Makes the send ring and the post ring present and writable before a measured phase:
    /// flushes the send ring if it holds anything (one exit), then rewrites one word of
    /// every send-ring slot and reads the post ring. No descriptor is placed.
    pub fn prefault_rings(&mut self) {
        if self.pending() != 0 {
            self.flush();
        }
        for index in 0..SEND_RING_LEN {
            let p = send_slot_ptr(index);
            // SAFETY: `p` is a send-ring slot; no descriptor is pending (flushed above), so
            // every slot is the guest's, and the VMM reads none while this vCPU runs.
            unsafe {
                let v = ptr::read_volatile(addr_of!((*p).reserved));
                ptr::write_volatile(addr_of_mut!((*p).reserved), v);
            }
        }
        for index in 0..POST_RING_LEN {
            // SAFETY: a post-ring slot (guest memory); a read changes nothing.
            unsafe { ptr::read_volatile(post_slot_ptr(index)) };
        }
        compiler_fence(Ordering::SeqCst);
    }

    /// Free slots in the post ring: areas that can be posted now.
    pub fn post_room(&self) -> u32 {
        // Counted from the entries this VM has seen used (`post_seen`), which the VMM's
        // post_tail can only be ahead of: slots not yet accounted for are not overwritten.
        POST_RING_LEN.saturating_sub(self.post_head.wrapping_sub(self.post_seen))
    }

    /// The guest's `post_head`: the index the next posted entry gets.
    pub fn post_head(&self) -> u32 {
        self.post_head
    }

    /// The VMM's `post_tail`: posted entries it has taken (used, or skipped with a status).
    pub fn post_tail(&self) -> u32 {
        header_get!(post_tail)
    }

    /// The raw status word of the posted entry `index` ([`IpcStatus::Pending`] until the VMM
    /// takes it). Panics unless `index` is one of the last [`POST_RING_LEN`] entries posted.
    pub fn post_status(&self, index: u32) -> u32 {
        let age = self.post_head.wrapping_sub(index);
        assert!(
            (1..=POST_RING_LEN).contains(&age),
            "post {index} is not among the last {POST_RING_LEN} posted (post_head {})",
            self.post_head
        );
        let p = post_slot_ptr(index);
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `p` is a post-ring slot (guest memory, no Rust object); the status is a
        // u32, valid for any bytes.
        unsafe { ptr::read_volatile(addr_of!((*p).status)) }
    }

    /// Posted areas not yet used, as far as this VM has seen.
    pub fn posted(&self) -> u32 {
        self.post_head.wrapping_sub(self.post_seen)
    }

    /// Posts the `pages` pages from `gpa` as one landing area (remap) or buffer (copy), its
    /// status [`IpcStatus::Pending`]; `false` (and nothing posted) if the post ring is full.
    /// Panics unless they are pages of free memory.
    ///
    /// A posted area belongs to the VMM until a received entry names it: in remap mode its
    /// contents are discarded, in copy mode overwritten.
    pub fn post(&mut self, gpa: u64, pages: u32) -> bool {
        assert!(
            is_free_range(gpa, u64::from(pages)),
            "{gpa:#x} + {pages} pages is not in free memory: it cannot be posted"
        );
        self.post_raw(gpa, pages)
    }

    /// Posts the entry `[gpa, pages]` as is, its status [`IpcStatus::Pending`]; `false` (and
    /// nothing posted) if the post ring is full. Unlike [`Ipc::post`] nothing is checked:
    /// hostile probes use this to post entries that break the rules (the VMM must skip them
    /// with a status, and never writes to them).
    pub fn post_raw(&mut self, gpa: u64, pages: u32) -> bool {
        if self.post_room() == 0 {
            return false;
        }
        let entry = PostEntry {
            gpa,
            pages,
            status: IpcStatus::Pending as u32,
        };
        // SAFETY: a post-ring slot (guest memory, no Rust object); it is free (post_room).
        unsafe { ptr::write_volatile(post_slot_ptr(self.post_head), entry) };
        fence(Ordering::Release);
        self.post_head = self.post_head.wrapping_add(1);
        header_set!(post_head, self.post_head);
        compiler_fence(Ordering::SeqCst);
        true
    }

    /// Posts the landing extents of `entry` again, one area each (what a received message
    /// took: this runtime's receivers post areas of the message's size, which a message
    /// fills whole), skipping any that are not in free memory; returns how many were posted.
    pub fn repost(&mut self, entry: &RecvEntry) -> u32 {
        self.repost_extents(entry.landing())
    }

    /// Posts `extents` again, one area each, skipping any that are not in free memory;
    /// returns how many were posted ([`Ipc::repost`]).
    pub fn repost_extents(&mut self, extents: &[Extent]) -> u32 {
        let mut posted = 0;
        for e in extents {
            if is_free_range(e.gpa, u64::from(e.pages)) && self.post(e.gpa, e.pages) {
                posted += 1;
            }
        }
        posted
    }

    /// Posts areas from `pool` until the post ring is full or the pool is empty; returns
    /// how many were posted.
    pub fn post_from(&mut self, pool: &mut PagePool) -> u32 {
        let mut posted = 0;
        while self.post_room() > 0 {
            let Some(gpa) = pool.take() else { break };
            self.post(gpa, pool.area_pages());
            posted += 1;
        }
        posted
    }
}
