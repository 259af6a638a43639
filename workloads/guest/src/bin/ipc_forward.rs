//! `ipc_forward` (3 VMs): VM0 sends a message to VM1, VM1 forwards the pages it received
//! (same GPAs, same length and sequence number) to VM2, which must find VM0's payload with
//! source VM1 ([`pageflip_guest::abi::probes::ipc_forward`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{IpcStatus, RecvEntry, MAX_MSG_PAGES, POST_RING_LEN};
use pageflip_guest::abi::probes::ipc_forward::{DEFAULT_SIZE, MODE, SIZE};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::probes::ipc_security::{MODE_COPY, MODE_REMAP};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::{is_free_page, zero_pages, Arena, PagePool};
use pageflip_guest::ipc::init_ipc;
use pageflip_guest::ipc::{Ipc, StatusName};
use pageflip_guest::payload::page_is_zero;
use pageflip_guest::payload::{fill_payload, pages_for, verify_payload, Coverage};
use pageflip_guest::tsc::{spin_ticks, ticks_per_us, Deadline};
use pageflip_guest::{barrier, boot_info, check, fail, pass_with, skip};

pageflip_guest::entry!(main);

/// How long a VM waits without progress before it gives up.
const IDLE_MS: u64 = 3_000;

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 3 {
        fail(
            PARAMS,
            format_args!("ipc_forward needs 3 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    let size = match bi.params[SIZE] {
        0 => DEFAULT_SIZE,
        n => n,
    };
    if size > MAX_MSG_PAGES as u64 * PAGE_SIZE {
        fail(PARAMS, format_args!("size {size} is above 65536"));
        return 1;
    }
    let mode = bi.params[MODE];
    let Some(mut ipc) = init_ipc(1, 0) else {
        return 1;
    };
    let npages = pages_for(size);
    let mut arena = Arena::new();
    let pool_pages = u64::from(POST_RING_LEN);
    let Some(base) = arena.alloc(pool_pages) else {
        fail(MEMORY_SIZE, "no room for 256 pages");
        return 1;
    };
    zero_pages(base, pool_pages);
    let mut pages = [0u64; MAX_MSG_PAGES];
    for (i, p) in pages[..npages as usize].iter_mut().enumerate() {
        *p = base + i as u64 * PAGE_SIZE;
    }
    let pages = &pages[..npages as usize];
    match bi.vm_id {
        0 => {
            fill_payload(pages, size, 0, 0, Coverage::Full);
            barrier();
            let st = send_until_ok(&mut ipc, 1, pages, size as u32);
            if check!(
                "send-ok",
                st == IpcStatus::Ok as u32,
                "status {}",
                StatusName(st)
            ) {
                page_after_send(mode, "sender-page-after-send", pages, size);
            }
        }
        1 => {
            ipc.post_from(&mut PagePool::new(base, pool_pages));
            barrier();
            let Some(e) = receive(&mut ipc) else {
                fail("received-intact", "no message within 10 s");
                return 1;
            };
            let landed = &e.pages[..(e.npages as usize).min(MAX_MSG_PAGES)];
            let ok = e.src == 0
                && e.dst == 1
                && u64::from(e.len) == size
                && u64::from(e.npages) == npages
                && landed.iter().all(|&p| is_free_page(p));
            if !ok {
                fail("received-intact", format_args!("entry {}", Entry(&e)));
                return 1;
            }
            let intact = verify_payload(landed, size, 0, e.seq, Coverage::Full);
            check!(
                "received-intact",
                intact.is_ok(),
                "{}: {intact:?}",
                Entry(&e)
            );
            let st = send_until_ok(&mut ipc, 2, landed, e.len);
            if check!(
                "forward-ok",
                st == IpcStatus::Ok as u32,
                "forwarding {} pages from {:#x}: status {}",
                landed.len(),
                landed[0],
                StatusName(st)
            ) {
                page_after_send(mode, "forwarder-page-after-send", landed, size);
            }
        }
        _ => {
            ipc.post_from(&mut PagePool::new(base, pool_pages));
            barrier();
            let Some(e) = receive(&mut ipc) else {
                fail("forward-ids", "no message within 10 s");
                return 1;
            };
            check!(
                "forward-ids",
                e.src == 1
                    && e.dst == 2
                    && e.seq == 0
                    && u64::from(e.len) == size
                    && u64::from(e.npages) == npages,
                "entry {} (want src 1, dst 2, seq 0, len {size}, {npages} pages)",
                Entry(&e)
            );
            let landed = &e.pages[..(e.npages as usize).min(MAX_MSG_PAGES)];
            if u64::from(e.len) != size || !landed.iter().all(|&p| is_free_page(p)) {
                fail("forwarded-intact", format_args!("entry {}", Entry(&e)));
            } else {
                let intact = verify_payload(landed, size, 0, 0, Coverage::Full);
                check!(
                    "forwarded-intact",
                    intact.is_ok(),
                    "VM0's pattern (src 0, seq 0) in {size} bytes: {intact:?}"
                );
            }
        }
    }
    0
}

/// An entry, briefly.
struct Entry<'a>(&'a RecvEntry);

impl core::fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let e = self.0;
        write!(
            f,
            "src {} dst {} seq {} len {} npages {} first page {:#x}",
            e.src, e.dst, e.seq, e.len, e.npages, e.pages[0]
        )
    }
}

/// The next entry (polling), or `None` after the idle timeout.
fn receive(ipc: &mut Ipc) -> Option<RecvEntry> {
    let deadline = Deadline::after_ms(IDLE_MS);
    loop {
        if let Some(e) = ipc.recv_poll() {
            return Some(e);
        }
        if deadline.expired() {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// Sends `pages` to `dst` (immediate) until the status is not QueueFull or the idle
/// timeout passed; returns the last status.
fn send_until_ok(ipc: &mut Ipc, dst: u32, pages: &[u64], len: u32) -> u32 {
    let deadline = Deadline::after_ms(IDLE_MS);
    let mut backoff_us = 1;
    loop {
        let slot = ipc.send(dst, pages, len, 0, 0);
        let st = ipc.status_raw(slot);
        if st != IpcStatus::QueueFull as u32 || deadline.expired() {
            return st;
        }
        spin_ticks(backoff_us * ticks_per_us());
        backoff_us = (backoff_us * 2).min(1000);
    }
}

/// Records `name`: with remap the sent pages read zero, with copy they are unchanged.
fn page_after_send(mode: u64, name: &str, pages: &[u64], size: u64) {
    match mode {
        MODE_REMAP => {
            let nonzero = pages
                .iter()
                .find_map(|&p| page_is_zero(p).err().map(|e| (p, e)));
            match nonzero {
                None => pass_with(
                    name,
                    format_args!("remap: {} pages read all zero", pages.len()),
                ),
                Some((p, (off, w))) => fail(
                    name,
                    format_args!("remap: {p:#x} + {off:#x} holds {w:#018x}, want zero"),
                ),
            }
        }
        MODE_COPY => {
            let r = verify_payload(pages, size, 0, 0, Coverage::Full);
            check!(
                name,
                r.is_ok(),
                "copy: the pages still hold VM0's payload: {r:?}"
            );
        }
        other => skip(
            name,
            format_args!("params[0] = {other}: neither 1 (remap) nor 2 (copy)"),
        ),
    }
}
