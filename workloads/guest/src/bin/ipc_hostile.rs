//! `ipc_hostile` (2 VMs): bad descriptors get their statuses and the run goes on;
//! backpressure refuses, stalls and loses nothing ([`pageflip_guest::abi::probes::ipc_hostile`]).
//!
//! Each bad descriptor breaks one rule (a descriptor with no extents, or with an extent of no
//! pages, necessarily also has a length beyond its pages: the VMM must check the extents
//! first); every other field is valid: destination VM1, 100 bytes, one extent of one page of
//! VM0's free memory holding a payload.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{
    Extent, IpcStatus, SendDesc, MAX_EXTENTS, MAX_MSG_PAGES, POST_RING_LEN, SEND_RING_LEN,
};
use pageflip_guest::abi::probes::ipc_hostile::{
    expected, BACKPRESSURE_POSTED, BACKPRESSURE_SENT, MESSAGES, S_QUEUE_FULL, S_REFUSED,
    S_VMM_REFUSED,
};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::{PAGE_SIZE, STACK_BOTTOM, STACK_TOP};
use pageflip_guest::arena::{zero_pages, Arena, PagePool};
use pageflip_guest::check::StreamReceiver;
use pageflip_guest::ipc::init_ipc;
use pageflip_guest::ipc::{Ipc, StatusName};
use pageflip_guest::payload::{extent, fill_payload, verify_payload, Coverage, Extents, Touch};
use pageflip_guest::tsc::{spin_ticks, ticks_per_us, Deadline};
use pageflip_guest::{barrier, boot_info, check, fail, pass_with, println, sample};

pageflip_guest::entry!(main);

/// Length of every message (not a multiple of 8: the last word is partial).
const LEN: u32 = 100;
/// How long a VM waits without progress before it gives up.
const IDLE_MS: u64 = 3_000;
/// Sequence number of the payload in the page the bad descriptors name.
const BAD_SEQ: u64 = 1000;

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("ipc_hostile needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    // Batch 64: a placed descriptor stays in the ring until this guest flushes.
    let Some(mut ipc) = init_ipc(SEND_RING_LEN, 0) else {
        return 1;
    };
    if bi.vm_id == 0 {
        sender(&mut ipc)
    } else {
        receiver(&mut ipc)
    }
}

/// A descriptor to VM1 of `LEN` bytes in `extents` (at most [`MAX_EXTENTS`]).
fn desc_in(extents: &[Extent], seq: u64) -> SendDesc {
    let list = Extents::from_slice(extents);
    SendDesc {
        seq,
        dst: 1,
        flags: 0,
        len: LEN,
        nextents: list.as_slice().len() as u32,
        status: IpcStatus::Pending as u32,
        reserved: 0,
        extents: list.slots(),
    }
}

/// A valid descriptor to VM1 of `LEN` bytes in `page` (one extent of one page); the cases
/// break one field.
fn desc(page: u64, seq: u64) -> SendDesc {
    desc_in(&[extent(page, 1)], seq)
}

/// Descriptor statuses by name (`not-consumed` for one the flush did not consume).
struct Statuses<'a>(&'a [u32]);

impl core::fmt::Display for Statuses<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, &st) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            if st == u32::MAX {
                write!(f, "{sep}not-consumed")?;
            } else {
                write!(f, "{sep}{}", StatusName(st))?;
            }
        }
        Ok(())
    }
}

/// VM0's counts of refused descriptors.
#[derive(Default)]
struct Refused {
    all: u64,
    queue_full: u64,
}

impl Refused {
    fn count(&mut self, status: u32) {
        if status != IpcStatus::Ok as u32 {
            self.all += 1;
        }
        if status == IpcStatus::QueueFull as u32 {
            self.queue_full += 1;
        }
    }
}

/// Places `d`, flushes, and records `name`: passed if the VMM consumed it with the case's
/// status ([`expected`]).
fn case(ipc: &mut Ipc, refused: &mut Refused, name: &str, d: SendDesc) {
    let expected = expected(name).expect("a case of ipc_hostile::CASES");
    let slot = ipc.place(&d);
    ipc.flush();
    let consumed = ipc.consumed(slot);
    let st = ipc.status_raw(slot);
    refused.count(st);
    check!(
        name,
        consumed && st == expected as u32,
        "expected {}, got {}{}",
        expected.name(),
        StatusName(st),
        if consumed {
            ""
        } else {
            " (not consumed by the flush)"
        }
    );
}

