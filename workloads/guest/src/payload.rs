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
//! A message of `len` bytes spans [`pages_for`]`(len)` pages, 4096 bytes in each, laid out
//! over a list of [`Extent`]s (runs of contiguous pages, taken one after another: byte `i` is
//! in page `i / 4096` of the list); [`Extents`] holds such a list by value (no allocation:
//! a message of 2048 pages is at most [`MAX_EXTENTS`] extents, and the guest's stack is only
//! 1 MiB, of which the runtime prefaults 64 KiB). [`Touch`] says how much of a received
//! payload a receiver reads. Also here: whole-page probes for the security checks
//! ([`page_is_zero`], [`fill_page_with`], [`find_word`]). Nothing here depends on a
//! transport.

use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use pageflip_abi::ipc::{total_pages, Extent, HUGE_PAGES, MAX_EXTENTS};
use pageflip_abi::PAGE_SIZE;

use crate::arena::{is_free_page, is_payload_range};

/// 8-byte words in a page.
const WORDS_PER_PAGE: u64 = PAGE_SIZE / 8;

/// Bytes a receiver reads with [`Touch::Header`]: one cache line.
pub const HEADER_BYTES: u64 = 64;

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

/// How much of a received payload the receiver reads
/// ([`pageflip_abi::probes::ipc_workloads::TOUCH`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// All of it, checked as the [`Coverage`] says.
    All,
    /// Only the first [`HEADER_BYTES`] (one cache line), checked as the [`Coverage`] says
    /// ([`verify_header`]).
    Header,
    /// None: only the entry (length, extents, ids) is checked.
    None,
}

/// The extent of `pages` pages from `gpa`.
pub const fn extent(gpa: u64, pages: u32) -> Extent {
    Extent {
        gpa,
        pages,
        reserved: 0,
    }
}

/// Up to [`MAX_EXTENTS`] extents by value: where a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extents {
    list: [Extent; MAX_EXTENTS],
    len: usize,
}

impl Extents {
    /// No extents.
    pub const fn empty() -> Extents {
        Extents {
            list: [extent(0, 0); MAX_EXTENTS],
            len: 0,
        }
    }

    /// The `pages` contiguous pages from `gpa` as a sender places them: runs of at most
    /// [`HUGE_PAGES`] pages (2 MiB), so that 8 MiB is 4 extents. Panics if that is more than
    /// [`MAX_EXTENTS`] extents (more than 16 MiB).
    pub fn contiguous(gpa: u64, pages: u64) -> Extents {
        let mut e = Extents::empty();
        let mut done = 0;
        while done < pages {
            let run = (pages - done).min(u64::from(HUGE_PAGES));
            e.push(gpa + done * PAGE_SIZE, run as u32);
            done += run;
        }
        e
    }

    /// A copy of the first [`MAX_EXTENTS`] extents of `list`.
    pub fn from_slice(list: &[Extent]) -> Extents {
        let mut e = Extents::empty();
        for x in list.iter().take(MAX_EXTENTS) {
            e.push(x.gpa, x.pages);
        }
        e
    }

    /// Appends the extent of `pages` pages from `gpa`. Panics if there are
    /// [`MAX_EXTENTS`] already.
    pub fn push(&mut self, gpa: u64, pages: u32) {
        assert!(
            self.len < MAX_EXTENTS,
            "a message has at most {MAX_EXTENTS} extents"
        );
        self.list[self.len] = extent(gpa, pages);
        self.len += 1;
    }

    /// The extents.
    pub fn as_slice(&self) -> &[Extent] {
        &self.list[..self.len]
    }

    /// All [`MAX_EXTENTS`] slots (those past [`Extents::as_slice`] are zero), for a
    /// descriptor.
    pub fn slots(&self) -> [Extent; MAX_EXTENTS] {
        self.list
    }

