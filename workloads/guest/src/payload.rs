//! Message payloads: every 8-byte word of a message holds [`pattern_word`] of the sending
//! VM's id, the message's sequence number and the word's index in the message.
//!
//! The word is a bijective mix (splitmix64's) of `seq << 32 | src << 24 | index`: for
//! sequence numbers below 2^32 and messages up to 128 MiB, no two words of any two messages
//! (or two places of one message) are equal, so a word of another message, of another place,
//! or of a zeroed page is detected, and the bytes look random, so a partial corruption is
//! detected with overwhelming probability. [`verify_payload`] compares every byte up to the
//! message length (the last word only up to the length).
//!
//! A message of `len` bytes spans [`pages_for`]`(len)` pages, 4096 bytes in each. Also here:
//! whole-page probes for the security checks ([`page_is_zero`], [`fill_page_with`],
//! [`find_word`]). Nothing here depends on a transport.

use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use pageflip_abi::PAGE_SIZE;

use crate::arena::{is_free_page, is_payload_page};

/// How much of a payload [`fill_payload`] writes and [`verify_payload`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every byte of the message.
    Full,
    /// The first word of every page and the last (partial) word of the message: for
    /// benchmarks where touching every byte would dominate the cost (the remaining bytes
    /// are whatever the pages held).
    Light,
}

/// Pages needed for a message of `len` bytes (at least 1).
pub const fn pages_for(len: u64) -> u64 {
    if len == 0 {
        1
    } else {
        len.div_ceil(PAGE_SIZE)
    }
}

/// The 8-byte word at word index `index` of message `seq` from VM `src`.
pub const fn pattern_word(src: u32, seq: u64, index: u64) -> u64 {
    let s = (seq << 32) | ((src as u64 & 0xff) << 24) | (index & 0xff_ffff);
    let mut z = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The first byte of a payload that does not match the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Byte offset in the message.
    pub offset: u64,
    /// The word that holds it, as read.
    pub got: u64,
    /// The word the pattern wants there.
    pub want: u64,
}

/// Calls `f(page_index, word_index_in_page, bytes_of_this_word)` for every word of a
/// `len`-byte message spread over pages (each page holds 4096 bytes of it), as `coverage`
/// says; stops at the first `false`.
fn for_each_word(len: u64, coverage: Coverage, mut f: impl FnMut(u64, u64, u64) -> bool) {
    let words_per_page = PAGE_SIZE / 8;
    let total_words = len.div_ceil(8);
    if total_words == 0 {
        return;
    }
    let last = total_words - 1;
    let bytes_of = |w: u64| if w == last { len - w * 8 } else { 8 };
    match coverage {
        Coverage::Full => {
            for w in 0..total_words {
                if !f(w / words_per_page, w % words_per_page, bytes_of(w)) {
                    return;
                }
            }
        }
        Coverage::Light => {
            let mut w = 0;
            while w < total_words {
                if !f(w / words_per_page, 0, bytes_of(w)) {
                    return;
                }
                w += words_per_page;
            }
            if last % words_per_page != 0 {
                f(last / words_per_page, last % words_per_page, bytes_of(last));
            }
        }
    }
}

/// Writes the pattern of message `seq` from VM `src` into the first `len` bytes spread over
/// `pages` (4096 bytes per page), as `coverage` says (the last word is written whole).
///
/// Panics if `pages` is too short for `len` or a page is not a page of free memory or of the
/// shared region of a shmem run ([`crate::arena::is_payload_page`]).
pub fn fill_payload(pages: &[u64], len: u64, src: u32, seq: u64, coverage: Coverage) {
    check_pages(pages, len);
    for_each_word(len, coverage, |page, word, _| {
        let gpa = pages[page as usize] + word * 8;
        let value = pattern_word(src, seq, page * (PAGE_SIZE / 8) + word);
        // SAFETY: `gpa` is 8-byte aligned and inside a page of free memory or of the shared
        // region (checked): no Rust object, stack or image lies there.
        unsafe { ptr::write_volatile(gpa as *mut u64, value) };
        true
    });
    compiler_fence(Ordering::SeqCst);
}

