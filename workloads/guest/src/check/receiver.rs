//! [`StreamReceiver`]: the checks of every message of one or more streams.

use core::fmt::Write;

use pageflip_abi::ipc::{total_pages, RecvEntry, MAX_EXTENTS};
use pageflip_abi::{MAX_VMS, PAGE_SIZE};

use super::{Landing, Tally, Verdict};
use crate::arena::{is_payload_range, zero_pages};
use crate::payload::{pages_for, verify_header, verify_payload, Coverage, Touch};
use crate::results::check;
use crate::text::Text;

/// Checks the messages of one or more streams: `count` messages of `len` bytes from each
/// VM in `senders`, to this VM, each with its pattern. Keeps, per check, the number of
/// failures and the first:
///
/// - `delivery-integrity`: length, the landing extents (1 to 8, holding the message's pages,
///   inside free memory or the shared region), and the payload as `touch` and `coverage` say
///   ([`verify_payload`], [`verify_header`]; [`Touch::None`]: not read);
/// - `fifo-per-sender`: each sender's sequence numbers arrive increasing;
/// - `gap-free`: each arrives as the previous one + 1, from 0;
/// - `no-duplicates`: no (source, sequence number) twice, nothing after the last one;
/// - `ids`: the source is a legitimate sender, the destination this VM;
/// - `landing-pages`: the message is where the transport must put it (remap/copy: its
///   extents are the first pages of the next areas this VM posted, in posting order; the
///   transport decides, see
///   [`StreamReceiver::handle_entry`]);
/// - `count`: every expected message arrived.
///
/// [`StreamReceiver::handle`] posts received pages again; other transports release their
/// messages themselves ([`crate::link::Link::deliver`]).
pub struct StreamReceiver {
    me: u32,
    senders: u32,
    count: u64,
    len: u32,
    coverage: Coverage,
    touch: Touch,
    seen_base: u64,
    next: [u64; MAX_VMS],
    last: [u64; MAX_VMS],
    got: [u64; MAX_VMS],
    received: u64,
    integrity: Tally,
    fifo: Tally,
    gap: Tally,
    dup: Tally,
    ids: Tally,
    landing: Tally,
    landing_pass: &'static str,
    landing_want: &'static str,
    /// The source whose pattern every payload must hold (`None`: the entry's source).
    pattern_src: Option<u32>,
}

/// No message seen yet (in `StreamReceiver::last`).
const NONE: u64 = u64::MAX;

impl StreamReceiver {
    /// Pages of free memory the receiver's seen-bitmap needs: one bit per (VM, sequence
    /// number).
    pub const fn bitmap_pages(count: u64) -> u64 {
        (MAX_VMS as u64 * count).div_ceil(8).div_ceil(PAGE_SIZE)
    }

    /// A receiver of `count` messages of `len` bytes from each VM whose bit is set in
    /// `senders`, their payloads read as `touch` says and checked as `coverage` says, with
    /// its bitmap at `bitmap_base` ([`StreamReceiver::bitmap_pages`] pages of free memory,
    /// zeroed here).
    pub fn new(
        senders: u32,
        count: u64,
        len: u32,
        coverage: Coverage,
        touch: Touch,
        bitmap_base: u64,
    ) -> StreamReceiver {
        zero_pages(bitmap_base, Self::bitmap_pages(count));
        StreamReceiver {
            me: crate::boot_info().vm_id,
            senders,
            count,
            len,
            coverage,
            touch,
            seen_base: bitmap_base,
            next: [0; MAX_VMS],
            last: [NONE; MAX_VMS],
            got: [0; MAX_VMS],
            received: 0,
            integrity: Tally::new(),
            fifo: Tally::new(),
            gap: Tally::new(),
            dup: Tally::new(),
            ids: Tally::new(),
            landing: Tally::new(),
            landing_pass: "every entry landed in the next posted areas",
            landing_want: "posted",
            pattern_src: None,
        }
    }

    /// Checks every payload against the pattern of VM `src` instead of the entry's source:
    /// in a chain the entry's source is the forwarder, the pattern the first sender's.
    pub fn set_pattern_src(&mut self, src: u32) {
        self.pattern_src = Some(src);
    }

