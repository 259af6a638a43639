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

/// TSC frequency assumed when the boot info reports none (`tsc_khz` = 0): 2 GHz.
pub const FALLBACK_TSC_KHZ: u64 = 2_000_000;

/// TSC ticks per millisecond: the boot info's `tsc_khz`, or [`FALLBACK_TSC_KHZ`] if the VMM
/// reported 0.
pub fn ticks_per_ms() -> u64 {
    match crate::boot_info().tsc_khz {
        0 => FALLBACK_TSC_KHZ,
        khz => khz,
    }
}

/// TSC ticks per microsecond (at least 1).
pub fn ticks_per_us() -> u64 {
    (ticks_per_ms() / 1000).max(1)
}

/// Spins (without exits: `pause` and TSC reads only) for `ticks` TSC ticks.
pub fn spin_ticks(ticks: u64) {
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// A point in time, in TSC ticks, after which something is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    end: u64,
}

impl Deadline {
    /// The deadline `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Deadline {
        Deadline {
            end: rdtsc().saturating_add(ms.saturating_mul(ticks_per_ms())),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        rdtsc() >= self.end
    }
}
