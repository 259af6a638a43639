//! `ipc_semantics` (2 VMs, the same params for both): exact exits of immediate, deferred,
//! urgent and unrelated-exit drains ([`pageflip_guest::abi::probes::ipc_semantics`]).
//!
//! VM0 sends 1-page messages inside its measured phase, where nothing else exits: no
//! console output, no records, no new pages (the payload pages are filled, the rings, the
//! image and the stack touched before the phase). It checks each descriptor's status and the
//! ring's `send_tail` right after the sends, keeps the results in locals, and records them
//! after the PHASE end write. VM1 receives and checks every message (polling, no exits
//! needed) and, with more than `WINDOW` messages, acknowledges them (see the probe's
//! documentation) so that VM0 never overruns its receive ring.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{IpcStatus, FLAG_URGENT, POST_RING_LEN, SEND_RING_LEN};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::probes::ipc_semantics::{
    BATCH, N, S_DRAINS, S_SENT, S_VMM_REFUSED, S_VMM_SENT, TEST, TEST_DEFERRED, TEST_IMMEDIATE,
    TEST_UNRELATED_EXIT, TEST_URGENT, URGENT_BATCH, URGENT_NORMAL, WINDOW,
};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::{zero_pages, Arena, PagePool};
use pageflip_guest::check::StreamReceiver;
use pageflip_guest::ipc::init_ipc;
use pageflip_guest::ipc::Ipc;
use pageflip_guest::ipc::StatusName;
use pageflip_guest::payload::{extent, fill_payload, Coverage, Touch};
use pageflip_guest::prefault::prefault;
use pageflip_guest::tsc::Deadline;
use pageflip_guest::{
    barrier, boot_info, check, doorbell, fail, phase_begin, phase_end, println, sample,
};

pageflip_guest::entry!(main);

/// How long either VM waits without progress before it gives up.
const IDLE_MS: u64 = 3_000;
/// VM1 acknowledges at the latest after this many messages (and whenever it has caught up).
const ACK_EVERY: u64 = 16;

/// The test's parameters, checked.
struct Test {
    test: u64,
    /// Messages VM0 sends.
    n: u64,
    /// Batch size written to the header.
    batch: u32,
}

fn params() -> Result<Test, &'static str> {
    let bi = boot_info();
    let p = |i: usize| {
        if i < bi.num_params as usize {
            bi.params[i]
        } else {
            0
        }
    };
    let (test, n, b) = (p(TEST), p(N), p(BATCH));
    match test {
        TEST_IMMEDIATE if n >= 1 => Ok(Test { test, n, batch: 1 }),
        TEST_IMMEDIATE => Err("test 1 needs params[1] = N >= 1"),
        TEST_DEFERRED if (2..=u64::from(SEND_RING_LEN)).contains(&b) && n >= b && n % b == 0 => {
            Ok(Test {
                test,
                n,
                batch: b as u32,
            })
        }
        TEST_DEFERRED => {
            Err("test 2 needs params[2] = B in 2..=64 and params[1] = N, a multiple of B")
        }
        TEST_URGENT => Ok(Test {
            test,
            n: URGENT_NORMAL + 1,
            batch: URGENT_BATCH,
        }),
        TEST_UNRELATED_EXIT => Ok(Test {
            test,
            n: 1,
            batch: URGENT_BATCH,
        }),
        _ => Err("params[0] must be a test: 1 immediate, 2 deferred, 3 urgent, 4 unrelated exit"),
    }
}

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("ipc_semantics needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    let t = match params() {
        Ok(t) => t,
        Err(why) => {
            fail(
                PARAMS,
                format_args!("{why}: params {:?}", &bi.params[..bi.num_params as usize]),
            );
            return 1;
        }
    };
    let batch = if bi.vm_id == 0 { t.batch } else { 1 };
    let Some(mut ipc) = init_ipc(batch, 0) else {
        return 1;
    };
    if bi.vm_id == 0 {
        sender(&mut ipc, &t)
    } else {
        receiver(&mut ipc, &t)
    }
}

