//! `ipc_landing` (2 VMs): how messages land in the receiver's posted entries, and the status
//! of every posted entry the VMM skips ([`pageflip_guest::abi::probes::ipc_landing`]).
//!
//! VM0 sends (batch 1: every send is its own drain, its status final when the doorbell
//! returns); VM1 posts and checks. Each step is: VM1 posts, barrier, VM0 sends, barrier, VM1
//! checks (steps with a check in between add barrier pairs). Every barrier is taken whatever
//! a check found, so that a failed step does not desynchronise the VMs.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt;

use pageflip_guest::abi::ipc::{Extent, IpcStatus, HUGE_PAGE_SIZE, MAX_MSG_PAGES};
use pageflip_guest::abi::probes::ipc_landing::{
    self as spec, BAD_POSTS, GAPPED_EXTENTS, HUGE_LANDS, LANDING_QUEUE_FULL, LANDING_TOO_SMALL,
    MULTI_LANDING, NOT_HUGE_POST, NOT_HUGE_SEND, POST_BUSY, POST_REFUSED_COUNT, POST_STATUSES,
    REFUSED_COUNT, SENDER_PAGES, SENDER_RECORDS, S_POST_REFUSED, S_REFUSED, S_VMM_REFUSED, VARIANT,
    VARIANT_COPY,
};
use pageflip_guest::abi::probes::ipc_records::{MEMORY_SIZE, PARAMS};
use pageflip_guest::abi::{IMAGE_BASE, PAGE_SIZE, STACK_BOTTOM};
use pageflip_guest::arena::{is_free_range, Arena};
use pageflip_guest::ipc::{init_ipc, receive, Ipc, StatusName};
use pageflip_guest::params::RecvMode;
use pageflip_guest::payload::{
    extent, fill_payload, page_is_zero, verify_payload, Coverage, Extents, Mismatch,
};
use pageflip_guest::tsc::Deadline;
use pageflip_guest::{barrier, boot_info, fail, pass_with, sample, skip};

pageflip_guest::entry!(main);

/// How long VM1 waits for a message that VM0 has already sent.
const IDLE_MS: u64 = 3_000;

/// Step 1, VM0's extents as (first unit, units) from S: no two adjacent.
const GAPPED_SEND: [(u64, u64); 3] = [(0, 1), (2, 2), (6, 5)];
/// [`GAPPED_SEND`] on `remap-huge` (a message has at most 4 huge pages).
const GAPPED_SEND_HUGE: [(u64, u64); 3] = [(0, 1), (2, 1), (4, 2)];
/// Step 1, VM1's two entries, in units, posted back to back.
const GAPPED_POST: [u64; 2] = [3, 5];
/// [`GAPPED_POST`] on `remap-huge`.
const GAPPED_POST_HUGE: [u64; 2] = [1, 3];
/// Step 2, VM1's three entries, in pages (the message has [`MAX_MSG_PAGES`]).
const MULTI_POST: [u64; 3] = [1000, 1000, 100];
/// [`MULTI_POST`] on `remap-huge`: whole huge pages.
const MULTI_POST_HUGE: [u64; 3] = [512, 1024, 1024];
/// Step 5: one-page entries posted.
const SMALL_ENTRIES: u64 = 8;
/// Step 6 on `remap-huge`: entries of one unit posted.
const QUEUE_FULL_ENTRIES_HUGE: u64 = 3;
/// Step 7: pages of the entry that is 2 MiB-aligned but not whole huge pages.
const PARTIAL_HUGE_PAGES: u32 = 100;

/// Sequence numbers of the messages, by step.
const SEQ_GAPPED: u64 = 1;
const SEQ_MULTI: u64 = 2;
const SEQ_STATUSES: u64 = 3;
const SEQ_BUSY_FIRST: u64 = 4;
const SEQ_BUSY_SECOND: u64 = 5;
const SEQ_TOO_SMALL: u64 = 6;
const SEQ_SMALL_FITS: u64 = 7;
const SEQ_QUEUE_FULL: u64 = 8;
const SEQ_QUEUE_FITS: u64 = 9;
const SEQ_4K: u64 = 10;
const SEQ_HUGE: u64 = 11;

