//! Prefaulting before a measured phase: [`prefault`] touches the image, the transports'
//! control structure and the stack, so that the phase takes no page faults for them.

use core::ptr;

use pageflip_abi::ipc::{IPC_END_GPA, IPC_HEADER_GPA};
use pageflip_abi::{IMAGE_BASE, PAGE_SIZE};

/// Touches every page of the guest image (`[IMAGE_BASE, free_start)`) and of the control
/// structure with a read, and `stack_bytes` of stack below the caller with writes, so that a
/// measured phase that follows takes no page faults for them.
#[inline(never)]
pub fn prefault(stack_bytes: usize) {
    let bi = crate::boot_info();
    let mut gpa = IMAGE_BASE;
    while gpa < bi.free_start {
        // SAFETY: the image is loaded at [IMAGE_BASE, free_start) and mapped at CPL3; a read
        // changes nothing.
        unsafe { ptr::read_volatile(gpa as *const u8) };
        gpa += PAGE_SIZE;
    }
    let mut gpa = IPC_HEADER_GPA;
    while gpa < IPC_END_GPA {
        // SAFETY: the control structure is guest memory mapped at CPL3; a read changes
        // nothing.
        unsafe { ptr::read_volatile(gpa as *const u8) };
        gpa += PAGE_SIZE;
    }
    touch_stack(stack_bytes);
}

/// Writes to `bytes` of stack below the caller (a local array, rounded to pages).
#[inline(never)]
fn touch_stack(bytes: usize) {
    const CHUNK: usize = 16 * 1024;
    let mut left = bytes;
    let mut buf = [0u8; CHUNK];
    let mut i = 0;
    while i < CHUNK {
        // SAFETY: `i < CHUNK`: inside the local array.
        unsafe { ptr::write_volatile(buf.as_mut_ptr().add(i), 1) };
        i += PAGE_SIZE as usize;
    }
    left = left.saturating_sub(CHUNK);
    if left > 0 {
        touch_stack(left);
    }
    // Keeps the array (and the recursion) from being optimised away.
    core::hint::black_box(&buf);
}