/// Checks the first `len` bytes spread over `pages` against the pattern of message `seq`
/// from VM `src`, as `coverage` says: `Err` with the first differing byte.
///
/// Panics if `pages` is too short for `len` or a page is not a page of free memory or of the
/// shared region (check pages that come from elsewhere with [`crate::arena::is_payload_page`]
/// first).
pub fn verify_payload(
    pages: &[u64],
    len: u64,
    src: u32,
    seq: u64,
    coverage: Coverage,
) -> Result<(), Mismatch> {
    check_pages(pages, len);
    compiler_fence(Ordering::SeqCst);
    let mut result = Ok(());
    let words_per_page = PAGE_SIZE / 8;
    let check = |page: u64, word: u64, bytes: u64| {
        let gpa = pages[page as usize] + word * 8;
        let index = page * words_per_page + word;
        // SAFETY: `gpa` is 8-byte aligned and inside a page of free memory or of the shared
        // region (checked); a volatile read of a u64 is valid for any bytes.
        let got = unsafe { ptr::read_volatile(gpa as *const u64) };
        let want = pattern_word(src, seq, index);
        let mask = if bytes >= 8 {
            u64::MAX
        } else {
            (1u64 << (bytes * 8)) - 1
        };
        let diff = (got ^ want) & mask;
        if diff != 0 {
            result = Err(Mismatch {
                offset: index * 8 + u64::from(diff.trailing_zeros() / 8),
                got,
                want,
            });
            return false;
        }
        true
    };
    for_each_word(len, coverage, check);
    result
}

/// Panics unless `pages` holds at least the pages of a `len`-byte message, each a page of
/// free memory or of the shared region ([`is_payload_page`]).
fn check_pages(pages: &[u64], len: u64) {
    let needed = len.div_ceil(PAGE_SIZE) as usize;
    assert!(
        pages.len() >= needed,
        "a {len}-byte message needs {needed} pages, not {}",
        pages.len()
    );
    for &page in &pages[..needed] {
        assert!(
            is_payload_page(page),
            "{page:#x} is not a page of free memory or of the shared region"
        );
    }
}

/// Whether the page at `gpa` (a page of free memory) reads all zero; `Err` with the first
/// nonzero word's offset and value.
pub fn page_is_zero(gpa: u64) -> Result<(), (u64, u64)> {
    assert!(is_free_page(gpa), "{gpa:#x} is not a page of free memory");
    compiler_fence(Ordering::SeqCst);
    let mut off = 0;
    while off < PAGE_SIZE {
        // SAFETY: an aligned word of a page of free memory (checked).
        let w = unsafe { ptr::read_volatile((gpa + off) as *const u64) };
        if w != 0 {
            return Err((off, w));
        }
        off += 8;
    }
    Ok(())
}

/// Fills the page at `gpa` (a page of free memory) with the word `value`.
pub fn fill_page_with(gpa: u64, value: u64) {
    assert!(is_free_page(gpa), "{gpa:#x} is not a page of free memory");
    let mut off = 0;
    while off < PAGE_SIZE {
        // SAFETY: an aligned word of a page of free memory (checked).
        unsafe { ptr::write_volatile((gpa + off) as *mut u64, value) };
        off += 8;
    }
    compiler_fence(Ordering::SeqCst);
}

/// Scans the 8-byte words of `[start, end)` (inside free memory) for `value`: how many hold
/// it, and the GPA of the first.
pub fn find_word(start: u64, end: u64, value: u64) -> (u64, Option<u64>) {
    let bi = crate::boot_info();
    assert!(
        start % 8 == 0 && start >= bi.free_start && end <= bi.mem_size && start <= end,
        "[{start:#x}, {end:#x}) is not inside free memory"
    );
    compiler_fence(Ordering::SeqCst);
    let mut found = 0;
    let mut first = None;
    let mut gpa = start;
    while gpa + 8 <= end {
        // SAFETY: an aligned word of free memory (checked above).
        let w = unsafe { ptr::read_volatile(gpa as *const u64) };
        if w == value {
            if first.is_none() {
                first = Some(gpa);
            }
            found += 1;
        }
        gpa += 8;
    }
    (found, first)
}
