//! One split virtqueue (virtio 1.2, 2.7), driver side, in free guest memory.
//!
//! Layout (each part page aligned, in one allocation, zeroed):
//!
//! ```text
//! descriptor table   16 * size bytes: addr u64, len u32, flags u16, next u16
//! available ring     flags u16, idx u16, ring[size] u16, used_event u16
//! used ring          flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16
//! ```

use core::ptr;
use core::sync::atomic::{compiler_fence, fence, Ordering};

use pageflip_abi::virtio::{
    need_event, REG_QUEUE_DESC_HIGH, REG_QUEUE_DESC_LOW, REG_QUEUE_DEVICE_HIGH,
    REG_QUEUE_DEVICE_LOW, REG_QUEUE_DRIVER_HIGH, REG_QUEUE_DRIVER_LOW, REG_QUEUE_NUM,
    REG_QUEUE_NUM_MAX, REG_QUEUE_READY, VIRTQ_USED_F_NO_NOTIFY,
};
use pageflip_abi::PAGE_SIZE;

use super::{InitError, Transport};
use crate::arena::{zero_pages, Arena};

/// Largest queue size [`Virtqueue::alloc`] lays out (above the device's `QueueNumMax`, so
/// that probes can offer a queue the device must refuse).
pub const MAX_ALLOC_QUEUE_SIZE: u32 = 1024;

/// One descriptor of the descriptor table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Guest physical address of the buffer.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// `VIRTQ_DESC_F_*` flags.
    pub flags: u16,
    /// The next descriptor of the chain (if flags has NEXT).
    pub next: u16,
}

/// Stores `d` at GPA `at` in the split-queue layout (2.7.5: addr u64, len u32, flags u16,
/// next u16): a descriptor table's entry, or an indirect table's.
///
/// # Safety
///
/// `[at, at + 16)` must be memory this guest may write, 8-aligned, holding no Rust object.
pub unsafe fn store_desc(at: u64, d: Desc) {
    // SAFETY: the caller's promise.
    unsafe {
        ptr::write_volatile(at as *mut u64, d.addr);
        ptr::write_volatile((at + 8) as *mut u32, d.len);
        ptr::write_volatile((at + 12) as *mut u16, d.flags);
        ptr::write_volatile((at + 14) as *mut u16, d.next);
    }
}

/// One element of the used ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedElem {
    /// Head descriptor of the chain the device used (as the device wrote it: not checked).
    pub id: u32,
    /// Bytes the device wrote into the chain's device-writable buffers.
    pub len: u32,
}

/// The driver side of one split virtqueue.
///
/// Keeps its own copies of the indices it owns (the available index, the used elements
/// taken) and writes them to the rings; reads the device's (used index, `avail_event`, used
/// flags) from memory each time.
#[derive(Debug)]
pub struct Virtqueue {
    queue: u32,
    size: u32,
    desc: u64,
    avail: u64,
    used: u64,
    event_idx: bool,
    /// The available index (free running), as last written to the ring.
    avail_idx: u16,
    /// The available index at the last notification decision.
    kicked_idx: u16,
    /// Used elements taken (free running).
    last_used: u16,
    notifications: u64,
    suppressed: u64,
}

/// Bytes of the descriptor table, available ring and used ring of a `size`-entry queue.
const fn ring_bytes(size: u32) -> (u64, u64, u64) {
    let size = size as u64;
    (16 * size, 6 + 2 * size, 6 + 8 * size)
}

impl Virtqueue {
    /// Bytes [`Virtqueue::alloc`] takes from the arena for a `size`-entry queue.
    pub const fn bytes_for(size: u32) -> u64 {
        let (d, a, u) = ring_bytes(size);
        (d.div_ceil(PAGE_SIZE) + a.div_ceil(PAGE_SIZE) + u.div_ceil(PAGE_SIZE)) * PAGE_SIZE
    }

