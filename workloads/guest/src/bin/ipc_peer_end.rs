//! `ipc_peer_end` (2 VMs): a receiver's bad posts are examined once, a good `IPC_RECV_WAIT`
//! read sets `STATUS`, and a send to a VM that has ended gets `dest_down`
//! ([`pageflip_guest::abi::probes::ipc_peer_end`]).
//!
//! VM0 sends (batch 1: every status is final when the doorbell returns); VM1 posts and
//! receives. Every barrier is taken whatever a check found, so the VMs stay in step.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::IpcStatus;
use pageflip_guest::abi::mmio::{Status, IPC_RECV_WAIT};
use pageflip_guest::abi::probes::ipc_peer_end::*;
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::Arena;
use pageflip_guest::ipc::{init_ipc, Ipc, StatusName};
use pageflip_guest::payload::{extent, fill_payload, verify_payload, Coverage};
use pageflip_guest::tsc::Deadline;
use pageflip_guest::{barrier, boot_info, check, fail, mmio_read, mmio_write, status_raw};

pageflip_guest::entry!(main);

/// A GPA in the reserved range below `IMAGE_BASE`: a post there is `not_owned`.
const RESERVED_GPA: u64 = 0x1000;
/// A device offset with no register: a write there is refused (`bad_register`).
const NO_REGISTER: u64 = 0x800;
/// How long a VM waits for what the other has already done.
const WAIT_MS: u64 = 3_000;
/// The header's `wait_timeout_us`: how long an `IPC_RECV_WAIT` read waits for nothing.
const WAIT_TIMEOUT_US: u64 = 1_000;
/// Sequence numbers of the messages.
const SEQ_FLOOD: u64 = 1;
const SEQ_WAIT: u64 = 2;
const SEQ_DOWN: u64 = 3;

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("ipc_peer_end needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    let Some(mut ipc) = init_ipc(1, WAIT_TIMEOUT_US) else {
        return 1;
    };
    let mut arena = Arena::new();
    let Some(base) = arena.alloc(4) else {
        fail(MEMORY_SIZE, "no room for 4 pages of free memory");
        return 1;
    };
    if bi.vm_id == 1 {
        receiver(&mut ipc, base)
    } else {
        sender(&mut ipc, base)
    }
}

/// Whether `STATUS` reads `ok`, as a message.
fn status_is_ok() -> Result<(), u64> {
    match status_raw() {
        s if s == Status::Ok as u64 => Ok(()),
        s => Err(s),
    }
}

/// VM1: posts, receives, ends.
fn receiver(ipc: &mut Ipc, base: u64) -> u64 {
    // Step 1: bad posts only, VM0's flood against them; then one good page and a message.
    for _ in 0..BAD_POSTS {
        ipc.post_raw(RESERVED_GPA, 1);
    }
    let first_bad = ipc.post_head().wrapping_sub(BAD_POSTS);
    barrier();
    barrier();
    let refused = ipc.header().post_refused;
    let wrong = (0..BAD_POSTS)
        .filter(|&k| ipc.post_status(first_bad.wrapping_add(k)) != IpcStatus::NotOwned as u32)
        .count();
    check!(
        BAD_POSTS_ONCE,
        refused == u64::from(BAD_POSTS) && wrong == 0,
        "after {FLOOD_SENDS} refused sends: post_refused {refused} (want {BAD_POSTS}), {wrong} bad entries without status not_owned"
    );
    ipc.post(base, 1);
    barrier();
    barrier();
    let deadline = Deadline::after_ms(WAIT_MS);
    let entry = loop {
        if let Some(e) = ipc.recv_poll() {
            break Some(e);
        }
        if deadline.expired() {
            break None;
        }
        core::hint::spin_loop();
    };
    match entry {
        None => fail(FLOOD_LANDED, "no message within 3 s"),
        Some(e) => {
            let landing = e.landing();
            let intact = e.seq == SEQ_FLOOD
                && landing.len() == 1
                && landing[0].gpa == base
                && verify_payload(&[extent(base, 1)], PAGE_SIZE, 0, SEQ_FLOOD, Coverage::Full)
                    .is_ok();
            check!(
                FLOOD_LANDED,
                intact,
                "seq {} landing {:x?} (want seq {SEQ_FLOOD} on the good entry {base:#x}, intact)",
                e.seq,
                landing
            );
        }
    }

    // Step 2: a queued message, then a timeout; a bad request before each read.
    ipc.post(base + PAGE_SIZE, 1);
    barrier();
    barrier();
    mmio_write(NO_REGISTER, 0);
    let refused_first = status_raw();
    let queued = mmio_read(IPC_RECV_WAIT);
    match status_is_ok() {
        Ok(()) => {
            check!(
                RECV_WAIT_STATUS,
                queued == 1 && refused_first == Status::BadRegister as u64,
                "IPC_RECV_WAIT returned {queued} (want 1); STATUS ok after it (the bad request before had set {refused_first})"
            );
        }
        Err(s) => fail(
            RECV_WAIT_STATUS,
            format_args!(
                "STATUS is {s} after an IPC_RECV_WAIT read that returned {queued}, want 0 (ok)"
            ),
        ),
    };
    while ipc.recv_poll().is_some() {}
    mmio_write(NO_REGISTER, 0);
    let queued = mmio_read(IPC_RECV_WAIT);
    match status_is_ok() {
        Ok(()) => {
            check!(
                RECV_WAIT_TIMEOUT_STATUS,
                queued == 0,
                "IPC_RECV_WAIT returned {queued} after its timeout (want 0); STATUS ok"
            );
        }
        Err(s) => fail(
            RECV_WAIT_TIMEOUT_STATUS,
            format_args!("STATUS is {s} after an IPC_RECV_WAIT read that timed out, want 0 (ok)"),
        ),
    };

    // Step 3: end, with nothing posted.
    barrier();
    0
}

