//! Remap IPC (`docs/remap-ipc.md`), ABI version 2: the control structure every VM shares with
//! the VMM, after Intel's "Efficient virtual machine communication via virtual machine queues".
//!
//! A VM sends by placing [`SendDesc`]s in its send ring and advancing `send_head`; the send
//! either requires an immediate exit (the guest writes [`crate::mmio::IPC_DOORBELL`] at once)
//! or is deferred (left in the ring, drained at the VM's next exit to the VMM, in a batch).
//! A message is a list of [`Extent`]s: runs of contiguous guest pages. A receiver offers
//! landing extents in its post ring ([`PostEntry`]). The VMM moves the pages (remap, or copy
//! into the landing extents) and enqueues a [`RecvEntry`] naming source, destination and the
//! landing extents in the receiver's receive ring.
//!
//! Version 1 described a message as a list of up to 16 single pages and posted single pages;
//! version 2 replaces that form: a page list is a list of one-page extents.
//!
//! All rings use free-running `u32` indices: entry `i` lives in slot `i % LEN`; the producer
//! advances its head after writing the entry, the consumer its tail after reading it.

use crate::PAGE_SIZE;

/// The ABI version of this structure, in [`IpcHeader::version`].
pub const IPC_ABI_VERSION: u32 = 2;

/// GPA of the [`IpcHeader`] (the first page of the control structure).
pub const IPC_HEADER_GPA: u64 = crate::layout::TRANSPORT_GPA;
/// GPA of the send ring: [`SEND_RING_LEN`] [`SendDesc`]s.
pub const SEND_RING_GPA: u64 = IPC_HEADER_GPA + PAGE_SIZE;
/// GPA of the receive ring: [`RECV_RING_LEN`] [`RecvEntry`]s.
pub const RECV_RING_GPA: u64 = SEND_RING_GPA + 3 * PAGE_SIZE;
/// GPA of the post ring: [`POST_RING_LEN`] [`PostEntry`]s, the landing extents the receiver
/// offers.
pub const POST_RING_GPA: u64 = RECV_RING_GPA + 3 * PAGE_SIZE;
/// First GPA above the control structure.
pub const IPC_END_GPA: u64 = POST_RING_GPA + PAGE_SIZE;

/// Slots in the send ring.
pub const SEND_RING_LEN: u32 = 64;
/// Slots in the receive ring: the bound of a VM's receive queue.
pub const RECV_RING_LEN: u32 = 64;
/// Slots in the post ring.
pub const POST_RING_LEN: u32 = 256;
/// Most extents in one send descriptor, and landing extents in one receive entry.
pub const MAX_EXTENTS: usize = 8;
/// Most pages in one message (8 MiB).
pub const MAX_MSG_PAGES: u32 = 2048;
/// Pages in a 2 MiB huge page: the unit `remap-huge` moves.
pub const HUGE_PAGES: u32 = 512;
/// Bytes in a 2 MiB huge page.
pub const HUGE_PAGE_SIZE: u64 = HUGE_PAGES as u64 * PAGE_SIZE;

/// Value of [`IpcHeader::magic`] once the VMM has set the structure up: "PFIPCQ02".
pub const IPC_MAGIC: u64 = u64::from_le_bytes(*b"PFIPCQ02");

/// [`SendDesc::flags`]: this send requires an immediate exit even in a deferred stream; the
/// VMM drains the ring at once when it sees one (see [`crate::mmio::IPC_DOORBELL`]).
pub const FLAG_URGENT: u32 = 1;

/// [`crate::mmio::IPC_DOORBELL`] value: a send that requires an immediate exit.
pub const DOORBELL_SEND: u64 = 1;
/// [`crate::mmio::IPC_DOORBELL`] value: drain whatever the ring holds (end of a stream).
pub const DOORBELL_FLUSH: u64 = 2;