/// What the variant changes: the unit every extent is made of.
#[derive(Clone, Copy)]
struct Plan {
    variant: u64,
    huge: bool,
    /// Pages in a unit: 1, or 512 on `remap-huge`.
    u: u64,
}

impl Plan {
    fn new(variant: u64) -> Plan {
        let huge = spec::huge(variant);
        Plan {
            variant,
            huge,
            u: if huge { HUGE_PAGE_SIZE / PAGE_SIZE } else { 1 },
        }
    }

    /// Bytes in `units` units.
    fn bytes(&self, units: u64) -> u64 {
        units * self.u * PAGE_SIZE
    }

    /// Alignment of every region: 2 MiB on `remap-huge`.
    fn align(&self) -> u64 {
        self.bytes(1)
    }

    /// Whether record `name` is a SKIP on this variant.
    fn skips(&self, name: &str) -> bool {
        spec::skipped(self.variant, name)
    }

    fn gapped_send(&self) -> [(u64, u64); 3] {
        if self.huge {
            GAPPED_SEND_HUGE
        } else {
            GAPPED_SEND
        }
    }

    fn gapped_post(&self) -> [u64; 2] {
        if self.huge {
            GAPPED_POST_HUGE
        } else {
            GAPPED_POST
        }
    }

    fn multi_post(&self) -> [u64; 3] {
        if self.huge {
            MULTI_POST_HUGE
        } else {
            MULTI_POST
        }
    }

    /// Step 6: entries of one unit posted (those step 5 left, or fresh ones).
    fn queue_full_entries(&self) -> u64 {
        if self.huge {
            QUEUE_FULL_ENTRIES_HUGE
        } else {
            SMALL_ENTRIES - 1
        }
    }
}

/// Length of a message of `pages` pages: 100 bytes short of them (the last page is partial,
/// and copy needs every page too).
fn msg_len(pages: u64) -> u32 {
    (pages * PAGE_SIZE - 100) as u32
}

fn main() -> u64 {
    let bi = boot_info();
    let variant = bi.params[VARIANT];
    if bi.num_vms != 2 || !spec::valid(variant) {
        fail(
            PARAMS,
            format_args!(
                "ipc_landing needs 2 VMs and a variant 1..=4, not {} VMs and {variant}",
                bi.num_vms
            ),
        );
        return 1;
    }
    let Some(mut ipc) = init_ipc(1, 0) else {
        return 1;
    };
    let plan = Plan::new(variant);
    if bi.vm_id == 0 {
        sender(&mut ipc, plan)
    } else {
        receiver(&mut ipc, plan)
    }
}

/// Extents as `[gpa +pages]` items.
struct List<'a>(&'a [Extent]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}[{:#x} +{}]", e.gpa, e.pages)?;
        }
        Ok(())
    }
}

// ----- VM0 -----

/// VM0's sends of one step: whether each got the status it must.
struct Step {
    sends: u32,
    /// The first send with another status: (seq, status seen, status wanted).
    first_bad: Option<(u64, u32, IpcStatus)>,
}

/// VM0's side: the control structure and the count of refused descriptors it saw.
struct Sender<'a> {
    ipc: &'a mut Ipc,
    refused: u64,
}

impl Sender<'_> {
    /// Fills `extents` with the payload of `seq` (`len` bytes), sends it to VM1 at once, and
    /// checks its status against `want` in `step`.
    fn send(&mut self, step: &mut Step, extents: &[Extent], len: u32, seq: u64, want: IpcStatus) {
        fill_payload(extents, u64::from(len), 0, seq, Coverage::Full);
        let slot = self.ipc.send(1, extents, len, seq, 0);
        // Immediate: the VMM consumed it in the doorbell's exit (else: not consumed).
        let st = if self.ipc.consumed(slot) {
            self.ipc.status_raw(slot)
        } else {
            u32::MAX
        };
        if self.ipc.consumed(slot) && st != IpcStatus::Ok as u32 {
            self.refused += 1;
        }
        step.sends += 1;
        if st != want as u32 && step.first_bad.is_none() {
            step.first_bad = Some((seq, st, want));
        }
    }
}

