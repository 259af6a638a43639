//! `panic`: panics on purpose, to check that the runtime reports it (console line, FAIL
//! record `panic`, exit code [`pageflip_guest::abi::EXIT_PANIC`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::println;

pageflip_guest::entry!(main);

fn main() -> u64 {
    println!("about to panic");
    panic!("deliberate panic {}", 42);
}
