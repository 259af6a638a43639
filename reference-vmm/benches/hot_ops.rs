//! Micro-benchmarks of the reference VMM's hot operations (`cargo bench -p pageflip-vmm`; add
//! `-- --quick` for a short run). Each times only the VMM's own work: the benchmark plays the
//! guests (it writes the rings and queues a guest would write) outside the timed interval.
//!
//! Remap IPC, without `/dev/kvm` (the engine runs on two views of one memfd, as in its own
//! tests):
//!
//! - `ipc/remap_one_page`: the drain of one one-page descriptor in a remap run (frame-table
//!   update, two `mmap(MAP_FIXED)`, one hole punch, the receive entry).
//! - `ipc/copy_one_page`: the same in a copy run (a 4 KiB copy instead of the remaps).
//! - `ipc/enqueue_dequeue_one_descriptor`: the drain of one 64-byte descriptor in a copy run:
//!   the VMM dequeues the descriptor from the sender's send ring, checks it, takes a posted
//!   page, copies the 64 bytes and enqueues the entry in the receiver's receive ring — the
//!   queue work of a message with next to no data to move.
//!
//! The virtio datagram device, without `/dev/kvm` (real guest memory, the queues laid out and
//! filled by `pageflip_vmm::virtio::mock`, virtio-queue's `MockSplitQueue`):
//!
//! - `virtio/relay_one_buffer_4k`: one notification of VM 0's tx queue, served as the
//!   ioeventfd backend serves it (`VirtioHub::notified`): the relay pops the tx chain (header,
//!   4 KiB payload, status), pops one rx chain of VM 1, copies header and payload into it,
//!   completes both chains and decides the used-buffer notifications.
//!
//! KVM's binary statistics, with `/dev/kvm` (skipped, saying so, without it):
//!
//! - `kvm_stats/vcpu_snapshot`, `kvm_stats/vm_snapshot`: one snapshot of every scalar
//!   counter of a vCPU's or a VM's stats file (`StatsFd::snapshot`: one `pread` of the data
//!   block), as the vCPU loop takes two of each around a measured phase.
//!
//! One `-- --quick` run on the test host (kvm_pvm, AMD EPYC, 2 cores shared with other work;
//! indicative only): remap_one_page 24 us, copy_one_page 2.1 us,
//! enqueue_dequeue_one_descriptor 1.1 us, relay_one_buffer_4k 1.4 us, vcpu_snapshot 0.79 us,
//! vm_snapshot 0.66 us (`docs/TESTING.md`).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::mem::offset_of;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use pageflip_abi::ipc::*;
use pageflip_abi::probes::ipc_workloads::MIN_SIZE;
use pageflip_abi::virtio::{HEADER_SIZE, TX_QUEUE};
use pageflip_abi::PAGE_SIZE;
use pageflip_vmm::ipc::{FrameTable, IpcEngine, Movement};
use pageflip_vmm::kvm_stats::StatsFd;
use pageflip_vmm::memory::{create_memfd, GuestRam};
use pageflip_vmm::virtio::mock::{send, Run, FEATURES, RXBUF};
use vm_memory::ByteValued;

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
    let frames = movement.remaps().then(|| {
        FrameTable::contiguous(
            &[("vm0".into(), MEM), ("vm1".into(), MEM)],
            POOL,
            movement.align(),
        )
    });
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
    let entry = PostEntry {
        gpa: LANDING,
        pages: 1,
        status: 0,
    };
    ram.write_pod(
        POST_RING_GPA + u64::from(head % POST_RING_LEN) * size_of::<PostEntry>() as u64,
        &entry,
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
    d.nextents = 1;
    d.extents[0] = Extent {
        gpa: SRC_PAGE,
        pages: 1,
        reserved: 0,
    };
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

/// Times only the drain of one one-page descriptor of `len` bytes; the guests' work around
/// it (writing the message, posting, enqueuing, dequeuing) is done outside the measured
/// interval.
fn bench_drain(c: &mut Criterion, name: &str, movement: Movement, len: u32) {
    let (engine, [src, dst]) = setup(movement);
    let message = vec![0xabu8; len as usize];
    let mut seq = 0u64;
    let mut group = c.benchmark_group("ipc");
    group.throughput(Throughput::Bytes(len.into()));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                src.write_bytes(SRC_PAGE, &message);
                post(&dst);
                seq += 1;
                enqueue(&src, seq, len);
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
    bench_drain(c, "remap_one_page", Movement::Remap, PAGE_SIZE as u32);
}

fn copy_one_page(c: &mut Criterion) {
    bench_drain(c, "copy_one_page", Movement::Copy, PAGE_SIZE as u32);
}

fn enqueue_dequeue_one_descriptor(c: &mut Criterion) {
    bench_drain(
        c,
        "enqueue_dequeue_one_descriptor",
        Movement::Copy,
        MIN_SIZE as u32,
    );
}

/// Times one tx notification relaying one 4 KiB message from VM 0 to VM 1; VM 1 posts the
/// rx buffer and VM 0 queues the message outside the measured interval.
fn relay_one_buffer(c: &mut Criterion) {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    let payload = vec![0x5au8; PAGE_SIZE as usize];
    let mut relayed = 0u16;
    let mut group = c.benchmark_group("virtio");
    group.throughput(Throughput::Bytes(PAGE_SIZE));
    group.bench_function("relay_one_buffer_4k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rx1.add(&[(RXBUF, HEADER_SIZE + PAGE_SIZE as u32, true)]);
                send(t.mem(0), &mut tx0, 0, 1, &payload);
                let started = Instant::now();
                t.hub.notified(black_box(0), TX_QUEUE, 1);
                total += started.elapsed();
                relayed = relayed.wrapping_add(1);
                assert_eq!(rx1.used_idx(), relayed, "the buffer was not relayed");
            }
            total
        })
    });
    group.finish();
    assert_eq!(tx0.used_idx(), relayed);
    assert!(t.errors(0).is_empty() && t.errors(1).is_empty());
}

/// Times one snapshot of a vCPU's and of a VM's KVM binary statistics; says why and returns
/// without one where KVM or its binary statistics are not available.
fn kvm_stats_snapshot(c: &mut Criterion) {
    let skip = |why: String| println!("kvm_stats: skipped: {why}");
    let (vm, vcpu) = match vm_and_vcpu() {
        Ok(fds) => fds,
        Err(why) => return skip(why),
    };
    let mut group = c.benchmark_group("kvm_stats");
    for (name, stats) in [
        ("vcpu_snapshot", StatsFd::open(&vcpu)),
        ("vm_snapshot", StatsFd::open(&vm)),
    ] {
        match stats {
            Ok(stats) => {
                group.bench_function(name, |b| b.iter(|| stats.snapshot().unwrap()));
            }
            Err(e) => skip(format!("{name}: {e} (no binary stats on this host)")),
        }
    }
    group.finish();
}

/// A throwaway VM with one vCPU.
fn vm_and_vcpu() -> Result<(VmFd, VcpuFd), String> {
    let kvm =
        Kvm::new().map_err(|e| format!("cannot open /dev/kvm ({e}); these benchmarks need KVM"))?;
    let vm = kvm
        .create_vm()
        .map_err(|e| format!("cannot create a VM: {e}"))?;
    let vcpu = vm
        .create_vcpu(0)
        .map_err(|e| format!("cannot create a vCPU: {e}"))?;
    Ok((vm, vcpu))
}

criterion_group!(
    benches,
    remap_one_page,
    copy_one_page,
    enqueue_dequeue_one_descriptor,
    relay_one_buffer,
    kvm_stats_snapshot
);
criterion_main!(benches);
