//! The shared-memory transport (`shmem`), the floor every other transport is compared with:
//! one region mapped into every VM of the run (ivshmem-like) at [`SHMEM_GPA`], holding one
//! single-producer single-consumer ring per ordered pair of VMs. Both sides poll: no exits,
//! no TLB flushes, and no isolation (every VM can read and write all of the region).
//!
//! The ring from VM `src` to VM `dst` starts at [`ring_gpa`]`(src, dst)`: a control page
//! ([`RingControl`] at offset 0, the [`SlotHeader`]s at [`SLOT_HEADERS_OFFSET`]), then
//! [`RING_SLOTS`] data slots of [`SLOT_BYTES`] each. Indices are free-running `u64`s: message
//! `i` lives in slot `i % RING_SLOTS`. The producer writes the slot's data and header, then
//! (release) advances `head`; the consumer reads `head`, then (acquire) the header and data,
//! then (release) advances `tail`. A ring is full when `head - tail == RING_SLOTS`.

use crate::{MAX_VMS, PAGE_SIZE};

/// GPA of the shared region (above the largest guest memory, below the MMIO devices).
pub const SHMEM_GPA: u64 = 0xc000_0000;
/// Slots in each ring.
pub const RING_SLOTS: u64 = 32;
/// Bytes of payload one slot holds (page-aligned).
pub const SLOT_BYTES: u64 = 64 * 1024;
/// Offset of the slot headers in a ring's control page.
pub const SLOT_HEADERS_OFFSET: u64 = 1024;
/// Bytes of one ring: the control page and the slots.
pub const RING_BYTES: u64 = PAGE_SIZE + RING_SLOTS * SLOT_BYTES;
/// Size of the region: a ring for every (src, dst) pair of [`MAX_VMS`] VMs (those with
/// `src == dst` are unused). Pages are allocated by the host only when touched.
pub const SHMEM_SIZE: u64 = (MAX_VMS * MAX_VMS) as u64 * RING_BYTES;

/// GPA of the ring from `src` to `dst`.
pub const fn ring_gpa(src: u32, dst: u32) -> u64 {
    SHMEM_GPA + (src as u64 * MAX_VMS as u64 + dst as u64) * RING_BYTES
}

/// GPA of the data of slot `slot` of the ring from `src` to `dst`.
pub const fn slot_gpa(src: u32, dst: u32, slot: u64) -> u64 {
    ring_gpa(src, dst) + PAGE_SIZE + (slot % RING_SLOTS) * SLOT_BYTES
}

/// The indices of a ring, each on its own cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RingControl {
    /// Messages produced (written by the producer only).
    pub head: u64,
    /// Padding to the next cache line.
    pub pad0: [u64; 7],
    /// Messages consumed (written by the consumer only).
    pub tail: u64,
    /// Padding to the next cache line.
    pub pad1: [u64; 7],
}

/// What the producer writes about the message in a slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotHeader {
    /// Sequence number.
    pub seq: u64,
    /// Source VM.
    pub src: u32,
    /// Destination VM.
    pub dst: u32,
    /// Payload bytes in the slot.
    pub len: u32,
    /// Flags (none defined).
    pub flags: u32,
}

const _: () = assert!(core::mem::size_of::<RingControl>() == 128);
const _: () = assert!(core::mem::size_of::<SlotHeader>() == 24);
const _: () = assert!(
    SLOT_HEADERS_OFFSET + RING_SLOTS * 32 <= PAGE_SIZE,
    "slot headers (32-byte stride) fit the control page"
);
const _: () = assert!(SHMEM_GPA + SHMEM_SIZE <= crate::MMIO_BASE);
const _: () = assert!(SHMEM_GPA >= crate::MAX_MEM_SIZE);

/// Stride of the slot headers in the control page.
pub const SLOT_HEADER_STRIDE: u64 = 32;

/// GPA of the header of slot `slot` of the ring from `src` to `dst`.
pub const fn slot_header_gpa(src: u32, dst: u32, slot: u64) -> u64 {
    ring_gpa(src, dst) + SLOT_HEADERS_OFFSET + (slot % RING_SLOTS) * SLOT_HEADER_STRIDE
}