/// VM1: receives and checks the messages, acknowledging them if VM0 needs it.
fn receiver(ipc: &mut Ipc, t: &Test) -> u64 {
    let mut arena = Arena::new();
    let pool_pages = u64::from(POST_RING_LEN);
    let bitmap_pages = StreamReceiver::bitmap_pages(t.n);
    let (Some(pool), Some(bitmap), Some(ack_page)) = (
        arena.alloc(pool_pages),
        arena.alloc(bitmap_pages),
        arena.alloc(1),
    ) else {
        fail(
            MEMORY_SIZE,
            format_args!("no room for {} pages", pool_pages + bitmap_pages + 1),
        );
        return 1;
    };
    zero_pages(pool, pool_pages);
    zero_pages(ack_page, 1);
    ipc.post_from(&mut PagePool::new(pool, pool_pages));
    let mut r = StreamReceiver::new(
        1 << 0,
        t.n,
        PAGE_SIZE as u32,
        Coverage::Full,
        Touch::All,
        bitmap,
    );
    let acks = t.n > WINDOW;
    let mut acked = 0u64;
    let mut ack_failures = 0u64;
    println!("VM1: receiving {} messages from VM0 (acks: {acks})", t.n);
    barrier();
    let mut deadline = Deadline::after_ms(IDLE_MS);
    while !r.complete() {
        match ipc.recv_poll() {
            Some(e) => {
                r.handle(ipc, &e);
                deadline = Deadline::after_ms(IDLE_MS);
            }
            None if deadline.expired() => break,
            None => core::hint::spin_loop(),
        }
        let taken = r.received();
        if acks && taken != acked && (taken - acked >= ACK_EVERY || ipc.recv_queued() == 0) {
            fill_payload(&[extent(ack_page, 1)], 8, 1, taken, Coverage::Full);
            let slot = ipc.send(0, &[extent(ack_page, 1)], 8, taken, 0);
            // An ack that VM0's full ring refuses is sent again, with a newer count, later.
            match ipc.status_raw(slot) {
                s if s == IpcStatus::Ok as u32 => acked = taken,
                s if s == IpcStatus::QueueFull as u32 => {}
                _ => ack_failures += 1,
            }
        }
    }
    barrier();
    r.drain_extra(ipc);
    r.record();
    if ack_failures != 0 {
        fail(
            "acks",
            format_args!("{ack_failures} acknowledgements refused other than queue_full"),
        );
    }
    0
}

/// What VM0 saw in its measured phase.
#[derive(Default)]
struct Seen {
    /// Messages sent.
    sent: u64,
    /// Messages seen Ok.
    ok: u64,
    /// Failures of the test's first check, and the first one: (message, status, send_tail).
    first_bad: u64,
    first_bad_at: Option<(u64, u32, u32)>,
    /// Failures of the test's second check, and the first one.
    second_bad: u64,
    second_bad_at: Option<(u64, u32, u32)>,
    /// The flow control gave up waiting for acknowledgements.
    stalled: bool,
}

/// VM0's acknowledgement state: the highest count VM1 acknowledged.
struct Acks {
    on: bool,
    acked: u64,
}

impl Acks {
    /// Takes the acknowledgements queued (no exit).
    #[inline]
    fn absorb(&mut self, ipc: &mut Ipc) {
        while let Some(e) = ipc.recv_poll() {
            if e.src == 1 && e.seq > self.acked {
                self.acked = e.seq;
            }
            ipc.repost(&e);
        }
    }

    /// Waits (polling, no exit) until message `last` fits in the window; `false` if VM1
    /// stopped acknowledging.
    #[inline]
    fn wait_window(&mut self, ipc: &mut Ipc, last: u64) -> bool {
        if !self.on {
            return true;
        }
        self.absorb(ipc);
        if last < self.acked + WINDOW {
            return true;
        }
        let deadline = Deadline::after_ms(IDLE_MS);
        while last >= self.acked + WINDOW {
            if deadline.expired() {
                return false;
            }
            core::hint::spin_loop();
            self.absorb(ipc);
        }
        true
    }
}

