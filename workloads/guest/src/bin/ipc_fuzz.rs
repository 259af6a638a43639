//! `ipc_fuzz` (2 VMs): a seeded guest-side fuzzer of remap IPC and the pageflip device
//! ([`pageflip_guest::abi::probes::ipc_fuzz`]).
//!
//! Both VMs draw their actions from a splitmix64 generator seeded with `params[SEED]` and
//! their VM id, so a seed replays the same actions (the interleaving of the two vCPUs is the
//! host's). Each checks every answer against the spec as it goes: a model of the descriptor
//! checks (`docs/remap-ipc.md`, "Descriptor checks") gives each descriptor's status, a model
//! of the landing checks each retired post entry's, and the device's register table each
//! access's `STATUS`. Then both repair their rings and a good message must still arrive.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{
    Extent, IpcStatus, RecvEntry, SendDesc, FLAG_URGENT, MAX_EXTENTS, MAX_MSG_PAGES, POST_RING_LEN,
    SEND_RING_LEN,
};
use pageflip_guest::abi::mmio::{
    Status, BARRIER, CONSOLE, CONSOLE_MAX, DONE, DOORBELL, IPC_DOORBELL, IPC_RECV_WAIT, MAGIC,
    MAGIC_VALUE, PHASE, RESULT, SAMPLES, STATUS,
};
use pageflip_guest::abi::probes::ipc_fuzz::*;
use pageflip_guest::abi::probes::ipc_landing::VARIANT_COPY;
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::splitmix::SplitMix64;
use pageflip_guest::abi::{IMAGE_BASE, MMIO_BASE, MMIO_SIZE, PAGE_SIZE};
use pageflip_guest::arena::Arena;
use pageflip_guest::check::Tally;
use pageflip_guest::ipc::{init_ipc, Ipc, SendSlot, StatusName};
use pageflip_guest::mmio::{
    read_gpa, read_gpa_u16, read_gpa_u32, read_gpa_u8, write_gpa, write_gpa_u16, write_gpa_u32,
    write_gpa_u8,
};
use pageflip_guest::payload::{extent, fill_payload, page_is_zero, verify_payload, Coverage};
use pageflip_guest::tsc::Deadline;
use pageflip_guest::{barrier, boot_info, check, fail, mmio_read, status_raw};

pageflip_guest::entry!(main);

/// VM0's pages that random descriptors name (the only good pages they name).
const SEND_PAGES: u64 = 32;
/// VM1's pages that random good post entries name.
const LANDING_PAGES: u64 = 64;
/// VM1's pages posted, as one entry, for the good message.
const GOOD_LANDING_PAGES: u64 = 8;
/// The good message: 3 extents (pages 0-1, 3, 5-7 of its area), 6 pages.
const GOOD_AREA_PAGES: u64 = 8;
/// Its length: not a multiple of the page size.
const GOOD_LEN: u32 = 6 * PAGE_SIZE as u32 - 123;
/// Fillers VM0 sends at most before it gives up on the good message.
const MAX_FILLERS: u32 = 2 * POST_RING_LEN;
/// How long a VM waits for what the other has already done.
const WAIT_MS: u64 = 5_000;
/// The header's `wait_timeout_us` (an `IPC_RECV_WAIT` read gives up after this long).
const WAIT_TIMEOUT_US: u64 = 2_000;
/// The device's registers (8 bytes each, at these offsets); any other offset is none.
const REGISTERS: u64 = IPC_RECV_WAIT / 8 + 1;
/// Write-only registers: a read of one is `bad_register` and returns 0.
const WRITE_ONLY: [u64; 8] = [
    CONSOLE,
    RESULT,
    SAMPLES,
    PHASE,
    DOORBELL,
    DONE,
    BARRIER,
    IPC_DOORBELL,
];
/// What a descriptor that breaks no rule may get.
const SEND_GOOD: [IpcStatus; 3] = [
    IpcStatus::Ok,
    IpcStatus::QueueFull,
    IpcStatus::LandingTooSmall,
];
/// What a post entry that breaks no rule may get.
const POST_GOOD: [IpcStatus; 3] = [IpcStatus::Ok, IpcStatus::Busy, IpcStatus::Overlap];
/// Read-only registers: a write of one is `bad_register`.
const READ_ONLY: [u64; 3] = [MAGIC, STATUS, IPC_RECV_WAIT];