/// Sends `d` (placed and flushed) until it is Ok, waiting a little longer after each
/// QueueFull; returns the attempts, or `None` on another status or after the idle timeout.
fn send_until_ok(ipc: &mut Ipc, refused: &mut Refused, d: &SendDesc) -> Result<u64, u32> {
    let deadline = Deadline::after_ms(IDLE_MS);
    let mut backoff_us = 1;
    let mut attempts = 0;
    loop {
        let slot = ipc.place(d);
        ipc.flush();
        attempts += 1;
        let st = ipc.status_raw(slot);
        refused.count(st);
        if st == IpcStatus::Ok as u32 {
            return Ok(attempts);
        }
        if st != IpcStatus::QueueFull as u32 || deadline.expired() {
            return Err(st);
        }
        spin_ticks(backoff_us * ticks_per_us());
        backoff_us = (backoff_us * 2).min(1000);
    }
}

/// VM0: the bad descriptors, then the backpressure test.
fn sender(ipc: &mut Ipc) -> u64 {
    let bi = boot_info();
    let mut arena = Arena::new();
    // Page 0: the bad descriptors' page; pages 1..=9: messages 0..=8; the whole region
    // (MAX_MSG_PAGES + 1 pages) is the too-many-pages case's message.
    let region = (1 + MESSAGES).max(u64::from(MAX_MSG_PAGES) + 1);
    let Some(base) = arena.alloc(region) else {
        fail(MEMORY_SIZE, format_args!("no room for {region} pages"));
        return 1;
    };
    let good = base;
    let msg_page = |seq: u64| base + (1 + seq) * PAGE_SIZE;
    fill_payload(
        &[extent(good, 1)],
        u64::from(LEN),
        0,
        BAD_SEQ,
        Coverage::Full,
    );
    for seq in 0..MESSAGES {
        fill_payload(
            &[extent(msg_page(seq), 1)],
            u64::from(LEN),
            0,
            seq,
            Coverage::Full,
        );
    }
    barrier();
    println!(
        "VM0: bad descriptors to VM1 (memory ends at {:#x})",
        bi.mem_size
    );
    let mut refused = Refused::default();

    let d = || desc(good, BAD_SEQ);
    case(ipc, &mut refused, "not-owned", desc(STACK_BOTTOM, BAD_SEQ));
    case(
        ipc,
        &mut refused,
        "outside-memory",
        desc(bi.mem_size, BAD_SEQ),
    );
    case(ipc, &mut refused, "unaligned", desc(good + 8, BAD_SEQ));
    let unknown = bi.num_vms.max(7);
    case(
        ipc,
        &mut refused,
        "unknown-dest",
        SendDesc {
            dst: unknown,
            ..d()
        },
    );
    case(ipc, &mut refused, "self-send", SendDesc { dst: 0, ..d() });
    case(ipc, &mut refused, "len-zero", SendDesc { len: 0, ..d() });
    case(
        ipc,
        &mut refused,
        "len-beyond-pages",
        SendDesc {
            len: PAGE_SIZE as u32 + 1,
            ..d()
        },
    );
    case(
        ipc,
        &mut refused,
        "nextents-zero",
        SendDesc { nextents: 0, ..d() },
    );
    case(
        ipc,
        &mut refused,
        "nextents-too-many",
        SendDesc {
            nextents: MAX_EXTENTS as u32 + 1,
            ..d()
        },
    );
    case(
        ipc,
        &mut refused,
        "extent-zero-pages",
        desc_in(&[extent(good, 0)], BAD_SEQ),
    );
    // The first extent is valid: every extent is checked, not only the first.
    case(
        ipc,
        &mut refused,
        "extent-unaligned",
        desc_in(&[extent(good, 1), extent(msg_page(0) + 8, 1)], BAD_SEQ),
    );
    // Starts inside memory, ends past it.
    case(
        ipc,
        &mut refused,
        "extent-past-memory",
        desc_in(&[extent(bi.mem_size - PAGE_SIZE, 2)], BAD_SEQ),
    );
    // Starts in the reserved range (its last page below 0x20_0000), ends above it.
    case(
        ipc,
        &mut refused,
        "extent-into-reserved",
        desc_in(&[extent(STACK_TOP - PAGE_SIZE, 2)], BAD_SEQ),
    );
    // MAX_MSG_PAGES + 1 contiguous pages of free memory, split as a sender splits.
    case(
        ipc,
        &mut refused,
        "too-many-pages",
        desc_in(
            Extents::contiguous(base, u64::from(MAX_MSG_PAGES) + 1).as_slice(),
            BAD_SEQ,
        ),
    );
    // The second extent is the second page of the first.
    case(
        ipc,
        &mut refused,
        "overlap",
        desc_in(&[extent(good, 2), extent(good + PAGE_SIZE, 1)], BAD_SEQ),
    );

    // The check order: each descriptor breaks two rules, and the earlier check decides.
    case(
        ipc,
        &mut refused,
        "order-first-bad-extent-decides",
        desc_in(&[extent(STACK_BOTTOM, 1), extent(bi.mem_size, 1)], BAD_SEQ),
    );
    case(
        ipc,
        &mut refused,
        "order-address-before-not-owned",
        desc_in(&[extent(STACK_BOTTOM + 8, 1)], BAD_SEQ),
    );
    case(
        ipc,
        &mut refused,
        "order-extents-before-length",
        SendDesc {
            len: 0,
            ..desc_in(&[extent(good, 1), extent(bi.mem_size, 1)], BAD_SEQ)
        },
    );
    case(
        ipc,
        &mut refused,
        "order-length-before-overlap",
        SendDesc {
            len: 0,
            ..desc_in(&[extent(good, 2), extent(good + PAGE_SIZE, 1)], BAD_SEQ)
        },
    );
    case(
        ipc,
        &mut refused,
        "order-overlap-before-dest",
        SendDesc {
            dst: unknown,
            ..desc_in(&[extent(good, 2), extent(good + PAGE_SIZE, 1)], BAD_SEQ)
        },
    );

    // A malformed ring: send_head more than the ring length ahead of send_tail.
    let tail = ipc.send_tail();
    let bad_head = tail.wrapping_add(SEND_RING_LEN + 1);
    ipc.write_send_head_raw(bad_head);
    ipc.flush();
    let err = ipc.ring_error();
    let tail_after = ipc.send_tail();
    ipc.restore_send_head();
    check!(
        "bad-ring",
        err == IpcStatus::BadRing as u32 && tail_after == tail,
        "send_head {bad_head} with send_tail {tail}: ring_error {} (want bad_ring), \
         send_tail {tail_after} (want {tail})",
        StatusName(err)
    );
    let kept = verify_payload(
        &[extent(good, 1)],
        u64::from(LEN),
        0,
        BAD_SEQ,
        Coverage::Full,
    );
    check!(
        "refused-page-untouched",
        kept.is_ok(),
        "the page the bad descriptors named: {kept:?}"
    );

    // Backpressure: VM1 posted 4 pages and waits at a barrier.
    let mut slots = [None; BACKPRESSURE_SENT as usize];
    for (seq, slot) in slots.iter_mut().enumerate() {
        *slot = Some(ipc.place(&desc(msg_page(seq as u64), seq as u64)));
    }
    ipc.flush();
    let mut statuses = [0u32; BACKPRESSURE_SENT as usize];
    for (st, slot) in statuses.iter_mut().zip(slots) {
        let slot = slot.expect("placed");
        *st = if ipc.consumed(slot) {
            ipc.status_raw(slot)
        } else {
            u32::MAX
        };
        refused.count(*st);
    }
    let want = |i: usize| {
        if (i as u64) < BACKPRESSURE_POSTED {
            IpcStatus::Ok as u32
        } else {
            IpcStatus::QueueFull as u32
        }
    };
    let full_ok = statuses.iter().enumerate().all(|(i, &st)| st == want(i));
    check!(
        "backpressure-full",
        full_ok,
        "{BACKPRESSURE_SENT} sends, {BACKPRESSURE_POSTED} pages posted: {} (want \
         {BACKPRESSURE_POSTED} ok, then queue_full)",
        Statuses(&statuses)
    );
    let mut untouched = 0;
    let mut refused_seqs = [0u64; BACKPRESSURE_SENT as usize];
    let mut nrefused = 0;
    for (seq, &st) in statuses.iter().enumerate() {
        if st != IpcStatus::Ok as u32 {
            refused_seqs[nrefused] = seq as u64;
            nrefused += 1;
            if verify_payload(
                &[extent(msg_page(seq as u64), 1)],
                u64::from(LEN),
                0,
                seq as u64,
                Coverage::Full,
            )
            .is_ok()
            {
                untouched += 1;
            }
        }
    }
    check!(
        "refused-pages-untouched",
        untouched == nrefused,
        "{untouched} of {nrefused} refused messages' pages still hold their payload"
    );

    barrier();
    // VM1 now posts pages and receives: send the refused ones again, in order.
    let mut resent_ok = true;
    let mut attempts = 0;
    for &seq in &refused_seqs[..nrefused] {
        match send_until_ok(ipc, &mut refused, &desc(msg_page(seq), seq)) {
            Ok(n) => attempts += n,
            Err(st) => {
                fail(
                    "backpressure-resent",
                    format_args!("message {seq} sent again: status {}", StatusName(st)),
                );
                resent_ok = false;
                break;
            }
        }
    }
    if resent_ok {
        pass_with(
            "backpressure-resent",
            format_args!("{nrefused} refused messages delivered in {attempts} attempts"),
        );
    }
    let last = BACKPRESSURE_SENT;
    match send_until_ok(ipc, &mut refused, &desc(msg_page(last), last)) {
        Ok(n) => pass_with(
            "still-works",
            format_args!("message {last} delivered ({n} attempts)"),
        ),
        Err(st) => fail(
            "still-works",
            format_args!("message {last}: status {}", StatusName(st)),
        ),
    }
    barrier();
    let h = ipc.header();
    check!(
        "refused-count",
        h.refused == refused.all,
        "the VMM counts {} refused descriptors, the guest saw {} ({} queue_full)",
        h.refused,
        refused.all,
        refused.queue_full
    );
    let mut samples = [0u64; 3];
    samples[S_REFUSED] = refused.all;
    samples[S_VMM_REFUSED] = h.refused;
    samples[S_QUEUE_FULL] = refused.queue_full;
    for v in samples {
        sample(v);
    }
    0
}

