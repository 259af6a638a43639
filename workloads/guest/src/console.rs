//! The guest console: text buffered up to a newline (or a full buffer), then handed to the
//! VMM with one write of [`pageflip_abi::mmio::CONSOLE`] per flush.

use core::fmt;

use pageflip_abi::mmio::{console_arg, CONSOLE, CONSOLE_MAX};

use crate::global::Global;
use crate::mmio::mmio_write;

const CAPACITY: usize = CONSOLE_MAX as usize;

struct Buffer {
    bytes: [u8; CAPACITY],
    len: usize,
}

static BUFFER: Global<Buffer> = Global::new(Buffer {
    bytes: [0; CAPACITY],
    len: 0,
});

/// Appends `bytes` to the console buffer. The buffer is flushed after each newline and
/// whenever it is full, so no console write is longer than [`CONSOLE_MAX`].
pub fn write_bytes(bytes: &[u8]) {
    // SAFETY: the only references to BUFFER are taken here and in `flush`/`pending`, each
    // for the length of the call; none of them calls code that could reach BUFFER again
    // (`flush_buffer` only writes a device register).
    let buf = unsafe { &mut *BUFFER.as_ptr() };
    for &b in bytes {
        buf.bytes[buf.len] = b;
        buf.len += 1;
        if b == b'\n' || buf.len == CAPACITY {
            flush_buffer(buf);
        }
    }
}

/// Appends `s` to the console buffer (see [`write_bytes`]).
pub fn write_str(s: &str) {
    write_bytes(s.as_bytes());
}

/// Hands the buffered text, if any, to the VMM.
pub fn flush() {
    // SAFETY: see `write_bytes`.
    let buf = unsafe { &mut *BUFFER.as_ptr() };
    flush_buffer(buf);
}

/// Number of bytes buffered and not yet flushed (0 at the start of a line).
pub fn pending() -> usize {
    // SAFETY: see `write_bytes`.
    unsafe { (*BUFFER.as_ptr()).len }
}

fn flush_buffer(buf: &mut Buffer) {
    if buf.len == 0 {
        return;
    }
    // Guest virtual address == guest physical address (identity map).
    let gpa = buf.bytes.as_ptr() as u64;
    mmio_write(CONSOLE, console_arg(gpa, buf.len as u64));
    buf.len = 0;
}

/// A [`fmt::Write`] to the console, for `write!(Console, ...)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str(s);
        Ok(())
    }
}

/// Formats `args` to the console. Used by [`print!`](crate::print).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _ = fmt::write(&mut Console, args);
}

/// Formats `args` and a newline to the console. Used by [`println!`](crate::println).
#[doc(hidden)]
pub fn _print_line(args: fmt::Arguments<'_>) {
    let _ = fmt::write(&mut Console, args);
    write_str("\n");
}

/// Prints to the guest console, like `std::print!` (flushed at the next newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the guest console, like `std::println!`.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::write_str("\n")
    };
    ($($arg:tt)*) => {
        $crate::console::_print_line(::core::format_args!($($arg)*))
    };
}