/// The probe's generator: splitmix64 seeded with `params[SEED]` and the VM id.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64, vm: u32) -> Rng {
        Rng(SplitMix64::new(
            seed ^ (u64::from(vm) + 1).wrapping_mul(0xa076_1d64_78bd_642f),
        ))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// `true` with probability 1/`n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("ipc_fuzz needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    let seed = bi.params[SEED];
    let rounds = bi.params[ROUNDS];
    let Some(mut ipc) = init_ipc(1, WAIT_TIMEOUT_US) else {
        return 1;
    };
    let mut arena = Arena::new();
    let mut rng = Rng::new(seed, bi.vm_id);
    let mut mmio = Tally::new();
    if bi.vm_id == 0 {
        let (Some(send), Some(good), Some(filler)) = (
            arena.alloc(SEND_PAGES),
            arena.alloc(GOOD_AREA_PAGES),
            arena.alloc(1),
        ) else {
            fail(MEMORY_SIZE, "no room for VM0's pages");
            return 1;
        };
        let remaps = bi.params[VARIANT] != VARIANT_COPY;
        let mut s = Sender::new(send, remaps);
        for _ in 0..rounds {
            match rng.below(10) {
                0..=5 => s.send_random(&mut ipc, &mut rng),
                6 => s.scribble(&mut ipc, &mut rng),
                7 => ipc.set_batch(rng.below(SEND_RING_LEN as u64 + 8) as u32),
                _ => device_access(&mut rng, &mut mmio),
            }
        }
        s.finish(&mut ipc);
        mmio.record(MMIO_STATUSES, format_args!("{rounds} rounds, seed {seed}"));
        barrier();
        barrier();
        s.send_good(&mut ipc, good, filler);
    } else {
        let (Some(landing), Some(good)) =
            (arena.alloc(LANDING_PAGES), arena.alloc(GOOD_LANDING_PAGES))
        else {
            fail(MEMORY_SIZE, "no room for VM1's pages");
            return 1;
        };
        let mut r = Receiver::new(landing, good);
        for _ in 0..rounds {
            match rng.below(10) {
                0..=3 => r.post_random(&mut ipc, &mut rng),
                4..=6 => r.receive(&mut ipc),
                7 => r.scribble(&mut ipc, &mut rng),
                _ => device_access(&mut rng, &mut mmio),
            }
            r.tick(&mut ipc);
        }
        mmio.record(MMIO_STATUSES, format_args!("{rounds} rounds, seed {seed}"));
        barrier();
        r.repair(&mut ipc);
        barrier();
        r.receive_good(&mut ipc);
    }
    0
}

/// The status the descriptor checks 1-6 give `d` from VM `me` of `num_vms` with `mem_size`
/// bytes, or `None` if it passes them (`docs/remap-ipc.md`, "Descriptor checks").
fn model_send(d: &SendDesc, me: u32, num_vms: u32, mem_size: u64) -> Option<IpcStatus> {
    let n = d.nextents as usize;
    if n == 0 || n > MAX_EXTENTS {
        return Some(IpcStatus::TooManyExtents);
    }
    let extents = &d.extents[..n];
    for e in extents {
        match extent_end(e, mem_size) {
            None => return Some(IpcStatus::BadAddress),
            Some(_) if e.gpa < IMAGE_BASE => return Some(IpcStatus::NotOwned),
            Some(_) => {}
        }
    }
    let total: u64 = extents.iter().map(|e| u64::from(e.pages)).sum();
    if total > u64::from(MAX_MSG_PAGES) {
        return Some(IpcStatus::TooManyPages);
    }
    if d.len == 0 || u64::from(d.len) > total * PAGE_SIZE {
        return Some(IpcStatus::BadLength);
    }
    for (i, a) in extents.iter().enumerate() {
        for b in &extents[i + 1..] {
            if shares_page(a, b) {
                return Some(IpcStatus::Overlap);
            }
        }
    }
    if d.dst >= num_vms {
        return Some(IpcStatus::UnknownDest);
    }
    if d.dst == me {
        return Some(IpcStatus::SelfSend);
    }
    None
}

