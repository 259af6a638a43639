//! The remap-IPC engine of a run (`docs/remap-ipc.md`): drains a VM's send ring, checks every
//! descriptor, moves the pages (remap or copy) and enqueues entries in the receivers' rings.
//!
//! One lock serializes every transfer of the run. The engine keeps its own copy of every ring
//! index it owns (send tail, receive head, post tail) and writes it to the guest after each
//! change, so a guest that scribbles over its header cannot make the VMM consume twice or
//! skip; indices the guest owns are read once per drain and checked.

use std::fs::File;
use std::mem::offset_of;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pageflip_abi::ipc::*;
use pageflip_abi::{IMAGE_BASE, PAGE_SIZE};
use pageflip_interface::{TransportReport, TransportVmReport};

use super::frames::{FrameTable, Remap};
use crate::control::StopFlag;
use crate::inject::Fault;
use crate::inject::Slowdown;
use crate::memory::GuestRam;

/// How message data moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movement {
    /// Pages are remapped from the sender into the receiver.
    Remap,
    /// Bytes are copied into the receiver's posted pages.
    Copy,
}

/// The VMM's side of one VM's control structure.
#[derive(Debug)]
struct VmIpc {
    name: String,
    ram: Arc<GuestRam>,
    send_tail: u32,
    recv_head: u32,
    post_tail: u32,
    deliveries: u64,
    held: Option<RecvEntry>,
    report: TransportVmReport,
}

#[derive(Debug)]
struct Inner {
    vms: Vec<VmIpc>,
    frames: Option<FrameTable>,
    host_errors: Vec<String>,
    leaked: bool,
}

/// The remap-IPC engine of a run.
#[derive(Debug)]
pub struct IpcEngine {
    movement: Movement,
    memfd: Arc<File>,
    fault: Option<Fault>,
    slowdown: Option<Slowdown>,
    inner: Mutex<Inner>,
    arrived: Condvar,
}

/// A u32 of a VM's control structure. The structure lies at fixed GPAs below the smallest
/// memory a VM may have (`MIN_MEM_SIZE`), so the read cannot fail.
fn read_u32(ram: &GuestRam, gpa: u64) -> u32 {
    ram.read_pod::<u32>(gpa)
        .expect("the control structure lies inside every VM's memory")
}

fn write_u32(ram: &GuestRam, gpa: u64, v: u32) {
    ram.write_pod(gpa, &v);
}

fn write_u64(ram: &GuestRam, gpa: u64, v: u64) {
    ram.write_pod(gpa, &v);
}

/// GPA of a header field.
macro_rules! hdr {
    ($f:ident) => {
        IPC_HEADER_GPA + offset_of!(IpcHeader, $f) as u64
    };
}

impl IpcEngine {
    /// Sets up the control structures of `vms` (name, memory) for a run. `frames` is the
    /// run's frame table (remap only), `memfd` the run's page pool.
    pub fn new(
        movement: Movement,
        vms: Vec<(String, Arc<GuestRam>)>,
        frames: Option<FrameTable>,
        memfd: Arc<File>,
        fault: Option<Fault>,
    ) -> IpcEngine {
        let vms = vms
            .into_iter()
            .map(|(name, ram)| {
                write_u64(&ram, hdr!(magic), IPC_MAGIC);
                VmIpc {
                    name,
                    ram,
                    send_tail: 0,
                    recv_head: 0,
                    post_tail: 0,
                    deliveries: 0,
                    held: None,
                    report: TransportVmReport::default(),
                }
            })
            .collect();
        IpcEngine {
            movement,
            memfd,
            fault,
            slowdown: None,
            inner: Mutex::new(Inner {
                vms,
                frames,
                host_errors: Vec::new(),
                leaked: false,
            }),
            arrived: Condvar::new(),
        }
    }

