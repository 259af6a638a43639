//! Checks of received messages, over any transport: [`StreamReceiver`] checks every message
//! of one or more streams and records the named checks; [`Tally`] is one such check,
//! [`Verdict`] what the receiver made of a message and [`Landing`] whether the transport put
//! it where it must. [`SendStats`] is what a sender did, the numbers behind its
//! `all-delivered` record.

use core::fmt::{self, Write};

use pageflip_abi::ipc::Extent;

use crate::payload::extent;

use crate::results::check;
use crate::text::SliceWriter;

mod receiver;

pub use receiver::StreamReceiver;

/// What a sender did (remap/copy: [`crate::ipc::StreamSender`]; other transports fill
/// in what they count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Messages started ([`crate::ipc::StreamSender::send`] calls that placed one).
    pub started: u64,
    /// Messages delivered (status Ok).
    pub delivered: u64,
    /// Sends of a message after it was refused with QueueFull.
    pub retries: u64,
    /// Descriptors refused with QueueFull.
    pub queue_full: u64,
    /// Messages refused with another status (lost for good).
    pub failed: u64,
    /// Messages delivered while an earlier message of the stream was still refused: the VMM
    /// delivered them out of order.
    pub reordered: u64,
    /// The first message refused for good: (sequence number, raw status).
    pub first_failure: Option<(u64, u32)>,
    /// Whether the sender gave up waiting (no message delivered for the idle timeout).
    pub timed_out: bool,
}

/// Whether a received message is where its transport must put it (remap/copy: the areas this
/// VM posted, see [`crate::ipc::Ipc::last_landing`]; virtio and shmem: the buffer or slot it
/// was received in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landing {
    /// Every extent of the message is where it must be (remap/copy: the first pages of the
    /// next area this VM posted, in posting order).
    pub ok: bool,
    /// The first extent that differs: its index in the entry (0 if `ok`).
    pub index: u32,
    /// Where it must be (remap/copy: the area this VM posted; zero if `ok`).
    pub posted: Extent,
    /// Where it is (zero if `ok`).
    pub got: Extent,
}

impl Landing {
    /// Everything where it must be.
    pub const OK: Landing = Landing {
        ok: true,
        index: 0,
        posted: extent(0, 0),
        got: extent(0, 0),
    };
}

/// What [`StreamReceiver::handle`] made of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new message from a legitimate sender with a sequence number in range (its payload
    /// and order may still have failed a check).
    Accepted {
        /// The source VM.
        src: u32,
        /// Its sequence number.
        seq: u64,
    },
    /// Not counted: an unknown source, a sequence number out of range, or a duplicate.
    Rejected,
}

/// One named check over many messages: how many failed, and what the first failure was.
#[derive(Clone, Copy)]
pub struct Tally {
    failures: u64,
    first: [u8; 160],
    first_len: usize,
}

impl Tally {
    /// No failures yet.
    pub const fn new() -> Tally {
        Tally {
            failures: 0,
            first: [0; 160],
            first_len: 0,
        }
    }

    /// Counts a failure; the first one's description is kept.
    pub fn fail(&mut self, what: fmt::Arguments<'_>) {
        if self.failures == 0 {
            let mut w = SliceWriter::new(&mut self.first);
            let _ = w.write_fmt(what);
            self.first_len = w.len();
        }
        self.failures += 1;
    }

    /// Failures so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The first failure's description.
    pub fn first(&self) -> &str {
        core::str::from_utf8(&self.first[..self.first_len]).unwrap_or("")
    }

    /// Records `name`: PASS with `pass` if nothing failed, else FAIL with the count and the
    /// first failure. Returns whether it passed.
    pub fn record(&self, name: &str, pass: fmt::Arguments<'_>) -> bool {
        if self.failures == 0 {
            check(name, true, pass)
        } else {
            check(
                name,
                false,
                format_args!("{} failures; first: {}", self.failures, self.first()),
            )
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}