/// The end of `e` if it is a good range of guest memory (at least a page, aligned, inside
/// `mem_size` without overflow), else `None`.
fn extent_end(e: &Extent, mem_size: u64) -> Option<u64> {
    let end = e.gpa.checked_add(u64::from(e.pages) * PAGE_SIZE)?;
    (e.pages != 0 && e.gpa % PAGE_SIZE == 0 && end <= mem_size).then_some(end)
}

/// Whether two good extents share a page.
fn shares_page(a: &Extent, b: &Extent) -> bool {
    let end = |e: &Extent| e.gpa + u64::from(e.pages) * PAGE_SIZE;
    a.gpa < end(b) && b.gpa < end(a)
}

/// A random extent: good pages of `[base, base + pages)` if `good`, else mostly those and
/// otherwise one that breaks a rule (reserved, unaligned, past memory, 0 pages, overflowing,
/// or random bits).
fn random_extent(rng: &mut Rng, base: u64, pages: u64, mem_size: u64, good_only: bool) -> Extent {
    let start = rng.below(pages);
    let good_pages = 1 + rng.below((pages - start).min(4));
    let good = base + start * PAGE_SIZE;
    let (gpa, pages) = match rng.below(16) {
        _ if good_only => (good, good_pages),
        0..=9 => (good, good_pages),
        10 => (
            rng.below(IMAGE_BASE / PAGE_SIZE) * PAGE_SIZE,
            1 + rng.below(3),
        ),
        11 => (good + 1 + rng.below(PAGE_SIZE - 1), good_pages),
        12 => {
            let back = rng.below(3);
            (mem_size - back * PAGE_SIZE, back + 1 + rng.below(3))
        }
        13 => (good, 0),
        14 => (!(PAGE_SIZE - 1) - rng.below(4) * PAGE_SIZE, good_pages),
        _ => (rng.next(), rng.next() >> 32),
    };
    Extent {
        gpa,
        pages: pages as u32,
        reserved: 0,
    }
}

/// VM0: random descriptors, checked against [`model_send`].
struct Sender {
    send: u64,
    /// Placed descriptors whose status is not checked yet, with the status the model gives.
    unchecked: Awaiting<{ SEND_RING_LEN as usize }>,
    /// Descriptors VM0 saw `ok` (each a message VM1 must receive).
    delivered: u64,
    /// The low bits of the next descriptor's `seq`.
    next_seq: u64,
    /// Whether the transport moves pages (remap variants) rather than copying them.
    remaps: bool,
    statuses: Tally,
    ring: Tally,
    scribbles: u64,
}

impl Sender {
    fn new(send: u64, remaps: bool) -> Sender {
        Sender {
            send,
            next_seq: 1,
            remaps,
            unchecked: Awaiting::new(),
            delivered: 0,
            statuses: Tally::new(),
            ring: Tally::new(),
            scribbles: 0,
        }
    }

    /// Places a random descriptor and maybe rings a doorbell.
    fn send_random(&mut self, ipc: &mut Ipc, rng: &mut Rng) {
        let bi = boot_info();
        self.check(ipc);
        if ipc.pending() >= SEND_RING_LEN || self.unchecked.is_full() {
            ipc.flush();
            self.check(ipc);
            if ipc.pending() >= SEND_RING_LEN {
                self.statuses.fail(format_args!(
                    "a flush consumed nothing of a full ring (send_tail {})",
                    ipc.send_tail()
                ));
                return;
            }
        }
        // Half the descriptors break no rule on purpose (their extents may still overlap);
        // the others break any number.
        let clean = rng.one_in(2);
        let mut extents = [Extent::default(); MAX_EXTENTS];
        for e in &mut extents {
            *e = random_extent(rng, self.send, SEND_PAGES, bi.mem_size, clean);
        }
        let nextents = match rng.below(12) {
            _ if clean => 1 + rng.below(4) as u32,
            0 => 0,
            1 => MAX_EXTENTS as u32 + 1 + rng.below(4) as u32,
            2 => rng.next() as u32,
            _ => 1 + rng.below(4) as u32,
        };
        let shown = (nextents as usize).min(MAX_EXTENTS);
        let total: u64 = extents[..shown].iter().map(|e| u64::from(e.pages)).sum();
        let room = (total * PAGE_SIZE).clamp(1, u64::from(u32::MAX));
        let len = match rng.below(10) {
            _ if clean => (1 + rng.below(room)) as u32,
            0 => 0,
            1 => (room + 1 + rng.below(PAGE_SIZE)).min(u64::from(u32::MAX)) as u32,
            2 => rng.next() as u32,
            _ => (1 + rng.below(room)) as u32,
        };
        let dst = match rng.below(10) {
            _ if clean => 1,
            0 => 0,
            1 => 2 + rng.below(6) as u32,
            2 => rng.next() as u32,
            _ => 1,
        };
        let flags = match rng.below(6) {
            0 => FLAG_URGENT,
            1 => rng.next() as u32,
            _ => 0,
        };
        let seq = self.next_seq | if clean { CLEAN_SEQ } else { 0 };
        self.next_seq += 1;
        if clean {
            // Its pages hold its payload until the VMM consumes it: nothing pending may
            // name them when they are written.
            if ipc.pending() != 0 {
                ipc.flush();
                self.check(ipc);
            }
            fill_payload(
                &extents[..nextents as usize],
                u64::from(len),
                0,
                seq,
                Coverage::Full,
            );
        }
        let desc = SendDesc {
            seq,
            dst,
            flags,
            len,
            nextents,
            status: IpcStatus::Pending as u32,
            reserved: if rng.one_in(4) { rng.next() as u32 } else { 0 },
            extents,
        };
        let want = model_send(&desc, bi.vm_id, bi.num_vms, bi.mem_size);
        let slot = ipc.place(&desc);
        self.unchecked.push(slot.0, want);
        match rng.below(4) {
            0 => ipc.ring_send_doorbell(),
            1 => ipc.flush(),
            _ => {}
        }
        self.check(ipc);
    }

