//! The fuzzing tier's virtio target (`docs/TESTING.md`, "Fuzzing tier"): random descriptor
//! tables, available rings, indices, flags, lengths and addresses, thrown at the real
//! device (the relay over virtio-queue, as the VMM runs it) in real guest memory, no KVM.
//!
//! Two VMs: VM 0 sends on its tx queue, VM 1 offers rx buffers. Each case is a few steps;
//! a step rewrites both tables at random (the device may hold chains that name them), makes
//! some heads available (any value, sometimes outside the table; sometimes a bogus
//! available index), and notifies. After every step, against an oracle that walks the
//! chains itself:
//! - only bytes the device may write changed: device-writable descriptors of the guest's
//!   own memory `[IMAGE_BASE, mem_size)`, and the used rings; nothing below `IMAGE_BASE`;
//! - each used index moved by at most the chains made available;
//! - every consumed tx chain was delivered intact, in order (status ok: VM 1's next filled
//!   rx buffer holds its header, with `src` 0, and payload), or refused with a status or
//!   dropped (used length 0), each counted; an ok chain has no INDIRECT descriptor, no
//!   buffer outside the guest's memory and at most `u32::MAX` bytes;
//! - DEVICE_NEEDS_RESET only for a chain that cannot be walked or a bogus available index.

use std::time::Instant;

use pageflip_abi::virtio::*;
use pageflip_abi::IMAGE_BASE;
use proptest::prelude::*;
use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::mock::{Driver, Run, FEATURES, QSIZE};

/// Each VM's memory: the smallest a VM may have (every step compares all of it).
const MEM: u64 = pageflip_abi::MIN_MEM_SIZE;
/// Bytes between two descriptors' slots.
const STRIDE: u64 = 0x1000;
/// Where VM 0's readable descriptors point (descriptor `i` at `READ + i * STRIDE`).
const READ: u64 = 0x24_0000;
/// Where VM 0's writable descriptors point (descriptor `i` at `WRITE + i * STRIDE`).
const WRITE: u64 = 0x26_0000;
/// Where VM 1's rx descriptors point (descriptor `i` at `RX + i * STRIDE`).
const RX: u64 = 0x28_0000;
/// Descriptor indices drawn: a few beyond the table.
const INDEX_MAX: u16 = QSIZE + 3;

/// Where a descriptor points.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Its own slot (see [`READ`], [`WRITE`], [`RX`]), at this offset.
    Slot(u16),
    /// The reserved range below `IMAGE_BASE`.
    Reserved(u32),
    /// Straddling `IMAGE_BASE`.
    StraddleBase,
    /// Past the end of guest memory.
    Beyond(u32),
    /// Straddling the end of guest memory.
    StraddleEnd,
    /// Near `u64::MAX` (address + length overflows).
    Overflow,
}

/// One random descriptor.
#[derive(Clone, Copy, Debug)]
struct RandDesc {
    place: Place,
    len: u32,
    flags: u16,
    next: u16,
}

/// A message header written at the start of a readable slot.
#[derive(Clone, Copy, Debug)]
struct RandHeader {
    dst: u32,
    len: u32,
    fill: u8,
}

/// One step.
#[derive(Clone, Debug)]
struct StepInput {
    tx: Vec<RandDesc>,
    rx: Vec<RandDesc>,
    headers: Vec<RandHeader>,
    tx_heads: Vec<u16>,
    rx_heads: Vec<u16>,
    bogus_avail: Option<u16>,
    rx_first: bool,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        12 => (0u16..0x400).prop_map(Place::Slot),
        1 => any::<u32>().prop_map(|o| Place::Reserved(o % IMAGE_BASE as u32)),
        1 => Just(Place::StraddleBase),
        1 => any::<u32>().prop_map(Place::Beyond),
        1 => Just(Place::StraddleEnd),
        1 => Just(Place::Overflow),
    ]
}

