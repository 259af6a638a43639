//! `ipc_security` (2 VMs): after a send, the sender must not see what the receiver writes
//! into the received page; with remap its own page must read zero, with copy it must be
//! unchanged ([`pageflip_guest::abi::probes::ipc_security`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{IpcStatus, POST_RING_LEN};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::probes::ipc_security::{MODE, MODE_COPY, MODE_REMAP, SECRET};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::{zero_pages, Arena, PagePool};
use pageflip_guest::ipc::init_ipc;
use pageflip_guest::ipc::StatusName;
use pageflip_guest::payload::{extent, fill_payload, verify_payload, Coverage};
use pageflip_guest::payload::{fill_page_with, find_word, page_is_zero};
use pageflip_guest::tsc::Deadline;
use pageflip_guest::{barrier, boot_info, check, fail, pass_with, println, skip};

pageflip_guest::entry!(main);

/// How long VM1 waits for the message.
const RECV_TIMEOUT_MS: u64 = 3_000;

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("ipc_security needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    let Some(mut ipc) = init_ipc(1, 0) else {
        return 1;
    };
    let mut arena = Arena::new();
    let Some(base) = arena.alloc(u64::from(POST_RING_LEN)) else {
        fail(MEMORY_SIZE, "no room for 256 pages of free memory");
        return 1;
    };
    zero_pages(base, u64::from(POST_RING_LEN));

    if bi.vm_id == 1 {
        let mut pool = PagePool::new(base, u64::from(POST_RING_LEN));
        ipc.post_from(&mut pool);
        barrier();
        let deadline = Deadline::after_ms(RECV_TIMEOUT_MS);
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
            None => {
                fail("received-intact", "no message within 10 s");
            }
            Some(e) => {
                let page = e.extents[0].gpa;
                let plausible = e.src == 0
                    && e.dst == 1
                    && e.nextents == 1
                    && e.extents[0].pages == 1
                    && e.len == 4096;
                let in_pool = (base..base + u64::from(POST_RING_LEN) * PAGE_SIZE).contains(&page)
                    && page % PAGE_SIZE == 0;
                if !plausible || !in_pool {
                    fail(
                        "received-intact",
                        format_args!(
                            "entry src {} dst {} len {} extents {:x?}",
                            e.src,
                            e.dst,
                            e.len,
                            e.landing()
                        ),
                    );
                } else {
                    match verify_payload(&[extent(page, 1)], 4096, 0, e.seq, Coverage::Full) {
                        Ok(()) => pass_with(
                            "received-intact",
                            format_args!("4096 bytes of VM0's pattern at {page:#x}"),
                        ),
                        Err(m) => fail(
                            "received-intact",
                            format_args!(
                                "byte {} differs: {:#018x}, want {:#018x}",
                                m.offset, m.got, m.want
                            ),
                        ),
                    }
                    fill_page_with(page, SECRET);
                    println!("VM1: wrote the secret across {page:#x}");
                }
            }
        }
        barrier();
        return 0;
    }

    // VM0: the sender. The page g lies in free memory far from where the secret could be.
    let g = base;
    fill_payload(&[extent(g, 1)], PAGE_SIZE, 0, 0, Coverage::Full);
    barrier();
    let slot = ipc.send(1, &[extent(g, 1)], PAGE_SIZE as u32, 0, 0);
    let status = ipc.status_raw(slot);
    barrier();
    check!(
        "send-ok",
        status == IpcStatus::Ok as u32,
        "immediate send of {g:#x}: status {}",
        StatusName(status)
    );
    let (found, first) = find_word(bi.free_start, bi.mem_size, SECRET);
    check!(
        "sender-cannot-see-secret",
        found == 0,
        "scanned [{:#x}, {:#x}) for {SECRET:#x}: {found} words{}",
        bi.free_start,
        bi.mem_size,
        match first {
            Some(gpa) =>
                if gpa >= g && gpa < g + PAGE_SIZE {
                    " (first in g)"
                } else {
                    " (first elsewhere)"
                },
            None => "",
        }
    );
    match bi.params[MODE] {
        MODE_REMAP => match page_is_zero(g) {
            Ok(()) => pass_with(
                "sender-page-after-send",
                format_args!("remap: {g:#x} reads all zero"),
            ),
            Err((off, w)) => fail(
                "sender-page-after-send",
                format_args!("remap: {g:#x} + {off:#x} holds {w:#018x}, want a zeroed page"),
            ),
        },
        MODE_COPY => match verify_payload(&[extent(g, 1)], PAGE_SIZE, 0, 0, Coverage::Full) {
            Ok(()) => pass_with(
                "sender-page-after-send",
                format_args!("copy: {g:#x} still holds the pattern"),
            ),
            Err(m) => fail(
                "sender-page-after-send",
                format_args!(
                    "copy: byte {} of {g:#x} changed: {:#018x}, want {:#018x}",
                    m.offset, m.got, m.want
                ),
            ),
        },
        other => skip(
            "sender-page-after-send",
            format_args!("params[0] = {other}: neither 1 (remap) nor 2 (copy)"),
        ),
    }
    0
}