/// VM1: 4 landing pages, no receiving until the barrier; then everything.
fn receiver(ipc: &mut Ipc) -> u64 {
    let mut arena = Arena::new();
    let pool_pages = u64::from(POST_RING_LEN);
    let bitmap_pages = StreamReceiver::bitmap_pages(MESSAGES);
    let (Some(pool_base), Some(bitmap)) = (arena.alloc(pool_pages), arena.alloc(bitmap_pages))
    else {
        fail(MEMORY_SIZE, "no room for the landing pages");
        return 1;
    };
    zero_pages(pool_base, pool_pages);
    let mut pool = PagePool::new(pool_base, pool_pages);
    for _ in 0..BACKPRESSURE_POSTED {
        let page = pool.take().expect("pool");
        ipc.post(page, 1);
    }
    let mut r = StreamReceiver::new(1 << 0, MESSAGES, LEN, Coverage::Full, Touch::All, bitmap);
    barrier();
    // VM0 makes its bad requests and fills the queue.
    barrier();
    ipc.post_from(&mut pool);
    // (seq, intact) of the entries in arrival order.
    let mut arrivals = [(u64::MAX, false); 2 * MESSAGES as usize];
    let mut n = 0;
    let mut deadline = Deadline::after_ms(IDLE_MS);
    while !r.complete() {
        let Some(e) = ipc.recv_poll() else {
            if deadline.expired() {
                break;
            }
            core::hint::spin_loop();
            continue;
        };
        deadline = Deadline::after_ms(IDLE_MS);
        let intact = e.src == 0
            && e.dst == 1
            && e.len == LEN
            && e.nextents == 1
            && e.extents[0].pages == 1
            && pageflip_guest::arena::is_free_page(e.extents[0].gpa)
            && verify_payload(e.landing(), u64::from(LEN), 0, e.seq, Coverage::Full).is_ok();
        if n < arrivals.len() {
            arrivals[n] = (e.seq, intact);
            n += 1;
        }
        r.handle(ipc, &e);
    }
    barrier();
    r.drain_extra(ipc);
    r.record();
    let first8 = &arrivals[..n.min(BACKPRESSURE_SENT as usize)];
    let lost_ok = first8.len() == BACKPRESSURE_SENT as usize
        && first8
            .iter()
            .enumerate()
            .all(|(i, &(seq, ok))| seq == i as u64 && ok);
    check!(
        "backpressure-nothing-lost",
        lost_ok,
        "first arrivals (seq, intact): {:?}",
        first8
    );
    let ninth = arrivals.get(BACKPRESSURE_SENT as usize).copied();
    check!(
        "still-works-received",
        n > BACKPRESSURE_SENT as usize && ninth == Some((BACKPRESSURE_SENT, true)),
        "arrival {}: {:?}",
        BACKPRESSURE_SENT,
        if n > BACKPRESSURE_SENT as usize {
            ninth
        } else {
            None
        }
    );
    0
}