    /// Pages in all extents.
    pub fn pages(&self) -> u64 {
        total_pages(self.as_slice())
    }
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

/// Calls `f(gpa, word_index, bytes_of_this_word)` for every word of the first `upto` bytes of
/// a `len`-byte message laid out over `extents` (whole pages), as `coverage` says (Light: the
/// first word of each page, and the message's last word if it lies below `upto`); stops at
/// the first `false`.
fn for_each_word(
    extents: &[Extent],
    len: u64,
    upto: u64,
    coverage: Coverage,
    mut f: impl FnMut(u64, u64, u64) -> bool,
) {
    let total_words = len.div_ceil(8);
    if total_words == 0 {
        return;
    }
    let last = total_words - 1;
    let end = upto.min(len).div_ceil(8);
    let bytes_of = |w: u64| if w == last { len - w * 8 } else { 8 };
    // First word index of the current extent (a multiple of WORDS_PER_PAGE).
    let mut base = 0;
    for e in extents {
        if base >= end {
            return;
        }
        let stop = (base + u64::from(e.pages) * WORDS_PER_PAGE).min(end);
        let at = |w: u64| e.gpa + (w - base) * 8;
        match coverage {
            Coverage::Full => {
                for w in base..stop {
                    if !f(at(w), w, bytes_of(w)) {
                        return;
                    }
                }
            }
            Coverage::Light => {
                for w in (base..stop).step_by(WORDS_PER_PAGE as usize) {
                    if !f(at(w), w, bytes_of(w)) {
                        return;
                    }
                }
                if (base..stop).contains(&last) && last % WORDS_PER_PAGE != 0 {
                    f(at(last), last, bytes_of(last));
                    return;
                }
            }
        }
        base += u64::from(e.pages) * WORDS_PER_PAGE;
    }
}

/// Writes the pattern of message `seq` from VM `src` into the first `len` bytes laid out
/// over `extents`, as `coverage` says (the last word is written whole).
///
/// Panics if `extents` are too short for `len` or one of those holding the message is not
/// in free memory or the shared region of a shmem run ([`crate::arena::is_payload_range`]).
pub fn fill_payload(extents: &[Extent], len: u64, src: u32, seq: u64, coverage: Coverage) {
    check_extents(extents, len);
    for_each_word(extents, len, len, coverage, |gpa, index, _| {
        // SAFETY: `gpa` is 8-byte aligned and inside an extent of free memory or of the
        // shared region (checked): no Rust object, stack or image lies there.
        unsafe { ptr::write_volatile(gpa as *mut u64, pattern_word(src, seq, index)) };
        true
    });
    compiler_fence(Ordering::SeqCst);
}

/// Checks the first `len` bytes laid out over `extents` against the pattern of message `seq`
/// from VM `src`, as `coverage` says: `Err` with the first differing byte.
///
/// Panics if `extents` are too short for `len` or one is not in free memory or the shared
/// region (check extents that come from elsewhere with [`crate::arena::is_payload_range`]
/// first).
pub fn verify_payload(
    extents: &[Extent],
    len: u64,
    src: u32,
    seq: u64,
    coverage: Coverage,
) -> Result<(), Mismatch> {
    verify_upto(extents, len, len, src, seq, coverage)
}

/// [`verify_payload`] of only the first [`HEADER_BYTES`] of the message ([`Touch::Header`]):
/// the rest of the payload is not read.
pub fn verify_header(
    extents: &[Extent],
    len: u64,
    src: u32,
    seq: u64,
    coverage: Coverage,
) -> Result<(), Mismatch> {
    verify_upto(extents, len, HEADER_BYTES, src, seq, coverage)
}

/// [`verify_payload`] of the words below byte `upto`.
fn verify_upto(
    extents: &[Extent],
    len: u64,
    upto: u64,
    src: u32,
    seq: u64,
    coverage: Coverage,
) -> Result<(), Mismatch> {
    check_extents(extents, len);
    compiler_fence(Ordering::SeqCst);
    let mut result = Ok(());
    for_each_word(extents, len, upto, coverage, |gpa, index, bytes| {
        // SAFETY: `gpa` is 8-byte aligned and inside an extent of free memory or of the
        // shared region (checked); a volatile read of a u64 is valid for any bytes.
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
    });
    result
}

/// Panics unless `extents` hold at least the pages of a `len`-byte message, each extent
/// that holds part of it in free memory or the shared region ([`is_payload_range`]).
fn check_extents(extents: &[Extent], len: u64) {
    let needed = len.div_ceil(PAGE_SIZE);
    assert!(
        total_pages(extents) >= needed,
        "a {len}-byte message needs {needed} pages, not {}",
        total_pages(extents)
    );
    let mut covered = 0;
    for e in extents {
        if covered >= needed {
            break;
        }
        assert!(
            is_payload_range(e.gpa, u64::from(e.pages)),
            "{:#x} + {} pages is not in free memory or in the shared region",
            e.gpa,
            e.pages
        );
        covered += u64::from(e.pages);
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
