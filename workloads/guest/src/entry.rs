//! The entry point `_start`, the [`entry!`](crate::entry!) macro and [`exit`].
//!
//! The VMM enters `_start` at CPL3 in long mode with RSP = [`pageflip_abi::STACK_TOP`].
//! `_start` zeroes the image's bss, calls the program's main function (named by
//! [`entry!`](crate::entry!)) and exits with its code.

use core::arch::global_asm;

use pageflip_abi::mmio::DONE;

use crate::console;
use crate::mmio::mmio_write;
use crate::results::tally;
use crate::samples::flush_samples;

// `__pageflip_bss_start`/`__pageflip_bss_end` come from guest.ld (8-byte aligned). The stack
// is 16-byte aligned before the call, as the SysV ABI wants.
global_asm!(
    ".pushsection .text._start,\"ax\",@progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    cld",
    "    lea rdi, [rip + __pageflip_bss_start]",
    "    lea rcx, [rip + __pageflip_bss_end]",
    "    sub rcx, rdi",
    "    xor eax, eax",
    "    rep stosb",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call {start}",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    start = sym rust_start,
);

extern "C" {
    /// The image's entry point (defined in assembly above); [`entry!`](crate::entry!)
    /// refers to it so that the linker always keeps it.
    pub fn _start() -> !;
}

extern "C" {
    /// The program's main function, defined by [`entry!`](crate::entry!).
    fn pageflip_guest_main() -> u64;
}

/// Called by `_start` once the bss is zero: runs main and exits.
unsafe extern "C" fn rust_start() -> ! {
    // SAFETY: `entry!` defines `pageflip_guest_main` with this signature; a program without
    // `entry!` fails to link.
    let code = unsafe { pageflip_guest_main() };
    let code = if code != 0 {
        code
    } else if tally().failed != 0 {
        1
    } else {
        0
    };
    exit(code)
}

/// Ends the guest with exit `code` (0 = success): flushes the samples, prints the summary
/// line `SUMMARY: N tests, F failed, S skipped`, flushes the console and writes `code` to
/// [`DONE`]. The vCPU is not entered again.
pub fn exit(code: u64) -> ! {
    flush_samples();
    let t = tally();
    if console::pending() != 0 {
        console::write_str("\n");
    }
    crate::println!(
        "SUMMARY: {} tests, {} failed, {} skipped",
        t.total,
        t.failed,
        t.skipped
    );
    console::flush();
    mmio_write(DONE, code);
    loop {
        core::hint::spin_loop();
    }
}

/// Names the program's main function, `fn main() -> u64`, which returns the exit code:
/// `pageflip_guest::entry!(main);`
///
/// The exit code written to [`DONE`] is main's value if nonzero, else 1 if the program wrote
/// a FAIL record, else 0.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by the runtime's `_start`.
        #[doc(hidden)]
        #[no_mangle]
        pub extern "C" fn pageflip_guest_main() -> u64 {
            let main: fn() -> u64 = $main;
            main()
        }

        /// Makes the linker keep the runtime's `_start` (it lives in a library).
        #[doc(hidden)]
        #[used]
        static PAGEFLIP_GUEST_START: unsafe extern "C" fn() -> ! = $crate::entry::_start;
    };
}
