//! The datagram device driver: initialisation, tx chains with their buffers, rx buffers.
//!
//! Buffers (all from the arena, zeroed at init):
//!
//! ```text
//! tx meta page     per tx buffer i, at 32 * i: DgramHeader (24 bytes), status word (4 bytes)
//! tx payloads      per tx buffer i: P contiguous pages (P = pages of max_payload, at least 1)
//! rx buffers       per rx buffer i: 1 + P pages; the header is in the last 24 bytes of the
//!                  first page, the payload starts on the next page
//! ```
//!
//! A tx chain uses descriptors 3i (header, readable), 3i+1 (payload, readable; left out for a
//! 0-byte payload) and 3i+2 (status, writable); descriptors from `3 * depth` up are spare
//! ([`DgramDevice::tx_spare`]), for hand-made chains. Rx buffer i is the one writable
//! descriptor i of the rx queue, header and payload contiguous, so that the payload is page
//! aligned (for [`crate::payload::verify_payload`]) and a device that only handles one-descriptor
//! chains works too.

use core::cell::Cell;
use core::ops::Range;
use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use pageflip_abi::ipc::Extent;
use pageflip_abi::virtio::{
    DgramConfig, DgramHeader, TxStatus, F_EVENT_IDX, HEADER_SIZE, MAX_PAYLOAD, RX_QUEUE,
    STATUS_DEVICE_NEEDS_RESET, STATUS_FAILED, TX_QUEUE, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};
use pageflip_abi::PAGE_SIZE;

use super::{
    queue_size_for, Desc, InitError, Options, Transport, UsedElem, Virtqueue, MAX_DEPTH,
    STATUS_NOT_WRITTEN, TX_CHAIN_DESCS,
};
use crate::arena::{zero_pages, Arena};
use crate::payload::extent;

/// Most pages of one message's payload.
pub const MAX_MSG_PAGES: usize = (MAX_PAYLOAD as u64 / PAGE_SIZE) as usize;

/// Bytes per tx buffer in the tx meta page: header and status word.
const META_STRIDE: u64 = 32;
/// Offset of the status word in a tx buffer's meta slot.
const STATUS_OFFSET: u64 = HEADER_SIZE as u64;
const _: () = assert!(MAX_DEPTH as u64 * META_STRIDE <= PAGE_SIZE);
const _: () = assert!(STATUS_OFFSET + 4 <= META_STRIDE);
const _: () = assert!(MAX_DEPTH < 128);

/// What the driver counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// `QueueNotify` writes (both queues).
    pub notifications: u64,
    /// Notifications left out because the device did not ask for them (both queues).
    pub suppressed: u64,
    /// Tx chains the device used (whatever their status).
    pub tx_completed: u64,
    /// Of those, chains whose status was not Ok (including [`STATUS_NOT_WRITTEN`]).
    pub tx_errors: u64,
    /// The first of those: (seq, status word).
    pub first_tx_error: Option<(u64, u32)>,
    /// Messages received.
    pub rx_received: u64,
    /// Used elements that named no chain the driver had made available (ignored).
    pub bad_used: u64,
    /// Rx used lengths above the buffer's size (clipped).
    pub rx_overlong: u64,
    /// [`DgramDevice::status`] has seen DEVICE_NEEDS_RESET.
    pub needs_reset_seen: bool,
}

/// A received message, its buffer held by the driver until [`DgramDevice::recycle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMsg {
    /// The rx buffer (its descriptor index).
    pub id: u16,
    /// The header as the device wrote it.
    pub header: DgramHeader,
    /// The buffer's payload pages (the first `npages` are valid).
    pub pages: [u64; MAX_MSG_PAGES],
    /// Pages that hold the payload bytes the device wrote.
    pub npages: u32,
    /// The used length: bytes the device wrote (header + payload).
    pub used_len: u32,
}

impl RxMsg {
    /// Payload bytes the device wrote (the used length less the header, within the buffer).
    pub fn payload_len(&self) -> u32 {
        self.used_len.saturating_sub(HEADER_SIZE)
    }

    /// The payload pages (as many as the payload bytes written need).
    pub fn pages(&self) -> &[u64] {
        &self.pages[..self.npages as usize]
    }

