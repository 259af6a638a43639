//! The IPC half of the fuzzing tier (`docs/TESTING.md#fuzzing-tier`): random sequences of
//! guest actions (sends, good and bad; posts, good and bad; receives; doorbells and exits;
//! corrupted ring indices and their repair; VM ends) against a real [`IpcEngine`] of three
//! VMs on one memfd, for every data movement but `remap-huge` (which needs hugetlbfs; its
//! checks are the same functions with `Limits::huge`, covered by `checks.rs`' tests).
//!
//! A model of what each guest did is checked against what the engine wrote after every step:
//! every consumed descriptor has one final status, the one its defect calls for (or, for a
//! good one, `ok`, backpressure, or `dest_down` exactly when the receiver has ended); every
//! `ok` message is delivered exactly once, in FIFO order per sender, intact, on landing pages
//! no other unconsumed message uses, and nothing else is delivered; a refused message's pages
//! keep their bytes in the sender, and with remap an accepted one's read zero; the header's
//! counts equal the model's; the ownership audit is clean and every VM owns as many frames as
//! it has pages. At the end every VM is flushed and every `ok` message must have arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::fuzz_seed;
use crate::memory::create_memfd;

/// VMs of a run.
const VMS: usize = 3;
/// Memory of each VM.
const MEM: u64 = 4 << 20;
/// Frames in the run's pool.
const POOL: u32 = 64;
/// First page of each VM's send data, and its page count.
const DATA_GPA: u64 = 0x20_0000;
const DATA_PAGES: u64 = 48;
/// First page of each VM's landing area, and its page count.
const LAND_GPA: u64 = 0x30_0000;
const LAND_PAGES: u64 = 48;
/// Largest message the fuzzer sends, in pages.
const MAX_PAGES: u8 = 6;

/// One rule a bad descriptor breaks, and the status it must get.
#[derive(Clone, Copy, Debug)]
enum BadSend {
    Reserved,
    Unaligned,
    Beyond,
    ZeroPages,
    NoExtents,
    NineExtents,
    LenZero,
    LenTooBig,
    Overlap,
    SelfSend,
    UnknownDest,
}

impl BadSend {
    fn status(self) -> IpcStatus {
        match self {
            BadSend::Reserved => IpcStatus::NotOwned,
            BadSend::Unaligned | BadSend::Beyond | BadSend::ZeroPages => IpcStatus::BadAddress,
            BadSend::NoExtents | BadSend::NineExtents => IpcStatus::TooManyExtents,
            BadSend::LenZero | BadSend::LenTooBig => IpcStatus::BadLength,
            BadSend::Overlap => IpcStatus::Overlap,
            BadSend::SelfSend => IpcStatus::SelfSend,
            BadSend::UnknownDest => IpcStatus::UnknownDest,
        }
    }
}

/// A bad posted entry.
#[derive(Clone, Copy, Debug)]
enum BadPost {
    /// In the reserved range: `not_owned`.
    Reserved,
    /// Past memory: `bad_address`.
    Beyond,
    /// Zero pages: `bad_address`.
    ZeroPages,
    /// The pages of an unconsumed message or of another posted entry: `busy`, `overlap`,
    /// or `ok` once that message was consumed.
    Duplicate,
}

/// A ring index a guest scribbles over.
#[derive(Clone, Copy, Debug)]
enum Field {
    SendHead,
    RecvTail,
    PostHead,
    Batch,
}

/// One guest action (or one VM's end).
#[derive(Clone, Debug)]
enum Op {
    /// VM `src` publishes a descriptor of `pages` pages in up to `pieces` extents.
    Send {
        src: usize,
        dst: usize,
        pages: u8,
        pieces: u8,
        short_len: bool,
        urgent: bool,
        bad: Option<BadSend>,
    },
    /// A doorbell write: 0 send, 1 flush, else a value that is no doorbell.
    Doorbell { vm: usize, kind: u8 },
    /// Any other exit of the VM: the engine drains its ring.
    Exit { vm: usize },
    /// VM `vm` posts a landing entry of `pages` pages.
    Post {
        vm: usize,
        pages: u8,
        bad: Option<BadPost>,
    },
    /// VM `vm` consumes every entry of its receive ring.
    Receive { vm: usize },
    /// VM `vm` writes a malformed value over one of its indices.
    Corrupt { vm: usize, field: Field, by: u32 },
    /// VM `vm` writes back the indices it scribbled over.
    Repair { vm: usize },
    /// VM `vm` ends.
    End { vm: usize },
}