fn len() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        3 => Just(4u32),
        3 => Just(HEADER_SIZE),
        6 => 1u32..600,
        2 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn desc(write_bias: u32) -> impl Strategy<Value = RandDesc> {
    (
        place(),
        len(),
        0u32..100,
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.5),
        0..INDEX_MAX,
    )
        .prop_map(move |(place, len, w, indirect, next, n)| RandDesc {
            place,
            len,
            flags: if w < write_bias {
                VIRTQ_DESC_F_WRITE
            } else {
                0
            } | if indirect { VIRTQ_DESC_F_INDIRECT } else { 0 }
                | if next { VIRTQ_DESC_F_NEXT } else { 0 },
            next: n,
        })
}

fn header() -> impl Strategy<Value = RandHeader> {
    (
        prop_oneof![8 => Just(1u32), 1 => Just(0u32), 1 => 2u32..200],
        prop_oneof![8 => 0u32..400, 1 => Just(MAX_PAYLOAD + 1), 1 => any::<u32>()],
        any::<u8>(),
    )
        .prop_map(|(dst, len, fill)| RandHeader { dst, len, fill })
}

fn step() -> impl Strategy<Value = StepInput> {
    (
        prop::collection::vec(desc(35), QSIZE as usize),
        prop::collection::vec(desc(92), QSIZE as usize),
        prop::collection::vec(header(), QSIZE as usize),
        prop::collection::vec(0..INDEX_MAX, 0..8),
        prop::collection::vec(0..INDEX_MAX, 0..8),
        prop::option::weighted(0.03, any::<u16>()),
        any::<bool>(),
    )
        .prop_map(
            |(tx, rx, headers, tx_heads, rx_heads, bogus_avail, rx_first)| StepInput {
                tx,
                rx,
                headers,
                tx_heads,
                rx_heads,
                bogus_avail,
                rx_first,
            },
        )
}

/// A case: the features VM 0 negotiates, then the steps.
fn case() -> impl Strategy<Value = (bool, Vec<StepInput>)> {
    (any::<bool>(), prop::collection::vec(step(), 1..4))
}

/// The GPA of descriptor `i` (a [`RandDesc`]) whose slots start at `base` with `stride`.
fn gpa(d: &RandDesc, base: u64, stride: u64, i: usize) -> u64 {
    match d.place {
        Place::Slot(off) => base + i as u64 * stride + u64::from(off) % (stride / 2),
        Place::Reserved(o) => u64::from(o),
        Place::StraddleBase => IMAGE_BASE - 8,
        Place::Beyond(o) => MEM + u64::from(o),
        Place::StraddleEnd => MEM - 8,
        Place::Overflow => u64::MAX - 16,
    }
}

/// A descriptor's length: a slot's buffer is capped to the slot's second half (so that
/// the slots never overlap); a hostile place keeps any length.
fn length(d: &RandDesc, stride: u64) -> u32 {
    match d.place {
        Place::Slot(_) if d.len != u32::MAX => d.len.min((stride / 2) as u32),
        _ => d.len,
    }
}

/// Writes a whole descriptor table; returns (addr, len, flags, next) per index.
fn write_table(
    mem: &GuestMemoryMmap,
    q: &Driver,
    descs: &[RandDesc],
    slot: impl Fn(&RandDesc) -> (u64, u64),
) -> Vec<(u64, u32, u16, u16)> {
    descs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (base, stride) = slot(d);
            let (addr, len) = (gpa(d, base, stride, i), length(d, stride));
            let raw = SplitDescriptor::new(addr, len, d.flags, d.next);
            mem.write_obj(raw, GuestAddress(q.desc + 16 * i as u64))
                .unwrap();
            (addr, len, d.flags, d.next)
        })
        .collect()
}

/// Makes `heads` available on `q` (or sets a bogus index); returns how many.
fn publish(mem: &GuestMemoryMmap, q: &Driver, heads: &[u16], bogus: Option<u16>) -> u16 {
    let mut idx = q.avail_idx();
    for &h in heads {
        let slot = GuestAddress(q.avail + 4 + 2 * u64::from(idx % QSIZE));
        mem.write_obj(h, slot).unwrap();
        idx = idx.wrapping_add(1);
    }
    let idx = bogus.unwrap_or(idx);
    mem.write_obj(idx, GuestAddress(q.avail + 2)).unwrap();
    heads.len() as u16
}

