//! `spin`: prints a line, then spins forever at CPL3 without touching the device (for the
//! VMM's watchdog).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::println;

pageflip_guest::entry!(main);

fn main() -> u64 {
    println!("spinning forever");
    loop {
        core::hint::spin_loop();
    }
}
