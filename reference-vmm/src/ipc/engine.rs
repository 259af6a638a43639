//! The remap-IPC engine of a run (`docs/remap-ipc.md`): drains a VM's send ring, checks every
//! descriptor ([`super::checks`]), takes landing extents from the receiver's post ring, moves
//! the pages (remap variants: planned in the [`FrameTable`], applied as a [`HostOps`] batch;
//! copy) and enqueues entries in the receivers' rings once the data is in place.
//!
//! One lock serializes every transfer of the run. The engine keeps its own copy of every ring
//! index it owns (send tail, receive head, post tail) and of the landing extents of every
//! entry it enqueued, and writes indices to the guest after each change, so a guest that
//! scribbles over its header cannot make the VMM consume twice, skip, or land a message on
//! one it has not consumed; indices the guest owns are read once per drain and checked.

use std::fs::File;
use std::mem::offset_of;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pageflip_abi::ipc::*;
use pageflip_abi::PAGE_SIZE;
use pageflip_interface::{TransportReport, TransportVmReport};

use super::checks::{check_desc, check_post, Limits};
use super::frames::FrameTable;
use super::host_ops::{HostOps, Merge};
use super::prefault::PreFaulter;
use crate::control::StopFlag;
use crate::inject::Fault;
use crate::inject::Slowdown;
use crate::memory::GuestRam;

/// How message data moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movement {
    /// Pages are remapped from the sender into the receiver, by extents, coalescing adjacent
    /// moves of a drain.
    Remap,
    /// Pages are remapped one by one, three host operations each (the baseline).
    RemapPerPage,
    /// Whole 2 MiB huge pages are remapped (hugetlbfs memory).
    RemapHuge,
    /// Bytes are copied into the receiver's landing extents.
    Copy,
}

impl Movement {
    /// Whether pages move by remapping (the run has a frame table).
    pub fn remaps(self) -> bool {
        self != Movement::Copy
    }

    /// The transport's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Movement::Remap => "remap",
            Movement::RemapPerPage => "remap-per-page",
            Movement::RemapHuge => "remap-huge",
            Movement::Copy => "copy",
        }
    }

    /// Frames a fresh run is aligned to.
    pub fn align(self) -> u32 {
        if self == Movement::RemapHuge {
            HUGE_PAGES
        } else {
            1
        }
    }
}

/// GPA of a header field.
macro_rules! hdr {
    ($f:ident) => {
        IPC_HEADER_GPA + offset_of!(IpcHeader, $f) as u64
    };
}

/// Refused descriptors and skipped posts logged per VM before its log goes quiet (the
/// counts in the report and the header stay complete).
const LOGGED_PER_VM: u32 = 100;

/// The VMM's side of one VM's control structure.
#[derive(Debug)]
struct VmIpc {
    name: String,
    ram: Arc<GuestRam>,
    send_tail: u32,
    recv_head: u32,
    post_tail: u32,
    post_refused: u64,
    deliveries: u64,
    held: Option<RecvEntry>,
    /// Landing extents of the entry in each receive-ring slot, as the VMM enqueued it.
    landed: Vec<Vec<Extent>>,
    /// Entries planned in this drain, enqueued once their data is in place.
    pending: Vec<RecvEntry>,
    logged: u32,
    /// The VM has ended: sends to it get `dest_down`.
    down: bool,
    report: TransportVmReport,
}

impl VmIpc {
    /// Logs a refused request of this VM: the first [`LOGGED_PER_VM`] of them.
    fn warn(&mut self, what: std::fmt::Arguments<'_>) {
        self.logged = self.logged.saturating_add(1);
        if self.logged <= LOGGED_PER_VM {
            log::warn!("{}: {what}", self.name);
        } else if self.logged == LOGGED_PER_VM + 1 {
            log::warn!(
                "{}: further refused IPC requests are counted, not logged",
                self.name
            );
        }
    }