/// The oracle's walk of the chain at `head` of `table`: the descriptors in order, or None if
/// the chain cannot be walked (an index outside the table, or a loop).
fn oracle_walk(table: &[(u64, u32, u16, u16)], head: u16) -> Option<Vec<(u64, u32, u16)>> {
    let mut out = Vec::new();
    let mut i = head;
    loop {
        let &(addr, len, flags, next) = table.get(usize::from(i))?;
        if out.len() == table.len() {
            return None;
        }
        out.push((addr, len, flags));
        if flags & VIRTQ_DESC_F_NEXT == 0 {
            return Some(out);
        }
        i = next;
    }
}

/// Whether the chain is one the device may accept: no INDIRECT, every non-empty buffer in
/// `[IMAGE_BASE, MEM)`, at most `u32::MAX` bytes in all.
fn acceptable(chain: &[(u64, u32, u16)]) -> bool {
    let total: u64 = chain.iter().map(|d| u64::from(d.1)).sum();
    total <= u64::from(u32::MAX)
        && chain.iter().all(|&(addr, len, flags)| {
            flags & VIRTQ_DESC_F_INDIRECT == 0
                && (len == 0
                    || (addr >= IMAGE_BASE
                        && addr.checked_add(u64::from(len)).is_some_and(|e| e <= MEM)))
        })
}

/// The bytes of `chain`'s readable (`write` false) or writable descriptors, concatenated,
/// from `snap`, up to `max` bytes.
fn bytes_of(snap: &[u8], chain: &[(u64, u32, u16)], write: bool, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for &(addr, len, flags) in chain {
        let skip = (flags & VIRTQ_DESC_F_WRITE != 0) != write
            || flags & VIRTQ_DESC_F_INDIRECT != 0
            || len == 0;
        if skip {
            continue;
        }
        let (a, l) = (addr as usize, len as usize);
        let take = l.min(max - out.len());
        out.extend_from_slice(&snap[a..a + take]);
        if out.len() == max {
            break;
        }
    }
    out
}

/// A VM's whole memory.
fn snapshot(mem: &GuestMemoryMmap) -> Vec<u8> {
    let mut v = vec![0u8; MEM as usize];
    mem.read_slice(&mut v, GuestAddress(0)).unwrap();
    v
}

/// The byte ranges of a used ring (flags, idx, elements, avail_event).
fn used_ring(q: &Driver) -> (u64, u64) {
    (q.used, q.used + 6 + 8 * u64::from(QSIZE))
}

/// Every changed byte between `before` and `after` lies in one of `allowed`; none below
/// `IMAGE_BASE`.
fn only_allowed_changed(
    vm: usize,
    before: &[u8],
    after: &[u8],
    allowed: &[(u64, u64)],
) -> Result<(), TestCaseError> {
    const CHUNK: usize = 4096;
    let changed = before
        .chunks(CHUNK)
        .zip(after.chunks(CHUNK))
        .enumerate()
        .filter(|(_, (b, a))| b != a)
        .flat_map(|(c, (b, a))| {
            b.iter()
                .zip(a.iter())
                .enumerate()
                .filter(|(_, (x, y))| x != y)
                .map(move |(i, _)| c * CHUNK + i)
        });
    for i in changed {
        let g = i as u64;
        prop_assert!(
            g >= IMAGE_BASE,
            "VM {vm}: byte {g:#x} below IMAGE_BASE changed"
        );
        prop_assert!(
            allowed.iter().any(|&(s, e)| (s..e).contains(&g)),
            "VM {vm}: byte {g:#x} changed outside the device-writable buffers and used ring"
        );
    }
    Ok(())
}

/// VM 0's counters so far: (tx chains used, sent + tx errors).
fn counters(t: &Run) -> (u64, u64) {
    let rep = t.hub.report("virtio-userspace".into());
    let v0 = rep.vms[0].virtio.clone().unwrap();
    (
        v0.tx_chains,
        rep.vms[0].sent + v0.tx_errors.values().sum::<u64>(),
    )
}