/// VM0: sends into VM1's bad posts, then to VM1 after it ended.
fn sender(ipc: &mut Ipc, base: u64) -> u64 {
    // Step 1: every send against VM1's bad posts is queue_full; once it posts a good page,
    // the next is ok.
    let (first, rest) = (base, base + PAGE_SIZE);
    fill_payload(&[extent(first, 1)], PAGE_SIZE, 0, SEQ_FLOOD, Coverage::Full);
    barrier();
    let mut not_full = 0;
    for k in 0..FLOOD_SENDS {
        let seq = SEQ_FLOOD + 1 + u64::from(k);
        let s = ipc.send(1, &[extent(rest, 1)], PAGE_SIZE as u32, seq, 0);
        if ipc.status_raw(s) != IpcStatus::QueueFull as u32 {
            not_full += 1;
        }
    }
    barrier();
    barrier();
    let s = ipc.send(1, &[extent(first, 1)], PAGE_SIZE as u32, SEQ_FLOOD, 0);
    let landed = ipc.status_raw(s);
    barrier();
    check!(
        FLOOD_STATUSES,
        landed == IpcStatus::Ok as u32 && not_full == 0,
        "{not_full} of {FLOOD_SENDS} sends against bad posts only not queue_full; the send after a good post {} (want ok)",
        StatusName(landed)
    );

    // Step 2: one message for VM1's blocking read.
    let page = base + 2 * PAGE_SIZE;
    fill_payload(&[extent(page, 1)], PAGE_SIZE, 0, SEQ_WAIT, Coverage::Full);
    barrier();
    let s = ipc.send(1, &[extent(page, 1)], PAGE_SIZE as u32, SEQ_WAIT, 0);
    if ipc.status_raw(s) != IpcStatus::Ok as u32 {
        fail(
            RECV_WAIT_STATUS,
            format_args!(
                "VM0's send for the blocking read got {}",
                StatusName(ipc.status_raw(s))
            ),
        );
    }
    barrier();

    // Step 3: VM1 ends after this barrier; until then its post ring is empty (queue_full).
    let page = base + 3 * PAGE_SIZE;
    fill_payload(&[extent(page, 1)], PAGE_SIZE, 0, SEQ_DOWN, Coverage::Full);
    barrier();
    let deadline = Deadline::after_ms(WAIT_MS);
    let (mut status, mut full) = (IpcStatus::QueueFull as u32, 0u64);
    while status == IpcStatus::QueueFull as u32 && !deadline.expired() {
        let s = ipc.send(1, &[extent(page, 1)], PAGE_SIZE as u32, SEQ_DOWN, 0);
        status = ipc.status_raw(s);
        full += 1;
    }
    check!(
        DEST_DOWN,
        status == IpcStatus::DestDown as u32,
        "a send to the ended VM1 got {} after {full} sends (want dest_down)",
        StatusName(status)
    );
    match verify_payload(&[extent(page, 1)], PAGE_SIZE, 0, SEQ_DOWN, Coverage::Full) {
        Ok(()) => check!(
            SENDER_KEEPS_PAGES,
            true,
            "{page:#x} still holds the message"
        ),
        Err(m) => check!(
            SENDER_KEEPS_PAGES,
            false,
            "byte {} of {page:#x} is {:#018x}, want {:#018x}",
            m.offset,
            m.got,
            m.want
        ),
    };
    let s = ipc.send(1, &[extent(page, 1)], PAGE_SIZE as u32, SEQ_DOWN, 0);
    let again = ipc.status_raw(s);
    check!(
        DEST_DOWN_STAYS,
        again == IpcStatus::DestDown as u32,
        "the next send got {} (want dest_down)",
        StatusName(again)
    );
    0
}