    /// Marks one of this VM's rings malformed: `ring_error` = `bad_ring`, and a log line
    /// when it was not set already (a ring that stays malformed is logged once).
    fn bad_ring(&mut self, what: std::fmt::Arguments<'_>) {
        if read_u32(&self.ram, hdr!(ring_error)) != IpcStatus::BadRing as u32 {
            write_u32(&self.ram, hdr!(ring_error), IpcStatus::BadRing as u32);
            self.warn(what);
        }
    }

    /// Entries in the receive ring the guest has not consumed, with those pending: a
    /// `recv_tail` more than the ring behind counts as the whole ring.
    fn queued(&self) -> u32 {
        let used = self
            .recv_head
            .wrapping_sub(read_u32(&self.ram, hdr!(recv_tail)));
        used.min(RECV_RING_LEN) + self.pending.len() as u32
    }

    /// The landing extents of every message this VM has not consumed (pending included).
    fn busy(&self) -> Vec<Extent> {
        let used = self.queued() - self.pending.len() as u32;
        let ring = (0..used).flat_map(|k| {
            let idx = self.recv_head.wrapping_sub(used - k);
            self.landed[(idx % RECV_RING_LEN) as usize].iter().copied()
        });
        ring.chain(
            self.pending
                .iter()
                .flat_map(|e| e.landing().iter().copied()),
        )
        .collect()
    }
}

#[derive(Debug)]
struct Inner {
    vms: Vec<VmIpc>,
    frames: Option<FrameTable>,
    ops: HostOps,
    host_errors: Vec<String>,
    leaked: bool,
}

/// Pre-faulting as a run asked for it.
#[derive(Debug)]
pub enum PreFault {
    /// Not asked for.
    Off,
    /// Landing extents are queued for their receiver's vCPU thread.
    On(Arc<PreFaulter>),
    /// Asked for, but the host lacks `KVM_CAP_PRE_FAULT_MEMORY`.
    Unavailable,
}

