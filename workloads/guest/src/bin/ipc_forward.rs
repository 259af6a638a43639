//! `ipc_forward` (3 VMs): VM0 sends a message to VM1, VM1 forwards the pages it received
//! (its landing extents unchanged, same length and sequence number) to VM2, which must find
//! VM0's payload with source VM1 ([`pageflip_guest::abi::probes::ipc_forward`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::ipc::{total_pages, Extent, IpcStatus, RecvEntry, MAX_MSG_PAGES};
use pageflip_guest::abi::probes::ipc_forward::{DEFAULT_SIZE, MODE, SIZE};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::probes::ipc_security::{MODE_COPY, MODE_REMAP};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::{is_free_range, zero_pages, Arena};
use pageflip_guest::ipc::init_ipc;
use pageflip_guest::ipc::{BufferLayout, Ipc, StatusName};
use pageflip_guest::payload::page_is_zero;
use pageflip_guest::payload::{fill_payload, verify_payload, Coverage, Extents};
use pageflip_guest::tsc::{spin_ticks, ticks_per_us, Deadline};
use pageflip_guest::{barrier, boot_info, check, fail, pass_with, skip};

pageflip_guest::entry!(main);

/// How long a VM waits without progress before it gives up.
const IDLE_MS: u64 = 3_000;

/// Landing areas VM1 and VM2 post (VM0 sends from the first area of the same layout).
const AREAS: u64 = 2;

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
    let max = u64::from(MAX_MSG_PAGES) * PAGE_SIZE;
    if size > max {
        fail(PARAMS, format_args!("size {size} is above {max}"));
        return 1;
    }
    let mode = bi.params[MODE];
    let Some(mut ipc) = init_ipc(1, 0) else {
        return 1;
    };
    // VM0's message buffer, or VM1's and VM2's landing areas (2 MiB-aligned from 2 MiB on).
    let layout = BufferLayout::new(size, AREAS);
    let npages = layout.pages;
    let mut arena = Arena::new();
    let Some(base) = arena.alloc_aligned(layout.total_pages(), layout.align) else {
        fail(
            MEMORY_SIZE,
            format_args!("no room for {} pages", layout.total_pages()),
        );
        return 1;
    };
    zero_pages(base, layout.total_pages());
    match bi.vm_id {
        0 => {
            let buffer = Extents::contiguous(base, npages);
            let pages = buffer.as_slice();
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
            ipc.post_from(&mut layout.pool(base));
            barrier();
            let Some(e) = receive(&mut ipc) else {
                fail("received-intact", "no message within 10 s");
                return 1;
            };
            let landed = e.landing();
            let ok = e.src == 0
                && e.dst == 1
                && u64::from(e.len) == size
                && total_pages(landed) == npages
                && in_memory(landed);
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
                "forwarding {} pages in {} extents from {:#x}: status {}",
                total_pages(landed),
                landed.len(),
                landed[0].gpa,
                StatusName(st)
            ) {
                page_after_send(mode, "forwarder-page-after-send", landed, size);
            }
        }
        _ => {
            ipc.post_from(&mut layout.pool(base));
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
                    && total_pages(e.landing()) == npages,
                "entry {} (want src 1, dst 2, seq 0, len {size}, {npages} pages)",
                Entry(&e)
            );
            let landed = e.landing();
            if u64::from(e.len) != size || total_pages(landed) < npages || !in_memory(landed) {
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
            "src {} dst {} seq {} len {} nextents {} extents {:x?}",
            e.src,
            e.dst,
            e.seq,
            e.len,
            e.nextents,
            e.landing()
        )
    }
}

/// Whether every extent lies in free memory.
fn in_memory(extents: &[Extent]) -> bool {
    extents
        .iter()
        .all(|x| is_free_range(x.gpa, u64::from(x.pages)))
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

/// Sends the message in `pages` to `dst` (immediate) until the status is not QueueFull or
/// the idle timeout passed; returns the last status.
fn send_until_ok(ipc: &mut Ipc, dst: u32, pages: &[Extent], len: u32) -> u32 {
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
fn page_after_send(mode: u64, name: &str, pages: &[Extent], size: u64) {
    match mode {
        MODE_REMAP => {
            let nonzero = pages
                .iter()
                .flat_map(|x| (0..u64::from(x.pages)).map(|i| x.gpa + i * PAGE_SIZE))
                .find_map(|p| page_is_zero(p).err().map(|e| (p, e)));
            match nonzero {
                None => pass_with(
                    name,
                    format_args!("remap: {} pages read all zero", total_pages(pages)),
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