    /// The payload pages as one extent (the buffer is contiguous), for
    /// [`crate::payload::verify_payload`].
    pub fn extent(&self) -> Extent {
        extent(self.pages[0], self.npages)
    }
}

/// The driver of this VM's datagram device: rx and tx virtqueues with `depth` buffers each.
#[derive(Debug)]
pub struct DgramDevice {
    t: Transport,
    features: u64,
    config: DgramConfig,
    depth: u32,
    max_payload: u32,
    /// Payload pages per buffer.
    payload_pages: u64,
    rx: Virtqueue,
    tx: Virtqueue,
    tx_meta: u64,
    tx_payload: u64,
    rx_base: u64,
    /// Tx buffers in a chain the device has not used (bit i = buffer i).
    tx_busy: u128,
    /// Rx buffers the device holds.
    rx_busy: u128,
    tx_seq: [u64; MAX_DEPTH as usize],
    /// The rx buffer whose payload tx buffer i's chain sends ([`DgramDevice::forward`]),
    /// recycled when the chain completes; [`NO_RX`]: the chain sends its own payload.
    tx_rx: [u16; MAX_DEPTH as usize],
    /// Cleared by [`DgramDevice::reset`].
    live: bool,
    needs_reset_seen: Cell<bool>,
    stats: DriverStats,
}

/// No rx buffer (in `DgramDevice::tx_rx`).
const NO_RX: u16 = u16::MAX;

/// Memory [`DgramDevice::init`] takes for `depth` buffers of `payload_pages` pages and
/// queues of `size` entries: (bytes of the two queues, bytes of the buffers).
const fn memory_for(depth: u32, payload_pages: u64, size: u32) -> (u64, u64) {
    let queues = 2 * Virtqueue::bytes_for(size);
    let depth = depth as u64;
    let buffers = PAGE_SIZE * (1 + depth * payload_pages + depth * (1 + payload_pages));
    (queues, buffers)
}

impl DgramDevice {
    /// Initialises the device (virtio 1.2 3.1.1): reset (write 0, read back 0), ACKNOWLEDGE,
    /// DRIVER, read the device features, write the driver features (VERSION_1, and
    /// EVENT_IDX if `opts.event_idx` and offered), FEATURES_OK and read it back, set up the
    /// rx and tx queues ([`Virtqueue::setup`]: `QueueReady` 0 before, `QueueNumMax`, size,
    /// addresses, `QueueReady` 1 read back) with [`queue_size_for`]`(depth)` entries, make
    /// `depth` rx buffers of `max_payload` bytes available, DRIVER_OK (read back), then
    /// notify the rx queue if the device asks for it.
    ///
    /// Rings and buffers come from `arena` (zeroed). On a failure after the reset the
    /// driver sets FAILED in the status register.
    pub fn init(
        opts: Options,
        arena: &mut Arena,
        max_payload: u32,
    ) -> Result<DgramDevice, InitError> {
        if opts.depth == 0 || opts.depth > MAX_DEPTH {
            return Err(InitError::BadDepth(opts.depth));
        }
        if max_payload > MAX_PAYLOAD {
            return Err(InitError::BadMaxPayload(max_payload));
        }
        let t = Transport::new()?;
        t.identify()?;
        t.reset()?;
        match DgramDevice::init_after_reset(t, opts, arena, max_payload) {
            Ok(dev) => Ok(dev),
            Err(e) => {
                if let Ok(t) = Transport::new() {
                    t.add_status(STATUS_FAILED);
                }
                Err(e)
            }
        }
    }

