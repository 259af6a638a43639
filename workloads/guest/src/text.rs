//! Formatting into fixed-size byte buffers: [`Text`] for record messages.

use core::fmt::{self, Write};

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

/// A short text built in place (for record messages).
pub struct Text {
    buf: [u8; 200],
    len: usize,
}

impl Text {
    /// An empty text.
    pub const fn new() -> Text {
        Text {
            buf: [0; 200],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever appended (SliceWriter cuts at boundaries).
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut w = SliceWriter::new(&mut self.buf[self.len..]);
        let _ = w.write_str(s);
        self.len += w.len();
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