    /// Checks the status of every consumed descriptor not checked yet.
    fn check(&mut self, ipc: &Ipc) {
        let (settled, n) = self.unchecked.settle(|i| ipc.consumed(SendSlot(i)));
        for &(index, want) in &settled[..n] {
            let slot = SendSlot(index);
            let raw = ipc.status_raw(slot);
            if raw == IpcStatus::Ok as u32 && want.is_none() {
                self.delivered += 1;
                self.check_sent_pages(ipc, slot);
            }
            if !fits(raw, want, &SEND_GOOD) {
                let d = ipc.descriptor(slot);
                self.statuses.fail(format_args!(
                    "descriptor {index} got {}, want {} (nextents {}, len {}, dst {}, extents[0] {:#x}+{})",
                    StatusName(raw),
                    want.map_or("ok, queue_full or landing_too_small", IpcStatus::name),
                    d.nextents,
                    d.len,
                    d.dst,
                    d.extents[0].gpa,
                    d.extents[0].pages
                ));
            }
        }
    }

    /// After an `ok`, a clean descriptor's pages read zero (remap variants: the sender's
    /// range gets fresh zeroed memory) or still hold the payload (copy).
    fn check_sent_pages(&mut self, ipc: &Ipc, slot: SendSlot) {
        let d = ipc.descriptor(slot);
        if d.seq & CLEAN_SEQ == 0 {
            return;
        }
        let extents = &d.extents[..d.nextents as usize];
        let wrong = if self.remaps {
            extents.iter().find_map(|e| {
                (0..u64::from(e.pages)).find_map(|k| {
                    let page = e.gpa + k * PAGE_SIZE;
                    page_is_zero(page).err().map(|(off, v)| (page + off, v, 0))
                })
            })
        } else {
            verify_payload(extents, u64::from(d.len), 0, d.seq, Coverage::Full)
                .err()
                .map(|m| (m.offset, m.got, m.want))
        };
        if let Some((at, got, want)) = wrong {
            self.statuses.fail(format_args!(
                "after ok, message seq {:#x}: {at:#x} (GPA, or byte of the message) reads {got:#x}, want {want:#x} ({})",
                d.seq,
                if self.remaps {
                    "remap: zeroed"
                } else {
                    "copy: the payload"
                }
            ));
        }
    }