    /// The same engine with an injected slowdown (`--inject-slowdown-us`): it busy-waits on
    /// every descriptor it delivers, inside the interval counted as `move_ns`.
    pub fn with_slowdown(self, slowdown: Option<Slowdown>) -> IpcEngine {
        IpcEngine { slowdown, ..self }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A doorbell write of `value` by VM `vm`. Returns false for a value that is not a
    /// doorbell kind (the device refuses it).
    pub fn doorbell(&self, vm: usize, value: u64) -> bool {
        let mut inner = self.lock();
        let kind = match value {
            DOORBELL_SEND => "send",
            DOORBELL_FLUSH => "flush",
            _ => return false,
        };
        *inner.vms[vm]
            .report
            .doorbells
            .entry(kind.into())
            .or_default() += 1;
        let drain = value == DOORBELL_FLUSH || self.batch_ready(&inner.vms[vm]);
        if drain {
            self.drain_locked(&mut inner, vm);
        }
        true
    }

    /// Whether a send doorbell drains: the ring holds a batch, or an urgent descriptor, or
    /// the batch size is 1 (immediate).
    fn batch_ready(&self, v: &VmIpc) -> bool {
        let ram = &v.ram;
        let batch = read_u32(ram, hdr!(batch)).max(1);
        let pending = read_u32(ram, hdr!(send_head)).wrapping_sub(v.send_tail);
        if batch == 1 || pending >= batch {
            return true;
        }
        if self.fault == Some(Fault::IgnoreUrgent) || pending > SEND_RING_LEN {
            return false;
        }
        (0..pending).any(|i| {
            let slot = send_slot(v.send_tail.wrapping_add(i));
            read_u32(ram, slot + offset_of!(SendDesc, flags) as u64) & FLAG_URGENT != 0
        })
    }

    /// Drains VM `vm`'s send ring (every exit of the VM to the VMM does this first).
    pub fn drain(&self, vm: usize) {
        let mut inner = self.lock();
        self.drain_locked(&mut inner, vm);
    }

    fn drain_locked(&self, inner: &mut Inner, vm: usize) {
        let ram = inner.vms[vm].ram.clone();
        let head = read_u32(&ram, hdr!(send_head));
        let tail = inner.vms[vm].send_tail;
        let pending = head.wrapping_sub(tail);
        if pending == 0 {
            return;
        }
        if pending > SEND_RING_LEN {
            log::warn!(
                "{}: malformed send ring: head {head} is {pending} ahead of tail {tail} (ring of {SEND_RING_LEN}); nothing consumed",
                inner.vms[vm].name
            );
            write_u32(&ram, hdr!(ring_error), IpcStatus::BadRing as u32);
            return;
        }
        // Once a destination refuses with QueueFull, every later descriptor of this drain to
        // it is refused too: the sender resends them in order, so FIFO per sender holds.
        let mut full = vec![false; inner.vms.len()];
        for i in 0..pending {
            let idx = tail.wrapping_add(i);
            let slot_gpa = send_slot(idx);
            // One copy of the descriptor: later guest writes cannot change what is checked.
            let status = match ram.read_pod::<SendDesc>(slot_gpa) {
                Some(desc) => match self.check(inner, vm, &desc) {
                    Ok(()) if full[desc.dst as usize] => IpcStatus::QueueFull,
                    Ok(()) => {
                        let s = self.deliver(inner, vm, &desc);
                        full[desc.dst as usize] = s == IpcStatus::QueueFull;
                        s
                    }
                    Err(s) => s,
                },
                None => IpcStatus::BadAddress,
            };
            let v = &mut inner.vms[vm];
            if status == IpcStatus::Ok {
                v.report.sent += 1;
            } else {
                *v.report.refused.entry(status.name().into()).or_default() += 1;
                if status != IpcStatus::QueueFull {
                    log::warn!(
                        "{}: refused send descriptor {idx}: {}",
                        v.name,
                        status.name()
                    );
                }
            }
            write_u32(
                &ram,
                slot_gpa + offset_of!(SendDesc, status) as u64,
                status as u32,
            );
        }
        let v = &mut inner.vms[vm];
        v.send_tail = head;
        v.report.drains += 1;
        write_u32(&ram, hdr!(send_tail), head);
        write_u64(&ram, hdr!(drains), v.report.drains);
        write_u64(&ram, hdr!(sent), v.report.sent);
        write_u64(&ram, hdr!(refused), v.report.refused.values().sum());
    }

    /// Checks a descriptor of `src` (everything but the receiver's capacity).
    fn check(&self, inner: &Inner, src: usize, d: &SendDesc) -> Result<(), IpcStatus> {
        let n = d.npages as usize;
        if n == 0 || n > MAX_MSG_PAGES {
            return Err(IpcStatus::TooManyPages);
        }
        if d.len == 0 || u64::from(d.len) > n as u64 * PAGE_SIZE {
            return Err(IpcStatus::BadLength);
        }
        let dst = d.dst as usize;
        if dst >= inner.vms.len() {
            return Err(IpcStatus::UnknownDest);
        }
        if dst == src {
            return Err(IpcStatus::SelfSend);
        }
        let ram = &inner.vms[src].ram;
        for (i, &p) in d.pages[..n].iter().enumerate() {
            if p % PAGE_SIZE != 0 || !ram.contains(p, PAGE_SIZE) {
                return Err(IpcStatus::BadAddress);
            }
            if p < IMAGE_BASE {
                return Err(IpcStatus::NotOwned);
            }
            if d.pages[..i].contains(&p) {
                return Err(IpcStatus::DuplicatePage);
            }
        }
        Ok(())
    }

    /// Takes `n` landing pages from `dst`'s post ring (skipping invalid ones), or None if it
    /// has not posted enough; consumes nothing then.
    fn take_landing(&self, inner: &mut Inner, dst: usize, n: usize) -> Option<Vec<u64>> {
        let v = &inner.vms[dst];
        let ram = &v.ram;
        let posted = read_u32(ram, hdr!(post_head)).wrapping_sub(v.post_tail);
        if posted > POST_RING_LEN {
            write_u32(ram, hdr!(ring_error), IpcStatus::BadRing as u32);
            return None;
        }
        let mut pages = Vec::with_capacity(n);
        let mut used = 0;
        while pages.len() < n && used < posted {
            let gpa = ram
                .read_pod::<u64>(
                    POST_RING_GPA + u64::from(v.post_tail.wrapping_add(used) % POST_RING_LEN) * 8,
                )
                .unwrap_or(1);
            used += 1;
            if gpa % PAGE_SIZE == 0
                && gpa >= IMAGE_BASE
                && ram.contains(gpa, PAGE_SIZE)
                && !pages.contains(&gpa)
            {
                pages.push(gpa);
            } else {
                log::warn!("{}: skipped invalid posted page {gpa:#x}", v.name);
            }
        }
        if pages.len() < n {
            return None;
        }
        let v = &mut inner.vms[dst];
        v.post_tail = v.post_tail.wrapping_add(used);
        write_u32(&v.ram, hdr!(post_tail), v.post_tail);
        Some(pages)
    }

    fn deliver(&self, inner: &mut Inner, src: usize, d: &SendDesc) -> IpcStatus {
        let dst = d.dst as usize;
        let n = d.npages as usize;
        {
            let v = &inner.vms[dst];
            let used = v.recv_head.wrapping_sub(read_u32(&v.ram, hdr!(recv_tail)));
            if used >= RECV_RING_LEN {
                if used > RECV_RING_LEN {
                    write_u32(&v.ram, hdr!(ring_error), IpcStatus::BadRing as u32);
                }
                return IpcStatus::QueueFull;
            }
        }
        let data_pages = match self.movement {
            Movement::Remap => n,
            Movement::Copy => (d.len as u64).div_ceil(PAGE_SIZE) as usize,
        };
        let Some(landing) = self.take_landing(inner, dst, data_pages) else {
            return IpcStatus::QueueFull;
        };
        let started = Instant::now();
        match self.movement {
            Movement::Remap if self.fault != Some(Fault::CopyInsteadOfRemap) => {
                for (&from, &to) in d.pages[..n].iter().zip(&landing) {
                    self.remap_page(inner, src, from, dst, to);
                }
                inner.vms[src].report.pages_remapped += n as u64;
            }
            _ => {
                let mut left = d.len as usize;
                for (&from, &to) in d.pages.iter().zip(&landing) {
                    let len = left.min(PAGE_SIZE as usize);
                    if let Some(bytes) = inner.vms[src].ram.read_bytes(from, len) {
                        inner.vms[dst].ram.write_bytes(to, &bytes);
                    }
                    left -= len;
                    if left == 0 {
                        break;
                    }
                }
                inner.vms[src].report.bytes_copied += u64::from(d.len);
            }
        }
        if let Some(slowdown) = self.slowdown {
            slowdown.spin();
        }
        inner.vms[src].report.move_ns += started.elapsed().as_nanos() as u64;
        let mut entry = RecvEntry {
            seq: d.seq,
            src: src as u32,
            dst: dst as u32,
            len: d.len,
            npages: landing.len() as u32,
            pages: [0; MAX_MSG_PAGES],
        };
        entry.pages[..landing.len()].copy_from_slice(&landing);
        if self.fault == Some(Fault::SwapSourceId) {
            entry.src = dst as u32;
        }
        self.enqueue(inner, dst, entry);
        IpcStatus::Ok
    }

    fn enqueue(&self, inner: &mut Inner, dst: usize, entry: RecvEntry) {
        let v = &mut inner.vms[dst];
        v.deliveries += 1;
        let k = v.deliveries;
        match self.fault {
            Some(Fault::DropEveryNth) if k % 97 == 0 => return,
            Some(Fault::ReorderTwo) if k == 5 => {
                v.held = Some(entry);
                return;
            }
            _ => {}
        }
        let mut entries = vec![entry];
        if self.fault == Some(Fault::ReorderTwo) && k == 6 {
            entries.extend(v.held.take());
        }
        for e in entries {
            v.ram.write_pod(
                RECV_RING_GPA
                    + u64::from(v.recv_head % RECV_RING_LEN)
                        * std::mem::size_of::<RecvEntry>() as u64,
                &e,
            );
            v.recv_head = v.recv_head.wrapping_add(1);
            v.report.received += 1;
        }
        write_u32(&v.ram, hdr!(recv_head), v.recv_head);
        write_u64(&v.ram, hdr!(received), v.report.received);
        self.arrived.notify_all();
    }

    /// Moves one page: the sender's GPA gets a fresh frame first, then the receiver's landing
    /// GPA gets the moved frame, so the frame is never mapped in both.
    fn remap_page(&self, inner: &mut Inner, src: usize, from: u64, dst: usize, to: u64) {
        let frames = inner
            .frames
            .as_mut()
            .expect("remap runs have a frame table");
        let r: Remap = match frames.remap(src, from, dst, to) {
            Ok(r) => r,
            Err(e) => {
                inner
                    .host_errors
                    .push(format!("remap {from:#x} -> {to:#x}: {e}"));
                return;
            }
        };
        let src_ram = inner.vms[src].ram.clone();
        let dst_ram = inner.vms[dst].ram.clone();
        match self.fault {
            Some(Fault::SkipUnmap) => {
                // the sender keeps its mapping, and the table says so
                frames.alias(src, from, r.moved);
            }
            Some(Fault::MapBoth) => {}
            _ => self.map_frame(&mut inner.host_errors, &src_ram, from, r.fresh),
        }
        self.map_frame(&mut inner.host_errors, &dst_ram, to, r.moved);
        self.release_frame(&mut inner.host_errors, r.freed);
        if self.fault == Some(Fault::LeakPage) && !inner.leaked {
            inner.leaked = true;
            inner.frames.as_mut().and_then(|f| f.leak());
        }
    }

    /// Maps pool frame `frame` at `gpa` of `ram` (KVM's MMU notifier zaps the old mapping).
    fn map_frame(&self, errors: &mut Vec<String>, ram: &GuestRam, gpa: u64, frame: u32) {
        let hva = ram.host_base() + gpa;
        // SAFETY: `hva` is a page-aligned address inside the VMM's mapping of this VM's
        // memory (gpa was checked against its size), which this process owns; MAP_FIXED
        // replaces exactly that page with a page of the same memfd, so the mapping stays
        // valid for vm-memory and KVM.
        let ret = unsafe {
            libc::mmap(
                hva as *mut libc::c_void,
                PAGE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.memfd.as_raw_fd(),
                (u64::from(frame) * PAGE_SIZE) as libc::off_t,
            )
        };
        if ret == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            log::error!("mmap of frame {frame} at GPA {gpa:#x} failed: {e}");
            errors.push(format!(
                "host mmap of frame {frame} at GPA {gpa:#x} failed: {e}"
            ));
        }
    }