/// VM0: the sends, in the measured phase.
fn sender(ipc: &mut Ipc, t: &Test) -> u64 {
    let mut arena = Arena::new();
    let ack_pages = WINDOW;
    let (Some(pages), Some(ack_pool)) = (arena.alloc(t.n), arena.alloc(ack_pages)) else {
        fail(
            MEMORY_SIZE,
            format_args!("no room for {} pages", t.n + ack_pages),
        );
        return 1;
    };
    for i in 0..t.n {
        fill_payload(
            &[extent(pages + i * PAGE_SIZE, 1)],
            PAGE_SIZE,
            0,
            i,
            Coverage::Full,
        );
    }
    zero_pages(ack_pool, ack_pages);
    let mut acks = Acks {
        on: t.n > WINDOW,
        acked: 0,
    };
    if acks.on {
        ipc.post_from(&mut PagePool::new(ack_pool, ack_pages));
    }
    let page = |i: u64| [extent(pages + i * PAGE_SIZE, 1)];
    let len = PAGE_SIZE as u32;
    prefault(64 * 1024);
    ipc.prefault_rings();
    println!("VM0: test {}, {} messages, batch {}", t.test, t.n, t.batch);
    barrier();

    let mut s = Seen::default();
    phase_begin();
    match t.test {
        TEST_IMMEDIATE => {
            for i in 0..t.n {
                if !acks.wait_window(ipc, i) {
                    s.stalled = true;
                    break;
                }
                let slot = ipc.send(1, &page(i), len, i, 0);
                s.sent += 1;
                let st = ipc.status_raw(slot);
                let tail = ipc.send_tail();
                if st == IpcStatus::Ok as u32 {
                    s.ok += 1;
                }
                if st != IpcStatus::Ok as u32 || tail != ipc.send_head() {
                    s.first_bad += 1;
                    s.first_bad_at.get_or_insert((i, st, tail));
                }
            }
        }
        TEST_DEFERRED => {
            let b = u64::from(t.batch);
            let mut start = 0;
            while start < t.n {
                if !acks.wait_window(ipc, start + b - 1) {
                    s.stalled = true;
                    break;
                }
                let tail0 = ipc.send_tail();
                let first = ipc.send(1, &page(start), len, start, 0);
                s.sent += 1;
                for j in 1..b {
                    // After the first j sends of the batch (j < B): nothing drained.
                    let st = ipc.status_raw(first);
                    let tail = ipc.send_tail();
                    if st != IpcStatus::Pending as u32 || tail != tail0 {
                        s.first_bad += 1;
                        s.first_bad_at.get_or_insert((start + j - 1, st, tail));
                    }
                    ipc.send(1, &page(start + j), len, start + j, 0);
                    s.sent += 1;
                }
                // After the B-th: all B consumed, all Ok.
                let tail = ipc.send_tail();
                for j in 0..b {
                    let slot = pageflip_guest::ipc::SendSlot(first.0.wrapping_add(j as u32));
                    let st = ipc.status_raw(slot);
                    if st == IpcStatus::Ok as u32 {
                        s.ok += 1;
                    } else {
                        s.second_bad += 1;
                        s.second_bad_at.get_or_insert((start + j, st, tail));
                    }
                }
                if tail != ipc.send_head() {
                    s.second_bad += 1;
                    s.second_bad_at
                        .get_or_insert((start + b - 1, IpcStatus::Ok as u32, tail));
                }
                start += b;
            }
        }
        TEST_URGENT => {
            let tail0 = ipc.send_tail();
            let first = ipc.send(1, &page(0), len, 0, 0);
            for i in 1..URGENT_NORMAL {
                ipc.send(1, &page(i), len, i, 0);
            }
            s.sent = URGENT_NORMAL;
            for i in 0..URGENT_NORMAL {
                let st = ipc.status_raw(pageflip_guest::ipc::SendSlot(
                    first.0.wrapping_add(i as u32),
                ));
                let tail = ipc.send_tail();
                if st != IpcStatus::Pending as u32 || tail != tail0 {
                    s.first_bad += 1;
                    s.first_bad_at.get_or_insert((i, st, tail));
                }
            }
            ipc.send(1, &page(URGENT_NORMAL), len, URGENT_NORMAL, FLAG_URGENT);
            s.sent += 1;
            let tail = ipc.send_tail();
            for i in 0..=URGENT_NORMAL {
                let st = ipc.status_raw(pageflip_guest::ipc::SendSlot(
                    first.0.wrapping_add(i as u32),
                ));
                if st == IpcStatus::Ok as u32 {
                    s.ok += 1;
                } else {
                    s.second_bad += 1;
                    s.second_bad_at.get_or_insert((i, st, tail));
                }
            }
            if tail != ipc.send_head() {
                s.second_bad += 1;
                s.second_bad_at
                    .get_or_insert((URGENT_NORMAL, IpcStatus::Ok as u32, tail));
            }
        }
        _ => {
            // TEST_UNRELATED_EXIT
            let tail0 = ipc.send_tail();
            let slot = ipc.send(1, &page(0), len, 0, 0);
            s.sent = 1;
            let st = ipc.status_raw(slot);
            let tail = ipc.send_tail();
            if st != IpcStatus::Pending as u32 || tail != tail0 {
                s.first_bad += 1;
                s.first_bad_at = Some((0, st, tail));
            }
            doorbell(0);
            let st = ipc.status_raw(slot);
            let tail = ipc.send_tail();
            if st == IpcStatus::Ok as u32 && tail == ipc.send_head() {
                s.ok = 1;
            } else {
                s.second_bad += 1;
                s.second_bad_at = Some((0, st, tail));
            }
        }
    }
    phase_end();

    report(t, &s);
    // Anything still in the ring (only after a failure) is drained now.
    if ipc.pending() != 0 {
        ipc.flush();
    }
    let h = ipc.header();
    check!(
        "all-delivered",
        s.sent == t.n && s.ok == t.n && h.sent == t.n && h.refused == 0 && !s.stalled,
        "{} of {} sent, {} seen Ok; the VMM counts sent {}, refused {}{}",
        s.sent,
        t.n,
        s.ok,
        h.sent,
        h.refused,
        if s.stalled {
            "; VM1 stopped acknowledging"
        } else {
            ""
        }
    );
    acks.absorb(ipc);
    barrier();
    let mut samples = [0u64; 4];
    samples[S_DRAINS] = ipc.drains();
    samples[S_SENT] = s.sent;
    samples[S_VMM_SENT] = h.sent;
    samples[S_VMM_REFUSED] = h.refused;
    for v in samples {
        sample(v);
    }
    0
}

