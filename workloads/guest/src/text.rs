//! Formatting into fixed-size byte buffers.

use core::fmt;

/// Copies `s` into `dst` as far as it fits, cut at a UTF-8 character boundary; returns the
/// number of bytes copied.
pub(crate) fn copy_truncated(dst: &mut [u8], s: &str) -> usize {
    let mut n = s.len().min(dst.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    n
}

/// A [`fmt::Write`] into a byte buffer that drops what does not fit (cut at a character
/// boundary, so the bytes written are always valid UTF-8).
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl<'a> SliceWriter<'a> {
    /// A writer that fills `buf` from its start.
    pub(crate) fn new(buf: &'a mut [u8]) -> SliceWriter<'a> {
        SliceWriter {
            buf,
            len: 0,
            full: false,
        }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Ok(());
        }
        let n = copy_truncated(&mut self.buf[self.len..], s);
        self.len += n;
        if n < s.len() {
            // Nothing after a cut character may follow it.
            self.full = true;
        }
        Ok(())
    }
}