    /// Reads the payloads as `touch` says from now on (a forwarder reads only the header).
    pub fn set_touch(&mut self, touch: Touch) {
        self.touch = touch;
    }

    /// The first check that failed so far, in the order [`StreamReceiver::record`] records
    /// them (`count` excluded): its name, failures and the first failure's description.
    pub fn first_failure(&self) -> Option<(&'static str, u64, &str)> {
        use crate::abi::probes::ipc_records as n;
        [
            (n::DELIVERY_INTEGRITY, &self.integrity),
            (n::FIFO_PER_SENDER, &self.fifo),
            (n::GAP_FREE, &self.gap),
            (n::NO_DUPLICATES, &self.dup),
            (n::IDS, &self.ids),
            (n::LANDING_PAGES, &self.landing),
        ]
        .into_iter()
        .find(|(_, t)| t.failures() != 0)
        .map(|(name, t)| (name, t.failures(), t.first()))
    }

    /// Describes the `landing-pages` check of another transport than remap/copy: `pass` is
    /// the PASS message, `want` names the expected GPA in a failure ("posted" by default).
    pub fn set_landing_text(&mut self, pass: &'static str, want: &'static str) {
        self.landing_pass = pass;
        self.landing_want = want;
    }

    /// Entries handled so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages accepted from VM `src`.
    pub fn accepted_from(&self, src: u32) -> u64 {
        self.got.get(src as usize).copied().unwrap_or(0)
    }

    /// Whether every expected message has been accepted.
    pub fn complete(&self) -> bool {
        (0..MAX_VMS as u32)
            .filter(|&id| self.senders & (1 << id) != 0)
            .all(|id| self.got[id as usize] >= self.count)
    }

    /// Flips the seen-bit of (`src`, `seq`); returns whether it was set before.
    fn seen(&mut self, src: u32, seq: u64) -> bool {
        let bit = u64::from(src) * self.count + seq;
        let p = (self.seen_base + bit / 8) as *mut u8;
        let mask = 1u8 << (bit % 8);
        // SAFETY: the bitmap lies in free memory set aside for it (bitmap_pages cover
        // MAX_VMS * count bits; src < MAX_VMS and seq < count were checked by the caller).
        unsafe {
            let old = core::ptr::read_volatile(p);
            core::ptr::write_volatile(p, old | mask);
            old & mask != 0
        }
    }

    /// Checks a message received over any transport, given as the entry it would be in the
    /// receive ring (its extents: where its payload is now, readable until the caller
    /// releases it), and `landing`: whether the transport found it where it must be, and if
    /// not the first extent that is elsewhere and where it should be.
    pub fn handle_entry(&mut self, e: &RecvEntry, landing: Landing) -> Verdict {
        self.received += 1;
        if !landing.ok {
            self.landing.fail(format_args!(
                "src {} seq {}: extent {} at {:#x} ({} pages), {} {:#x} ({} pages)",
                e.src,
                e.seq,
                landing.index,
                landing.got.gpa,
                landing.got.pages,
                self.landing_want,
                landing.posted.gpa,
                landing.posted.pages
            ));
        }
        self.check(e)
    }

