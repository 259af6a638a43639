//! The time-stamp counter.

use core::arch::asm;

/// Reads the TSC, ordered: `lfence` before (earlier instructions have completed) and after
/// (later instructions do not start before the read).
#[inline(always)]
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: lfence and rdtsc only read the TSC (CR4.TSD is clear, so rdtsc works at CPL3);
    // no memory is accessed.
    unsafe {
        asm!(
            "lfence",
            "rdtsc",
            "lfence",
            out("eax") lo,
            out("edx") hi,
            options(nomem, nostack, preserves_flags),
        );
    }
    (u64::from(hi) << 32) | u64::from(lo)
}