    /// [`DgramDevice::init`] from ACKNOWLEDGE on.
    fn init_after_reset(
        t: Transport,
        opts: Options,
        arena: &mut Arena,
        max_payload: u32,
    ) -> Result<DgramDevice, InitError> {
        t.acknowledge();
        let extra = if opts.event_idx { F_EVENT_IDX } else { 0 };
        let features = t.features_to_ask(extra)?;
        t.negotiate(features)?;
        let event_idx = features & F_EVENT_IDX != 0;

        let depth = opts.depth;
        let size = queue_size_for(depth);
        let payload_pages = u64::from(max_payload).div_ceil(PAGE_SIZE).max(1);
        let (queue_bytes, buffer_bytes) = memory_for(depth, payload_pages, size);
        let needed = queue_bytes + buffer_bytes;
        if arena.left() < needed {
            return Err(InitError::OutOfMemory {
                needed,
                left: arena.left(),
            });
        }
        let rx = Virtqueue::alloc(arena, RX_QUEUE, size, event_idx)?;
        rx.setup(&t)?;
        let tx = Virtqueue::alloc(arena, TX_QUEUE, size, event_idx)?;
        tx.setup(&t)?;
        let buffer_pages = buffer_bytes / PAGE_SIZE;
        let base = arena.alloc(buffer_pages).ok_or(InitError::OutOfMemory {
            needed: buffer_bytes,
            left: arena.left(),
        })?;
        zero_pages(base, buffer_pages);
        let depth64 = u64::from(depth);
        let tx_meta = base;
        let tx_payload = tx_meta + PAGE_SIZE;
        let rx_base = tx_payload + depth64 * payload_pages * PAGE_SIZE;
        let config = t.config();

        let mut dev = DgramDevice {
            t,
            features,
            config,
            depth,
            max_payload,
            payload_pages,
            rx,
            tx,
            tx_meta,
            tx_payload,
            rx_base,
            tx_busy: 0,
            rx_busy: 0,
            tx_seq: [0; MAX_DEPTH as usize],
            tx_rx: [NO_RX; MAX_DEPTH as usize],
            live: true,
            needs_reset_seen: Cell::new(false),
            stats: DriverStats::default(),
        };
        for i in 0..depth {
            let d = Desc {
                addr: dev.rx_header_gpa(i),
                len: HEADER_SIZE + max_payload,
                flags: VIRTQ_DESC_F_WRITE,
                next: 0,
            };
            dev.rx.write_desc(i, d);
            dev.rx.publish(i as u16);
            dev.rx_busy |= 1 << i;
        }
        dev.t.driver_ok()?;
        dev.rx.kick(&dev.t);
        Ok(dev)
    }

    /// GPA of rx buffer `i`'s header (the payload follows on the next page).
    fn rx_header_gpa(&self, i: u32) -> u64 {
        self.rx_base + u64::from(i) * (1 + self.payload_pages) * PAGE_SIZE + PAGE_SIZE
            - u64::from(HEADER_SIZE)
    }

    /// GPA of tx buffer `i`'s header.
    fn tx_header_gpa(&self, i: u32) -> u64 {
        self.tx_meta + u64::from(i) * META_STRIDE
    }

    /// GPA of tx buffer `i`'s first payload page.
    fn tx_payload_gpa(&self, i: u32) -> u64 {
        self.tx_payload + u64::from(i) * self.payload_pages * PAGE_SIZE
    }

    /// The negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Whether VIRTIO_F_EVENT_IDX was negotiated.
    pub fn event_idx(&self) -> bool {
        self.features & F_EVENT_IDX != 0
    }

    /// The configuration space, as read during init.
    pub fn config(&self) -> DgramConfig {
        self.config
    }

    /// Messages in flight per queue.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Largest payload of a message sent or received.
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// The register window.
    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// The rx queue (read-only: for its indices and counters).
    pub fn rx_queue(&self) -> &Virtqueue {
        &self.rx
    }

    /// The tx queue (read-only: for its indices and counters).
    pub fn tx_queue(&self) -> &Virtqueue {
        &self.tx
    }

    /// Tx buffers free for [`DgramDevice::send`].
    pub fn tx_free(&self) -> u32 {
        self.depth - self.tx_busy.count_ones()
    }