impl Step {
    fn new() -> Step {
        Step {
            sends: 0,
            first_bad: None,
        }
    }

    /// Records `name`: PASS if every send had its status.
    fn record(&self, name: &str) {
        match self.first_bad {
            None => pass_with(
                name,
                format_args!("{} sends, each with its status", self.sends),
            ),
            Some((seq, u32::MAX, want)) => fail(
                name,
                format_args!(
                    "message {seq} was not consumed in its doorbell's exit, expected {}",
                    want.name()
                ),
            ),
            Some((seq, got, want)) => fail(
                name,
                format_args!(
                    "message {seq}: status {}, expected {}",
                    StatusName(got),
                    want.name()
                ),
            ),
        }
    }
}

/// Records SKIP `name`: the step does not apply to this variant.
fn skip_step(name: &str) {
    skip(
        name,
        "does not apply to this transport (see ipc_landing's module documentation)",
    );
}

/// VM0: the steps' messages.
fn sender(ipc: &mut Ipc, plan: Plan) -> u64 {
    let mut arena = Arena::new();
    let u = plan.u;
    let span = plan
        .gapped_send()
        .iter()
        .map(|&(at, n)| at + n)
        .max()
        .unwrap_or(0);
    let (Some(s), Some(m), Some(page)) = (
        arena.alloc_aligned(span * u, plan.align()),
        arena.alloc_aligned(u64::from(MAX_MSG_PAGES), plan.align()),
        arena.alloc(1),
    ) else {
        fail(MEMORY_SIZE, "no room for VM0's message buffers");
        return 1;
    };
    let mut tx = Sender { ipc, refused: 0 };
    let ok = IpcStatus::Ok;
    // `units` units from M, split as a sender splits.
    let from_m = |units: u64| Extents::contiguous(m, units * u);

    // 1: gapped extents (the first message: S's frames are still VM0's own, contiguous).
    barrier();
    let mut gapped = Extents::empty();
    for (at, n) in plan.gapped_send() {
        gapped.push(s + plan.bytes(at), (n * u) as u32);
    }
    let mut step = Step::new();
    let len = msg_len(gapped.pages());
    tx.send(&mut step, gapped.as_slice(), len, SEQ_GAPPED, ok);
    step.record(SENDER_RECORDS[0]);
    sender_pages(plan, gapped.as_slice(), len);
    barrier();

    // 2: an 8 MiB message in 4 extents of 512 pages.
    barrier();
    let mut step = Step::new();
    let msg = Extents::contiguous(m, u64::from(MAX_MSG_PAGES));
    tx.send(
        &mut step,
        msg.as_slice(),
        msg_len(msg.pages()),
        SEQ_MULTI,
        ok,
    );
    step.record(SENDER_RECORDS[1]);
    barrier();

    // 3: a 2-unit message past the bad entries.
    barrier();
    let mut step = Step::new();
    let msg = from_m(2);
    tx.send(&mut step, msg.as_slice(), msg_len(2 * u), SEQ_STATUSES, ok);
    step.record(SENDER_RECORDS[2]);
    barrier();

    // 4: one message VM1 leaves unconsumed, then a second one.
    let mut step = Step::new();
    let msg = from_m(1);
    barrier();
    tx.send(&mut step, msg.as_slice(), msg_len(u), SEQ_BUSY_FIRST, ok);
    barrier();
    barrier();
    tx.send(&mut step, msg.as_slice(), msg_len(u), SEQ_BUSY_SECOND, ok);
    barrier();
    step.record(SENDER_RECORDS[3]);

    // 5: 9 pages into 8 one-page entries, then 1 page.
    if plan.skips(LANDING_TOO_SMALL) {
        skip_step(SENDER_RECORDS[4]);
    } else {
        let mut step = Step::new();
        let big = Extents::contiguous(m, SMALL_ENTRIES + 1);
        barrier();
        tx.send(
            &mut step,
            big.as_slice(),
            msg_len(big.pages()),
            SEQ_TOO_SMALL,
            IpcStatus::LandingTooSmall,
        );
        barrier();
        barrier();
        let one = Extents::contiguous(m, 1);
        tx.send(&mut step, one.as_slice(), msg_len(1), SEQ_SMALL_FITS, ok);
        barrier();
        step.record(SENDER_RECORDS[4]);
    }

    // 6: one unit more than the posted entries hold, then exactly what they hold.
    let n = plan.queue_full_entries();
    let mut step = Step::new();
    barrier();
    let big = from_m(n + 1);
    tx.send(
        &mut step,
        big.as_slice(),
        msg_len((n + 1) * u),
        SEQ_QUEUE_FULL,
        IpcStatus::QueueFull,
    );
    barrier();
    barrier();
    let fits = from_m(n);
    tx.send(
        &mut step,
        fits.as_slice(),
        msg_len(n * u),
        SEQ_QUEUE_FITS,
        ok,
    );
    barrier();
    step.record(SENDER_RECORDS[5]);

    // 7: remap-huge only: a 4 KiB message is refused, a 2 MiB one lands.
    if plan.skips(NOT_HUGE_SEND) {
        skip_step(NOT_HUGE_SEND);
        skip_step(SENDER_RECORDS[7]);
    } else {
        barrier();
        let mut refused = Step::new();
        tx.send(
            &mut refused,
            &[extent(page, 1)],
            PAGE_SIZE as u32,
            SEQ_4K,
            IpcStatus::NotHuge,
        );
        let mut lands = Step::new();
        let msg = from_m(1);
        tx.send(&mut lands, msg.as_slice(), msg_len(u), SEQ_HUGE, ok);
        barrier();
        refused.record(NOT_HUGE_SEND);
        lands.record(SENDER_RECORDS[7]);
    }

    // 8: the VMM counted what VM0 saw.
    barrier();
    let vmm_refused = tx.ipc.header().refused;
    let seen = tx.refused;
    if vmm_refused == seen {
        pass_with(
            REFUSED_COUNT,
            format_args!("{seen} refused descriptors, as the VMM counts"),
        );
    } else {
        fail(
            REFUSED_COUNT,
            format_args!("the VMM counts {vmm_refused} refused descriptors, VM0 saw {seen}"),
        );
    }
    let mut samples = [0u64; 2];
    samples[S_REFUSED] = seen;
    samples[S_VMM_REFUSED] = vmm_refused;
    for v in samples {
        sample(v);
    }
    0
}