    /// Makes the send ring malformed, drains it (nothing must be consumed, `ring_error` =
    /// `bad_ring`), then repairs it.
    fn scribble(&mut self, ipc: &mut Ipc, rng: &mut Rng) {
        let tail = ipc.send_tail();
        let bad = match rng.below(3) {
            0 => tail.wrapping_add(SEND_RING_LEN + 1 + rng.below(1 << 20) as u32),
            1 => tail.wrapping_sub(1 + rng.below(8) as u32),
            _ => tail.wrapping_add(SEND_RING_LEN + 1 + rng.next() as u32 % (1 << 30)),
        };
        ipc.restore_indices();
        ipc.write_send_head_raw(bad);
        ipc.flush();
        let (after, error) = (ipc.send_tail(), ipc.ring_error());
        ipc.restore_indices();
        self.scribbles += 1;
        if after != tail || error != IpcStatus::BadRing as u32 {
            self.ring.fail(format_args!(
                "send_head {bad} with send_tail {tail}: send_tail {after} after a flush (want unchanged), ring_error {} (want bad_ring)",
                StatusName(error)
            ));
        }
        ipc.flush();
        self.check(ipc);
        if ipc.pending() != 0 {
            self.ring.fail(format_args!(
                "after the repair a flush left {} descriptors pending",
                ipc.pending()
            ));
        }
    }

    /// The end of the random phase: repairs, drains, and records.
    fn finish(&mut self, ipc: &mut Ipc) {
        ipc.restore_indices();
        ipc.set_batch(1);
        ipc.flush();
        self.check(ipc);
        if self.unchecked.len() != 0 {
            self.statuses.fail(format_args!(
                "{} descriptors never consumed after the last flush",
                self.unchecked.len()
            ));
        }
        self.statuses.record(
            SEND_STATUSES,
            format_args!("{} messages delivered", self.delivered),
        );
        self.ring.record(
            SEND_RING,
            format_args!("{} scribbles, each refused and repaired", self.scribbles),
        );
    }

    /// Sends the good message, retiring VM1's stale post entries with one-page fillers while
    /// it does not fit them (`landing_too_small`), or waiting while VM1's queue is full.
    fn send_good(&mut self, ipc: &mut Ipc, good: u64, filler: u64) {
        let extents = [
            extent(good, 2),
            extent(good + 3 * PAGE_SIZE, 1),
            extent(good + 5 * PAGE_SIZE, 3),
        ];
        let deadline = Deadline::after_ms(WAIT_MS);
        let (mut fillers, mut last) = (0, IpcStatus::Pending as u32);
        while !deadline.expired() && fillers <= MAX_FILLERS {
            let seq = GOOD_SEQ_BASE + self.delivered;
            fill_payload(&extents, u64::from(GOOD_LEN), 0, seq, Coverage::Full);
            let s = ipc.send(1, &extents, GOOD_LEN, seq, 0);
            last = ipc.status_raw(s);
            if last == IpcStatus::Ok as u32 {
                break;
            }
            if last == IpcStatus::LandingTooSmall as u32 {
                fill_payload(&[extent(filler, 1)], 8, 0, FILLER_SEQ, Coverage::Full);
                let f = ipc.send(1, &[extent(filler, 1)], 8, FILLER_SEQ, 0);
                if ipc.status_raw(f) == IpcStatus::Ok as u32 {
                    self.delivered += 1;
                    fillers += 1;
                }
            } else if last != IpcStatus::QueueFull as u32 {
                break;
            }
            core::hint::spin_loop();
        }
        check!(
            GOOD_SENT,
            last == IpcStatus::Ok as u32,
            "the good message got {} after {fillers} fillers ({} messages delivered before it)",
            StatusName(last),
            self.delivered
        );
    }
}

/// Ring entries (by free-running index) whose final status is still to be read, each with
/// the status the model gives it (`None`: it broke no rule, so any good outcome).
struct Awaiting<const N: usize> {
    items: [(u32, Option<IpcStatus>); N],
    count: usize,
}

