//! `doorbell`: exactly K = `params[0]` doorbell writes inside the measured phase and nothing
//! else, so that the VMM's exit counts can be checked against K. Sample 0: the TSC ticks of
//! the phase (K + 2 exit round trips), the floor that benchmarks compare with.
//!
//! The measured phase runs in `pageflip_doorbell_burst`, a routine of at most 64 bytes that
//! starts on a 64-byte boundary, so it lies on one code page. The warm-up runs the same
//! routine (without the phase writes): code page, stack page and the MMIO mapping are all
//! touched before the phase begins. Between the PHASE_BEGIN and PHASE_END writes the guest
//! executes only that routine's loop: no console, no new pages, no other MMIO.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::global_asm;

use pageflip_guest::abi::mmio::{DOORBELL, PHASE, PHASE_BEGIN, PHASE_END};
use pageflip_guest::abi::probes::doorbell::WARMUP;
use pageflip_guest::abi::MMIO_BASE;
use pageflip_guest::{boot_info, pass_with, println, rdtsc, sample};

pageflip_guest::entry!(main);

// The routine writes these values as immediates.
const _: () = assert!(PHASE_BEGIN == 1 && PHASE_END == 2);

// pageflip_doorbell_burst(doorbell: rdi, phase: rsi, count: rdx) (SysV ABI):
// if phase != 0, writes PHASE_BEGIN to it; writes `count` values (count, ..., 1) to the
// doorbell register; if phase != 0, writes PHASE_END to it. Clobbers rdx and flags only.
global_asm!(
    ".pushsection .text.pageflip_doorbell_burst,\"ax\",@progbits",
    ".p2align 6",
    ".global pageflip_doorbell_burst",
    ".type pageflip_doorbell_burst, @function",
    "pageflip_doorbell_burst:",
    "    test rsi, rsi",
    "    jz 2f",
    "    mov qword ptr [rsi], 1",
    "2:  test rdx, rdx",
    "    jz 4f",
    "3:  mov qword ptr [rdi], rdx",
    "    dec rdx",
    "    jnz 3b",
    "4:  test rsi, rsi",
    "    jz 5f",
    "    mov qword ptr [rsi], 2",
    "5:  ret",
    ".size pageflip_doorbell_burst, . - pageflip_doorbell_burst",
    // Pads the routine to 64 bytes; fails to assemble if it is longer.
    ".org pageflip_doorbell_burst + 64, 0xcc",
    ".popsection",
);

extern "C" {
    /// See the assembly above.
    fn pageflip_doorbell_burst(doorbell: u64, phase: u64, count: u64);
}

fn main() -> u64 {
    let k = boot_info().params[0];
    let doorbell = MMIO_BASE + DOORBELL;
    let phase = MMIO_BASE + PHASE;
    // SAFETY: the routine only writes device registers (no memory of this program) and
    // follows the SysV ABI; `doorbell` is the DOORBELL register, 0 = no phase writes.
    unsafe { pageflip_doorbell_burst(doorbell, 0, WARMUP) };
    // The TSC is read outside the phase (rdtsc does not exit): the ticks cover the
    // PHASE_BEGIN write, the K doorbells and the PHASE_END write, K + 2 exit round trips.
    let t0 = rdtsc();
    // SAFETY: as above; `phase` is the PHASE register.
    unsafe { pageflip_doorbell_burst(doorbell, phase, k) };
    sample(rdtsc() - t0);
    pass_with("doorbells", format_args!("K={k}"));
    println!("rang the doorbell {WARMUP} + {k} times");
    0
}
