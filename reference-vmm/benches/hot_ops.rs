//! Micro-benchmarks of the reference VMM's hot operations, without `/dev/kvm`: the IPC
//! engine runs on two views of one memfd, as in the engine's own tests, and the benchmark
//! plays both guests (it writes the rings a guest would write).
//!
//! - `remap_one_page`: the drain of one one-page descriptor in a remap run (frame-table
//!   update, two `mmap(MAP_FIXED)`, one hole punch, the receive entry).
//! - `copy_one_page`: the same in a copy run (a 4 KiB copy instead of the remaps).
//! - `enqueue_dequeue_64b`: one whole 64-byte message in a copy run: the sender writes the
//!   message and enqueues the descriptor, the VMM drains it, the receiver dequeues the entry.
//!
//! Reading a KVM stats snapshot needs a VM or vCPU fd, so it is not here; parsing a stats
//! file is private to `kvm_stats` (only reachable through `StatsFd::open` on a KVM fd).
//!
//! Run: `cargo bench -p pageflip-vmm --bench hot_ops` (add `-- --quick` for a short run).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::mem::offset_of;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pageflip_abi::ipc::*;
use pageflip_abi::PAGE_SIZE;
use pageflip_vmm::ipc::{FrameTable, IpcEngine, Movement};
use pageflip_vmm::memory::{create_memfd, AbiPod, GuestRam};

/// Memory of each of the two VMs.
const MEM: u64 = 4 << 20;
/// Free frames of the page pool (remap runs).
const POOL: u32 = 8;
/// The sender's message page.
const SRC_PAGE: u64 = 0x20_0000;
/// The receiver's landing page.
const LANDING: u64 = 0x30_0000;

/// GPA of a header field.
macro_rules! hdr {
    ($f:ident) => {
        IPC_HEADER_GPA + offset_of!(IpcHeader, $f) as u64
    };
}

/// Two VMs of 4 MiB on one memfd with a pool, laid out as the runner (and the engine's tests)
/// lay them out; returns the engine and both VMs' memory.
fn setup(movement: Movement) -> (IpcEngine, [Arc<GuestRam>; 2]) {
    let memfd = create_memfd("bench", 2 * MEM + u64::from(POOL) * PAGE_SIZE).unwrap();
    let ram = |i: u64| Arc::new(GuestRam::map(memfd.clone(), i * MEM, MEM).unwrap());
    let rams = [ram(0), ram(1)];
    let frames = (movement == Movement::Remap)
        .then(|| FrameTable::contiguous(&[("vm0".into(), MEM), ("vm1".into(), MEM)], POOL));
    let vms = vec![
        ("vm0".into(), rams[0].clone()),
        ("vm1".into(), rams[1].clone()),
    ];
    let engine = IpcEngine::new(movement, vms, frames, memfd, None);
    (engine, rams)
}

fn read_u32(ram: &GuestRam, gpa: u64) -> u32 {
    ram.read_pod::<u32>(gpa).unwrap()
}

/// The receiver posts its landing page.
fn post(ram: &GuestRam) {
    let head = read_u32(ram, hdr!(post_head));
    ram.write_pod(
        POST_RING_GPA + u64::from(head % POST_RING_LEN) * 8,
        &LANDING,
    );
    ram.write_pod(hdr!(post_head), &head.wrapping_add(1));
}

/// The sender enqueues a descriptor of `len` bytes at [`SRC_PAGE`] for VM 1.
fn enqueue(ram: &GuestRam, seq: u64, len: u32) {
    let head = read_u32(ram, hdr!(send_head));
    let mut d = SendDesc::zeroed();
    d.seq = seq;
    d.dst = 1;
    d.len = len;
    d.npages = 1;
    d.pages[0] = SRC_PAGE;
    let slot = SEND_RING_GPA + u64::from(head % SEND_RING_LEN) * size_of::<SendDesc>() as u64;
    ram.write_pod(slot, &d);
    ram.write_pod(hdr!(send_head), &head.wrapping_add(1));
}

/// The receiver dequeues one entry; panics if there is none (the send was refused).
fn dequeue(ram: &GuestRam) -> RecvEntry {
    let tail = read_u32(ram, hdr!(recv_tail));
    assert_ne!(tail, read_u32(ram, hdr!(recv_head)), "nothing delivered");
    let at = RECV_RING_GPA + u64::from(tail % RECV_RING_LEN) * size_of::<RecvEntry>() as u64;
    let entry: RecvEntry = ram.read_pod(at).unwrap();
    ram.write_pod(hdr!(recv_tail), &tail.wrapping_add(1));
    entry
}

/// Times only the drain of one one-page message; the guests' work around it (filling the
/// page, posting, enqueuing, dequeuing) is done outside the measured interval.
fn bench_page_move(c: &mut Criterion, name: &str, movement: Movement) {
    let (engine, [src, dst]) = setup(movement);
    let page = vec![0xabu8; PAGE_SIZE as usize];
    let mut seq = 0u64;
    let mut group = c.benchmark_group("ipc");
    group.throughput(Throughput::Bytes(PAGE_SIZE));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                src.write_bytes(SRC_PAGE, &page);
                post(&dst);
                seq += 1;
                enqueue(&src, seq, PAGE_SIZE as u32);
                let started = Instant::now();
                engine.drain(black_box(0));
                total += started.elapsed();
                black_box(dequeue(&dst));
            }
            total
        })
    });
    group.finish();
    let report = engine.report();
    assert!(
        report.vms[0].refused.is_empty(),
        "refusals: {:?}",
        report.vms[0].refused
    );
    if let Some(audit) = report.ownership {
        assert!(audit.violations.is_empty(), "{:?}", audit.violations);
    }
}

fn remap_one_page(c: &mut Criterion) {
    bench_page_move(c, "remap_one_page", Movement::Remap);
}

fn copy_one_page(c: &mut Criterion) {
    bench_page_move(c, "copy_one_page", Movement::Copy);
}

/// One 64-byte message end to end, every step timed: write the message, enqueue, drain (the
/// VMM copies it into the posted page and enqueues the entry), dequeue and read it back.
fn enqueue_dequeue_64b(c: &mut Criterion) {
    let (engine, [src, dst]) = setup(Movement::Copy);
    let msg = [0x5au8; 64];
    let mut seq = 0u64;
    let mut group = c.benchmark_group("ipc");
    group.throughput(Throughput::Elements(1));
    group.bench_function("enqueue_dequeue_64b", |b| {
        b.iter(|| {
            seq += 1;
            src.write_bytes(SRC_PAGE, black_box(&msg));
            post(&dst);
            enqueue(&src, seq, msg.len() as u32);
            engine.drain(0);
            let entry = dequeue(&dst);
            dst.read_bytes(entry.pages[0], entry.len as usize)
        })
    });
    group.finish();
    assert!(engine.report().vms[0].refused.is_empty());
}

criterion_group!(benches, remap_one_page, copy_one_page, enqueue_dequeue_64b);
criterion_main!(benches);