fn bad_send() -> impl Strategy<Value = Option<BadSend>> {
    prop_oneof![
        6 => Just(None),
        1 => prop_oneof![
            Just(BadSend::Reserved),
            Just(BadSend::Unaligned),
            Just(BadSend::Beyond),
            Just(BadSend::ZeroPages),
            Just(BadSend::NoExtents),
            Just(BadSend::NineExtents),
            Just(BadSend::LenZero),
            Just(BadSend::LenTooBig),
            Just(BadSend::Overlap),
            Just(BadSend::SelfSend),
            Just(BadSend::UnknownDest),
        ]
        .prop_map(Some),
    ]
}

fn bad_post() -> impl Strategy<Value = Option<BadPost>> {
    prop_oneof![
        6 => Just(None),
        1 => prop_oneof![
            Just(BadPost::Reserved),
            Just(BadPost::Beyond),
            Just(BadPost::ZeroPages),
            Just(BadPost::Duplicate),
        ]
        .prop_map(Some),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let vm = 0..VMS;
    prop_oneof![
        24 => (vm.clone(), 0..VMS, 1..=MAX_PAGES, 1u8..=3, any::<bool>(), any::<bool>(), bad_send())
            .prop_map(|(src, dst, pages, pieces, short_len, urgent, bad)| Op::Send {
                src, dst, pages, pieces, short_len, urgent, bad
            }),
        6 => (vm.clone(), 0u8..4).prop_map(|(vm, kind)| Op::Doorbell { vm, kind }),
        6 => vm.clone().prop_map(|vm| Op::Exit { vm }),
        20 => (vm.clone(), 1..=MAX_PAGES, bad_post()).prop_map(|(vm, pages, bad)| Op::Post { vm, pages, bad }),
        9 => vm.clone().prop_map(|vm| Op::Receive { vm }),
        3 => (vm.clone(), prop_oneof![Just(Field::SendHead), Just(Field::RecvTail), Just(Field::PostHead), Just(Field::Batch)], any::<u32>())
            .prop_map(|(vm, field, by)| Op::Corrupt { vm, field, by }),
        3 => vm.clone().prop_map(|vm| Op::Repair { vm }),
        1 => vm.prop_map(|vm| Op::End { vm }),
    ]
}

/// One fuzz case: a data movement and a sequence of actions.
fn case() -> impl Strategy<Value = (Movement, Vec<Op>)> {
    (
        prop_oneof![
            Just(Movement::Remap),
            Just(Movement::RemapPerPage),
            Just(Movement::Copy)
        ],
        prop::collection::vec(op(), 1..120),
    )
}

/// The word `i` of page `k` of message (`src`, `seq`).
fn word(src: usize, seq: u64, k: u64, i: u64) -> u64 {
    (((src as u64) << 56) ^ (seq << 24) ^ (k << 12) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Page `k` of message (`src`, `seq`).
fn page_bytes(src: usize, seq: u64, k: u64) -> Vec<u8> {
    (0..PAGE_SIZE / 8)
        .flat_map(|i| word(src, seq, k, i).to_le_bytes())
        .collect()
}

/// A descriptor the model published, until its status is read.
#[derive(Debug)]
struct Published {
    idx: u32,
    seq: u64,
    dst: usize,
    /// The data pages it names (good sends), in message order.
    pages: Vec<u64>,
    len: u32,
    bad: Option<BadSend>,
}

/// A message the engine accepted, until its receiver consumes it.
#[derive(Debug)]
struct Accepted {
    src: usize,
    seq: u64,
    pages: u64,
    len: u32,
}

/// A posted entry, until the engine retires it.
#[derive(Debug)]
struct Posted {
    idx: u32,
    extent: Extent,
    bad: Option<BadPost>,
}

/// What one guest did, as the model knows it.
#[derive(Debug, Default)]
struct Guest {
    send_head: u32,
    seq: u64,
    free_data: BTreeSet<u64>,
    published: Vec<Published>,
    sent: u64,
    refused: u64,
    post_head: u32,
    posted: Vec<Posted>,
    post_refused: u64,
    recv_tail: u32,
    /// Landing pages of messages delivered and not yet consumed.
    landed: BTreeSet<u64>,
    /// Messages accepted for this VM, by (src, seq).
    inbound: BTreeMap<(usize, u64), Accepted>,
    /// Highest seq received from each source (FIFO).
    last_seq: BTreeMap<usize, u64>,
    corrupted: Vec<Field>,
    ended: bool,
}

/// The engine, its VMs' memory, and the model.
struct Rig {
    e: IpcEngine,
    rams: Vec<Arc<GuestRam>>,
    movement: Movement,
    g: Vec<Guest>,
    ops: u64,
    /// Final statuses seen, by name (descriptors and posted entries).
    seen: BTreeMap<&'static str, u64>,
    /// Messages received and checked.
    received: u64,
}

fn fail(what: String) -> TestCaseError {
    TestCaseError::fail(what)
}

impl Rig {
    fn new(movement: Movement, fault: Option<Fault>) -> Rig {
        let memfd = create_memfd("fuzz", VMS as u64 * MEM + u64::from(POOL) * PAGE_SIZE).unwrap();
        let rams: Vec<Arc<GuestRam>> = (0..VMS as u64)
            .map(|i| Arc::new(GuestRam::map(memfd.clone(), i * MEM, MEM).unwrap()))
            .collect();
        let named = rams
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("vm{i}"), r.clone()))
            .collect();
        let frames = movement.remaps().then(|| {
            let vms: Vec<(String, u64)> = (0..VMS).map(|i| (format!("vm{i}"), MEM)).collect();
            FrameTable::contiguous(&vms, POOL, 1)
        });
        let e = IpcEngine::new(movement, named, frames, memfd, fault);
        let g = (0..VMS)
            .map(|_| Guest {
                free_data: (0..DATA_PAGES).map(|p| DATA_GPA + p * PAGE_SIZE).collect(),
                ..Guest::default()
            })
            .collect();
        for r in &rams {
            write_u32(r, hdr!(batch), 1);
        }
        Rig {
            e,
            rams,
            movement,
            g,
            ops: 0,
            seen: BTreeMap::new(),
            received: 0,
        }
    }

    fn hdr_u32(&self, vm: usize, gpa: u64) -> u32 {
        read_u32(&self.rams[vm], gpa)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.ops += 1;
        match *op {
            Op::Send {
                src,
                dst,
                pages,
                pieces,
                short_len,
                urgent,
                bad,
            } => self.send(src, dst, pages, pieces, short_len, urgent, bad),
            Op::Doorbell { vm, kind } => {
                if !self.g[vm].ended {
                    let value = match kind {
                        0 => DOORBELL_SEND,
                        1 => DOORBELL_FLUSH,
                        k => 0xdead_0000 + u64::from(k),
                    };
                    let took = self.e.doorbell(vm, value);
                    if took != (kind < 2) {
                        return Err(fail(format!("doorbell {value:#x} answered {took}")));
                    }
                }
            }
            Op::Exit { vm } => {
                if !self.g[vm].ended {
                    self.e.drain(vm);
                }
            }
            Op::Post { vm, pages, bad } => self.post(vm, u32::from(pages), bad),
            Op::Receive { vm } => {
                if !self.g[vm].ended {
                    self.repair(vm);
                    self.receive(vm)?;
                }
            }
            Op::Corrupt { vm, field, by } => {
                if !self.g[vm].ended {
                    self.corrupt(vm, field, by);
                }
            }
            Op::Repair { vm } => self.repair(vm),
            Op::End { vm } => {
                if !self.g[vm].ended {
                    self.repair(vm);
                    self.e.vm_ended(vm);
                    self.g[vm].ended = true;
                }
            }
        }
        self.observe()
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        src: usize,
        dst: usize,
        pages: u8,
        pieces: u8,
        short_len: bool,
        urgent: bool,
        bad: Option<BadSend>,
    ) {
        if self.g[src].ended {
            return;
        }
        self.repair(src);
        let tail = self.hdr_u32(src, hdr!(send_tail));
        let g = &mut self.g[src];
        if g.send_head.wrapping_sub(tail) >= SEND_RING_LEN
            || (g.free_data.len() as u64) < u64::from(pages)
        {
            return;
        }
        let data: Vec<u64> = g.free_data.iter().copied().take(pages as usize).collect();
        // Runs of adjacent pages, split further into up to `pieces` extents each.
        let mut extents: Vec<Extent> = Vec::new();
        for &p in &data {
            match extents.last_mut() {
                Some(e) if e.end() == p && e.pages < u32::from(pieces.max(1)) * 2 => e.pages += 1,
                _ => extents.push(Extent {
                    gpa: p,
                    pages: 1,
                    reserved: 0,
                }),
            }
        }
        extents.truncate(MAX_EXTENTS);
        let data: Vec<u64> = extents
            .iter()
            .flat_map(|e| (0..u64::from(e.pages)).map(move |k| e.gpa + k * PAGE_SIZE))
            .collect();
        let total = data.len() as u32;
        let mut len = total * PAGE_SIZE as u32;
        if short_len {
            len -= PAGE_SIZE as u32 / 2 + u32::from(pieces);
        }
        let mut dst = if dst == src { (src + 1) % VMS } else { dst };
        let mut nextents = extents.len() as u32;
        match bad {
            None => {}
            Some(BadSend::Reserved) => extents[0].gpa = 0x10_0000,
            Some(BadSend::Unaligned) => extents[0].gpa += 8,
            Some(BadSend::Beyond) => extents[0].gpa = MEM,
            Some(BadSend::ZeroPages) => extents[0].pages = 0,
            Some(BadSend::NoExtents) => nextents = 0,
            Some(BadSend::NineExtents) => nextents = MAX_EXTENTS as u32 + 1,
            Some(BadSend::LenZero) => len = 0,
            Some(BadSend::LenTooBig) => len = total * PAGE_SIZE as u32 + 1,
            Some(BadSend::Overlap) => {
                if extents.len() == MAX_EXTENTS {
                    extents.pop();
                }
                extents.push(Extent {
                    gpa: extents[0].gpa,
                    pages: 1,
                    reserved: 0,
                });
                nextents = extents.len() as u32;
            }
            Some(BadSend::SelfSend) => dst = src,
            Some(BadSend::UnknownDest) => dst = VMS + 5,
        }
        g.seq += 1;
        let seq = g.seq;
        for (k, &p) in data.iter().enumerate() {
            self.rams[src].write_bytes(p, &page_bytes(src, seq, k as u64));
            g.free_data.remove(&p);
        }
        let mut d = SendDesc {
            seq,
            dst: dst as u32,
            flags: if urgent { FLAG_URGENT } else { 0 },
            len,
            nextents,
            status: IpcStatus::Pending as u32,
            reserved: 0,
            extents: [Extent::default(); MAX_EXTENTS],
        };
        let n = extents.len().min(MAX_EXTENTS);
        d.extents[..n].copy_from_slice(&extents[..n]);
        let idx = g.send_head;
        self.rams[src].write_pod(send_slot(idx), &d);
        g.send_head = idx.wrapping_add(1);
        write_u32(&self.rams[src], hdr!(send_head), g.send_head);
        g.published.push(Published {
            idx,
            seq,
            dst,
            pages: data,
            len,
            bad,
        });
    }

    fn post(&mut self, vm: usize, pages: u32, bad: Option<BadPost>) {
        if self.g[vm].ended {
            return;
        }
        self.repair(vm);
        let tail = self.hdr_u32(vm, hdr!(post_tail));
        let g = &self.g[vm];
        if g.post_head.wrapping_sub(tail) >= POST_RING_LEN {
            return;
        }
        let in_use: BTreeSet<u64> = g
            .posted
            .iter()
            .flat_map(|p| (0..u64::from(p.extent.pages)).map(move |k| p.extent.gpa + k * PAGE_SIZE))
            .chain(g.landed.iter().copied())
            .collect();
        let extent = match bad {
            None => {
                // The first run of `pages` free landing pages.
                let start = (0..=LAND_PAGES - u64::from(pages)).find(|&s| {
                    (s..s + u64::from(pages)).all(|p| !in_use.contains(&(LAND_GPA + p * PAGE_SIZE)))
                });
                let Some(s) = start else { return };
                Extent {
                    gpa: LAND_GPA + s * PAGE_SIZE,
                    pages,
                    reserved: 0,
                }
            }
            Some(BadPost::Reserved) => Extent {
                gpa: 0x10_0000,
                pages,
                reserved: 0,
            },
            Some(BadPost::Beyond) => Extent {
                gpa: MEM - PAGE_SIZE,
                pages: pages + 1,
                reserved: 0,
            },
            Some(BadPost::ZeroPages) => Extent {
                gpa: LAND_GPA,
                pages: 0,
                reserved: 0,
            },
            Some(BadPost::Duplicate) => match in_use
                .range(LAND_GPA..LAND_GPA + LAND_PAGES * PAGE_SIZE)
                .next()
            {
                Some(&p) => Extent {
                    gpa: p,
                    pages: 1,
                    reserved: 0,
                },
                None => return,
            },
        };
        let g = &mut self.g[vm];
        let idx = g.post_head;
        let entry = PostEntry {
            gpa: extent.gpa,
            pages: extent.pages,
            status: IpcStatus::Pending as u32,
        };
        self.rams[vm].write_pod(post_slot(idx), &entry);
        g.post_head = idx.wrapping_add(1);
        write_u32(&self.rams[vm], hdr!(post_head), g.post_head);
        g.posted.push(Posted { idx, extent, bad });
    }

    fn corrupt(&mut self, vm: usize, field: Field, by: u32) {
        let ram = &self.rams[vm];
        let g = &mut self.g[vm];
        let far = |base: u32, len: u32| base.wrapping_add(len + 1 + by % 1000);
        match field {
            Field::SendHead => write_u32(ram, hdr!(send_head), far(g.send_head, SEND_RING_LEN)),
            Field::RecvTail => {
                let head = read_u32(ram, hdr!(recv_head));
                write_u32(ram, hdr!(recv_tail), far(head, RECV_RING_LEN));
            }
            Field::PostHead => {
                let tail = read_u32(ram, hdr!(post_tail));
                write_u32(ram, hdr!(post_head), far(tail, POST_RING_LEN));
            }
            Field::Batch => write_u32(ram, hdr!(batch), by % 100),
        }
        g.corrupted.push(field);
    }

    fn repair(&mut self, vm: usize) {
        let ram = &self.rams[vm];
        let g = &mut self.g[vm];
        for field in std::mem::take(&mut g.corrupted) {
            match field {
                Field::SendHead => write_u32(ram, hdr!(send_head), g.send_head),
                Field::RecvTail => write_u32(ram, hdr!(recv_tail), g.recv_tail),
                Field::PostHead => write_u32(ram, hdr!(post_head), g.post_head),
                Field::Batch => write_u32(ram, hdr!(batch), 1),
            }
        }
    }

    /// Consumes VM `vm`'s receive ring, checking every entry.
    fn receive(&mut self, vm: usize) -> Result<(), TestCaseError> {
        let head = self.hdr_u32(vm, hdr!(recv_head));
        let ram = self.rams[vm].clone();
        let g = &mut self.g[vm];
        if head.wrapping_sub(g.recv_tail) > RECV_RING_LEN {
            return Err(fail(format!(
                "vm{vm}: recv_head {head} is more than the ring ahead of recv_tail {}",
                g.recv_tail
            )));
        }
        while g.recv_tail != head {
            let slot = RECV_RING_GPA
                + u64::from(g.recv_tail % RECV_RING_LEN) * std::mem::size_of::<RecvEntry>() as u64;
            let entry: RecvEntry = ram.read_pod(slot).unwrap();
            let key = (entry.src as usize, entry.seq);
            let Some(m) = g.inbound.remove(&key) else {
                return Err(fail(format!(
                    "vm{vm}: entry {} (src {} seq {}) is no accepted message to it, or a duplicate",
                    g.recv_tail, entry.src, entry.seq
                )));
            };
            if entry.dst as usize != vm || entry.len != m.len {
                return Err(fail(format!("vm{vm}: entry {entry:?} for {m:?}")));
            }
            if let Some(&last) = g.last_seq.get(&m.src) {
                if entry.seq <= last {
                    return Err(fail(format!(
                        "vm{vm}: seq {} from vm{} after seq {last}: not FIFO",
                        entry.seq, m.src
                    )));
                }
            }
            g.last_seq.insert(m.src, entry.seq);
            let landing = entry.landing();
            let want = if self.movement.remaps() {
                m.pages
            } else {
                u64::from(m.len).div_ceil(PAGE_SIZE)
            };
            if landing.iter().map(|e| u64::from(e.pages)).sum::<u64>() != want {
                return Err(fail(format!(
                    "vm{vm}: message {key:?} of {} pages landed on {landing:x?}",
                    m.pages
                )));
            }
            let mut left = u64::from(m.len);
            let mut k = 0;
            for e in landing {
                for p in 0..u64::from(e.pages) {
                    let gpa = e.gpa + p * PAGE_SIZE;
                    if !g.landed.remove(&gpa) {
                        return Err(fail(format!(
                            "vm{vm}: message {key:?} landed on {gpa:#x}, not a page the model saw it take"
                        )));
                    }
                    let n = left.min(PAGE_SIZE) as usize;
                    let got = ram.read_bytes(gpa, n).unwrap();
                    if got[..] != page_bytes(m.src, m.seq, k)[..n] {
                        return Err(fail(format!(
                            "vm{vm}: page {k} of message {key:?} at {gpa:#x} is not intact"
                        )));
                    }
                    left -= n as u64;
                    k += 1;
                }
            }
            g.recv_tail = g.recv_tail.wrapping_add(1);
            self.received += 1;
        }
        write_u32(&ram, hdr!(recv_tail), g.recv_tail);
        Ok(())
    }

    /// Reads what the engine did since the last step and checks it against the model.
    fn observe(&mut self) -> Result<(), TestCaseError> {
        for vm in 0..VMS {
            self.observe_sends(vm)?;
            self.observe_posts(vm)?;
            let v = &self.g[vm];
            let ram = &self.rams[vm];
            let sent = ram.read_pod::<u64>(hdr!(sent)).unwrap();
            let refused = ram.read_pod::<u64>(hdr!(refused)).unwrap();
            let post_refused = ram.read_pod::<u64>(hdr!(post_refused)).unwrap();
            if (sent, refused, post_refused) != (v.sent, v.refused, v.post_refused) {
                return Err(fail(format!(
                    "vm{vm}: header sent/refused/post_refused {sent}/{refused}/{post_refused}, the model {}/{}/{}",
                    v.sent, v.refused, v.post_refused
                )));
            }
        }
        // Landing pages of unconsumed messages: each page holds at most one.
        let head_landed: usize = (0..VMS)
            .map(|vm| {
                let head = self.hdr_u32(vm, hdr!(recv_head));
                let g = &self.g[vm];
                let mut pages = BTreeSet::new();
                let mut all = 0;
                for i in 0..head.wrapping_sub(g.recv_tail).min(RECV_RING_LEN) {
                    let idx = g.recv_tail.wrapping_add(i);
                    let slot = RECV_RING_GPA
                        + u64::from(idx % RECV_RING_LEN) * std::mem::size_of::<RecvEntry>() as u64;
                    let entry: RecvEntry = self.rams[vm].read_pod(slot).unwrap();
                    for e in entry.landing() {
                        for p in 0..u64::from(e.pages) {
                            pages.insert(e.gpa + p * PAGE_SIZE);
                            all += 1;
                        }
                    }
                }
                all - pages.len()
            })
            .sum();
        if head_landed != 0 {
            return Err(fail(format!(
                "{head_landed} pages hold two unconsumed messages"
            )));
        }
        if let Some(o) = self.e.report().ownership {
            if !o.violations.is_empty() {
                return Err(fail(format!("ownership audit: {:?}", o.violations)));
            }
            let pages = MEM / PAGE_SIZE;
            for vm in 0..VMS {
                let owned = o.pages_per_owner.get(&format!("vm{vm}")).copied();
                if owned != Some(pages) {
                    return Err(fail(format!(
                        "vm{vm} owns {owned:?} frames, it has {pages} pages"
                    )));
                }
            }
            if o.pages_per_owner.get("free").copied() != Some(u64::from(POOL)) {
                return Err(fail(format!("the pool holds {:?}", o.pages_per_owner)));
            }
        }
        Ok(())
    }

    fn observe_sends(&mut self, vm: usize) -> Result<(), TestCaseError> {
        let tail = self.hdr_u32(vm, hdr!(send_tail));
        let ram = self.rams[vm].clone();
        let published = std::mem::take(&mut self.g[vm].published);
        for p in published {
            if tail.wrapping_sub(p.idx.wrapping_add(1)) >= SEND_RING_LEN {
                self.g[vm].published.push(p);
                continue;
            }
            let raw = read_u32(&ram, send_slot(p.idx) + offset_of!(SendDesc, status) as u64);
            let status = IpcStatus::from_u32(raw);
            let ended = self.g.get(p.dst).is_some_and(|g| g.ended);
            // A good descriptor is accepted, or refused for want of room, or (only once its
            // receiver has ended) refused as dest_down; a bad one gets the status of the one
            // rule it breaks.
            let fine = match p.bad {
                None => {
                    matches!(status, Some(IpcStatus::Ok | IpcStatus::QueueFull))
                        || (ended && status == Some(IpcStatus::DestDown))
                }
                Some(bad) => status == Some(bad.status()),
            };
            if !fine {
                return Err(fail(format!(
                    "vm{vm}: descriptor {} (seq {}, to vm{}, defect {:?}, receiver ended {ended}) has status {raw} ({status:?})",
                    p.idx, p.seq, p.dst, p.bad
                )));
            }
            *self
                .seen
                .entry(status.map_or("?", IpcStatus::name))
                .or_default() += 1;
            let ok = status == Some(IpcStatus::Ok);
            for (k, &page) in p.pages.iter().enumerate() {
                let got = ram.read_bytes(page, PAGE_SIZE as usize).unwrap();
                let zeroed = got.iter().all(|&b| b == 0);
                let intact = got == page_bytes(vm, p.seq, k as u64);
                let right = if ok && self.movement.remaps() {
                    zeroed
                } else {
                    intact
                };
                if !right {
                    return Err(fail(format!(
                        "vm{vm}: page {k} ({page:#x}) of descriptor seq {} (status {status:?}): zeroed {zeroed}, intact {intact}",
                        p.seq
                    )));
                }
                self.g[vm].free_data.insert(page);
            }
            if ok {
                self.g[vm].sent += 1;
                let pages = p.pages.len() as u64;
                self.g[p.dst].inbound.insert(
                    (vm, p.seq),
                    Accepted {
                        src: vm,
                        seq: p.seq,
                        pages,
                        len: p.len,
                    },
                );
            } else {
                self.g[vm].refused += 1;
            }
        }
        Ok(())
    }

    fn observe_posts(&mut self, vm: usize) -> Result<(), TestCaseError> {
        let tail = self.hdr_u32(vm, hdr!(post_tail));
        let ram = self.rams[vm].clone();
        let g = &mut self.g[vm];
        let posted = std::mem::take(&mut g.posted);
        for p in posted {
            if tail.wrapping_sub(p.idx.wrapping_add(1)) >= POST_RING_LEN {
                g.posted.push(p);
                continue;
            }
            let raw = read_u32(
                &ram,
                post_slot(p.idx) + offset_of!(PostEntry, status) as u64,
            );
            let status = IpcStatus::from_u32(raw);
            let fine = matches!(
                (p.bad, status),
                (None, Some(IpcStatus::Ok))
                    | (Some(BadPost::Reserved), Some(IpcStatus::NotOwned))
                    | (
                        Some(BadPost::Beyond | BadPost::ZeroPages),
                        Some(IpcStatus::BadAddress)
                    )
                    | (
                        Some(BadPost::Duplicate),
                        Some(IpcStatus::Ok | IpcStatus::Busy | IpcStatus::Overlap)
                    )
            );
            if !fine {
                return Err(fail(format!(
                    "vm{vm}: posted entry {} ({:?}, defect {:?}) has status {raw} ({status:?})",
                    p.idx, p.extent, p.bad
                )));
            }
            // An `ok` entry lands in its used part, which the receive ring names.
            if status != Some(IpcStatus::Ok) {
                g.post_refused += 1;
            }
        }
        // The landing pages of the entries delivered since: from the ring.
        let head = read_u32(&ram, hdr!(recv_head));
        g.landed.clear();
        for i in 0..head.wrapping_sub(g.recv_tail).min(RECV_RING_LEN) {
            let idx = g.recv_tail.wrapping_add(i);
            let slot = RECV_RING_GPA
                + u64::from(idx % RECV_RING_LEN) * std::mem::size_of::<RecvEntry>() as u64;
            let entry: RecvEntry = ram.read_pod(slot).unwrap();
            for e in entry.landing() {
                for p in 0..u64::from(e.pages) {
                    g.landed.insert(e.gpa + p * PAGE_SIZE);
                }
            }
        }
        Ok(())
    }

    /// The end of a case: every VM's indices repaired and its ring flushed, every receive
    /// ring consumed; nothing accepted may be missing.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        for vm in 0..VMS {
            self.repair(vm);
            if !self.g[vm].ended {
                self.e.doorbell(vm, DOORBELL_FLUSH);
            }
        }
        self.observe()?;
        for vm in 0..VMS {
            self.receive(vm)?;
            if let Some(((src, seq), _)) = self.g[vm].inbound.iter().next() {
                return Err(fail(format!(
                    "vm{vm}: message seq {seq} from vm{src} was accepted (ok) and never delivered"
                )));
            }
            if !self.g[vm].published.is_empty() {
                return Err(fail(format!(
                    "vm{vm}: {} descriptors never consumed after a flush",
                    self.g[vm].published.len()
                )));
            }
        }
        Ok(())
    }
}