    /// Zeroes a freed frame and gives its memory back to the host.
    fn release_frame(&self, errors: &mut Vec<String>, frame: u32) {
        // SAFETY: fallocate on our own memfd with a valid range; no memory is accessed.
        let ret = unsafe {
            libc::fallocate(
                self.memfd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                (u64::from(frame) * PAGE_SIZE) as libc::off_t,
                PAGE_SIZE as libc::off_t,
            )
        };
        if ret != 0 {
            errors.push(format!(
                "zeroing freed frame {frame} failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }

    /// Blocking receive of VM `vm`: the number of queued entries once there is one, or 0
    /// after the guest's timeout (or when the VM is asked to stop).
    pub fn recv_wait(&self, vm: usize, stop: &StopFlag) -> u64 {
        let mut inner = self.lock();
        let ram = inner.vms[vm].ram.clone();
        let timeout_us = ram.read_pod::<u64>(hdr!(wait_timeout_us)).unwrap_or(0);
        let timeout = Duration::from_micros(if timeout_us == 0 {
            1_000_000
        } else {
            timeout_us.min(60_000_000)
        });
        let deadline = Instant::now() + timeout;
        loop {
            let queued = inner.vms[vm]
                .recv_head
                .wrapping_sub(read_u32(&ram, hdr!(recv_tail)));
            if queued > 0 {
                return u64::from(queued.min(RECV_RING_LEN));
            }
            let now = Instant::now();
            if now >= deadline || stop.get().is_some() {
                return 0;
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            inner = self
                .arrived
                .wait_timeout(inner, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The transport report with the ownership audit (remap runs).
    pub fn report(&self) -> TransportReport {
        let inner = self.lock();
        let ownership = inner.frames.as_ref().map(|f| {
            let mut a = f.audit();
            a.violations.extend(inner.host_errors.iter().cloned());
            a
        });
        TransportReport {
            kind: match self.movement {
                Movement::Remap => "remap",
                Movement::Copy => "copy",
            }
            .into(),
            vms: inner.vms.iter().map(|v| v.report.clone()).collect(),
            ownership,
        }
    }
}

fn send_slot(idx: u32) -> u64 {
    SEND_RING_GPA + u64::from(idx % SEND_RING_LEN) * std::mem::size_of::<SendDesc>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::create_memfd;

    const MEM: u64 = 4 << 20;
    const POOL: u32 = 8;

    /// Two VMs of 4 MiB on one memfd with a pool, as the runner lays them out.
    fn engine(movement: Movement, fault: Option<Fault>) -> IpcEngine {
        let memfd = create_memfd("test", 2 * MEM + u64::from(POOL) * PAGE_SIZE).unwrap();
        let rams: Vec<(String, Arc<GuestRam>)> = (0..2)
            .map(|i| {
                let ram = GuestRam::map(memfd.clone(), i * MEM, MEM).unwrap();
                (format!("vm{i}"), Arc::new(ram))
            })
            .collect();
        let frames = (movement == Movement::Remap)
            .then(|| FrameTable::contiguous(&[("vm0".into(), MEM), ("vm1".into(), MEM)], POOL));
        IpcEngine::new(movement, rams, frames, memfd, fault)
    }

    fn ram(e: &IpcEngine, vm: usize) -> Arc<GuestRam> {
        e.lock().vms[vm].ram.clone()
    }

    /// Places a one-page descriptor in VM0's ring (after filling the page) and returns its slot.
    fn place(e: &IpcEngine, page: u64, dst: u32, seq: u64, fill: u8) -> u64 {
        let r = ram(e, 0);
        r.write_bytes(page, &[fill; PAGE_SIZE as usize]);
        let head = read_u32(&r, hdr!(send_head));
        let mut d: SendDesc = vm_memory::ByteValued::zeroed();
        d.seq = seq;
        d.dst = dst;
        d.len = PAGE_SIZE as u32;
        d.npages = 1;
        d.pages[0] = page;
        let slot = send_slot(head);
        r.write_pod(slot, &d);
        write_u32(&r, hdr!(send_head), head + 1);
        slot
    }

    fn post(e: &IpcEngine, vm: usize, gpa: u64) {
        let r = ram(e, vm);
        let head = read_u32(&r, hdr!(post_head));
        r.write_pod(POST_RING_GPA + u64::from(head % POST_RING_LEN) * 8, &gpa);
        write_u32(&r, hdr!(post_head), head + 1);
    }

    fn status(e: &IpcEngine, slot: u64) -> IpcStatus {
        IpcStatus::from_u32(read_u32(
            &ram(e, 0),
            slot + offset_of!(SendDesc, status) as u64,
        ))
        .unwrap()
    }

    #[test]
    fn remap_moves_the_page_and_zeroes_the_sender() {
        let e = engine(Movement::Remap, None);
        post(&e, 1, 0x30_0000);
        ram(&e, 1).write_bytes(0x30_0000, &[9; 16]);
        let slot = place(&e, 0x20_0000, 1, 7, 0xab);
        e.drain(0);
        assert_eq!(status(&e, slot), IpcStatus::Ok);
        let entry: RecvEntry = ram(&e, 1).read_pod(RECV_RING_GPA).unwrap();
        assert_eq!(
            (entry.seq, entry.src, entry.dst, entry.pages[0]),
            (7, 0, 1, 0x30_0000)
        );
        assert_eq!(
            ram(&e, 1).read_bytes(0x30_0000, 4096).unwrap(),
            vec![0xab; 4096]
        );
        assert_eq!(
            ram(&e, 0).read_bytes(0x20_0000, 4096).unwrap(),
            vec![0; 4096],
            "sender sees a fresh zero page"
        );
        // The receiver's writes are not visible to the sender.
        ram(&e, 1).write_bytes(0x30_0000, &[0x5e; 8]);
        assert_eq!(ram(&e, 0).read_bytes(0x20_0000, 8).unwrap(), vec![0; 8]);
        let report = e.report();
        assert!(report.ownership.unwrap().violations.is_empty());
        assert_eq!(report.vms[0].pages_remapped, 1);
        assert_eq!(read_u32(&ram(&e, 0), hdr!(send_tail)), 1);
        assert_eq!(read_u32(&ram(&e, 1), hdr!(recv_head)), 1);
    }

    #[test]
    fn copy_keeps_the_sender_page() {
        let e = engine(Movement::Copy, None);
        post(&e, 1, 0x30_0000);
        let slot = place(&e, 0x20_0000, 1, 0, 0xcd);
        e.drain(0);
        assert_eq!(status(&e, slot), IpcStatus::Ok);
        assert_eq!(
            ram(&e, 1).read_bytes(0x30_0000, 4096).unwrap(),
            vec![0xcd; 4096]
        );
        assert_eq!(
            ram(&e, 0).read_bytes(0x20_0000, 4096).unwrap(),
            vec![0xcd; 4096]
        );
        assert!(e.report().ownership.is_none());
    }

    #[test]
    fn bad_descriptors_get_their_status_and_move_nothing() {
        let e = engine(Movement::Remap, None);
        for _ in 0..4 {
            post(&e, 1, 0x30_0000);
        }
        let cases: [(u64, u32, IpcStatus); 5] = [
            (0x10_0000, 1, IpcStatus::NotOwned),
            (MEM, 1, IpcStatus::BadAddress),
            (0x20_0008, 1, IpcStatus::BadAddress),
            (0x20_0000, 5, IpcStatus::UnknownDest),
            (0x20_0000, 0, IpcStatus::SelfSend),
        ];
        for (page, dst, want) in cases {
            let r = ram(&e, 0);
            let head = read_u32(&r, hdr!(send_head));
            let mut d: SendDesc = vm_memory::ByteValued::zeroed();
            d.dst = dst;
            d.len = 64;
            d.npages = 1;
            d.pages[0] = page;
            r.write_pod(send_slot(head), &d);
            write_u32(&r, hdr!(send_head), head + 1);
            e.drain(0);
            assert_eq!(
                status(&e, send_slot(head)),
                want,
                "page {page:#x} dst {dst}"
            );
        }
        assert_eq!(
            read_u32(&ram(&e, 1), hdr!(recv_head)),
            0,
            "nothing delivered"
        );
        let report = e.report();
        assert_eq!(report.vms[0].refused.values().sum::<u64>(), 5);
        assert!(report.ownership.unwrap().violations.is_empty());
    }

    #[test]
    fn queue_full_is_backpressure_and_keeps_order() {
        let e = engine(Movement::Copy, None);
        post(&e, 1, 0x30_0000);
        let a = place(&e, 0x20_0000, 1, 0, 1);
        let b = place(&e, 0x20_1000, 1, 1, 2);
        e.drain(0);
        assert_eq!(status(&e, a), IpcStatus::Ok);
        assert_eq!(
            status(&e, b),
            IpcStatus::QueueFull,
            "no page posted for the second"
        );
        // Room appears; a later descriptor in the same drain as a refused one is refused too.
        post(&e, 1, 0x30_1000);
        let c = place(&e, 0x20_1000, 1, 1, 2);
        e.drain(0);
        assert_eq!(status(&e, c), IpcStatus::Ok);
        let second: RecvEntry = ram(&e, 1)
            .read_pod(RECV_RING_GPA + std::mem::size_of::<RecvEntry>() as u64)
            .unwrap();
        assert_eq!(second.seq, 1);
    }

    #[test]
    fn malformed_ring_consumes_nothing() {
        let e = engine(Movement::Copy, None);
        write_u32(&ram(&e, 0), hdr!(send_head), SEND_RING_LEN + 1);
        e.drain(0);
        assert_eq!(
            read_u32(&ram(&e, 0), hdr!(ring_error)),
            IpcStatus::BadRing as u32
        );
        assert_eq!(read_u32(&ram(&e, 0), hdr!(send_tail)), 0);
    }

    #[test]
    fn send_doorbell_waits_for_a_batch_unless_urgent() {
        let e = engine(Movement::Copy, None);
        for i in 0..4 {
            post(&e, 1, 0x30_0000 + i * PAGE_SIZE);
        }
        write_u32(&ram(&e, 0), hdr!(batch), 4);
        let a = place(&e, 0x20_0000, 1, 0, 1);
        assert!(e.doorbell(0, DOORBELL_SEND));
        assert_eq!(status(&e, a), IpcStatus::Pending, "one of a batch of 4");
        let b = place(&e, 0x20_1000, 1, 1, 1);
        let flags = b + offset_of!(SendDesc, flags) as u64;
        write_u32(&ram(&e, 0), flags, FLAG_URGENT);
        assert!(e.doorbell(0, DOORBELL_SEND));
        assert_eq!(
            (status(&e, a), status(&e, b)),
            (IpcStatus::Ok, IpcStatus::Ok)
        );
        assert!(!e.doorbell(0, 7), "unknown doorbell values are refused");
        // The ignore-urgent fault does not drain on an urgent descriptor.
        let e = engine(Movement::Copy, Some(Fault::IgnoreUrgent));
        post(&e, 1, 0x30_0000);
        write_u32(&ram(&e, 0), hdr!(batch), 4);
        let u = place(&e, 0x20_0000, 1, 0, 1);
        write_u32(
            &ram(&e, 0),
            u + offset_of!(SendDesc, flags) as u64,
            FLAG_URGENT,
        );
        e.doorbell(0, DOORBELL_SEND);
        assert_eq!(status(&e, u), IpcStatus::Pending);
    }

    #[test]
    fn faults_break_what_they_say() {
        // skip-unmap: the sender still sees the page, and the audit says so.
        let e = engine(Movement::Remap, Some(Fault::SkipUnmap));
        post(&e, 1, 0x30_0000);
        place(&e, 0x20_0000, 1, 0, 0xab);
        e.drain(0);
        ram(&e, 1).write_bytes(0x30_0000, &[0x5e; 8]);
        assert_eq!(ram(&e, 0).read_bytes(0x20_0000, 8).unwrap(), vec![0x5e; 8]);
        assert!(!e.report().ownership.unwrap().violations.is_empty());
        // map-both: the same leak, but the table looks clean.
        let e = engine(Movement::Remap, Some(Fault::MapBoth));
        post(&e, 1, 0x30_0000);
        place(&e, 0x20_0000, 1, 0, 0xab);
        e.drain(0);
        ram(&e, 1).write_bytes(0x30_0000, &[0x5e; 8]);
        assert_eq!(ram(&e, 0).read_bytes(0x20_0000, 8).unwrap(), vec![0x5e; 8]);
        assert!(e.report().ownership.unwrap().violations.is_empty());
    }

    #[test]
    fn a_slowdown_spins_inside_move_ns_and_changes_nothing_else() {
        let slowdown = crate::inject::Slowdown::from_us(3_000).unwrap();
        for movement in [Movement::Remap, Movement::Copy] {
            let e = engine(movement, None).with_slowdown(Some(slowdown));
            post(&e, 1, 0x30_0000);
            place(&e, 0x20_0000, 1, 0, 0xab);
            e.drain(0);
            let vm = &e.report().vms[0];
            assert_eq!((vm.sent, vm.refused.len()), (1, 0), "{movement:?}");
            // One spin inside the timed interval: at least its duration, by construction.
            assert!(vm.move_ns >= 3_000_000, "{movement:?}: {}", vm.move_ns);
            assert_eq!(
                ram(&e, 1).read_bytes(0x30_0000, 4096).unwrap(),
                vec![0xab; 4096],
                "{movement:?}: delivered as without a slowdown"
            );
        }
    }
}
