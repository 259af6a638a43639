//! The driver's side of the datagram devices, without KVM: a [`VirtioHub`] over real guest
//! memory whose queues a [`Driver`] lays out and fills as a guest driver would, with
//! virtio-queue's `MockSplitQueue`. For this crate's hermetic tests and its benchmark of the
//! relay (`benches/hot_ops.rs`); built only with the `test-utils` feature, which the crate's
//! own tests and benchmarks turn on (it is not part of the VMM).

use std::sync::Arc;

use pageflip_abi::virtio::*;
use pageflip_interface::{NotifyMode, VirtioVmReport};
use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::VirtioHub;
use crate::inject::Fault;
use crate::inject::Slowdown;
use crate::memory::GuestRam;

/// Memory of each VM.
pub const MEM: u64 = 8 << 20;
/// Size of every queue.
pub const QSIZE: u16 = 16;
/// Where a [`Run::up`] device's rx queue lies (everything the driver hands the device lies
/// at or above `IMAGE_BASE`, in the guest's own memory).
pub const RXQ_GPA: u64 = 0x21_0000;
/// Where a [`Run::up`] device's tx queue lies.
pub const TXQ_GPA: u64 = 0x22_0000;
/// Where [`send`] writes its messages (slot `i` at `BUF + i * 0x1_0000`, 16 slots).
pub const BUF: u64 = 0x30_0000;
/// A free area for rx buffers.
pub const RXBUF: u64 = 0x50_0000;
/// The features a driver that wants EVENT_IDX accepts.
pub const FEATURES: u64 = F_VERSION_1 | F_EVENT_IDX;

/// The devices of `n` VMs, each with [`MEM`] of fresh guest memory.
pub struct Run {
    /// The devices.
    pub hub: VirtioHub,
    /// Every VM's memory.
    pub rams: Vec<Arc<GuestRam>>,
}

impl Run {
    /// `n` VMs' devices (notified in userspace), with the injected `fault`, if any.
    pub fn new(n: usize, fault: Option<Fault>) -> Run {
        Run::with_memory(n, fault, MEM)
    }

