//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`: the compiler emits calls to them and
//! there is no libc. Copies and fills use `rep movsb`/`rep stosb`, comparisons volatile
//! loads, so that the compiler cannot turn them back into calls to themselves.

use core::arch::asm;
use core::ptr;

/// Copies `n` bytes from `src` to `dest`; the regions must not overlap. Returns `dest`.
///
/// # Safety
///
/// `src` must be valid for reads and `dest` for writes of `n` bytes, and they must not
/// overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; `rep movsb` with DF clear (the ABI keeps it
    // clear) copies exactly `n` bytes forwards.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the regions may overlap. Returns `dest`.
///
/// # Safety
///
/// `src` must be valid for reads and `dest` for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // `dest` is below `src`, or above its end: a forward copy reads each byte before
        // it is overwritten.
        // SAFETY: the caller guarantees both ranges, and a forward copy is correct for them.
        unsafe { memcpy(dest, src, n) };
    } else if n != 0 {
        // `dest` lies inside `(src, src + n)`: copy backwards, from the last byte.
        // SAFETY: the caller guarantees both ranges, so `dest + n - 1` and `src + n - 1` are
        // their last bytes; DF is set for the copy only and cleared again, as the ABI needs.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack),
            );
        }
    }
    dest
}

/// Fills `n` bytes at `dest` with the byte `c`. Returns `dest`.
///
/// # Safety
///
/// `dest` must be valid for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; `rep stosb` with DF clear writes exactly `n`
    // bytes forwards.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// Compares `n` bytes: 0 if equal, else the difference of the first differing bytes (as
/// unsigned).
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n`, and the caller guarantees `n` readable bytes at `a` and `b`.
        // Volatile loads keep the loop from being recognised as a call to memcmp/bcmp.
        let (x, y) = unsafe { (ptr::read_volatile(a.add(i)), ptr::read_volatile(b.add(i))) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// Compares `n` bytes: 0 if equal, else nonzero.
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's guarantee is `memcmp`'s.
    unsafe { memcmp(a, b, n) }
}
