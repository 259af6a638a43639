//! Remap IPC (`docs/remap-ipc.md`): the control structure every VM shares with the VMM, after
//! Intel's "Efficient virtual machine communication via virtual machine queues".
//!
//! A VM sends by placing [`SendDesc`]s in its send ring and advancing `send_head`; the send
//! either requires an immediate exit (the guest writes [`crate::mmio::IPC_DOORBELL`] at once)
//! or is deferred (left in the ring, drained at the VM's next exit to the VMM, in a batch).
//! The VMM moves the pages (remap, or copy into pages the receiver posted) and enqueues a
//! [`RecvEntry`] naming source and destination in the receiver's receive ring.
//!
//! All rings use free-running `u32` indices: entry `i` lives in slot `i % LEN`; the producer
//! advances its head after writing the entry, the consumer its tail after reading it.

use crate::PAGE_SIZE;

/// GPA of the [`IpcHeader`] (the first page of the control structure).
pub const IPC_HEADER_GPA: u64 = crate::layout::TRANSPORT_GPA;
/// GPA of the send ring: [`SEND_RING_LEN`] [`SendDesc`]s.
pub const SEND_RING_GPA: u64 = IPC_HEADER_GPA + PAGE_SIZE;
/// GPA of the receive ring: [`RECV_RING_LEN`] [`RecvEntry`]s.
pub const RECV_RING_GPA: u64 = SEND_RING_GPA + 3 * PAGE_SIZE;
/// GPA of the post ring: [`POST_RING_LEN`] `u64` GPAs of pages the receiver offers as landing
/// pages (remap) or buffers (copy).
pub const POST_RING_GPA: u64 = RECV_RING_GPA + 3 * PAGE_SIZE;
/// First GPA above the control structure.
pub const IPC_END_GPA: u64 = POST_RING_GPA + PAGE_SIZE;

/// Slots in the send ring.
pub const SEND_RING_LEN: u32 = 64;
/// Slots in the receive ring: the bound of a VM's receive queue.
pub const RECV_RING_LEN: u32 = 64;
/// Slots in the post ring.
pub const POST_RING_LEN: u32 = 256;
/// Most pages in one message (a scatter list).
pub const MAX_MSG_PAGES: usize = 16;

/// Value of [`IpcHeader::magic`] once the VMM has set the structure up: "PFIPCQ01".
pub const IPC_MAGIC: u64 = u64::from_le_bytes(*b"PFIPCQ01");

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
    /// Reserved, 0.
    pub reserved0: u32,
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
    /// Guest: pages posted in the post ring.
    pub post_head: u32,
    /// VMM: posted pages used.
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
    /// Message length in bytes (1..=npages * 4096).
    pub len: u32,
    /// Pages in `pages` (1..=[`MAX_MSG_PAGES`]).
    pub npages: u32,
    /// Written by the VMM when it consumes the descriptor ([`IpcStatus`]); the guest writes
    /// [`IpcStatus::Pending`] before publishing it.
    pub status: u32,
    /// Reserved.
    pub reserved: u32,
    /// Page-aligned GPAs of the message's pages in the sender.
    pub pages: [u64; MAX_MSG_PAGES],
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
    /// Pages in `pages`.
    pub npages: u32,
    /// GPAs in the receiver where the message now lives (pages it had posted).
    pub pages: [u64; MAX_MSG_PAGES],
}

/// Status of a send descriptor (or of a ring, in [`IpcHeader::ring_error`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcStatus {
    /// Not yet consumed by the VMM.
    Pending = 0,
    /// Delivered.
    Ok = 1,
    /// A page the sender may not send: in the VMM's reserved range below 0x20_0000
    /// (page tables, control structure, stack).
    NotOwned = 2,
    /// A page address outside guest memory or not page-aligned.
    BadAddress = 3,
    /// No VM with that id in the run.
    UnknownDest = 4,
    /// Length 0, or more than npages * 4096.
    BadLength = 5,
    /// npages 0 or more than [`MAX_MSG_PAGES`].
    TooManyPages = 6,
    /// The receiver's queue is full or it has not posted enough pages: nothing was moved;
    /// send again later (backpressure).
    QueueFull = 7,
    /// Destination is the sender itself: refused.
    SelfSend = 8,
    /// The same page twice in one descriptor.
    DuplicatePage = 9,
    /// Malformed ring indices (head more than the ring length ahead of tail): nothing consumed.
    BadRing = 10,
}

impl IpcStatus {
    /// Decodes a status value.
    pub const fn from_u32(v: u32) -> Option<IpcStatus> {
        Some(match v {
            0 => IpcStatus::Pending,
            1 => IpcStatus::Ok,
            2 => IpcStatus::NotOwned,
            3 => IpcStatus::BadAddress,
            4 => IpcStatus::UnknownDest,
            5 => IpcStatus::BadLength,
            6 => IpcStatus::TooManyPages,
            7 => IpcStatus::QueueFull,
            8 => IpcStatus::SelfSend,
            9 => IpcStatus::DuplicatePage,
            10 => IpcStatus::BadRing,
            _ => return None,
        })
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
            IpcStatus::DuplicatePage => "duplicate_page",
            IpcStatus::BadRing => "bad_ring",
        }
    }
}

const _: () = assert!(core::mem::size_of::<IpcHeader>() == 88);
const _: () = assert!(core::mem::size_of::<SendDesc>() == 160);
const _: () = assert!(core::mem::size_of::<RecvEntry>() == 152);
const _: () = assert!(SEND_RING_LEN as u64 * 160 <= 3 * PAGE_SIZE);
const _: () = assert!(RECV_RING_LEN as u64 * 152 <= 3 * PAGE_SIZE);
const _: () = assert!(POST_RING_LEN as u64 * 8 <= PAGE_SIZE);
const _: () = assert!(IPC_END_GPA <= crate::layout::STACK_GUARD_GPA);