    /// [`Run::new`] with `mem` bytes of memory per VM instead of [`MEM`].
    pub fn with_memory(n: usize, fault: Option<Fault>, mem: u64) -> Run {
        let rams: Vec<_> = (0..n)
            .map(|i| Arc::new(GuestRam::new(&format!("t{i}"), mem).unwrap()))
            .collect();
        let vms = rams
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("vm{i}"), r.clone()))
            .collect();
        Run {
            hub: VirtioHub::new(vms, NotifyMode::Userspace, fault).unwrap(),
            rams,
        }
    }

    /// The same devices with an injected slowdown.
    pub fn with_slowdown(self, slowdown: Option<Slowdown>) -> Run {
        Run {
            hub: self.hub.with_slowdown(slowdown),
            ..self
        }
    }

    /// VM `vm`'s memory.
    pub fn mem(&self, vm: usize) -> &GuestMemoryMmap {
        self.rams[vm].mem()
    }

    /// VM `vm` writes `v` to register `reg`.
    pub fn w(&self, vm: usize, reg: u64, v: u32) {
        self.hub.mmio_write(vm, reg, &v.to_le_bytes());
    }

    /// VM `vm` reads register `reg`.
    pub fn r(&self, vm: usize, reg: u64) -> u32 {
        let mut b = [0u8; 4];
        self.hub.mmio_read(vm, reg, &mut b);
        u32::from_le_bytes(b)
    }

    /// Takes VM `vm`'s guest errors as (register, status).
    pub fn errors(&self, vm: usize) -> Vec<(String, String)> {
        self.hub
            .take_guest_errors(vm)
            .list
            .into_iter()
            .map(|e| (e.register, e.status))
            .collect()
    }

    /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back.
    pub fn negotiate(&self, vm: usize, features: u64) -> u32 {
        self.w(vm, REG_STATUS, STATUS_ACKNOWLEDGE);
        self.w(vm, REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        for sel in 0..2 {
            self.w(vm, REG_DRIVER_FEATURES_SEL, sel);
            self.w(vm, REG_DRIVER_FEATURES, (features >> (32 * sel)) as u32);
        }
        self.w(
            vm,
            REG_STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        self.r(vm, REG_STATUS)
    }

    /// Sets up queue `q` of VM `vm` where `driver` lays it out, and makes it ready.
    pub fn setup_queue(&self, vm: usize, q: u32, driver: &Driver) {
        self.w(vm, REG_QUEUE_SEL, q);
        self.w(vm, REG_QUEUE_NUM, u32::from(QSIZE));
        for (lo, a) in [
            (REG_QUEUE_DESC_LOW, driver.desc),
            (REG_QUEUE_DRIVER_LOW, driver.avail),
            (REG_QUEUE_DEVICE_LOW, driver.used),
        ] {
            self.w(vm, lo, a as u32);
            self.w(vm, lo + 4, (a >> 32) as u32);
        }
        self.w(vm, REG_QUEUE_READY, 1);
    }

    /// A device fully up with `features`, its queues at [`RXQ_GPA`] and [`TXQ_GPA`]; returns
    /// the driver's side of its rx and tx queues.
    pub fn up(&self, vm: usize, features: u64) -> (Driver<'_>, Driver<'_>) {
        assert_ne!(self.negotiate(vm, features) & STATUS_FEATURES_OK, 0);
        let rx = Driver::new(self.mem(vm), RXQ_GPA);
        let tx = Driver::new(self.mem(vm), TXQ_GPA);
        self.setup_queue(vm, RX_QUEUE, &rx);
        self.setup_queue(vm, TX_QUEUE, &tx);
        self.w(
            vm,
            REG_STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        assert_eq!(self.r(vm, REG_STATUS) & STATUS_DRIVER_OK, STATUS_DRIVER_OK);
        (rx, tx)
    }

    /// VM `vm`'s virtio counters.
    pub fn report(&self, vm: usize) -> VirtioVmReport {
        self.hub.report("virtio-userspace".into()).vms[vm]
            .virtio
            .clone()
            .unwrap()
    }
}

/// The driver's side of one queue.
pub struct Driver<'a> {
    /// The queue's descriptor table, through virtio-queue's mock (its used ring is not used:
    /// `MockSplitQueue::create` of virtio-queue 0.18 places it 16 bytes after the available
    /// ring's start, over the ring's entries 8 and up and `used_event`; a known bug, fixed by
    /// the open pull request rust-vmm/vm-virtio#400).
    pub q: MockSplitQueue<'a, GuestMemoryMmap>,
    /// The descriptor table's GPA.
    pub desc: u64,
    /// The available ring's GPA (right after the table).
    pub avail: u64,
    /// The used ring's GPA (after the whole available ring, `used_event` included, 4-aligned).
    pub used: u64,
    mem: &'a GuestMemoryMmap,
    next_desc: u16,
}

impl<'a> Driver<'a> {
    /// A queue of [`QSIZE`] at `at` in `mem`, laid out as the specification's 2.7 says.
    pub fn new(mem: &'a GuestMemoryMmap, at: u64) -> Driver<'a> {
        let avail = at + 16 * u64::from(QSIZE);
        let avail_end = avail + 6 + 2 * u64::from(QSIZE);
        Driver {
            q: MockSplitQueue::create(mem, GuestAddress(at), QSIZE),
            desc: at,
            avail,
            used: avail_end.next_multiple_of(4),
            mem,
            next_desc: 0,
        }
    }

    /// Adds a chain of `(gpa, len, device-writable)` buffers; returns its head.
    pub fn add(&mut self, parts: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        let descs: Vec<RawDescriptor> = parts
            .iter()
            .enumerate()
            .map(|(i, &(addr, len, write))| {
                let last = i + 1 == parts.len();
                let flags = if write { VIRTQ_DESC_F_WRITE } else { 0 }
                    | if last { 0 } else { VIRTQ_DESC_F_NEXT };
                let next = (head + i as u16 + 1) % QSIZE;
                RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
            })
            .collect();
        for (i, d) in descs.into_iter().enumerate() {
            self.q
                .desc_table()
                .store((head + i as u16) % QSIZE, d)
                .unwrap();
        }
        // The mock's own helper does not wrap the available ring: publish by hand.
        let idx = self.avail_idx();
        let avail = self.avail;
        let slot = GuestAddress(avail + 4 + 2 * u64::from(idx % QSIZE));
        self.mem.write_obj(head, slot).unwrap();
        self.mem
            .write_obj(idx.wrapping_add(1), GuestAddress(avail + 2))
            .unwrap();
        self.next_desc = (head + parts.len() as u16) % QSIZE;
        head
    }

    /// Adds `n` rx buffers of one 4 KiB descriptor each, at `RXBUF`, `RXBUF + 4 KiB`, ...
    pub fn post_rx_buffers(&mut self, n: u64) {
        for i in 0..n {
            self.add(&[(RXBUF + i * 0x1000, 4096, true)]);
        }
    }

    /// The used ring's index.
    pub fn used_idx(&self) -> u16 {
        self.mem.read_obj(GuestAddress(self.used + 2)).unwrap()
    }

    /// The used element `i`: (id, len).
    pub fn used(&self, i: u16) -> (u32, u32) {
        let at = self.used + 4 + 8 * u64::from(i % QSIZE);
        (
            self.mem.read_obj(GuestAddress(at)).unwrap(),
            self.mem.read_obj(GuestAddress(at + 4)).unwrap(),
        )
    }

    /// The available ring's index.
    pub fn avail_idx(&self) -> u16 {
        self.mem.read_obj(GuestAddress(self.avail + 2)).unwrap()
    }

    /// Writes the driver's `used_event` (EVENT_IDX: notify me when the used index passes it),
    /// after the available ring's elements.
    pub fn set_used_event(&self, v: u16) {
        let at = self.avail + 4 + 2 * u64::from(QSIZE);
        self.mem.write_obj(v, GuestAddress(at)).unwrap();
    }

    /// Writes the available ring's flags (`VIRTQ_AVAIL_F_NO_INTERRUPT`, without EVENT_IDX).
    pub fn set_avail_flags(&self, v: u16) {
        self.mem.write_obj(v, GuestAddress(self.avail)).unwrap();
    }

    /// `avail_event`, after the used ring's elements.
    pub fn avail_event(&self) -> u16 {
        let at = self.used + 4 + 8 * u64::from(QSIZE);
        self.mem.read_obj(GuestAddress(at)).unwrap()
    }
}

/// A datagram header's bytes.
pub fn header(seq: u64, src: u32, dst: u32, len: u32) -> Vec<u8> {
    [
        &seq.to_le_bytes()[..],
        &src.to_le_bytes(),
        &dst.to_le_bytes(),
        &len.to_le_bytes(),
        &0u32.to_le_bytes(),
    ]
    .concat()
}

/// Writes a message into VM memory at `BUF + slot * 0x1_0000` and queues a tx chain for it
/// (header and payload in two descriptors, then a 4-byte status). Returns the status GPA.
pub fn send(mem: &GuestMemoryMmap, tx: &mut Driver, slot: u64, dst: u32, payload: &[u8]) -> u64 {
    let at = BUF + slot * 0x1_0000;
    let h = header(slot, 7, dst, payload.len() as u32);
    mem.write_slice(&h, GuestAddress(at)).unwrap();
    mem.write_slice(payload, GuestAddress(at + 0x100)).unwrap();
    let status = at + 0x8000;
    mem.write_obj(0xffff_ffffu32, GuestAddress(status)).unwrap();
    tx.add(&[
        (at, HEADER_SIZE, false),
        (at + 0x100, payload.len() as u32, false),
        (status, 4, true),
    ]);
    status
}

/// The `u32` at `gpa` (a tx status).
pub fn status_at(mem: &GuestMemoryMmap, gpa: u64) -> u32 {
    mem.read_obj(GuestAddress(gpa)).unwrap()
}