/// The header page of a VM's control structure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpcHeader {
    /// [`IPC_MAGIC`], written by the VMM when the run has an IPC transport; 0 otherwise.
    pub magic: u64,
    /// Written by the guest: the batch size B of its deferred sends (1..=[`SEND_RING_LEN`];
    /// 0 = 1). The VMM drains at a send doorbell only when the ring holds at least B
    /// descriptors or one of them is urgent (a flush doorbell and other exits always drain).
    pub batch: u32,
    /// VMM: [`IPC_ABI_VERSION`].
    pub version: u32,
    /// Written by the guest: timeout of a blocking receive, microseconds (0 = 1 s).
    pub wait_timeout_us: u64,
    /// Guest: descriptors placed in the send ring.
    pub send_head: u32,
    /// VMM: descriptors consumed (each has its status set).
    pub send_tail: u32,
    /// VMM: entries placed in the receive ring.
    pub recv_head: u32,
    /// Guest: entries consumed.
    pub recv_tail: u32,
    /// Guest: landing extents posted in the post ring.
    pub post_head: u32,
    /// VMM: posted entries taken (used, or refused with a status).
    pub post_tail: u32,
    /// VMM: drains of this VM's send ring that consumed at least one descriptor.
    pub drains: u64,
    /// VMM: messages this VM sent successfully.
    pub sent: u64,
    /// VMM: messages delivered to this VM.
    pub received: u64,
    /// VMM: descriptors of this VM refused with a status other than Ok.
    pub refused: u64,
    /// VMM: the last ring-level error ([`IpcStatus`] value, 0 = none), e.g. malformed indices.
    pub ring_error: u32,
    /// Reserved.
    pub reserved1: u32,
    /// VMM: posted entries refused with a status other than Ok (each is skipped, once).
    pub post_refused: u64,
}

/// A run of `pages` contiguous guest pages from `gpa`: a part of a message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// GPA of the first page (page-aligned).
    pub gpa: u64,
    /// Pages in the run (at least 1).
    pub pages: u32,
    /// Reserved, 0 (ignored by the VMM).
    pub reserved: u32,
}

impl Extent {
    /// The GPA one past the extent's last byte.
    pub const fn end(&self) -> u64 {
        self.gpa + self.pages as u64 * PAGE_SIZE
    }
}

/// One landing extent the receiver offers: placed by the receiver in its post ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostEntry {
    /// GPA of the first page (page-aligned; 2 MiB-aligned under `remap-huge`).
    pub gpa: u64,
    /// Pages offered (at least 1; a multiple of [`HUGE_PAGES`] under `remap-huge`).
    pub pages: u32,
    /// Written by the VMM when it takes the entry ([`IpcStatus`]: Ok when a message landed
    /// in it, else why it was skipped); the guest writes [`IpcStatus::Pending`] before
    /// publishing it.
    pub status: u32,
}

/// One message to send: placed by the sender in its send ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendDesc {
    /// The sender's sequence number, delivered unchanged.
    pub seq: u64,
    /// Destination VM id.
    pub dst: u32,
    /// [`FLAG_URGENT`] or 0.
    pub flags: u32,
    /// Message length in bytes (1..=pages * 4096, where pages is the extents' total).
    pub len: u32,
    /// Extents in `extents` (1..=[`MAX_EXTENTS`]).
    pub nextents: u32,
    /// Written by the VMM when it consumes the descriptor ([`IpcStatus`]); the guest writes
    /// [`IpcStatus::Pending`] before publishing it.
    pub status: u32,
    /// Reserved.
    pub reserved: u32,
    /// The message's pages in the sender, in message order: byte `i` of the message is byte
    /// `i % 4096` of the `i / 4096`-th page of the extents taken one after another.
    pub extents: [Extent; MAX_EXTENTS],
}

/// One delivered message: placed by the VMM in the receiver's receive ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvEntry {
    /// The sender's sequence number.
    pub seq: u64,
    /// Source VM id.
    pub src: u32,
    /// Destination VM id (the receiver).
    pub dst: u32,
    /// Message length in bytes.
    pub len: u32,
    /// Extents in `extents`.
    pub nextents: u32,
    /// Where the message now lives in the receiver, in message order: the first pages of the
    /// posted landing extents it took.
    pub extents: [Extent; MAX_EXTENTS],
}

impl RecvEntry {
    /// The landing extents (at most [`MAX_EXTENTS`], whatever `nextents` says).
    pub fn landing(&self) -> &[Extent] {
        &self.extents[..(self.nextents as usize).min(MAX_EXTENTS)]
    }
}

/// Pages in a list of extents.
pub fn total_pages(extents: &[Extent]) -> u64 {
    extents.iter().map(|e| u64::from(e.pages)).sum()
}