impl<const N: usize> Awaiting<N> {
    const fn new() -> Self {
        Awaiting {
            items: [(0, None); N],
            count: 0,
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn is_full(&self) -> bool {
        self.count == N
    }

    fn push(&mut self, index: u32, want: Option<IpcStatus>) {
        self.items[self.count] = (index, want);
        self.count += 1;
    }

    /// Removes the entries that `done` says are final, in order, and returns them (the
    /// first `.1` of the array).
    fn settle(&mut self, done: impl Fn(u32) -> bool) -> ([(u32, Option<IpcStatus>); N], usize) {
        let mut settled = ([(0, None); N], 0);
        let mut kept = 0;
        for k in 0..self.count {
            let item = self.items[k];
            if done(item.0) {
                settled.0[settled.1] = item;
                settled.1 += 1;
            } else {
                self.items[kept] = item;
                kept += 1;
            }
        }
        self.count = kept;
        settled
    }
}

/// Whether status `raw` is `want`, or, for `None`, one of `good`.
fn fits(raw: u32, want: Option<IpcStatus>, good: &[IpcStatus]) -> bool {
    match want {
        Some(w) => raw == w as u32,
        None => good.iter().any(|&s| raw == s as u32),
    }
}

/// VM1: random posts, checked against the landing checks, and receives.
struct Receiver {
    landing: u64,
    good: u64,
    /// Post entries not checked yet: index, and the status the model gives a bad one.
    posted: Awaiting<{ POST_RING_LEN as usize }>,
    received: u64,
    statuses: Tally,
    bounds: Tally,
    /// Rounds until a scribbled ring is repaired (0: none is).
    scribbled: u32,
    /// The number of the last message received.
    last_seq: u64,
}

impl Receiver {
    fn new(landing: u64, good: u64) -> Receiver {
        Receiver {
            landing,
            good,
            posted: Awaiting::new(),
            received: 0,
            statuses: Tally::new(),
            bounds: Tally::new(),
            scribbled: 0,
            last_seq: 0,
        }
    }

    /// Posts a random entry: mostly pages of the landing area (overlapping others and
    /// unconsumed messages' pages), else one that breaks a rule.
    fn post_random(&mut self, ipc: &mut Ipc, rng: &mut Rng) {
        let bi = boot_info();
        // Every slot the next post may reuse is a retired entry, checked first.
        ipc.resync_posts();
        self.check_posts(ipc);
        if ipc.post_room() == 0 || self.posted.is_full() {
            return;
        }
        let e = random_extent(rng, self.landing, LANDING_PAGES, bi.mem_size, false);
        let want = match extent_end(&e, bi.mem_size) {
            None => Some(IpcStatus::BadAddress),
            Some(_) if e.gpa < IMAGE_BASE => Some(IpcStatus::NotOwned),
            Some(_) => None,
        };
        let inside = e.gpa >= self.landing
            && e.gpa + u64::from(e.pages) * PAGE_SIZE <= self.landing + LANDING_PAGES * PAGE_SIZE;
        if want.is_none() && !inside {
            // A random GPA that happens to be good memory: not this VM's to offer.
            return;
        }
        let index = ipc.post_head();
        if ipc.post_raw(e.gpa, e.pages) {
            self.posted.push(index, want);
        }
    }

    /// Checks the status of every retired post entry not checked yet.
    fn check_posts(&mut self, ipc: &Ipc) {
        let tail = ipc.post_tail();
        let (settled, n) = self.posted.settle(|i| tail.wrapping_sub(i) as i32 > 0);
        for &(index, want) in &settled[..n] {
            let raw = ipc.post_status(index);
            if !fits(raw, want, &POST_GOOD) {
                self.statuses.fail(format_args!(
                    "post entry {index} got {}, want {}",
                    StatusName(raw),
                    want.map_or("ok, busy or overlap", IpcStatus::name)
                ));
            }
        }
    }

    /// Takes every queued entry, checking where it landed.
    fn receive(&mut self, ipc: &mut Ipc) {
        while let Some(e) = ipc.recv_peek() {
            self.entry(&e);
            ipc.recv_poll();
        }
        self.check_posts(ipc);
    }

    /// Checks one delivered entry, still queued: from VM0 to VM1, its landing extents inside
    /// what VM1 posted, in VM0's order, a clean message's payload intact; counts it.
    fn entry(&mut self, e: &RecvEntry) {
        self.received += 1;
        let number = e.seq & !CLEAN_SEQ;
        if number < GOOD_SEQ_BASE && number != FILLER_SEQ {
            if number <= self.last_seq {
                self.bounds.fail(format_args!(
                    "message {number} after message {} (VM0 numbers them in order)",
                    self.last_seq
                ));
            }
            self.last_seq = number;
        }
        let areas = [
            (self.landing, LANDING_PAGES),
            (self.good, GOOD_LANDING_PAGES),
        ];
        let n = e.nextents as usize;
        let mut bad = e.src != 0 || e.dst != 1 || n == 0 || n > MAX_EXTENTS;
        for l in e.landing() {
            let end = l.gpa.checked_add(u64::from(l.pages) * PAGE_SIZE);
            let inside = areas.iter().any(|&(base, pages)| {
                l.gpa >= base && end.is_some_and(|end| end <= base + pages * PAGE_SIZE)
            });
            bad |= l.pages == 0 || l.gpa % PAGE_SIZE != 0 || !inside;
        }
        if !bad && e.seq & CLEAN_SEQ != 0 && e.seq < GOOD_SEQ_BASE {
            if let Err(m) = verify_payload(e.landing(), u64::from(e.len), 0, e.seq, Coverage::Full)
            {
                self.bounds.fail(format_args!(
                    "message seq {:#x}: byte {} is {:#018x}, want {:#018x}",
                    e.seq, m.offset, m.got, m.want
                ));
            }
        }
        if bad {
            let first = e.landing().first().copied().unwrap_or_default();
            self.bounds.fail(format_args!(
                "entry seq {:#x}: src {} dst {} nextents {n}, first landing {:#x}+{}",
                e.seq, e.src, e.dst, first.gpa, first.pages
            ));
        }
    }

    /// Makes the receive or the post ring malformed for the next 1-8 rounds ([`Receiver::tick`]
    /// repairs it).
    fn scribble(&mut self, ipc: &mut Ipc, rng: &mut Rng) {
        let r = rng.next() as u32;
        match rng.below(3) {
            0 => ipc.write_recv_tail_raw(r),
            1 => ipc.write_post_head_raw(r),
            _ => ipc.write_post_head_raw(ipc.post_tail().wrapping_add(POST_RING_LEN + 1)),
        }
        self.scribbled = 1 + rng.below(8) as u32;
    }

    /// The end of a round: repairs a scribbled ring whose time is up.
    fn tick(&mut self, ipc: &mut Ipc) {
        if self.scribbled > 0 {
            self.scribbled -= 1;
            if self.scribbled == 0 {
                ipc.restore_indices();
            }
        }
    }

    /// The end of the random phase (after VM0 drained its last descriptor): repairs the
    /// rings, takes every entry, and posts the good message's landing area.
    fn repair(&mut self, ipc: &mut Ipc) {
        ipc.restore_indices();
        self.receive(ipc);
        ipc.resync_posts();
        self.check_posts(ipc);
        // With no room, 256 entries are pending, and the first 8 good ones hold the good
        // message's 6 pages.
        ipc.post(self.good, GOOD_LANDING_PAGES as u32);
        self.statuses
            .record(POST_STATUSES, format_args!("{} received", self.received));
    }

    /// Receives until the good message, which must be intact and say how many messages VM0
    /// delivered before it.
    fn receive_good(&mut self, ipc: &mut Ipc) {
        let deadline = Deadline::after_ms(WAIT_MS);
        let mut good = None;
        while good.is_none() && !deadline.expired() {
            if ipc.recv_peek().is_none() {
                mmio_read(IPC_RECV_WAIT);
            }
            let Some(e) = ipc.recv_peek() else { continue };
            self.entry(&e);
            ipc.recv_poll();
            if e.seq >= GOOD_SEQ_BASE {
                good = Some(e);
            }
        }
        self.bounds.record(
            LANDING_BOUNDS,
            format_args!("{} entries, each inside posted pages", self.received),
        );
        let Some(e) = good else {
            fail(GOOD_INTACT, "no good message within 5 s");
            fail(NOTHING_LOST, "no good message within 5 s");
            return;
        };
        let landing = e.landing();
        match verify_payload(landing, u64::from(GOOD_LEN), 0, e.seq, Coverage::Full) {
            Ok(()) => check!(
                GOOD_INTACT,
                e.len == GOOD_LEN,
                "len {} (want {GOOD_LEN}) in {} landing extents",
                e.len,
                landing.len()
            ),
            Err(m) => check!(
                GOOD_INTACT,
                false,
                "byte {} is {:#018x}, want {:#018x}",
                m.offset,
                m.got,
                m.want
            ),
        };
        let before = self.received - 1;
        check!(
            NOTHING_LOST,
            e.seq - GOOD_SEQ_BASE == before,
            "VM0 saw {} messages delivered before the good one; VM1 received {before}",
            e.seq - GOOD_SEQ_BASE
        );
    }
}

/// One random device access whose answer the register table gives; a wrong `STATUS` (or a
/// refused read that is not 0) is a failure in `tally`.
fn device_access(rng: &mut Rng, tally: &mut Tally) {
    let mem_size = boot_info().mem_size;
    let width = 1u64 << rng.below(4);
    let value = rng.next();
    let truncated = if width == 8 {
        value
    } else {
        value & ((1 << (8 * width)) - 1)
    };
    let (offset, write, want, read_want) = match rng.below(9) {
        // No register at the offset (inside one, or past the last).
        0 => {
            let offset = loop {
                let o = rng.below(MMIO_SIZE / width) * width;
                if o % 8 != 0 || o / 8 >= REGISTERS {
                    break o;
                }
            };
            (offset, rng.one_in(2), Status::BadRegister, Some(0))
        }
        1 => {
            let r = WRITE_ONLY[rng.below(WRITE_ONLY.len() as u64) as usize];
            (r, false, Status::BadRegister, Some(0))
        }
        2 => {
            let r = READ_ONLY[rng.below(READ_ONLY.len() as u64) as usize];
            (r, true, Status::BadRegister, None)
        }
        3 => {
            let magic = if width == 8 {
                MAGIC_VALUE
            } else {
                MAGIC_VALUE & ((1 << (8 * width)) - 1)
            };
            (MAGIC, false, Status::Ok, Some(magic))
        }
        4 => (DOORBELL, true, Status::Ok, None),
        5 => {
            let s = if truncated == 1 || truncated == 2 {
                Status::Ok
            } else {
                Status::BadValue
            };
            (IPC_DOORBELL, true, s, None)
        }
        // 8-byte requests whose value is refused whole.
        6 => {
            let len = match rng.below(3) {
                0 => 0,
                _ => CONSOLE_MAX + 1 + rng.below(1 << 15),
            };
            return access8(
                CONSOLE,
                (len << 48) | (IMAGE_BASE),
                Status::BadLength,
                tally,
            );
        }
        7 => {
            let gpa = mem_size + rng.below(1 << 30) - rng.below(8);
            let len = 9 + rng.below(CONSOLE_MAX - 8);
            return access8(CONSOLE, (len << 48) | gpa, Status::BadAddress, tally);
        }
        _ => {
            let (register, gpa) = match rng.below(3) {
                0 => (RESULT, mem_size + rng.below(1 << 30) * 8),
                1 => (SAMPLES, mem_size + rng.below(1 << 30) * 8),
                _ => (PHASE, 3 + rng.below(1 << 40)),
            };
            let want = if register == PHASE {
                Status::BadValue
            } else {
                Status::BadAddress
            };
            return access8(register, gpa, want, tally);
        }
    };
    let gpa = MMIO_BASE + offset;
    let read = if write {
        // SAFETY: `gpa` is in the device page (offset + width ≤ MMIO_SIZE, aligned to the
        // width): the access exits to the VMM and touches no memory of this program.
        unsafe {
            match width {
                1 => write_gpa_u8(gpa, value as u8),
                2 => write_gpa_u16(gpa, value as u16),
                4 => write_gpa_u32(gpa, value as u32),
                _ => write_gpa(gpa, value),
            }
        }
        None
    } else {
        // SAFETY: as above; a read of the device changes no memory of this program.
        Some(unsafe {
            match width {
                1 => u64::from(read_gpa_u8(gpa)),
                2 => u64::from(read_gpa_u16(gpa)),
                4 => u64::from(read_gpa_u32(gpa)),
                _ => read_gpa(gpa),
            }
        })
    };
    let status = status_raw();
    let read_right = match (read, read_want) {
        (Some(got), Some(want)) => got == want,
        _ => true,
    };
    if status != want as u64 || !read_right {
        tally.fail(format_args!(
            "{} of {width} bytes at {offset:#x} (value {value:#x}): STATUS {status} (want {}), read {read:?} (want {read_want:?})",
            if write { "write" } else { "read" },
            want as u64
        ));
    }
}

/// An 8-byte write of `value` to `register`, which must answer `want`.
fn access8(register: u64, value: u64, want: Status, tally: &mut Tally) {
    pageflip_guest::mmio_write(register, value);
    let status = status_raw();
    if status != want as u64 {
        tally.fail(format_args!(
            "write of {value:#x} to {register:#x}: STATUS {status} (want {})",
            want as u64
        ));
    }
}