    /// Lays out queue `queue` with `size` entries (1 to [`MAX_ALLOC_QUEUE_SIZE`]; the device
    /// takes powers of two up to its `QueueNumMax`) in zeroed pages from `arena`. `event_idx`
    /// says whether VIRTIO_F_EVENT_IDX was negotiated (how notifications are decided).
    ///
    /// Panics if `size` is out of range.
    pub fn alloc(
        arena: &mut Arena,
        queue: u32,
        size: u32,
        event_idx: bool,
    ) -> Result<Virtqueue, InitError> {
        assert!(
            (1..=MAX_ALLOC_QUEUE_SIZE).contains(&size),
            "queue size {size} out of range"
        );
        let bytes = Virtqueue::bytes_for(size);
        let left = arena.left();
        let base = arena
            .alloc(bytes / PAGE_SIZE)
            .ok_or(InitError::OutOfMemory {
                needed: bytes,
                left,
            })?;
        zero_pages(base, bytes / PAGE_SIZE);
        let (d, a, _) = ring_bytes(size);
        let desc = base;
        let avail = desc + d.next_multiple_of(PAGE_SIZE);
        let used = avail + a.next_multiple_of(PAGE_SIZE);
        Ok(Virtqueue {
            queue,
            size,
            desc,
            avail,
            used,
            event_idx,
            avail_idx: 0,
            kicked_idx: 0,
            last_used: 0,
            notifications: 0,
            suppressed: 0,
        })
    }

    /// The queue's index.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Its number of entries.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// GPA of the descriptor table.
    pub fn desc_gpa(&self) -> u64 {
        self.desc
    }

    /// GPA of the available ring.
    pub fn avail_gpa(&self) -> u64 {
        self.avail
    }

    /// GPA of the used ring.
    pub fn used_gpa(&self) -> u64 {
        self.used
    }

    /// Whether notifications are decided with VIRTIO_F_EVENT_IDX.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    /// Step 7 for this queue (virtio 1.2 4.2.3.2): selects it, checks that `QueueReady` reads
    /// 0 and that `QueueNumMax` is at least the size, then [`Virtqueue::program`]s it and
    /// checks that `QueueReady` reads 1.
    pub fn setup(&self, t: &Transport) -> Result<(), InitError> {
        let queue = self.queue;
        t.select_queue(queue);
        if t.read(REG_QUEUE_READY) != 0 {
            return Err(InitError::QueueAlreadyReady { queue });
        }
        let max = t.read(REG_QUEUE_NUM_MAX);
        if max < self.size {
            return Err(InitError::QueueTooSmall { queue, max });
        }
        if !self.program(t) {
            return Err(InitError::QueueNotReady { queue });
        }
        Ok(())
    }

    /// Writes the queue registers without any check: `QueueSel`, `QueueNum` = the size, the
    /// three ring addresses, `QueueReady` = 1; returns whether `QueueReady` then reads 1.
    /// (Probes use it to offer queues the device must refuse.)
    pub fn program(&self, t: &Transport) -> bool {
        // The rings were zeroed with plain stores: they reach memory before the device can
        // see their addresses (each register write is a compiler barrier).
        compiler_fence(Ordering::SeqCst);
        t.select_queue(self.queue);
        t.write(REG_QUEUE_NUM, self.size);
        t.write(REG_QUEUE_DESC_LOW, self.desc as u32);
        t.write(REG_QUEUE_DESC_HIGH, (self.desc >> 32) as u32);
        t.write(REG_QUEUE_DRIVER_LOW, self.avail as u32);
        t.write(REG_QUEUE_DRIVER_HIGH, (self.avail >> 32) as u32);
        t.write(REG_QUEUE_DEVICE_LOW, self.used as u32);
        t.write(REG_QUEUE_DEVICE_HIGH, (self.used >> 32) as u32);
        t.write(REG_QUEUE_READY, 1);
        t.read(REG_QUEUE_READY) == 1
    }

    /// Writes descriptor `index` (any values: probes build bad chains). Panics if `index`
    /// is not below the size.
    pub fn write_desc(&mut self, index: u32, d: Desc) {
        assert!(index < self.size, "descriptor {index} outside the table");
        let p = self.desc + u64::from(index) * 16;
        // SAFETY: the descriptor table is free memory this queue owns (from the arena), 16
        // bytes per entry, `index` checked: the stores touch no Rust object. The device only
        // reads it.
        unsafe { store_desc(p, d) };
    }