/// Status of a send descriptor, of a posted entry ([`PostEntry::status`]), or of a ring (in
/// [`IpcHeader::ring_error`]). `docs/remap-ipc.md` gives the order in which the VMM checks.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcStatus {
    /// Not yet consumed by the VMM.
    Pending = 0,
    /// Delivered (a descriptor), or a message landed in it (a posted entry).
    Ok = 1,
    /// An extent that reaches into the VMM's reserved range below 0x20_0000 (page tables,
    /// control structure, stack).
    NotOwned = 2,
    /// An extent with 0 pages, not page-aligned, or reaching outside guest memory.
    BadAddress = 3,
    /// No VM with that id in the run.
    UnknownDest = 4,
    /// Length 0, or more than the extents' pages * 4096.
    BadLength = 5,
    /// The extents hold more than [`MAX_MSG_PAGES`] pages.
    TooManyPages = 6,
    /// The receiver's queue is full or it has not posted enough landing pages: nothing was
    /// moved; send again later (backpressure).
    QueueFull = 7,
    /// Destination is the sender itself: refused.
    SelfSend = 8,
    /// Two extents of one descriptor overlap; or a posted entry overlaps another landing
    /// extent of the same message.
    Overlap = 9,
    /// Malformed ring indices (head more than the ring length ahead of tail): nothing consumed.
    BadRing = 10,
    /// `nextents` is 0 or more than [`MAX_EXTENTS`].
    TooManyExtents = 11,
    /// `remap-huge` only: an extent (sent or posted) that is not whole 2 MiB huge pages
    /// (its GPA 2 MiB-aligned and its pages a multiple of [`HUGE_PAGES`]).
    NotHuge = 12,
    /// The first [`MAX_EXTENTS`] usable posted entries hold fewer pages than the message:
    /// nothing was moved. Entries are used in posting order, so the message fits only once
    /// the receiver's first posted entries are larger (smaller messages may use them up).
    LandingTooSmall = 13,
    /// A posted entry that overlaps the landing extents of a message the receiver has not
    /// consumed yet (between its `recv_tail` and `recv_head`).
    Busy = 14,
    /// The destination VM has ended: nothing moved, the sender keeps its pages, and every
    /// later send to it gets this status too.
    DestDown = 15,
}

/// Every status, in value order.
pub const IPC_STATUSES: [IpcStatus; 16] = [
    IpcStatus::Pending,
    IpcStatus::Ok,
    IpcStatus::NotOwned,
    IpcStatus::BadAddress,
    IpcStatus::UnknownDest,
    IpcStatus::BadLength,
    IpcStatus::TooManyPages,
    IpcStatus::QueueFull,
    IpcStatus::SelfSend,
    IpcStatus::Overlap,
    IpcStatus::BadRing,
    IpcStatus::TooManyExtents,
    IpcStatus::NotHuge,
    IpcStatus::LandingTooSmall,
    IpcStatus::Busy,
    IpcStatus::DestDown,
];

impl IpcStatus {
    /// Decodes a status value.
    pub const fn from_u32(v: u32) -> Option<IpcStatus> {
        if (v as usize) < IPC_STATUSES.len() {
            Some(IPC_STATUSES[v as usize])
        } else {
            None
        }
    }

    /// A short snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            IpcStatus::Pending => "pending",
            IpcStatus::Ok => "ok",
            IpcStatus::NotOwned => "not_owned",
            IpcStatus::BadAddress => "bad_address",
            IpcStatus::UnknownDest => "unknown_dest",
            IpcStatus::BadLength => "bad_length",
            IpcStatus::TooManyPages => "too_many_pages",
            IpcStatus::QueueFull => "queue_full",
            IpcStatus::SelfSend => "self_send",
            IpcStatus::Overlap => "overlap",
            IpcStatus::BadRing => "bad_ring",
            IpcStatus::TooManyExtents => "too_many_extents",
            IpcStatus::NotHuge => "not_huge",
            IpcStatus::LandingTooSmall => "landing_too_small",
            IpcStatus::Busy => "busy",
            IpcStatus::DestDown => "dest_down",
        }
    }
}

const _: () = assert!(core::mem::size_of::<IpcHeader>() == 96);
const _: () = assert!(core::mem::size_of::<Extent>() == 16);
const _: () = assert!(core::mem::size_of::<PostEntry>() == 16);
const _: () = assert!(core::mem::size_of::<SendDesc>() == 160);
const _: () = assert!(core::mem::size_of::<RecvEntry>() == 152);
const _: () = assert!(SEND_RING_LEN as u64 * 160 <= 3 * PAGE_SIZE);
const _: () = assert!(RECV_RING_LEN as u64 * 152 <= 3 * PAGE_SIZE);
const _: () = assert!(POST_RING_LEN as u64 * 16 <= PAGE_SIZE);
const _: () = assert!(IPC_END_GPA <= crate::layout::STACK_GUARD_GPA);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decode_to_themselves_and_have_distinct_names() {
        for (v, s) in IPC_STATUSES.iter().enumerate() {
            assert_eq!(*s as u32, v as u32);
            assert_eq!(IpcStatus::from_u32(v as u32), Some(*s));
        }
        assert_eq!(IpcStatus::from_u32(IPC_STATUSES.len() as u32), None);
        for (i, a) in IPC_STATUSES.iter().enumerate() {
            assert!(
                IPC_STATUSES[..i].iter().all(|b| b.name() != a.name()),
                "{a:?}"
            );
        }
    }
}