/// Records [`SENDER_PAGES`]: after the send of `len` bytes in `extents`, every page of them
/// reads zero on the remap variants (the frames moved; fresh zeroed ones replace them), and
/// still holds the payload with copy.
fn sender_pages(plan: Plan, extents: &[Extent], len: u32) {
    if plan.variant == VARIANT_COPY {
        let r = verify_payload(extents, u64::from(len), 0, SEQ_GAPPED, Coverage::Full);
        match r {
            Ok(()) => pass_with(SENDER_PAGES, "copy: the sent pages keep the payload"),
            Err(m) => fail(
                SENDER_PAGES,
                format_args!("copy: byte {} of the sent message changed", m.offset),
            ),
        }
        return;
    }
    for e in extents {
        for k in 0..u64::from(e.pages) {
            let gpa = e.gpa + k * PAGE_SIZE;
            if let Err((off, word)) = page_is_zero(gpa) {
                fail(
                    SENDER_PAGES,
                    format_args!(
                        "remap: the sent page {gpa:#x} still reads {word:#x} at offset {off}"
                    ),
                );
                return;
            }
        }
    }
    pass_with(SENDER_PAGES, "remap: every sent page reads zero");
}

// ----- VM1 -----

/// What a step of VM1 found wrong.
enum Problem {
    /// No message arrived in time.
    Missing(u64),
    /// A message arrived with other ids or length: seq, src, dst, len of the entry.
    Ids {
        want_seq: u64,
        got: (u64, u32, u32, u32),
    },
    /// A message landed elsewhere: the first landing extent that differs (a zero extent
    /// past the end of a list), and how many extents there are.
    Landing {
        seq: u64,
        index: usize,
        got: Extent,
        want: Extent,
        counts: (usize, usize),
    },
    /// A landing extent is not in VM1's free memory (its payload is not read).
    NotFree { seq: u64, at: Extent },
    /// A payload byte differs from VM0's pattern.
    Payload { seq: u64, mismatch: Mismatch },
    /// A posted entry has another status.
    Status {
        what: &'static str,
        got: u32,
        want: IpcStatus,
    },
    /// A counter or index has another value.
    Value {
        what: &'static str,
        got: u64,
        want: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(seq) => write!(f, "message {seq} did not arrive in {IDLE_MS} ms"),
            Problem::Ids { want_seq, got } => write!(
                f,
                "expected message {want_seq} from VM0 to VM1, got seq {} src {} dst {} len {}",
                got.0, got.1, got.2, got.3
            ),
            Problem::Landing {
                seq,
                index,
                got,
                want,
                counts,
            } => write!(
                f,
                "message {seq} landed in {} extents, expected {}; extent {index} is {}, \
                 expected {}",
                counts.0,
                counts.1,
                List(&[*got]),
                List(&[*want])
            ),
            Problem::NotFree { seq, at } => write!(
                f,
                "message {seq}: landing extent {} is not VM1's free memory",
                List(&[*at])
            ),
            Problem::Payload { seq, mismatch } => write!(
                f,
                "message {seq}: byte {} differs from the pattern (word {:#x}, expected {:#x})",
                mismatch.offset, mismatch.got, mismatch.want
            ),
            Problem::Status { what, got, want } => write!(
                f,
                "posted entry {what}: status {}, expected {}",
                StatusName(*got),
                want.name()
            ),
            Problem::Value { what, got, want } => write!(f, "{what} is {got}, expected {want}"),
        }
    }
}

