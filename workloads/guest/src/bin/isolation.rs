//! `isolation`: no VM may see another VM's memory ([`pageflip_guest::abi::probes::isolation`]).
//!
//! Fills `FILL_BYTES` of free memory with this VM's secret, waits for every VM to do the
//! same, then scans all of its free memory for any peer's secret and checks that its own
//! fill is intact. With `params[0]` = `PROBE_BEYOND` it finally reads beyond its memory,
//! which must stop the VM. Only free memory is scanned: the stack and the image may hold
//! computed secrets.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::isolation::{secret, FILL_BYTES, PROBE_BEYOND};
use pageflip_guest::abi::MAX_VMS;
use pageflip_guest::mmio::{read_gpa, write_gpa};
use pageflip_guest::{barrier, boot_info, fail, pass_with, println};

pageflip_guest::entry!(main);

/// Offset above `mem_size` that the `PROBE_BEYOND` read targets.
const BEYOND_OFFSET: u64 = 0x1000;

/// The secrets have this in their top 16 bits; a cheap first test per word.
const SECRET_TAG: u64 = secret(0) >> 48;

const _: () = {
    let mut id = 0;
    while id < MAX_VMS as u32 {
        assert!(secret(id) >> 48 == SECRET_TAG);
        id += 1;
    }
};

fn main() -> u64 {
    let bi = boot_info();
    let own = secret(bi.vm_id);
    let start = bi.free_start;
    let end = bi.mem_size;
    let fill_end = start + FILL_BYTES;
    if start % 8 != 0 || fill_end > end {
        fail(
            "memory-size",
            format_args!(
                "free memory [{start:#x}, {end:#x}) cannot hold the {FILL_BYTES:#x}-byte fill"
            ),
        );
        return 1;
    }
    let num_peers = (bi.num_peers as usize).min(MAX_VMS);
    let mut peers = [0u64; MAX_VMS];
    for (p, &id) in peers.iter_mut().zip(&bi.peer_ids[..num_peers]) {
        *p = secret(id);
    }
    let peers = &peers[..num_peers];
    println!(
        "VM {}: filling [{start:#x}, {fill_end:#x}) with {own:#x}; peers: {num_peers}",
        bi.vm_id
    );

    let mut gpa = start;
    while gpa < fill_end {
        // SAFETY: [free_start, mem_size) is free memory: no Rust object, stack or image.
        unsafe { write_gpa(gpa, own) };
        gpa += 8;
    }

    barrier();

    // Scan all free memory for any peer's secret.
    let mut found = 0u64;
    let mut first = (0u64, 0u64);
    let mut gpa = start;
    while gpa < end {
        // SAFETY: free memory, see above; reads change nothing.
        let w = unsafe { read_gpa(gpa) };
        if w >> 48 == SECRET_TAG && peers.contains(&w) {
            if found == 0 {
                first = (gpa, w);
            }
            found += 1;
        }
        gpa += 8;
    }
    if found == 0 {
        pass_with(
            "no-peer-secret",
            format_args!("scanned [{start:#x}, {end:#x}) for peer secrets; peers: {num_peers}"),
        );
    } else {
        fail(
            "no-peer-secret",
            format_args!(
                "{found} words hold a peer's secret; the first at {:#x}: {:#x}",
                first.0, first.1
            ),
        );
    }

    // Check that the fill still holds only this VM's secret.
    let mut wrong = 0u64;
    let mut first = (0u64, 0u64);
    let mut gpa = start;
    while gpa < fill_end {
        // SAFETY: free memory, see above.
        let w = unsafe { read_gpa(gpa) };
        if w != own {
            if wrong == 0 {
                first = (gpa, w);
            }
            wrong += 1;
        }
        gpa += 8;
    }
    let words = FILL_BYTES / 8;
    if wrong == 0 {
        pass_with(
            "own-memory-intact",
            format_args!("all {words} words of [{start:#x}, {fill_end:#x}) hold {own:#x}"),
        );
    } else {
        fail(
            "own-memory-intact",
            format_args!(
                "{wrong} of {words} words changed; the first at {:#x}: {:#x} (want {own:#x})",
                first.0, first.1
            ),
        );
    }

    barrier();

    if bi.params[0] == PROBE_BEYOND {
        let gpa = end + BEYOND_OFFSET;
        println!("reading beyond memory at {gpa:#x}");
        // SAFETY: above guest memory and below the MMIO device there is no Rust data; the
        // read is an MMIO exit no device owns, and the VMM stops the VM.
        let value = unsafe { read_gpa(gpa) };
        fail(
            "beyond-memory-read",
            format_args!("a read of {gpa:#x}, beyond memory, returned {value:#x}"),
        );
        return 1;
    }
    0
}