/// The remap-IPC engine of a run.
#[derive(Debug)]
pub struct IpcEngine {
    movement: Movement,
    pre_fault: PreFault,
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

/// The pieces a message moves in: runs that are contiguous both in the sender's extents and
/// in the landing extents, as (sender GPA, landing GPA, pages), in message order.
fn pieces(from: &[Extent], to: &[Extent]) -> Vec<(u64, u64, u32)> {
    let mut out = Vec::new();
    let (mut a, mut b) = (from.iter().copied(), to.iter().copied());
    let (mut x, mut y) = (a.next(), b.next());
    while let (Some(s), Some(d)) = (x.as_mut(), y.as_mut()) {
        let n = s.pages.min(d.pages);
        if n > 0 {
            out.push((s.gpa, d.gpa, n));
        }
        s.gpa += u64::from(n) * PAGE_SIZE;
        s.pages -= n;
        d.gpa += u64::from(n) * PAGE_SIZE;
        d.pages -= n;
        if s.pages == 0 {
            x = a.next();
        }
        if d.pages == 0 {
            y = b.next();
        }
    }
    out
}

impl IpcEngine {
    /// Sets up the control structures of `vms` (name, memory) for a run. `frames` is the
    /// run's frame table (remap variants only), `memfd` the run's page pool.
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
                write_u32(&ram, hdr!(version), IPC_ABI_VERSION);
                VmIpc {
                    name,
                    ram,
                    send_tail: 0,
                    recv_head: 0,
                    post_tail: 0,
                    post_refused: 0,
                    deliveries: 0,
                    held: None,
                    landed: vec![Vec::new(); RECV_RING_LEN as usize],
                    pending: Vec::new(),
                    logged: 0,
                    down: false,
                    report: TransportVmReport::default(),
                }
            })
            .collect();
        let merge = match (movement, fault) {
            (Movement::RemapPerPage, _) | (Movement::Remap, Some(Fault::SplitExtents)) => {
                Merge::PerPage
            }
            (_, Some(Fault::CoalesceAcrossGap)) => Merge::AcrossGaps,
            _ => Merge::Adjacent,
        };
        IpcEngine {
            movement,
            pre_fault: PreFault::Off,
            memfd,
            fault,
            slowdown: None,
            inner: Mutex::new(Inner {
                vms,
                frames,
                ops: HostOps::new(merge),
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

    /// The same engine pre-faulting as `pre_fault` says (remap variants only).
    pub fn with_pre_fault(self, pre_fault: PreFault) -> IpcEngine {
        IpcEngine { pre_fault, ..self }
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

    /// VM `vm` has ended (its vCPU left its loop): its send ring is drained one last time,
    /// so every descriptor it published gets a status, and from now on every send to it is
    /// refused with `dest_down`, the pages left to the sender.
    pub fn vm_ended(&self, vm: usize) {
        let mut inner = self.lock();
        self.drain_locked(&mut inner, vm);
        inner.vms[vm].down = self.fault != Some(Fault::IgnoreDestDown);
    }

    /// Drains VM `vm`'s send ring (every exit of the VM to the VMM does this first).
    pub fn drain(&self, vm: usize) {
        let mut inner = self.lock();
        self.drain_locked(&mut inner, vm);
    }

    fn limits(&self, inner: &Inner, vm: usize) -> Limits {
        Limits {
            mem_size: inner.vms[vm].ram.size(),
            num_vms: inner.vms.len(),
            huge: self.movement == Movement::RemapHuge,
        }
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
            inner.vms[vm].warn(format_args!(
                "malformed send ring: head {head} is {pending} ahead of tail {tail} (ring of {SEND_RING_LEN}); nothing consumed"
            ));
            write_u32(&ram, hdr!(ring_error), IpcStatus::BadRing as u32);
            return;
        }
        let limits = self.limits(inner, vm);
        // Once a destination refuses with QueueFull or LandingTooSmall, every later descriptor
        // of this drain to it gets that status too: the sender resends them in order, so FIFO
        // per sender holds.
        let mut full: Vec<Option<IpcStatus>> = vec![None; inner.vms.len()];
        let mut statuses = Vec::with_capacity(pending as usize);
        for i in 0..pending {
            let idx = tail.wrapping_add(i);
            let slot_gpa = send_slot(idx);
            // One copy of the descriptor: later guest writes cannot change what is checked.
            let status = match ram.read_pod::<SendDesc>(slot_gpa) {
                Some(desc) => match check_desc(&desc, vm, limits) {
                    Ok(_) if full[desc.dst as usize].is_some() => {
                        full[desc.dst as usize].unwrap_or(IpcStatus::QueueFull)
                    }
                    Ok(extents) => {
                        let s = self.deliver(inner, vm, &desc, extents);
                        if matches!(s, IpcStatus::QueueFull | IpcStatus::LandingTooSmall) {
                            full[desc.dst as usize] = Some(s);
                        }
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
                    v.warn(format_args!(
                        "refused send descriptor {idx}: {}",
                        status.name()
                    ));
                }
            }
            statuses.push((slot_gpa, status));
        }
        // The data is in place before the sender sees a status or a receiver an entry.
        self.flush(inner, vm);
        for (slot_gpa, status) in statuses {
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

    /// Applies the host operations planned so far (counted for sender `src`), returns the
    /// quarantined frames to the pool, and enqueues the entries waiting for them.
    fn flush(&self, inner: &mut Inner, src: usize) {
        if !inner.ops.is_empty() {
            let started = Instant::now();
            let rams: Vec<&GuestRam> = inner.vms.iter().map(|v| &*v.ram).collect();
            let ops = inner.ops.apply(&self.memfd, &rams, &mut inner.host_errors);
            if let Some(frames) = inner.frames.as_mut() {
                frames.release_quarantine();
            }
            let report = &mut inner.vms[src].report;
            report.map_ops += ops;
            report.move_ns += started.elapsed().as_nanos() as u64;
        }
        for dst in 0..inner.vms.len() {
            for entry in std::mem::take(&mut inner.vms[dst].pending) {
                self.enqueue(inner, dst, entry);
            }
        }
    }

    /// Takes landing extents for `need` pages from `dst`'s post ring (see
    /// `docs/remap-ipc.md`): the used part of each, in order. Bad entries are retired with
    /// their status; on failure only those in front of the first good one are.
    fn take_landing(
        &self,
        inner: &mut Inner,
        dst: usize,
        need: u64,
    ) -> Result<Vec<Extent>, IpcStatus> {
        let limits = self.limits(inner, dst);
        let v = &mut inner.vms[dst];
        let ram = v.ram.clone();
        let posted = read_u32(&ram, hdr!(post_head)).wrapping_sub(v.post_tail);
        if posted > POST_RING_LEN {
            let tail = v.post_tail;
            v.bad_ring(format_args!(
                "malformed post ring: post_head is {posted} ahead of post_tail {tail} (ring of {POST_RING_LEN}); senders get queue_full"
            ));
            return Err(IpcStatus::QueueFull);
        }
        let busy = v.busy();
        let mut taken: Vec<Extent> = Vec::new();
        let mut landing: Vec<Extent> = Vec::new();
        let mut verdicts: Vec<(u32, Extent, IpcStatus)> = Vec::new();
        let mut have = 0u64;
        let mut result = Err(IpcStatus::QueueFull);
        for k in 0..posted {
            if taken.len() == MAX_EXTENTS {
                result = Err(IpcStatus::LandingTooSmall);
                break;
            }
            let idx = v.post_tail.wrapping_add(k);
            let p: PostEntry = ram.read_pod(post_slot(idx)).unwrap_or_default();
            let e = Extent {
                gpa: p.gpa,
                pages: p.pages,
                reserved: 0,
            };
            match check_post(&e, limits, &busy, &taken) {
                Ok(()) => {
                    let used = (need - have).min(u64::from(e.pages)) as u32;
                    taken.push(e);
                    landing.push(Extent { pages: used, ..e });
                    have += u64::from(used);
                    verdicts.push((idx, e, IpcStatus::Ok));
                }
                Err(s) => verdicts.push((idx, e, s)),
            }
            if have == need {
                result = Ok(());
                break;
            }
        }
        if taken.len() == MAX_EXTENTS && have < need {
            result = Err(IpcStatus::LandingTooSmall);
        }
        let retire = match result {
            Ok(()) => verdicts.len(),
            Err(_) => verdicts
                .iter()
                .take_while(|(_, _, s)| *s != IpcStatus::Ok)
                .count(),
        };
        for &(idx, e, s) in &verdicts[..retire] {
            write_u32(
                &ram,
                post_slot(idx) + offset_of!(PostEntry, status) as u64,
                s as u32,
            );
            if s != IpcStatus::Ok {
                v.post_refused += 1;
                v.warn(format_args!(
                    "skipped posted landing extent {idx} ({} pages at {:#x}): {}",
                    e.pages,
                    e.gpa,
                    s.name()
                ));
            }
        }
        v.post_tail = v.post_tail.wrapping_add(retire as u32);
        write_u32(&ram, hdr!(post_tail), v.post_tail);
        write_u64(&ram, hdr!(post_refused), v.post_refused);
        result.map(|()| landing)
    }

    fn deliver(&self, inner: &mut Inner, src: usize, d: &SendDesc, from: &[Extent]) -> IpcStatus {
        let dst = d.dst as usize;
        if inner.vms[dst].down {
            return IpcStatus::DestDown;
        }
        {
            let v = &mut inner.vms[dst];
            let used = v.recv_head.wrapping_sub(read_u32(&v.ram, hdr!(recv_tail)));
            if used > RECV_RING_LEN {
                let head = v.recv_head;
                v.bad_ring(format_args!(
                    "malformed receive ring: recv_tail is {used} behind recv_head {head} (ring of {RECV_RING_LEN}); counted as full, senders get queue_full"
                ));
            }
            if v.queued() >= RECV_RING_LEN {
                return IpcStatus::QueueFull;
            }
        }
        let copies = !self.movement.remaps()
            || matches!(
                (self.movement, self.fault),
                (Movement::Remap, Some(Fault::CopyInsteadOfRemap))
                    | (Movement::RemapHuge, Some(Fault::HugeFallbackCopy))
            );
        let pages = total_pages(from);
        let need = if self.movement.remaps() {
            pages
        } else {
            u64::from(d.len).div_ceil(PAGE_SIZE)
        };
        if !copies && !self.pool_holds(inner, src, pages) {
            return IpcStatus::QueueFull;
        }
        let landing = match self.take_landing(inner, dst, need) {
            Ok(l) => l,
            Err(s) => return s,
        };
        let started = Instant::now();
        if copies {
            self.copy(inner, src, dst, from, &landing, d.len);
        } else {
            self.remap(inner, src, dst, from, &landing);
            inner.vms[src].report.pages_remapped += pages;
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
            nextents: landing.len() as u32,
            extents: [Extent::default(); MAX_EXTENTS],
        };
        entry.extents[..landing.len()].copy_from_slice(&landing);
        if self.fault == Some(Fault::SwapSourceId) {
            entry.src = dst as u32;
        }
        inner.vms[dst].pending.push(entry);
        IpcStatus::Ok
    }

    /// Copies the first `len` bytes of the message in `from` to the landing extents `to`.
    fn copy(
        &self,
        inner: &mut Inner,
        src: usize,
        dst: usize,
        from: &[Extent],
        to: &[Extent],
        len: u32,
    ) {
        let mut left = u64::from(len);
        for (s, d, pages) in pieces(from, to) {
            let n = left.min(u64::from(pages) * PAGE_SIZE);
            if let Some(bytes) = inner.vms[src].ram.read_bytes(s, n as usize) {
                inner.vms[dst].ram.write_bytes(d, &bytes);
            }
            left -= n;
            if left == 0 {
                break;
            }
        }
        inner.vms[src].report.bytes_copied += u64::from(len);
    }

    /// Whether the pool has `pages` free frames for a move, applying the batch first (which
    /// returns its quarantined frames) if it is short: checked before anything is taken, so
    /// a move is never left half done. The pool holds twice the largest message, so this
    /// fails only if frames were lost.
    fn pool_holds(&self, inner: &mut Inner, src: usize, pages: u64) -> bool {
        let free = |inner: &Inner| inner.frames.as_ref().map_or(0, |f| f.free_frames());
        if free(inner) < pages {
            self.flush(inner, src);
        }
        free(inner) >= pages
    }

    /// Plans the move of the message's pages and adds its host operations to the batch.
    fn remap(&self, inner: &mut Inner, src: usize, dst: usize, from: &[Extent], to: &[Extent]) {
        for (s, d, pages) in pieces(from, to) {
            // `pool_holds` made room for the whole message before any landing was taken, so
            // this fails only if frames were lost (and then the audit says so).
            let frames = inner
                .frames
                .as_mut()
                .expect("remap runs have a frame table");
            let planned = match frames.move_range(src, s, dst, d, pages) {
                Ok(m) => m,
                Err(e) => {
                    inner
                        .host_errors
                        .push(format!("remap of {pages} pages {s:#x} -> {d:#x}: {e}"));
                    continue;
                }
            };
            let skip_sender = matches!(self.fault, Some(Fault::SkipUnmap | Fault::MapBoth));
            if self.fault == Some(Fault::SkipUnmap) {
                // the sender keeps its mapping, and the table says so
                let frames = inner
                    .frames
                    .as_mut()
                    .expect("remap runs have a frame table");
                for r in &planned.receiver {
                    for i in 0..r.pages {
                        let off = u64::from(i) * PAGE_SIZE;
                        frames.alias(src, s + (r.gpa - d) + off, r.frame + i);
                    }
                }
            }
            inner.ops.add(planned, skip_sender);
        }
        if self.fault == Some(Fault::LeakPage) && !inner.leaked {
            inner.leaked = true;
            inner.frames.as_mut().and_then(|f| f.leak());
        }
    }

    fn enqueue(&self, inner: &mut Inner, dst: usize, entry: RecvEntry) {
        let v = &mut inner.vms[dst];
        v.deliveries += 1;
        let k = v.deliveries;
        match self.fault {
            Some(Fault::DropEveryNth) if k.is_multiple_of(97) => return,
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
            let slot = v.recv_head % RECV_RING_LEN;
            v.ram.write_pod(
                RECV_RING_GPA + u64::from(slot) * std::mem::size_of::<RecvEntry>() as u64,
                &e,
            );
            v.landed[slot as usize] = e.landing().to_vec();
            if let (PreFault::On(p), true) = (&self.pre_fault, self.movement.remaps()) {
                p.queue(dst, e.landing());
            }
            v.recv_head = v.recv_head.wrapping_add(1);
            v.report.received += 1;
        }
        write_u32(&v.ram, hdr!(recv_head), v.recv_head);
        write_u64(&v.ram, hdr!(received), v.report.received);
        self.arrived.notify_all();
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
            kind: self.movement.name().into(),
            vms: inner
                .vms
                .iter()
                .enumerate()
                .map(|(i, v)| TransportVmReport {
                    pre_faulted_pages: match &self.pre_fault {
                        PreFault::On(p) => p.pages(i),
                        _ => 0,
                    },
                    ..v.report.clone()
                })
                .collect(),
            ownership,
            pre_fault: match &self.pre_fault {
                PreFault::Off => None,
                PreFault::On(p) => Some(
                    p.failure()
                        .map_or("on".into(), |why| format!("unavailable: {why}")),
                ),
                PreFault::Unavailable => Some(
                    "unavailable: the host lacks KVM_CAP_PRE_FAULT_MEMORY (capability 236)".into(),
                ),
            },
        }
    }
}

fn send_slot(idx: u32) -> u64 {
    SEND_RING_GPA + u64::from(idx % SEND_RING_LEN) * std::mem::size_of::<SendDesc>() as u64
}

fn post_slot(idx: u32) -> u64 {
    POST_RING_GPA + u64::from(idx % POST_RING_LEN) * std::mem::size_of::<PostEntry>() as u64
}

#[cfg(test)]
mod fuzz;

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
        let frames = movement
            .remaps()
            .then(|| FrameTable::contiguous(&[("vm0".into(), MEM), ("vm1".into(), MEM)], POOL, 1));
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
        d.nextents = 1;
        d.extents[0] = ext(page, 1);
        let slot = send_slot(head);
        r.write_pod(slot, &d);
        write_u32(&r, hdr!(send_head), head + 1);
        slot
    }

    /// Sends `n` one-page messages from VM0's page `0x20_0000` to VM1, each placed and
    /// drained on its own; their slots.
    fn send_each(e: &IpcEngine, n: u64) -> Vec<u64> {
        (0..n)
            .map(|k| {
                let slot = place(e, 0x20_0000, 1, k, 0xab);
                e.drain(0);
                slot
            })
            .collect()
    }

    fn ext(gpa: u64, pages: u32) -> Extent {
        Extent {
            gpa,
            pages,
            reserved: 0,
        }
    }

    fn post(e: &IpcEngine, vm: usize, gpa: u64) {
        post_n(e, vm, gpa, 1);
    }

    fn post_n(e: &IpcEngine, vm: usize, gpa: u64, pages: u32) {
        let r = ram(e, vm);
        let head = read_u32(&r, hdr!(post_head));
        let p = PostEntry {
            gpa,
            pages,
            status: 0,
        };
        r.write_pod(post_slot(head), &p);
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
            (entry.seq, entry.src, entry.dst, entry.landing()),
            (7, 0, 1, &[ext(0x30_0000, 1)][..])
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
        assert_eq!(report.vms[0].map_ops, 3, "sender map, receiver map, punch");
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
    fn a_send_to_an_ended_vm_is_dest_down_and_the_sender_keeps_its_page() {
        for movement in [Movement::Remap, Movement::Copy] {
            let e = engine(movement, None);
            post(&e, 1, 0x30_0000);
            let first = place(&e, 0x20_0000, 1, 1, 0xab);
            e.drain(0);
            assert_eq!(status(&e, first), IpcStatus::Ok, "{movement:?}");
            post(&e, 1, 0x30_1000);
            e.vm_ended(1);
            let slot = place(&e, 0x20_1000, 1, 2, 0xcd);
            e.drain(0);
            assert_eq!(status(&e, slot), IpcStatus::DestDown, "{movement:?}");
            assert_eq!(
                ram(&e, 0).read_bytes(0x20_1000, 4096).unwrap(),
                vec![0xcd; 4096],
                "{movement:?}: the sender keeps its page"
            );
            let r = ram(&e, 1);
            assert_eq!(read_u32(&r, hdr!(recv_head)), 1, "{movement:?}");
            assert_eq!(
                read_u32(&r, hdr!(post_tail)),
                1,
                "{movement:?}: post untouched"
            );
            let report = e.report();
            assert_eq!(report.vms[0].refused.get("dest_down"), Some(&1));
            assert_eq!(report.vms[0].sent, 1);
            if let Some(o) = report.ownership {
                assert!(o.violations.is_empty(), "{:?}", o.violations);
            }
        }
    }

    #[test]
    fn bad_posts_are_examined_and_logged_once_however_often_sends_fail() {
        let e = engine(Movement::Remap, None);
        for _ in 0..200 {
            post(&e, 1, 0x1000);
        }
        let slots = send_each(&e, 50);
        assert!(slots.iter().all(|&s| status(&e, s) == IpcStatus::QueueFull));
        let inner = e.lock();
        let v = &inner.vms[1];
        assert_eq!(v.post_refused, 200, "each bad post counted once");
        assert_eq!(
            v.logged, 200,
            "each bad post logged once (the first 100 printed)"
        );
        assert_eq!(
            inner.vms[0].logged, 0,
            "queue_full is flow control, not logged"
        );
    }

    #[test]
    fn an_ending_vm_has_its_published_sends_drained() {
        let e = engine(Movement::Remap, None);
        post(&e, 1, 0x30_0000);
        write_u32(&ram(&e, 0), hdr!(batch), 4);
        let slot = place(&e, 0x20_0000, 1, 1, 0xab);
        assert!(e.doorbell(0, DOORBELL_SEND));
        assert_eq!(status(&e, slot), IpcStatus::Pending, "deferred");
        e.vm_ended(0);
        assert_eq!(status(&e, slot), IpcStatus::Ok);
        assert_eq!(read_u32(&ram(&e, 1), hdr!(recv_head)), 1);
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
            d.nextents = 1;
            d.extents[0] = ext(page, 1);
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
    fn a_malformed_receiver_ring_is_queue_full_for_senders_and_logged_once() {
        for (field, bad) in [
            (hdr!(recv_tail), 0u32.wrapping_sub(RECV_RING_LEN + 1)),
            (hdr!(post_head), POST_RING_LEN + 1),
        ] {
            let e = engine(Movement::Remap, None);
            write_u32(&ram(&e, 1), field, bad);
            let slots = send_each(&e, 3);
            assert!(slots.iter().all(|&s| status(&e, s) == IpcStatus::QueueFull));
            let r = ram(&e, 1);
            assert_eq!(read_u32(&r, hdr!(ring_error)), IpcStatus::BadRing as u32);
            assert_eq!(e.lock().vms[1].logged, 1, "logged once, not per send");
            // Cleared by the guest: told again.
            write_u32(&r, hdr!(ring_error), 0);
            place(&e, 0x20_0000, 1, 9, 0xab);
            e.drain(0);
            assert_eq!(e.lock().vms[1].logged, 2);
        }
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