/// Records `name`: PASS with `pass` if the step found nothing wrong.
fn report(name: &str, result: Result<(), Problem>, pass: fmt::Arguments<'_>) {
    match result {
        Ok(()) => pass_with(name, pass),
        Err(p) => fail(name, p),
    }
}

/// `Err` unless `got == want`.
fn value(what: &'static str, got: u64, want: u64) -> Result<(), Problem> {
    if got == want {
        Ok(())
    } else {
        Err(Problem::Value { what, got, want })
    }
}

/// VM1's side: the control structure and its expectations.
struct Receiver<'a> {
    ipc: &'a mut Ipc,
    /// Posted entries the VMM must have skipped so far.
    post_refused: u64,
}

impl Receiver<'_> {
    /// Posts `[gpa, pages]` as is; its post index.
    fn post(&mut self, gpa: u64, pages: u64) -> u32 {
        let index = self.ipc.post_head();
        let posted = self.ipc.post_raw(gpa, pages as u32);
        assert!(posted, "the post ring has room for the probe's few entries");
        index
    }

    /// Takes the next message and checks it is `seq` from VM0 (`len` bytes), landed exactly
    /// in `want`, every byte VM0's pattern.
    fn message(&mut self, seq: u64, len: u32, want: &[Extent]) -> Result<(), Problem> {
        let deadline = Deadline::after_ms(IDLE_MS);
        let e = receive(self.ipc, RecvMode::Poll, &deadline).ok_or(Problem::Missing(seq))?;
        if e.src != 0 || e.dst != 1 || e.seq != seq || e.len != len {
            return Err(Problem::Ids {
                want_seq: seq,
                got: (e.seq, e.src, e.dst, e.len),
            });
        }
        let got = e.landing();
        if got != want {
            let nth = |list: &[Extent], i: usize| list.get(i).copied().unwrap_or_default();
            let index = (0..got.len().max(want.len()))
                .find(|&i| nth(got, i) != nth(want, i))
                .unwrap_or(0);
            return Err(Problem::Landing {
                seq,
                index,
                got: nth(got, index),
                want: nth(want, index),
                counts: (got.len(), want.len()),
            });
        }
        if let Some(at) = want
            .iter()
            .find(|x| !is_free_range(x.gpa, u64::from(x.pages)))
        {
            return Err(Problem::NotFree { seq, at: *at });
        }
        verify_payload(want, u64::from(len), 0, seq, Coverage::Full)
            .map_err(|mismatch| Problem::Payload { seq, mismatch })
    }

    /// `Err` unless posted entry `index` has status `want`.
    fn status(&self, what: &'static str, index: u32, want: IpcStatus) -> Result<(), Problem> {
        let got = self.ipc.post_status(index);
        if got == want as u32 {
            Ok(())
        } else {
            Err(Problem::Status { what, got, want })
        }
    }

    /// `Err` unless the VMM skipped `more` entries since the last call (header
    /// `post_refused`), and every posted entry is taken when `all_taken`.
    fn skipped(&mut self, more: u64, all_taken: bool) -> Result<(), Problem> {
        self.post_refused += more;
        value(
            "the header's post_refused",
            self.ipc.header().post_refused,
            self.post_refused,
        )?;
        if all_taken {
            value(
                "post_tail",
                u64::from(self.ipc.post_tail()),
                u64::from(self.ipc.post_head()),
            )?;
        }
        Ok(())
    }

    /// `Err` unless nothing was consumed: `post_tail` is `tail`, entries `indices` are
    /// pending, no message is queued.
    fn untouched(&self, tail: u32, indices: &[u32]) -> Result<(), Problem> {
        value(
            "post_tail",
            u64::from(self.ipc.post_tail()),
            u64::from(tail),
        )?;
        for &i in indices {
            self.status("left pending", i, IpcStatus::Pending)?;
        }
        value("queued messages", u64::from(self.ipc.recv_queued()), 0)?;
        value(
            "the header's post_refused",
            self.ipc.header().post_refused,
            self.post_refused,
        )
    }
}