    /// Makes the chain with head descriptor `head` available: writes it into the next
    /// available-ring entry, then (release fence) the new available index. Does not notify
    /// (see [`Virtqueue::kick`]).
    pub fn publish(&mut self, head: u16) {
        let slot = u32::from(self.avail_idx) % self.size;
        let entry = self.avail + 4 + 2 * u64::from(slot);
        // SAFETY: the available ring is free memory this queue owns; `slot < size` keeps the
        // entry inside it. The device only reads it.
        unsafe { ptr::write_volatile(entry as *mut u16, head) };
        // Descriptors, the entry, and the buffers they name before the index.
        fence(Ordering::Release);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // SAFETY: the available ring's idx field, as above.
        unsafe { ptr::write_volatile((self.avail + 2) as *mut u16, self.avail_idx) };
    }

    /// Notifies the device of the chains published since the last kick if it asked for it
    /// (EVENT_IDX: the available index passed `avail_event`; else: the used ring's NO_NOTIFY
    /// flag is clear). Returns whether it notified; counts notifications made and left out.
    /// Does nothing (and counts nothing) if nothing was published since the last kick.
    pub fn kick(&mut self, t: &Transport) -> bool {
        let new = self.avail_idx;
        let old = self.kicked_idx;
        if new == old {
            return false;
        }
        self.kicked_idx = new;
        // The index store must be visible before the device's fields are read (store-load:
        // a full fence).
        fence(Ordering::SeqCst);
        let needed = if self.event_idx {
            need_event(self.avail_event(), new, old)
        } else {
            self.used_flags() & VIRTQ_USED_F_NO_NOTIFY == 0
        };
        if needed {
            t.notify(self.queue);
            self.notifications += 1;
        } else {
            self.suppressed += 1;
        }
        needed
    }

    /// The used ring's index, as the device last wrote it.
    pub fn used_idx(&self) -> u16 {
        // SAFETY: the used ring is free memory this queue owns; a volatile load of a u16 is
        // valid for any bytes the device wrote.
        unsafe { ptr::read_volatile((self.used + 2) as *const u16) }
    }

    /// The used ring's flags.
    pub fn used_flags(&self) -> u16 {
        // SAFETY: as in `used_idx`.
        unsafe { ptr::read_volatile(self.used as *const u16) }
    }

    /// `avail_event` (after the used ring's entries): the available index past which the
    /// device wants a notification (EVENT_IDX).
    pub fn avail_event(&self) -> u16 {
        let p = self.used + 4 + 8 * u64::from(self.size);
        // SAFETY: as in `used_idx`; the field is inside the used ring's allocation.
        unsafe { ptr::read_volatile(p as *const u16) }
    }

    /// Used elements the device has added that the driver has not taken.
    pub fn used_pending(&self) -> u16 {
        self.used_idx().wrapping_sub(self.last_used)
    }

    /// Takes the next used element, if the device added one. With EVENT_IDX, then writes
    /// `used_event` = the elements taken (the device would notify for the next one).
    pub fn pop_used(&mut self) -> Option<UsedElem> {
        if self.used_idx() == self.last_used {
            return None;
        }
        // The element (and the buffer it describes) after the index.
        fence(Ordering::Acquire);
        let slot = u32::from(self.last_used) % self.size;
        let p = self.used + 4 + 8 * u64::from(slot);
        // SAFETY: the used ring is free memory this queue owns; `slot < size` keeps the
        // element inside it; volatile loads of u32s are valid for any bytes.
        let (id, len) = unsafe {
            (
                ptr::read_volatile(p as *const u32),
                ptr::read_volatile((p + 4) as *const u32),
            )
        };
        self.last_used = self.last_used.wrapping_add(1);
        if self.event_idx {
            self.set_used_event(self.last_used);
        }
        Some(UsedElem { id, len })
    }

    /// Writes `used_event` (after the available ring's entries): the used index past which
    /// the driver wants a notification (EVENT_IDX).
    pub fn set_used_event(&mut self, value: u16) {
        let p = self.avail + 4 + 2 * u64::from(self.size);
        // SAFETY: the field is inside the available ring's allocation, free memory this
        // queue owns; the device only reads it.
        unsafe { ptr::write_volatile(p as *mut u16, value) };
    }

    /// The available index (chains published, free running).
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// Used elements taken (free running).
    pub fn last_used(&self) -> u16 {
        self.last_used
    }

    /// `QueueNotify` writes made by [`Virtqueue::kick`].
    pub fn notifications(&self) -> u64 {
        self.notifications
    }

    /// Kicks that left the notification out (the device did not ask for it).
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}