/// Records the test's checks.
fn report(t: &Test, s: &Seen) {
    let describe = |at: Option<(u64, u32, u32)>| at.map(|(i, st, tail)| (i, StatusName(st), tail));
    match t.test {
        TEST_IMMEDIATE => {
            let first = describe(s.first_bad_at);
            check!(
                "complete-at-doorbell",
                s.first_bad == 0 && s.sent == t.n,
                "{} sends, {} not Ok with send_tail == send_head when the doorbell returned{}",
                s.sent,
                s.first_bad,
                Detail(first)
            );
        }
        TEST_DEFERRED => {
            check!(
                "deferred-until-batch",
                s.first_bad == 0 && s.sent == t.n,
                "batch {}: {} sends; {} times a batch's first descriptor was not pending or \
                 send_tail moved before the batch was full{}",
                t.batch,
                s.sent,
                s.first_bad,
                Detail(describe(s.first_bad_at))
            );
            check!(
                "batch-drained",
                s.second_bad == 0 && s.sent == t.n,
                "{} batches; {} descriptors not Ok (or send_tail short) after a batch's last \
                 send{}",
                s.sent / u64::from(t.batch),
                s.second_bad,
                Detail(describe(s.second_bad_at))
            );
        }
        TEST_URGENT => {
            check!(
                "normal-stays-pending",
                s.first_bad == 0,
                "{URGENT_NORMAL} normal sends with batch {}: {} not pending{}",
                t.batch,
                s.first_bad,
                Detail(describe(s.first_bad_at))
            );
            check!(
                "urgent-drains",
                s.second_bad == 0,
                "after the urgent send: {} of {} descriptors not Ok{}",
                s.second_bad,
                URGENT_NORMAL + 1,
                Detail(describe(s.second_bad_at))
            );
        }
        _ => {
            check!(
                "unrelated-exit-drains",
                s.first_bad == 0 && s.second_bad == 0,
                "batch {}: pending before the DOORBELL write: {}; Ok after it: {}{}{}",
                t.batch,
                s.first_bad == 0,
                s.second_bad == 0,
                Detail(describe(s.first_bad_at)),
                Detail(describe(s.second_bad_at))
            );
        }
    }
}

/// The first failure of a check, for a record's message.
struct Detail(Option<(u64, StatusName, u32)>);

impl core::fmt::Display for Detail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some((i, st, tail)) => write!(f, "; first: message {i}, status {st}, send_tail {tail}"),
            None => Ok(()),
        }
    }
}
