//! This VM's free memory (`[free_start, mem_size)` of the boot info): which pages are free
//! or shared ([`is_free_page`], [`is_shared_page`], [`is_payload_page`], and the same for runs
//! of pages: [`is_free_range`], [`is_payload_range`]), the bump allocator [`Arena`] that hands
//! it out, [`PagePool`] for landing areas, and [`zero_pages`].
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
    is_free_range(gpa, 1)
}

/// Whether the `pages` pages from `gpa` are whole pages of this VM's free memory (see
/// [`is_free_page`]; `false` for 0 pages).
pub fn is_free_range(gpa: u64, pages: u64) -> bool {
    let bi = crate::boot_info();
    pages != 0
        && gpa % PAGE_SIZE == 0
        && gpa >= bi.free_start
        && pages
            .checked_mul(PAGE_SIZE)
            .and_then(|bytes| gpa.checked_add(bytes))
            .is_some_and(|end| end <= bi.mem_size)
}

/// Whether the `pages` pages from `gpa` are whole pages of the shared region of a shmem run
/// (see [`is_shared_page`]; `false` for 0 pages).
pub fn is_shared_range(gpa: u64, pages: u64) -> bool {
    pages != 0
        && gpa % PAGE_SIZE == 0
        && gpa >= SHMEM_GPA
        && pages
            .checked_mul(PAGE_SIZE)
            .and_then(|bytes| (gpa - SHMEM_GPA).checked_add(bytes))
            .is_some_and(|end| end <= SHMEM_SIZE)
        && crate::boot_info().transport == TRANSPORT_SHMEM
}

/// Whether the `pages` pages from `gpa` may hold a message payload: all of free memory
/// ([`is_free_range`]) or all of the shared region ([`is_shared_range`]).
#[inline]
pub fn is_payload_range(gpa: u64, pages: u64) -> bool {
    is_free_range(gpa, pages) || is_shared_range(gpa, pages)
}

/// Whether `gpa` is a whole page of the shared region of a shmem run
/// ([`pageflip_abi::shmem`]): memory the VMM maps into every VM, where the shmem transport's
/// payloads live (checked only when [`is_free_page`] says no).
pub fn is_shared_page(gpa: u64) -> bool {
    is_shared_range(gpa, 1)
}

/// Whether `gpa` is a page a message payload may be in: a page of free memory
/// ([`is_free_page`]) or of the shared region ([`is_shared_page`]). Neither holds a Rust
/// object, the stack or the image.
#[inline]
pub fn is_payload_page(gpa: u64) -> bool {
    is_free_page(gpa) || is_shared_page(gpa)
}

/// Landing areas of free memory handed out one at a time: `count` areas of `pages` pages
/// each, `stride` bytes apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePool {
    next: u64,
    end: u64,
    pages: u32,
    stride: u64,
}

impl PagePool {
    /// The `npages` pages from `base` (page aligned), as one-page areas.
    pub const fn new(base: u64, npages: u64) -> PagePool {
        PagePool::areas(base, npages, 1, PAGE_SIZE)
    }

    /// `count` areas of `pages` pages from `base`, `stride` bytes apart (at least
    /// `pages * 4096`).
    pub const fn areas(base: u64, count: u64, pages: u32, stride: u64) -> PagePool {
        PagePool {
            next: base,
            end: base + count * stride,
            pages,
            stride,
        }
    }

    /// The first GPA of the next area, if any is left.
    pub fn take(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let gpa = self.next;
        self.next += self.stride;
        Some(gpa)
    }

    /// Pages in each area.
    pub fn area_pages(&self) -> u32 {
        self.pages
    }

    /// Areas left.
    pub fn left(&self) -> u64 {
        (self.end - self.next) / self.stride
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
        self.alloc_aligned(npages, PAGE_SIZE)
    }

    /// `npages` contiguous pages starting at a multiple of `align` (a power of two, at least
    /// a page), or `None` if they do not fit. The pages skipped to reach the alignment are
    /// not handed out.
    pub fn alloc_aligned(&mut self, npages: u64, align: u64) -> Option<u64> {
        debug_assert!(align.is_power_of_two() && align >= PAGE_SIZE);
        let start = self.next.checked_next_multiple_of(align)?;
        let bytes = npages.checked_mul(PAGE_SIZE)?;
        let end = start.checked_add(bytes)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
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