    /// Tx chains the device has not used yet.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx_busy.count_ones()
    }

    /// Sends a message: writes the header {seq, src = this VM, dst, len, flags} into the
    /// next free tx buffer, calls `fill` with the buffer's payload as one extent (as many
    /// pages as `len` needs, page aligned: `fill_payload(extents, ..)` works), publishes the
    /// chain and notifies the device if it asked for it. `false` if no tx buffer is free
    /// (reap with [`DgramDevice::tx_reap`]) or the device was reset.
    ///
    /// Panics if `len` is above the `max_payload` given to init.
    pub fn send(
        &mut self,
        dst: u32,
        seq: u64,
        len: u32,
        flags: u32,
        fill: impl FnOnce(&[Extent]),
    ) -> bool {
        let Some(i) = self.tx_take(len) else {
            return false;
        };
        let payload = self.tx_payload_gpa(i);
        let npages = u64::from(len).div_ceil(PAGE_SIZE);
        fill(&[extent(payload, npages as u32)]);
        self.tx_publish(i, dst, seq, len, flags, payload, NO_RX);
        true
    }

    /// Sends the payload of the received `msg` on to `dst` without copying it: a tx chain
    /// whose payload descriptor points at the rx buffer's payload (`len` bytes, the header's
    /// {seq, flags} kept, src = this VM). The rx buffer stays with the driver until the
    /// chain completes ([`DgramDevice::tx_reap`]), then goes back to the device as
    /// [`DgramDevice::recycle`] would: after `true`, do not recycle `msg`. `false` if no tx
    /// buffer is free or the device was reset (the buffer is still the caller's).
    ///
    /// Panics if `len` is above the `max_payload` given to init or the payload's pages.
    pub fn forward(&mut self, dst: u32, len: u32, msg: &RxMsg) -> bool {
        assert!(
            u64::from(len) <= u64::from(msg.npages) * PAGE_SIZE,
            "a {len}-byte message does not fit the {} pages received",
            msg.npages
        );
        let Some(i) = self.tx_take(len) else {
            return false;
        };
        let h = msg.header;
        self.tx_publish(i, dst, h.seq, len, h.flags, msg.pages[0], msg.id);
        true
    }

    /// A free tx buffer for a `len`-byte message (`None`: none free, or reset).
    fn tx_take(&self, len: u32) -> Option<u32> {
        assert!(
            len <= self.max_payload,
            "a {len}-byte message is above the driver's max payload {}",
            self.max_payload
        );
        let free = !self.tx_busy & ((1u128 << self.depth) - 1);
        if free == 0 || !self.live {
            return None;
        }
        Some(free.trailing_zeros())
    }

    /// Writes tx buffer `i`'s header and the chain (header, `len` bytes at `payload`,
    /// status), publishes it and notifies the device if it asked for it; `rx` is the rx
    /// buffer to recycle when it completes ([`NO_RX`]: none).
    #[allow(clippy::too_many_arguments)]
    fn tx_publish(
        &mut self,
        i: u32,
        dst: u32,
        seq: u64,
        len: u32,
        flags: u32,
        payload: u64,
        rx: u16,
    ) {
        let header_gpa = self.tx_header_gpa(i);
        let header = DgramHeader {
            seq,
            src: self.config.vm_id,
            dst,
            len,
            flags,
        };
        // SAFETY: the tx meta page is free memory this driver owns; slot i is 32 bytes at an
        // 8-byte aligned offset, and the device does not access it: the buffer is not in a
        // chain the device holds (tx_busy bit clear, `tx_take`).
        unsafe {
            ptr::write_volatile(header_gpa as *mut DgramHeader, header);
            ptr::write_volatile((header_gpa + STATUS_OFFSET) as *mut u32, STATUS_NOT_WRITTEN);
        }
        compiler_fence(Ordering::SeqCst);

        let head = i * TX_CHAIN_DESCS;
        let status_desc = Desc {
            addr: header_gpa + STATUS_OFFSET,
            len: 4,
            flags: VIRTQ_DESC_F_WRITE,
            next: 0,
        };
        let after_header = if len == 0 { head + 2 } else { head + 1 };
        self.tx.write_desc(
            head,
            Desc {
                addr: header_gpa,
                len: HEADER_SIZE,
                flags: VIRTQ_DESC_F_NEXT,
                next: after_header as u16,
            },
        );
        if len != 0 {
            self.tx.write_desc(
                head + 1,
                Desc {
                    addr: payload,
                    len,
                    flags: VIRTQ_DESC_F_NEXT,
                    next: (head + 2) as u16,
                },
            );
        }
        self.tx.write_desc(head + 2, status_desc);
        self.tx_busy |= 1 << i;
        self.tx_seq[i as usize] = seq;
        self.tx_rx[i as usize] = rx;
        self.tx.publish(head as u16);
        self.tx.kick(&self.t);
    }

    /// Accounts for a used tx element: `None` if it completed one of the driver's chains,
    /// else the element (it names no chain of [`DgramDevice::send`]).
    fn complete_tx(&mut self, u: UsedElem) -> Option<UsedElem> {
        let i = u.id / TX_CHAIN_DESCS;
        if u.id % TX_CHAIN_DESCS != 0 || i >= self.depth || self.tx_busy & (1 << i) == 0 {
            return Some(u);
        }
        self.tx_busy &= !(1 << i);
        let rx = core::mem::replace(&mut self.tx_rx[i as usize], NO_RX);
        if rx != NO_RX {
            // The device is done reading the forwarded payload: its rx buffer can take
            // another message.
            self.recycle_id(rx);
        }
        let status = if u.len >= 4 {
            // SAFETY: the status word of tx buffer i in the meta page (free memory this
            // driver owns); the device is done with the chain (it is used).
            unsafe { ptr::read_volatile((self.tx_header_gpa(i) + STATUS_OFFSET) as *const u32) }
        } else {
            STATUS_NOT_WRITTEN
        };
        self.stats.tx_completed += 1;
        if status != TxStatus::Ok as u32 {
            self.stats.tx_errors += 1;
            if self.stats.first_tx_error.is_none() {
                self.stats.first_tx_error = Some((self.tx_seq[i as usize], status));
            }
        }
        None
    }

    /// Takes every used tx chain, frees its buffer and accounts for its status (statuses
    /// other than Ok are counted, the first kept: [`DriverStats::first_tx_error`]). Returns
    /// the chains taken. Used elements that name no chain of [`DgramDevice::send`] are
    /// counted in [`DriverStats::bad_used`] and dropped: do not reap while a hand-made chain
    /// is in flight (use [`DgramDevice::pop_raw_tx_used`]).
    pub fn tx_reap(&mut self) -> u32 {
        let mut n = 0;
        while let Some(u) = self.tx.pop_used() {
            match self.complete_tx(u) {
                None => n += 1,
                Some(_) => self.stats.bad_used += 1,
            }
        }
        n
    }

    /// Takes the next received message, if the device used an rx buffer. Used elements that
    /// name no buffer the device holds are counted ([`DriverStats::bad_used`]) and skipped.
    /// The buffer stays with the driver until [`DgramDevice::recycle`].
    pub fn recv(&mut self) -> Option<RxMsg> {
        if !self.live {
            return None;
        }
        loop {
            let u = self.rx.pop_used()?;
            let i = u.id;
            if i >= self.depth || self.rx_busy & (1 << i) == 0 {
                self.stats.bad_used += 1;
                continue;
            }
            self.rx_busy &= !(1 << i);
            let header_gpa = self.rx_header_gpa(i);
            // SAFETY: the header slot of rx buffer i (free memory this driver owns, 8-byte
            // aligned); the device is done with the buffer (it is used).
            let header = unsafe { ptr::read_volatile(header_gpa as *const DgramHeader) };
            let capacity = HEADER_SIZE + self.max_payload;
            let used_len = if u.len > capacity {
                self.stats.rx_overlong += 1;
                capacity
            } else {
                u.len
            };
            let payload = header_gpa + u64::from(HEADER_SIZE);
            let npages = u64::from(used_len.saturating_sub(HEADER_SIZE)).div_ceil(PAGE_SIZE);
            let mut pages = [0u64; MAX_MSG_PAGES];
            for (k, p) in pages.iter_mut().enumerate().take(npages as usize) {
                *p = payload + k as u64 * PAGE_SIZE;
            }
            self.stats.rx_received += 1;
            return Some(RxMsg {
                id: i as u16,
                header,
                pages,
                npages: npages as u32,
                used_len,
            });
        }
    }

    /// Gives the buffer of `msg` back to the device (available ring) and notifies it if it
    /// asked for it. Does nothing after [`DgramDevice::reset`]. The buffer's header is zeroed
    /// first, so that a used element with a short used length does not show the previous
    /// message's header.
    ///
    /// Panics if the buffer is not one the driver holds (recycled twice, or not from
    /// [`DgramDevice::recv`]).
    pub fn recycle(&mut self, msg: &RxMsg) {
        self.recycle_id(msg.id);
    }

    /// [`DgramDevice::recycle`] of the rx buffer with descriptor id `id`.
    fn recycle_id(&mut self, id: u16) {
        if !self.live {
            return;
        }
        let i = u32::from(id);
        assert!(
            i < self.depth && self.rx_busy & (1 << i) == 0,
            "rx buffer {i} is not held by the driver"
        );
        let header_gpa = self.rx_header_gpa(i);
        // SAFETY: the header slot of rx buffer i (free memory this driver owns, 8-byte
        // aligned); the driver holds the buffer (its rx_busy bit is clear).
        unsafe { ptr::write_volatile(header_gpa as *mut DgramHeader, DgramHeader::default()) };
        self.rx_busy |= 1 << i;
        self.rx.publish(id);
        self.rx.kick(&self.t);
    }

    /// What the driver counted.
    pub fn stats(&self) -> DriverStats {
        DriverStats {
            notifications: self.rx.notifications() + self.tx.notifications(),
            suppressed: self.rx.suppressed() + self.tx.suppressed(),
            needs_reset_seen: self.needs_reset_seen.get(),
            ..self.stats
        }
    }

    /// The device status register (an exit); notes DEVICE_NEEDS_RESET in
    /// [`DriverStats::needs_reset_seen`].
    pub fn status(&self) -> u32 {
        let s = self.t.status();
        if s & STATUS_DEVICE_NEEDS_RESET != 0 {
            self.needs_reset_seen.set(true);
        }
        s
    }

    /// Resets the device (writes 0 to the status register and waits until it reads 0:
    /// `false` if it does not within [`super::RESET_TIMEOUT_MS`]). The driver is dead
    /// afterwards: [`DgramDevice::send`] returns false, [`DgramDevice::recv`] `None`; make a
    /// new one with [`DgramDevice::init`].
    pub fn reset(&mut self) -> bool {
        self.live = false;
        self.t.reset().is_ok()
    }

    /// Descriptors of the tx queue that no chain of [`DgramDevice::send`] uses, for
    /// hand-made chains ([`DgramDevice::write_raw_tx_desc`]).
    pub fn tx_spare(&self) -> Range<u32> {
        self.depth * TX_CHAIN_DESCS..self.tx.size()
    }

    /// Writes spare tx descriptor `index` (any values). Panics unless `index` is in
    /// [`DgramDevice::tx_spare`].
    pub fn write_raw_tx_desc(&mut self, index: u32, d: Desc) {
        assert!(
            self.tx_spare().contains(&index),
            "tx descriptor {index} is not spare"
        );
        self.tx.write_desc(index, d);
    }

    /// Overwrites rx descriptor `index` (any values), which may be one the device holds:
    /// a probe's hostile rx buffer. Do not [`DgramDevice::recycle`] a buffer rewritten so.
    pub fn write_raw_rx_desc(&mut self, index: u32, d: Desc) {
        self.rx.write_desc(index, d);
    }

    /// Makes the hand-made chain with head `head` available on the tx queue and notifies the
    /// device if it asked for it (returns whether it did). `head` is not checked: a bad one
    /// is a test of the device.
    pub fn publish_raw_tx(&mut self, head: u16) -> bool {
        self.tx.publish(head);
        self.tx.kick(&self.t)
    }

    /// Takes the next used tx element that is not one of [`DgramDevice::send`]'s chains
    /// (those are accounted for as in [`DgramDevice::tx_reap`] on the way).
    pub fn pop_raw_tx_used(&mut self) -> Option<UsedElem> {
        while let Some(u) = self.tx.pop_used() {
            if let Some(u) = self.complete_tx(u) {
                return Some(u);
            }
        }
        None
    }
}