/// What a fuzz run did.
#[derive(Debug, Default)]
struct Totals {
    ops: u64,
    received: u64,
    seen: BTreeMap<&'static str, u64>,
}

/// Runs `cases` fuzz cases with `fault` injected; what they did, or the failure.
fn fuzz(name: &str, cases: u32, fault: Option<Fault>) -> Result<Totals, String> {
    let mut runner = fuzz_seed::runner(name, cases);
    let totals = std::cell::RefCell::new(Totals::default());
    runner
        .run(&case(), |(movement, seq)| {
            let mut rig = Rig::new(movement, fault);
            for op in &seq {
                rig.apply(op)?;
            }
            rig.finish()?;
            let mut t = totals.borrow_mut();
            t.ops += rig.ops;
            t.received += rig.received;
            for (k, v) in rig.seen {
                *t.seen.entry(k).or_default() += v;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(totals.into_inner())
}

#[test]
fn ipc_engine_random_sequences() {
    let started = Instant::now();
    let t = fuzz("ipc::engine::fuzz::ipc_engine_random_sequences", 1500, None)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "ipc fuzz: {} operations in {:.1} s; {} messages received and checked; descriptor statuses {:?}",
        t.ops,
        started.elapsed().as_secs_f64(),
        t.received,
        t.seen
    );
    for status in ["ok", "queue_full", "dest_down", "not_owned", "overlap"] {
        assert!(
            t.seen.contains_key(status),
            "no descriptor got {status}: {t:?}"
        );
    }
}

#[test]
fn the_invariants_catch_injected_faults() {
    for fault in [
        Fault::SwapSourceId,
        Fault::ReorderTwo,
        Fault::LeakPage,
        Fault::SkipUnmap,
        Fault::MapBoth,
        Fault::CopyInsteadOfRemap,
        Fault::CoalesceAcrossGap,
    ] {
        let name = format!("ipc::engine::fuzz::the_invariants_catch_injected_faults ({fault:?})");
        match fuzz(&name, 300, Some(fault)) {
            Ok(t) => panic!("{fault:?} survived {} random operations", t.ops),
            Err(e) => eprintln!("{fault:?} caught: {}", e.lines().next().unwrap_or("")),
        }
    }
}