/// Runs one case; returns the random operations it made (descriptors written, heads made
/// available, notifications).
fn run_case(event_idx: bool, steps: &[StepInput]) -> Result<u64, TestCaseError> {
    let t = Run::with_memory(2, None, MEM);
    let features = if event_idx { FEATURES } else { F_VERSION_1 };
    let (_rx0, tx0) = t.up(0, features);
    let (rx1, _tx1) = t.up(1, FEATURES);
    let (m0, m1) = (t.mem(0), t.mem(1));
    let mut ops = 0u64;
    let mut delivered_total = 0u64;
    for st in steps {
        // VM 0's readable slots: a header, then a pattern.
        for (i, h) in st.headers.iter().enumerate() {
            let at = READ + i as u64 * STRIDE;
            let mut b = vec![h.fill; STRIDE as usize];
            b[..24].copy_from_slice(&super::mock::header(i as u64, 0, h.dst, h.len));
            for (k, x) in b.iter_mut().enumerate().skip(24) {
                *x = h.fill.wrapping_add(k as u8);
            }
            m0.write_slice(&b, GuestAddress(at)).unwrap();
        }
        let txt = write_table(m0, &tx0, &st.tx, |d| {
            if d.flags & VIRTQ_DESC_F_WRITE != 0 {
                (WRITE, STRIDE)
            } else {
                (READ, STRIDE)
            }
        });
        let rxt = write_table(m1, &rx1, &st.rx, |_| (RX, STRIDE));
        let (tx_used0, rx_used0) = (tx0.used_idx(), rx1.used_idx());
        let c0 = counters(&t);
        t.hub.take_guest_errors(1);
        t.hub.take_guest_errors(0);
        let bogus_tx = st.bogus_avail.filter(|_| st.rx_first);
        let bogus_rx = st.bogus_avail.filter(|_| !st.rx_first);
        let ntx = publish(m0, &tx0, &st.tx_heads, bogus_tx);
        let nrx = publish(m1, &rx1, &st.rx_heads, bogus_rx);
        ops += (txt.len() + rxt.len()) as u64 + u64::from(ntx + nrx) + 2;
        let (b0, b1) = (snapshot(m0), snapshot(m1));

        if st.rx_first {
            t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
            t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
        } else {
            t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
            t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
        }
        let (a0, a1) = (snapshot(m0), snapshot(m1));

        // Only what the device may write changed.
        let writable = |table: &[(u64, u32, u16, u16)]| -> Vec<(u64, u64)> {
            table
                .iter()
                .filter(|d| d.2 & VIRTQ_DESC_F_WRITE != 0 && d.2 & VIRTQ_DESC_F_INDIRECT == 0)
                .filter(|d| acceptable(&[(d.0, d.1, d.2)]))
                .map(|d| (d.0, d.0 + u64::from(d.1)))
                .collect()
        };
        let mut allowed0 = writable(&txt);
        allowed0.push(used_ring(&tx0));
        // VM 0's rx queue is untouched by the relay but its used ring may be flagged.
        allowed0.push(used_ring(&_rx0));
        let mut allowed1 = writable(&rxt);
        allowed1.push(used_ring(&rx1));
        only_allowed_changed(0, &b0, &a0, &allowed0)?;
        only_allowed_changed(1, &b1, &a1, &allowed1)?;

        // Used indices move by at most what was made available (and outstanding before).
        let tx_used = tx0.used_idx().wrapping_sub(tx_used0);
        let rx_used = rx1.used_idx().wrapping_sub(rx_used0);
        let tx_out = tx0.avail_idx().wrapping_sub(tx_used0);
        let rx_out = rx1.avail_idx().wrapping_sub(rx_used0);
        prop_assert!(
            tx_used <= tx_out,
            "tx used moved {tx_used}, {tx_out} available"
        );
        prop_assert!(
            rx_used <= rx_out,
            "rx used moved {rx_used}, {rx_out} available"
        );

        // Every consumed tx chain is counted once: delivered or refused.
        let c1 = counters(&t);
        prop_assert_eq!(c1.0 - c0.0, u64::from(tx_used), "tx chains counted");
        prop_assert_eq!(c1.1 - c0.1, u64::from(tx_used), "each delivered or refused");

        // Each tx chain with status ok is VM 1's next filled rx buffer, intact, in order.
        let mut rx_k = 0u16;
        let mut next_filled = || -> Option<(u32, u32)> {
            while rx_k < rx_used {
                let e = rx1.used(rx_used0.wrapping_add(rx_k));
                rx_k += 1;
                if e.1 != 0 {
                    return Some(e);
                }
            }
            None
        };
        let mut delivered = 0u64;
        for k in 0..tx_used {
            let (id, used_len) = tx0.used(tx_used0.wrapping_add(k));
            prop_assert!(used_len == 0 || used_len == 4, "tx used length {used_len}");
            let chain = oracle_walk(&txt, id as u16);
            prop_assert!(chain.is_some(), "tx chain {id} cannot be walked, yet used");
            let chain = chain.unwrap();
            if used_len == 0 {
                continue;
            }
            let status = bytes_of(&a0, &chain, true, 4);
            let status = u32::from_le_bytes(status.try_into().unwrap());
            prop_assert!(TxStatus::from_u32(status).is_some(), "status {status:#x}");
            if status != TxStatus::Ok as u32 {
                continue;
            }
            delivered += 1;
            prop_assert!(acceptable(&chain), "chain {id} delivered: {chain:x?}");
            let msg = bytes_of(&b0, &chain, false, usize::MAX >> 1);
            let mut h = msg[..24].to_vec();
            let len = u32::from_le_bytes(h[16..20].try_into().unwrap()) as usize;
            h[8..12].copy_from_slice(&0u32.to_le_bytes());
            let want = [&h[..], &msg[24..24 + len]].concat();
            let rx = next_filled();
            prop_assert!(rx.is_some(), "chain {id} ok, but no rx buffer filled");
            let (rid, rlen) = rx.unwrap();
            prop_assert_eq!(rlen as usize, want.len(), "rx used length");
            let rchain = oracle_walk(&rxt, rid as u16).unwrap();
            prop_assert!(acceptable(&rchain), "rx chain {rid} written: {rchain:x?}");
            let got = bytes_of(&a1, &rchain, true, want.len());
            prop_assert!(
                got == want,
                "message of chain {id} differs in rx buffer {rid}"
            );
        }
        prop_assert!(
            next_filled().is_none(),
            "an rx buffer filled by no ok chain"
        );
        let rep = t.hub.report("virtio-userspace".into());
        delivered_total += delivered;
        prop_assert_eq!(rep.vms[1].received, delivered_total, "received");
        // Rx buffers used empty are VM 1's bad buffers, each logged.
        let empties = (0..rx_used)
            .filter(|&k| rx1.used(rx_used0.wrapping_add(k)).1 == 0)
            .count();
        let rx_errors = t.hub.take_guest_errors(1).total as usize;
        prop_assert!(
            rx_errors >= empties,
            "{empties} rx buffers used empty, {rx_errors} guest errors"
        );

        // DEVICE_NEEDS_RESET only for a chain the oracle cannot walk or a bogus index.
        for (vm, q, table, bogus) in [(0, &tx0, &txt, bogus_tx), (1, &rx1, &rxt, bogus_rx)] {
            if t.r(vm, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET == 0 {
                continue;
            }
            let next = q.used_idx();
            let head: u16 = t
                .mem(vm)
                .read_obj(GuestAddress(q.avail + 4 + 2 * u64::from(next % QSIZE)))
                .unwrap();
            let broken = oracle_walk(table, head).is_none();
            prop_assert!(
                broken || bogus.is_some(),
                "VM {vm} needs reset, but its next chain ({head}) can be walked"
            );
            return Ok(ops);
        }
    }
    Ok(ops)
}

/// Cases by default: 6-11 s in release on the 2-core test host (`docs/TESTING.md`).
const DEFAULT_CASES: u32 = 500;

#[test]
fn virtio_device_random_rings() {
    let mut runner =
        crate::fuzz_seed::runner("virtio::fuzz::virtio_device_random_rings", DEFAULT_CASES);
    let started = Instant::now();
    let ops = std::cell::Cell::new(0u64);
    let result = runner.run(&case(), |(event_idx, steps)| {
        ops.set(ops.get() + run_case(event_idx, &steps)?);
        Ok(())
    });
    eprintln!(
        "fuzz virtio::fuzz::virtio_device_random_rings: {} random operations in {:.1} s",
        ops.get(),
        started.elapsed().as_secs_f64()
    );
    result.unwrap();
}