/// VM1: posts, checks, records.
fn receiver(ipc: &mut Ipc, plan: Plan) -> u64 {
    let bi = boot_info();
    let u = plan.u;
    let mut arena = Arena::new();
    let mut region = |units: u64| arena.alloc_aligned(units * u, plan.align());
    let gapped_units: u64 = plan.gapped_post().iter().sum();
    let multi_pages: u64 = plan.multi_post().iter().sum();
    let (Some(l), Some(ml), Some(a), Some(b), Some(t), Some(huge_area)) = (
        region(gapped_units),
        arena_pages(&mut region, multi_pages, u),
        region(3),
        region(2),
        region(if plan.huge {
            QUEUE_FULL_ENTRIES_HUGE
        } else {
            2 * SMALL_ENTRIES
        }),
        region(if plan.huge { 4 } else { 0 }),
    ) else {
        fail(MEMORY_SIZE, "no room for VM1's landing areas");
        return 1;
    };
    let mut rx = Receiver {
        ipc,
        post_refused: 0,
    };
    let ok = IpcStatus::Ok;

    // 1: two entries back to back; the message's pieces are GPA-adjacent here only.
    let [first, second] = plan.gapped_post();
    let i0 = rx.post(l, first * u);
    let i1 = rx.post(l + plan.bytes(first), second * u);
    barrier();
    barrier();
    let want = [
        extent(l, (first * u) as u32),
        extent(l + plan.bytes(first), (second * u) as u32),
    ];
    let pages = (first + second) * u;
    let r = rx
        .message(SEQ_GAPPED, msg_len(pages), &want)
        .and_then(|()| rx.status("first of two", i0, ok))
        .and_then(|()| rx.status("second of two", i1, ok))
        .and_then(|()| rx.skipped(0, true));
    report(
        GAPPED_EXTENTS,
        r,
        format_args!(
            "3 gapped extents of VM0 landed in {}, {pages} pages intact",
            List(&want)
        ),
    );

    // 2: 2048 pages across three entries, the last used in part.
    let mut want = Extents::empty();
    let mut indices = [0u32; 3];
    let (mut at, mut left) = (ml, u64::from(MAX_MSG_PAGES));
    for (slot, size) in indices.iter_mut().zip(plan.multi_post()) {
        *slot = rx.post(at, size);
        let used = left.min(size);
        want.push(at, used as u32);
        left -= used;
        at += size * PAGE_SIZE;
    }
    barrier();
    barrier();
    let mut r = rx.message(
        SEQ_MULTI,
        msg_len(u64::from(MAX_MSG_PAGES)),
        want.as_slice(),
    );
    for &i in &indices {
        r = r.and_then(|()| rx.status("of the multi-entry landing", i, ok));
    }
    let r = r.and_then(|()| rx.skipped(0, true));
    report(
        MULTI_LANDING,
        r,
        format_args!(
            "{MAX_MSG_PAGES} pages landed in {}, intact; the partly used entry is retired",
            List(want.as_slice())
        ),
    );

    // 3: the bad entries, a good one, one overlapping it, another good one.
    let bad = [
        (a, 0),
        (a + 8, 1),
        (bi.mem_size - PAGE_SIZE, 2),
        (IMAGE_BASE - PAGE_SIZE, 2),
        (STACK_BOTTOM, 0),
    ];
    let mut bad_index = [0u32; BAD_POSTS.len()];
    for (slot, (gpa, pages)) in bad_index.iter_mut().zip(bad) {
        *slot = rx.post(gpa, pages);
    }
    let g1 = rx.post(a, u);
    let overlap = rx.post(a, 2 * u);
    let g2 = rx.post(a + plan.bytes(2), u);
    barrier();
    barrier();
    let want = [extent(a, u as u32), extent(a + plan.bytes(2), u as u32)];
    let mut r = rx.message(SEQ_STATUSES, msg_len(2 * u), &want);
    for (&i, &(what, status)) in bad_index.iter().zip(BAD_POSTS.iter()) {
        r = r.and_then(|()| rx.status(what, i, status));
    }
    let r = r
        .and_then(|()| rx.status("[A, 1u] (good)", g1, ok))
        .and_then(|()| rx.status("[A, 2u] (overlaps [A, 1u])", overlap, IpcStatus::Overlap))
        .and_then(|()| rx.status("[A + 2u, 1u] (good)", g2, ok))
        .and_then(|()| rx.skipped(BAD_POSTS.len() as u64 + 1, true));
    report(
        POST_STATUSES,
        r,
        format_args!(
            "{} bad entries and an overlapping one skipped with their statuses; landed in {}",
            BAD_POSTS.len(),
            List(&want)
        ),
    );

    // 4: an entry over a message VM1 has not consumed is busy.
    let p1 = rx.post(b, u);
    barrier();
    barrier();
    // VM0's first message is queued (sent before the barrier): leave it there.
    let deadline = Deadline::after_ms(IDLE_MS);
    while rx.ipc.recv_queued() == 0 && !deadline.expired() {
        core::hint::spin_loop();
    }
    let queued = rx.ipc.recv_queued();
    let busy = rx.post(b, u);
    let p2 = rx.post(b + plan.bytes(1), u);
    barrier();
    barrier();
    let r = value(
        "messages queued before the busy entry",
        u64::from(queued),
        1,
    )
    .and_then(|()| rx.status("[B, 1u] (good)", p1, ok))
    .and_then(|()| rx.status("[B, 1u] again (busy)", busy, IpcStatus::Busy))
    .and_then(|()| rx.status("[B + 1u, 1u] (good)", p2, ok))
    .and_then(|()| rx.skipped(1, true))
    .and_then(|()| rx.message(SEQ_BUSY_FIRST, msg_len(u), &[extent(b, u as u32)]))
    .and_then(|()| {
        let second = b + plan.bytes(1);
        rx.message(SEQ_BUSY_SECOND, msg_len(u), &[extent(second, u as u32)])
    });
    report(
        POST_BUSY,
        r,
        format_args!(
            "the entry over the unconsumed message was busy, the next message landed after it"
        ),
    );

    // 5: 8 one-page entries cannot hold 9 pages, and nothing is consumed.
    let small_gpa = |k: u64| t + 2 * k * PAGE_SIZE;
    let mut small = [0u32; SMALL_ENTRIES as usize];
    if plan.skips(LANDING_TOO_SMALL) {
        skip_step(LANDING_TOO_SMALL);
    } else {
        let tail = rx.ipc.post_tail();
        for (k, slot) in small.iter_mut().enumerate() {
            *slot = rx.post(small_gpa(k as u64), 1);
        }
        barrier();
        barrier();
        let refused = rx.untouched(tail, &small);
        barrier();
        barrier();
        let r = refused
            .and_then(|()| rx.message(SEQ_SMALL_FITS, msg_len(1), &[extent(t, 1)]))
            .and_then(|()| rx.status("the first one-page entry", small[0], ok))
            .and_then(|()| rx.untouched(tail.wrapping_add(1), &small[1..]));
        report(
            LANDING_TOO_SMALL,
            r,
            format_args!(
                "9 pages into 8 one-page entries consumed nothing; 1 page then landed in the first"
            ),
        );
    }

    // 6: the post ring runs out before the message is placed: queue_full, nothing consumed.
    let n = plan.queue_full_entries() as usize;
    let mut entries = Extents::empty();
    let mut queue = [0u32; SMALL_ENTRIES as usize];
    if plan.huge {
        for (k, slot) in queue.iter_mut().take(n).enumerate() {
            let gpa = t + plan.bytes(k as u64);
            *slot = rx.post(gpa, u);
            entries.push(gpa, u as u32);
        }
    } else {
        // The 7 entries step 5 left.
        for (k, slot) in queue.iter_mut().take(n).enumerate() {
            *slot = small[k + 1];
            entries.push(small_gpa(k as u64 + 1), 1);
        }
    }
    let queue = &queue[..n];
    let tail = rx.ipc.post_tail();
    barrier();
    barrier();
    let refused = rx.untouched(tail, queue);
    barrier();
    barrier();
    let mut r = refused
        .and_then(|()| rx.message(SEQ_QUEUE_FITS, msg_len(n as u64 * u), entries.as_slice()));
    for &i in queue {
        r = r.and_then(|()| rx.status("of the queue-full step", i, ok));
    }
    let r = r.and_then(|()| rx.skipped(0, true));
    report(
        LANDING_QUEUE_FULL,
        r,
        format_args!(
            "{} units into {n} entries of 1 unit: queue_full, nothing consumed; {n} units then took them all",
            n + 1
        ),
    );

    // 7: remap-huge: entries that are not whole huge pages are skipped.
    if plan.skips(NOT_HUGE_POST) {
        skip_step(NOT_HUGE_POST);
        skip_step(HUGE_LANDS);
    } else {
        let x = huge_area;
        let y = huge_area + plan.bytes(2);
        let h = huge_area + plan.bytes(3);
        let unaligned = rx.post(x + PAGE_SIZE, u);
        let partial = rx.post(y, u64::from(PARTIAL_HUGE_PAGES));
        let good = rx.post(h, u);
        barrier();
        barrier();
        let r = rx
            .status("512 pages 4 KiB past 2 MiB", unaligned, IpcStatus::NotHuge)
            .and_then(|()| rx.status("100 pages at 2 MiB", partial, IpcStatus::NotHuge))
            .and_then(|()| rx.status("[H, 512] (good)", good, ok))
            .and_then(|()| rx.skipped(2, true));
        report(
            NOT_HUGE_POST,
            r,
            format_args!("entries that are not whole huge pages were skipped with not_huge"),
        );
        let r = rx.message(SEQ_HUGE, msg_len(u), &[extent(h, u as u32)]);
        report(
            HUGE_LANDS,
            r,
            format_args!("the 2 MiB message landed in the 2 MiB-aligned entry, intact"),
        );
    }

    // 8: the VMM's count of skipped entries, and nothing else arrived.
    barrier();
    let counted = rx.ipc.header().post_refused;
    let want = spec::expected_post_refused(plan.variant);
    let r = value("the header's post_refused", counted, want).and_then(|()| {
        value(
            "messages queued after the last step",
            u64::from(rx.ipc.recv_queued()),
            0,
        )
    });
    report(
        POST_REFUSED_COUNT,
        r,
        format_args!("the VMM skipped {counted} posted entries, as expected"),
    );
    let mut samples = [0u64; 1];
    samples[S_POST_REFUSED] = counted;
    for v in samples {
        sample(v);
    }
    0
}

/// `pages` pages (a whole number of units) from `region`.
fn arena_pages(region: &mut impl FnMut(u64) -> Option<u64>, pages: u64, u: u64) -> Option<u64> {
    region(pages.div_ceil(u))
}