    fn check(&mut self, e: &RecvEntry) -> Verdict {
        let (src, seq) = (e.src, e.seq);
        let legit = (src as usize) < MAX_VMS && self.senders & (1 << src) != 0;
        if !legit || e.dst != self.me {
            self.ids.fail(format_args!(
                "seq {seq}: src {src}, dst {} (want a sender in {:#x}, dst {})",
                e.dst, self.senders, self.me
            ));
        }
        // The entry, then the payload as `touch` says.
        let npages = pages_for(u64::from(self.len));
        let extents = e.landing();
        let got_pages = total_pages(extents);
        let in_memory = extents
            .iter()
            .all(|x| is_payload_range(x.gpa, u64::from(x.pages)));
        if e.len != self.len
            || e.nextents == 0
            || e.nextents as usize > MAX_EXTENTS
            || got_pages != npages
        {
            self.integrity.fail(format_args!(
                "src {src} seq {seq}: len {} in {} extents of {got_pages} pages (want {} in \
                 1 to {MAX_EXTENTS} extents of {npages} pages)",
                e.len, e.nextents, self.len
            ));
        } else if !in_memory {
            self.integrity.fail(format_args!(
                "src {src} seq {seq}: an extent is outside free memory: {:#x?}",
                extents
            ));
        } else {
            let len = u64::from(e.len);
            let psrc = self.pattern_src.unwrap_or(src);
            let verified = match self.touch {
                Touch::All => verify_payload(extents, len, psrc, seq, self.coverage),
                Touch::Header => verify_header(extents, len, psrc, seq, self.coverage),
                Touch::None => Ok(()),
            };
            if let Err(m) = verified {
                self.integrity.fail(format_args!(
                    "src {src} seq {seq}: byte {} differs: word {:#018x}, want {:#018x}",
                    m.offset, m.got, m.want
                ));
            }
        }
        if !legit {
            return Verdict::Rejected;
        }
        let s = src as usize;
        if seq >= self.count {
            if self.got[s] >= self.count {
                self.dup.fail(format_args!(
                    "src {src}: seq {seq} after all {} messages",
                    self.count
                ));
            } else {
                self.gap.fail(format_args!(
                    "src {src}: seq {seq} out of range (0..{})",
                    self.count
                ));
            }
            return Verdict::Rejected;
        }
        if self.seen(src, seq) {
            self.dup.fail(format_args!("src {src}: seq {seq} twice"));
            return Verdict::Rejected;
        }
        if self.last[s] != NONE && seq < self.last[s] {
            self.fifo.fail(format_args!(
                "src {src}: seq {seq} after seq {}",
                self.last[s]
            ));
        }
        if seq != self.next[s] {
            self.gap.fail(format_args!(
                "src {src}: seq {seq} where {} was due",
                self.next[s]
            ));
        }
        if self.last[s] == NONE || seq > self.last[s] {
            self.last[s] = seq;
        }
        self.next[s] = seq + 1;
        self.got[s] += 1;
        Verdict::Accepted { src, seq }
    }

    /// Records the checks (see the type's documentation).
    pub fn record(&self) -> bool {
        let nsenders = self.senders.count_ones();
        let expected = self.count * u64::from(nsenders);
        let total: u64 = self.got.iter().sum();
        let mut ok = true;
        ok &= self.integrity.record(
            crate::abi::probes::ipc_records::DELIVERY_INTEGRITY,
            format_args!(
                "{} messages of {} bytes, {}{}",
                self.received,
                self.len,
                match (self.touch, self.coverage) {
                    (Touch::None, _) => "entries only (payload not read)",
                    (_, Coverage::Full) => "every byte checked",
                    (_, Coverage::Light) => "first word of each page and the last word checked",
                },
                match self.touch {
                    Touch::Header => " in the first 64 bytes",
                    _ => "",
                }
            ),
        );
        ok &= self.fifo.record(
            crate::abi::probes::ipc_records::FIFO_PER_SENDER,
            format_args!("{nsenders} senders"),
        );
        ok &= self.gap.record(
            crate::abi::probes::ipc_records::GAP_FREE,
            format_args!("{nsenders} senders, seq 0..{} each", self.count),
        );
        ok &= self.dup.record(
            crate::abi::probes::ipc_records::NO_DUPLICATES,
            format_args!("{} entries, none twice, none after the end", self.received),
        );
        ok &= self.ids.record(
            crate::abi::probes::ipc_records::IDS,
            format_args!("senders {:#x}, dst {}", self.senders, self.me),
        );
        ok &= self.landing.record(
            crate::abi::probes::ipc_records::LANDING_PAGES,
            format_args!("{}", self.landing_pass),
        );
        let mut missing = Text::new();
        for id in 0..MAX_VMS {
            if self.senders & (1 << id) != 0 && self.got[id] != self.count {
                let _ = write!(missing, " VM{id}: {}/{}", self.got[id], self.count);
            }
        }
        ok &= check(
            crate::abi::probes::ipc_records::COUNT,
            total == expected && missing.as_str().is_empty(),
            format_args!(
                "{total} of {expected} messages ({} per sender){}",
                self.count, missing
            ),
        );
        ok
    }
}
