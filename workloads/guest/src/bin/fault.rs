//! `fault`: makes the fault `params[0]` asks for ([`pageflip_guest::abi::probes::fault`]),
//! which must stop the VM; records `fault-survived` and exits 1 if it does not.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;

use pageflip_guest::abi::probes::fault::{
    INVALID_OPCODE, NULL_WRITE, UNOWNED_OFFSET, UNOWNED_READ,
};
use pageflip_guest::mmio::read_gpa;
use pageflip_guest::{boot_info, fail, pass, println};

pageflip_guest::entry!(main);

/// Address in the unmapped null page that `NULL_WRITE` writes.
const NULL_PAGE_ADDR: u64 = 0x8;

fn main() -> u64 {
    let bi = boot_info();
    let mode = bi.params[0];
    println!("about to fault: mode {mode}");
    pass("before-fault");
    match mode {
        NULL_WRITE => {
            // SAFETY: the null page is not mapped (abi layout): the store faults and, with no
            // IDT, the VM shuts down. It is asm, so the compiler sees no null dereference;
            // were the page mapped, the store would hit no Rust object (the image starts at
            // 0x200000).
            unsafe {
                asm!(
                    "mov qword ptr [{addr}], {value}",
                    addr = in(reg) NULL_PAGE_ADDR,
                    value = in(reg) 0x5a5a_u64,
                    options(nostack, preserves_flags),
                );
            }
            fail("fault-survived", "a write to the null page (0x8) returned")
        }
        INVALID_OPCODE => {
            // SAFETY: ud2 raises #UD, which with no IDT shuts the VM down; it touches no
            // memory or register.
            unsafe { asm!("ud2", options(nomem, nostack, preserves_flags)) };
            fail("fault-survived", "ud2 returned")
        }
        UNOWNED_READ => {
            let gpa = bi.mem_size + UNOWNED_OFFSET;
            // SAFETY: above guest memory and below the MMIO device nothing is Rust data; the
            // read is an MMIO exit no device owns, and the VMM stops the VM.
            let value = unsafe { read_gpa(gpa) };
            fail(
                "fault-survived",
                format_args!("a read of the unowned GPA {gpa:#x} returned {value:#x}"),
            )
        }
        other => fail(
            "fault-mode",
            format_args!("params[0] = {other} is no fault mode (0, 1 or 2)"),
        ),
    }
    1
}
