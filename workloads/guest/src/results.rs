//! Result records: named PASS/FAIL/SKIP checks, like kvm-unit-tests' report lines.
//!
//! Each record is built in guest memory (a [`ResultRecord`]), echoed to the console as
//! `PASS: name`, `FAIL: name: message` or `SKIP: name: message`, and handed to the VMM by
//! writing its address to [`pageflip_abi::mmio::RESULT`]. Names and messages longer than
//! the record's fields are cut (at a UTF-8 character boundary).

use core::fmt::{self, Write};

use pageflip_abi::mmio::RESULT;
use pageflip_abi::{RecordKind, ResultRecord};

use crate::console;
use crate::global::Global;
use crate::mmio::mmio_write;
use crate::text::{copy_truncated, SliceWriter};

/// How many records this guest has written, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// All records.
    pub total: u64,
    /// FAIL records.
    pub failed: u64,
    /// SKIP records.
    pub skipped: u64,
}

static TALLY: Global<Tally> = Global::new(Tally {
    total: 0,
    failed: 0,
    skipped: 0,
});

/// The records written so far.
pub fn tally() -> Tally {
    // SAFETY: TALLY is only accessed here and in `count`, by value, with no reference kept.
    unsafe { *TALLY.as_ptr() }
}

fn count(kind: RecordKind) {
    // SAFETY: as in `tally`; the reference lives for these three lines only.
    let t = unsafe { &mut *TALLY.as_ptr() };
    t.total += 1;
    match kind {
        RecordKind::Pass => {}
        RecordKind::Fail => t.failed += 1,
        RecordKind::Skip => t.skipped += 1,
    }
}

/// Name used for a record whose name is empty (the ABI refuses empty names).
const UNNAMED: &str = "(unnamed)";

/// Writes a record of `kind` named `name` with `message` (formatted into the record).
pub fn record(kind: RecordKind, name: &str, message: impl fmt::Display) {
    let mut rec = ResultRecord::zeroed();
    rec.kind = kind as u32;
    let name = if name.is_empty() { UNNAMED } else { name };
    let name_len = copy_truncated(&mut rec.name, name);
    let mut w = SliceWriter::new(&mut rec.message);
    let _ = write!(w, "{message}");
    let message_len = w.len();
    rec.name_len = name_len as u32;
    rec.message_len = message_len as u32;

    // The copies in the record are valid UTF-8: they were cut at character boundaries.
    let label = match kind {
        RecordKind::Pass => "PASS: ",
        RecordKind::Fail => "FAIL: ",
        RecordKind::Skip => "SKIP: ",
    };
    if console::pending() != 0 {
        console::write_str("\n");
    }
    console::write_str(label);
    console::write_bytes(&rec.name[..name_len]);
    if message_len != 0 {
        console::write_str(": ");
        console::write_bytes(&rec.message[..message_len]);
    }
    console::write_str("\n");

    count(kind);
    // Guest virtual address == guest physical address (identity map); the stack is guest
    // memory, and `mmio_write` orders the record's stores before the exit.
    mmio_write(RESULT, &rec as *const ResultRecord as u64);
}

/// Records that the check `name` passed.
pub fn pass(name: &str) {
    record(RecordKind::Pass, name, "");
}

/// Records that the check `name` passed, with a message (e.g. what was measured).
pub fn pass_with(name: &str, message: impl fmt::Display) {
    record(RecordKind::Pass, name, message);
}

/// Records that the check `name` failed; `message` says what was expected and what was seen.
pub fn fail(name: &str, message: impl fmt::Display) {
    record(RecordKind::Fail, name, message);
}

/// Records that the check `name` did not run, and why.
pub fn skip(name: &str, message: impl fmt::Display) {
    record(RecordKind::Skip, name, message);
}

/// Records `name` as passed if `ok`, else as failed, with `message` either way; returns `ok`.
pub fn check(name: &str, ok: bool, message: impl fmt::Display) -> bool {
    let kind = if ok {
        RecordKind::Pass
    } else {
        RecordKind::Fail
    };
    record(kind, name, message);
    ok
}

/// Records a check: `check!(name, cond)` or `check!(name, cond, "format", args...)`.
///
/// PASS if `cond` holds, else FAIL; the message (the formatted arguments, or the condition's
/// source text) is recorded either way. Evaluates to `cond`.
#[macro_export]
macro_rules! check {
    ($name:expr, $cond:expr $(,)?) => {
        $crate::results::check($name, $cond, ::core::stringify!($cond))
    };
    ($name:expr, $cond:expr, $($arg:tt)+) => {
        $crate::results::check($name, $cond, ::core::format_args!($($arg)+))
    };
}
