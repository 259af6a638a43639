//! This VM's free memory (`[free_start, mem_size)` of the boot info): which pages are free
//! or shared ([`is_free_page`], [`is_shared_page`], [`is_payload_page`]), the bump allocator
//! [`Arena`] that hands it out, [`PagePool`] for landing pages, and [`zero_pages`].
//!
//! Free memory holds no Rust object, no stack and not the image: the only memory the runtime
//! writes through raw addresses or hands to the VMM.

use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use pageflip_abi::shmem::{SHMEM_GPA, SHMEM_SIZE};
use pageflip_abi::{PAGE_SIZE, TRANSPORT_SHMEM};

/// Whether `gpa` is a whole page of this VM's free memory (`[free_start, mem_size)`), the only
/// memory the IPC helpers write or hand to the VMM.
pub fn is_free_page(gpa: u64) -> bool {
    let bi = crate::boot_info();
    gpa % PAGE_SIZE == 0
        && gpa >= bi.free_start
        && gpa
            .checked_add(PAGE_SIZE)
            .is_some_and(|end| end <= bi.mem_size)
}

/// Whether `gpa` is a whole page of the shared region of a shmem run
/// ([`pageflip_abi::shmem`]): memory the VMM maps into every VM, where the shmem transport's
/// payloads live (checked only when [`is_free_page`] says no).
pub fn is_shared_page(gpa: u64) -> bool {
    gpa % PAGE_SIZE == 0
        && gpa >= SHMEM_GPA
        && gpa - SHMEM_GPA < SHMEM_SIZE
        && crate::boot_info().transport == TRANSPORT_SHMEM
}

/// Whether `gpa` is a page a message payload may be in: a page of free memory
/// ([`is_free_page`]) or of the shared region ([`is_shared_page`]). Neither holds a Rust
/// object, the stack or the image.
#[inline]
pub fn is_payload_page(gpa: u64) -> bool {
    is_free_page(gpa) || is_shared_page(gpa)
}

/// Pages of free memory handed out one at a time (landing pages to post).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePool {
    next: u64,
    end: u64,
}

impl PagePool {
    /// The `npages` pages from `base` (page aligned).
    pub const fn new(base: u64, npages: u64) -> PagePool {
        PagePool {
            next: base,
            end: base + npages * PAGE_SIZE,
        }
    }

    /// The next page, if any is left.
    pub fn take(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let gpa = self.next;
        self.next += PAGE_SIZE;
        Some(gpa)
    }

    /// Pages left.
    pub fn left(&self) -> u64 {
        (self.end - self.next) / PAGE_SIZE
    }
}

/// A bump allocator over this VM's free memory (`[free_start, mem_size)`), in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arena {
    next: u64,
    end: u64,
}

impl Arena {
    /// All of this VM's free memory.
    pub fn new() -> Arena {
        let bi = crate::boot_info();
        Arena {
            next: bi.free_start.next_multiple_of(PAGE_SIZE),
            end: bi.mem_size & !(PAGE_SIZE - 1),
        }
    }

    /// `npages` contiguous pages, or `None` if they do not fit.
    pub fn alloc(&mut self, npages: u64) -> Option<u64> {
        let bytes = npages.checked_mul(PAGE_SIZE)?;
        let end = self.next.checked_add(bytes)?;
        if end > self.end {
            return None;
        }
        let gpa = self.next;
        self.next = end;
        Some(gpa)
    }

    /// Bytes left.
    pub fn left(&self) -> u64 {
        self.end - self.next
    }

    /// The GPA the next allocation starts at: what was allocated between two calls lies
    /// between their results.
    pub fn position(&self) -> u64 {
        self.next
    }
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}

/// Zeroes `npages` pages from `gpa` (which also makes them present before a measured phase).
/// Panics unless they are pages of free memory.
pub fn zero_pages(gpa: u64, npages: u64) {
    for i in 0..npages {
        let page = gpa + i * PAGE_SIZE;
        assert!(is_free_page(page), "{page:#x} is not a page of free memory");
        // SAFETY: a page of free memory (checked): no Rust object, stack or image lies there.
        unsafe { ptr::write_bytes(page as *mut u8, 0, PAGE_SIZE as usize) };
    }
    compiler_fence(Ordering::SeqCst);
}
