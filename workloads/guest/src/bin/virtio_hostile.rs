//! `virtio_hostile` (2 VMs): VM0 hands its datagram device one bad tx chain as `params[0]`
//! says and records the device's answer, then checks that the device still delivers a good
//! message, which VM1 receives intact and alone
//! ([`pageflip_guest::abi::probes::virtio_hostile`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt;
use core::ptr;

use pageflip_guest::abi::probes::virtio_hostile::*;
use pageflip_guest::abi::virtio::{
    DgramHeader, TxStatus, HEADER_SIZE, STATUS_DEVICE_NEEDS_RESET, VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};
use pageflip_guest::abi::PAGE_SIZE;
use pageflip_guest::arena::{zero_pages, Arena};
use pageflip_guest::payload::{extent, fill_payload, verify_payload, Coverage};
use pageflip_guest::tsc::{spin_ticks, ticks_per_us, Deadline};
use pageflip_guest::virtio::{
    store_desc, Desc, DgramDevice, Options, UsedElem, STATUS_NOT_WRITTEN,
};
use pageflip_guest::{barrier, boot_info, check, fail, pass_with, println};

pageflip_guest::entry!(main);

/// How long any single wait lasts at most.
const TIMEOUT_MS: u64 = 2_000;
/// Microseconds between two reads of the status register while VM0 waits for an answer.
const STATUS_POLL_US: u64 = 100;

/// The drivers' options: no EVENT_IDX, so that every chain VM0 publishes is notified (the
/// used ring's NO_NOTIFY flag aside): the probe is about the answers, not suppression.
const OPTS: Options = Options {
    event_idx: false,
    depth: DEPTH,
};

fn main() -> u64 {
    let bi = boot_info();
    if bi.num_vms != 2 {
        fail(
            PARAMS,
            format_args!("virtio_hostile needs 2 VMs, not {}", bi.num_vms),
        );
        return 1;
    }
    if bi.vm_id > 1 {
        return 0;
    }
    let case = bi.params[CASE];
    let Some(expected) = expected(case) else {
        fail(PARAMS, format_args!("unknown case {case}"));
        return 1;
    };
    pass_with(PARAMS, format_args!("case {case}"));
    let mut arena = Arena::new();
    let dev = match DgramDevice::init(OPTS, &mut arena, MAX_PAYLOAD) {
        Ok(dev) => {
            pass_with(
                INIT,
                format_args!(
                    "features {:#x}, queue size {}",
                    dev.features(),
                    dev.tx_queue().size()
                ),
            );
            dev
        }
        Err(e) => {
            fail(INIT, e);
            return 1;
        }
    };
    let mut dev = dev;
    let reserved = Reserved::snapshot();
    if bi.vm_id == 1 && case == CASE_RX_RESERVED {
        // The first buffer the driver made available now lies in the boot-info page.
        dev.write_raw_rx_desc(
            0,
            Desc {
                addr: RX_RESERVED_GPA,
                len: RX_RESERVED_LEN,
                flags: VIRTQ_DESC_F_WRITE,
                next: 0,
            },
        );
    }
    // Barrier 1: both devices are up (VM1's rx buffers are available).
    barrier();
    if bi.vm_id == 0 {
        hostile(dev, &mut arena, case, expected, reserved)
    } else {
        receiver(dev, case, reserved)
    }
}

/// The [`RESERVED_CHECKED`] bytes at [`RESERVED_GPA`] (the boot-info page), as they
/// were.
struct Reserved([u64; (RESERVED_CHECKED / 8) as usize]);

impl Reserved {
    fn snapshot() -> Reserved {
        let mut words = [0u64; (RESERVED_CHECKED / 8) as usize];
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: the boot-info page is mapped and readable at CPL3 (docs/abi.md, memory
            // map); RESERVED_GPA is its (aligned) start and the words stay inside it.
            *w = unsafe { ptr::read_volatile((RESERVED_GPA as *const u64).add(i)) };
        }
        Reserved(words)
    }

    /// Records `reserved-untouched`: the bytes are what they were.
    fn check(&self) {
        let now = Reserved::snapshot();
        match (0..self.0.len()).find(|&i| now.0[i] != self.0[i]) {
            None => pass_with(
                RESERVED_UNTOUCHED,
                format_args!("the {RESERVED_CHECKED} bytes at {RESERVED_GPA:#x} unchanged"),
            ),
            Some(i) => fail(
                RESERVED_UNTOUCHED,
                format_args!(
                    "the word at {:#x} was {:#x}, is {:#x}: the device wrote the reserved range",
                    RESERVED_GPA + 8 * i as u64,
                    self.0[i],
                    now.0[i]
                ),
            ),
        }
    }
}

/// What the device did with one hand-made chain.
#[derive(Clone, Copy, Debug)]
struct Answer {
    /// The used element, if the chain was used within the timeout.
    used: Option<UsedElem>,
    /// The status word (`STATUS_NOT_WRITTEN` if untouched or there is none).
    status_word: u32,
    /// The device status register afterwards.
    device_status: u32,
}

impl Answer {
    fn needs_reset(&self) -> bool {
        self.device_status & STATUS_DEVICE_NEEDS_RESET != 0
    }

    /// Whether this is the documented answer.
    fn is(&self, expected: Expected) -> bool {
        match expected {
            Expected::Status(s) => {
                !self.needs_reset()
                    && self.used.is_some_and(|u| u.len == 4)
                    && self.status_word == s as u32
            }
            Expected::NeedsReset => self.needs_reset(),
            Expected::Dropped => {
                !self.needs_reset()
                    && self.used.is_some_and(|u| u.len == 0)
                    && self.status_word == STATUS_NOT_WRITTEN
            }
            // Not a tx chain's answer.
            Expected::RxSkipped => false,
        }
    }
}

/// A tx status word, by name if it is a [`TxStatus`].
struct StatusWord(u32);

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TxStatus::from_u32(self.0) {
            Some(s) => f.write_str(s.name()),
            None if self.0 == STATUS_NOT_WRITTEN => f.write_str("not written"),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.used {
            Some(u) => write!(
                f,
                "used (id {}, len {}), status word {}, device status {:#x}",
                u.id,
                u.len,
                StatusWord(self.status_word),
                self.device_status
            ),
            None => write!(
                f,
                "not used within {TIMEOUT_MS} ms, status word {}, device status {:#x}",
                StatusWord(self.status_word),
                self.device_status
            ),
        }
    }
}

/// An [`Expected`] answer, described.
struct Want(Expected);

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expected::Status(s) => write!(f, "used len 4, status {}", s.name()),
            Expected::NeedsReset => f.write_str("DEVICE_NEEDS_RESET"),
            Expected::Dropped => {
                f.write_str("used len 0, status not written, no DEVICE_NEEDS_RESET")
            }
            Expected::RxSkipped => f.write_str("the bad rx buffer used with len 0"),
        }
    }
}

/// VM0's scratch memory for hand-made chains: a page for the header and the status word,
/// a page of payload.
struct Scratch {
    header: u64,
    status: u64,
    payload: u64,
}

impl Scratch {
    /// Writes `header` and resets the status word.
    fn prepare(&self, header: DgramHeader) {
        // SAFETY: both lie in a page of free memory taken from the arena for this purpose
        // (aligned); the device holds no chain naming them (the previous one was used or
        // the device was reset).
        unsafe {
            ptr::write_volatile(self.header as *mut DgramHeader, header);
            ptr::write_volatile(self.status as *mut u32, STATUS_NOT_WRITTEN);
        }
    }

    fn status_word(&self) -> u32 {
        // SAFETY: as in `prepare`; a volatile load of a u32 is valid for any bytes.
        unsafe { ptr::read_volatile(self.status as *const u32) }
    }
}

/// Places the chain `descs` (descriptor index, descriptor) with head `head`, publishes it,
/// and waits for a used element or DEVICE_NEEDS_RESET (at most [`TIMEOUT_MS`]).
fn attempt(dev: &mut DgramDevice, scratch: &Scratch, descs: &[(u32, Desc)], head: u32) -> Answer {
    for &(i, d) in descs {
        dev.write_raw_tx_desc(i, d);
    }
    dev.publish_raw_tx(head as u16);
    let deadline = Deadline::after_ms(TIMEOUT_MS);
    let pause = STATUS_POLL_US * ticks_per_us();
    let used = loop {
        if let Some(u) = dev.pop_raw_tx_used() {
            break Some(u);
        }
        if dev.status() & STATUS_DEVICE_NEEDS_RESET != 0 || deadline.expired() {
            break None;
        }
        spin_ticks(pause);
    };
    Answer {
        used,
        status_word: scratch.status_word(),
        device_status: dev.status(),
    }
}

/// VM0: the bad chain(s), the answer(s), recovery, the good message.
fn hostile(
    mut dev: DgramDevice,
    arena: &mut Arena,
    case: u64,
    expected: Expected,
    reserved: Reserved,
) -> u64 {
    let Some(page) = arena.alloc(2) else {
        fail(INIT, "no room for 2 scratch pages");
        barrier();
        barrier();
        return 1;
    };
    zero_pages(page, 2);
    let scratch = Scratch {
        header: page,
        status: page + 64,
        payload: page + PAGE_SIZE,
    };
    fill_payload(
        &[extent(scratch.payload, 1)],
        u64::from(BAD_LEN),
        0,
        BAD_SEQ,
        Coverage::Full,
    );
    let spare = dev.tx_spare();
    assert!(spare.len() >= 3, "fewer than 3 spare tx descriptors");
    let (h, p, s) = (spare.start, spare.start + 1, spare.start + 2);
    let header = DgramHeader {
        seq: BAD_SEQ,
        src: 0,
        dst: 1,
        len: BAD_LEN,
        flags: 0,
    };
    let header_desc = Desc {
        addr: scratch.header,
        len: HEADER_SIZE,
        flags: VIRTQ_DESC_F_NEXT,
        next: p as u16,
    };
    let payload_desc = Desc {
        addr: scratch.payload,
        len: BAD_LEN,
        flags: VIRTQ_DESC_F_NEXT,
        next: s as u16,
    };
    let status_desc = Desc {
        addr: scratch.status,
        len: 4,
        flags: VIRTQ_DESC_F_WRITE,
        next: 0,
    };
    let with_payload = |payload: Desc| [(h, header_desc), (p, payload), (s, status_desc)];

    let mut answers: [Option<(&str, Answer)>; 2] = [None, None];
    match case {
        CASE_BEYOND_MEMORY | CASE_ADDR_OVERFLOW => {
            let addr = if case == CASE_BEYOND_MEMORY {
                boot_info().mem_size + BEYOND_MEMORY_OFFSET
            } else {
                OVERFLOW_ADDR
            };
            scratch.prepare(header);
            let chain = with_payload(Desc {
                addr,
                ..payload_desc
            });
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
        }
        CASE_LOOP => {
            scratch.prepare(header);
            let chain = [
                (h, header_desc),
                (
                    p,
                    Desc {
                        next: h as u16,
                        ..payload_desc
                    },
                ),
            ];
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
        }
        CASE_LEN_BEYOND_CHAIN => {
            scratch.prepare(DgramHeader {
                len: LONG_LEN,
                ..header
            });
            let chain = with_payload(payload_desc);
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
        }
        CASE_BAD_DST => {
            let chain = with_payload(payload_desc);
            scratch.prepare(DgramHeader { dst: 0, ..header });
            let first = attempt(&mut dev, &scratch, &chain, h);
            answers[0] = Some((DEVICE_RESPONSE, first));
            if first.used.is_some() && !first.needs_reset() {
                scratch.prepare(DgramHeader {
                    dst: UNKNOWN_DST,
                    ..header
                });
                let second = attempt(&mut dev, &scratch, &chain, h);
                answers[1] = Some((DEVICE_RESPONSE_UNKNOWN_DST, second));
            } else {
                fail(
                    DEVICE_RESPONSE_UNKNOWN_DST,
                    "not tried: the chain to VM0 itself was not answered",
                );
            }
        }
        CASE_INDIRECT => {
            scratch.prepare(header);
            // The indirect table, after the payload in the payload page: header, payload,
            // status, indices 0-2 of the table.
            let table = scratch.payload + PAGE_SIZE - 3 * 16;
            let entries = [
                Desc {
                    next: 1,
                    ..header_desc
                },
                Desc {
                    next: 2,
                    ..payload_desc
                },
                status_desc,
            ];
            for (i, d) in entries.iter().enumerate() {
                // SAFETY: three 16-byte descriptors at the end of the scratch payload page
                // (free memory of this guest's, 16-aligned), past the BAD_LEN payload bytes;
                // the device holds no chain naming them yet.
                unsafe { store_desc(table + 16 * i as u64, *d) };
            }
            let chain = [(
                h,
                Desc {
                    addr: table,
                    len: 3 * 16,
                    flags: VIRTQ_DESC_F_INDIRECT,
                    next: 0,
                },
            )];
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
        }
        CASE_LEN_MAX | CASE_STATUS_RESERVED | CASE_PAYLOAD_RESERVED => {
            scratch.prepare(header);
            let chain = match case {
                CASE_LEN_MAX => with_payload(Desc {
                    len: u32::MAX,
                    ..payload_desc
                }),
                CASE_PAYLOAD_RESERVED => with_payload(Desc {
                    addr: RESERVED_READ_GPA,
                    ..payload_desc
                }),
                _ => [
                    (h, header_desc),
                    (p, payload_desc),
                    (
                        s,
                        Desc {
                            addr: STATUS_RESERVED_GPA,
                            ..status_desc
                        },
                    ),
                ],
            };
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
            if case == CASE_STATUS_RESERVED {
                reserved.check();
            }
        }
        CASE_RX_RESERVED => {}
        _ => {
            scratch.prepare(header);
            let chain = [
                (h, header_desc),
                (
                    p,
                    Desc {
                        flags: 0,
                        next: 0,
                        ..payload_desc
                    },
                ),
            ];
            answers[0] = Some((DEVICE_RESPONSE, attempt(&mut dev, &scratch, &chain, h)));
        }
    }
    let mut must_reset = false;
    for (name, answer) in answers.iter().flatten() {
        check!(
            name,
            answer.is(expected),
            "case {case}: {answer}; want {}",
            Want(expected)
        );
        must_reset |= answer.used.is_none() || answer.needs_reset();
    }
    must_reset |= dev.status() & STATUS_DEVICE_NEEDS_RESET != 0;
    // Nothing may have been delivered to VM0 itself (case 4 sends to it).
    let mut arrived = 0u32;
    let mut first: Option<DgramHeader> = None;
    while let Some(msg) = dev.recv() {
        arrived += 1;
        first.get_or_insert(msg.header);
        dev.recycle(&msg);
    }
    match first {
        None => pass_with(NOTHING_ARRIVED_AT_SENDER, "rx used ring empty"),
        Some(h) => fail(
            NOTHING_ARRIVED_AT_SENDER,
            format_args!(
                "{arrived} message(s); first: seq {} src {} dst {} len {}",
                h.seq, h.src, h.dst, h.len
            ),
        ),
    }

    if must_reset {
        if !dev.reset() {
            println!("virtio_hostile: the status did not read 0 after the reset");
        }
        dev = match DgramDevice::init(OPTS, arena, MAX_PAYLOAD) {
            Ok(dev) => dev,
            Err(e) => {
                fail(
                    RECOVERED,
                    format_args!("re-initialisation after a reset: {e}"),
                );
                barrier();
                barrier();
                return 1;
            }
        };
    }
    // Barrier 2: VM1 starts receiving.
    barrier();
    let sent = dev.send(1, GOOD_SEQ, GOOD_LEN, 0, |extents| {
        fill_payload(extents, u64::from(GOOD_LEN), 0, GOOD_SEQ, Coverage::Full)
    });
    let deadline = Deadline::after_ms(TIMEOUT_MS);
    while sent && dev.tx_in_flight() != 0 && !deadline.expired() {
        dev.tx_reap();
        core::hint::spin_loop();
    }
    let stats = dev.stats();
    let reset_note = if must_reset {
        "after a reset"
    } else {
        "without a reset"
    };
    if !sent {
        fail(RECOVERED, format_args!("{reset_note}: no tx buffer free"));
    } else if dev.tx_in_flight() != 0 {
        fail(
            RECOVERED,
            format_args!(
                "{reset_note}: the good message was not used within {TIMEOUT_MS} ms (device status {:#x})",
                dev.status()
            ),
        );
    } else {
        let status = stats.first_tx_error.map_or(TxStatus::Ok as u32, |(_, s)| s);
        check!(
            RECOVERED,
            stats.tx_errors == 0 && stats.bad_used == 0,
            "{reset_note}: good message status {}, unexpected used elements {}",
            StatusWord(status),
            stats.bad_used
        );
    }
    // Barrier 3: VM1 then checks that nothing else arrives.
    barrier();
    0
}

/// VM1: receives the good message, then checks that nothing else arrives (case 10: after
/// its bad rx buffer came back empty).
fn receiver(mut dev: DgramDevice, case: u64, reserved: Reserved) -> u64 {
    let rx_case = case == CASE_RX_RESERVED;
    let mut skipped: Option<(u32, u32)> = None;
    // Barrier 2: VM0 is done with the bad chains.
    barrier();
    let mut others = 0u32;
    let mut first_other: Option<DgramHeader> = None;
    let mut note_other = |msg: &DgramHeader| {
        others += 1;
        first_other.get_or_insert(*msg);
    };
    let deadline = Deadline::after_ms(TIMEOUT_MS);
    let mut good = None;
    while good.is_none() && !deadline.expired() {
        match dev.recv() {
            // Case 10's bad buffer: rewritten, not to be recycled.
            Some(msg) if rx_case && msg.id == 0 && skipped.is_none() => {
                skipped = Some((u32::from(msg.id), msg.used_len));
                if msg.used_len != 0 {
                    note_other(&msg.header);
                }
            }
            Some(msg) if msg.header.seq == GOOD_SEQ => good = Some(msg),
            Some(msg) => {
                note_other(&msg.header);
                dev.recycle(&msg);
            }
            None => core::hint::spin_loop(),
        }
    }
    match good {
        None => fail(
            RECEIVED_INTACT,
            format_args!("no message with seq {GOOD_SEQ} within {TIMEOUT_MS} ms"),
        ),
        Some(msg) => {
            let h = msg.header;
            let ok_header = h.src == 0 && h.dst == 1 && h.len == GOOD_LEN;
            if !ok_header || msg.payload_len() != GOOD_LEN {
                fail(
                    RECEIVED_INTACT,
                    format_args!(
                        "header src {} dst {} len {}, used len {} (want src 0, dst 1, len {GOOD_LEN}, used len {})",
                        h.src,
                        h.dst,
                        h.len,
                        msg.used_len,
                        GOOD_LEN + HEADER_SIZE
                    ),
                );
            } else {
                match verify_payload(
                    &[msg.extent()],
                    u64::from(GOOD_LEN),
                    0,
                    GOOD_SEQ,
                    Coverage::Full,
                ) {
                    Ok(()) => pass_with(
                        RECEIVED_INTACT,
                        format_args!("seq {GOOD_SEQ}, {GOOD_LEN} bytes of VM0's pattern"),
                    ),
                    Err(m) => fail(
                        RECEIVED_INTACT,
                        format_args!(
                            "byte {} differs: word {:#x}, want {:#x}",
                            m.offset, m.got, m.want
                        ),
                    ),
                }
            }
            dev.recycle(&msg);
        }
    }
    if rx_case {
        match skipped {
            Some((0, 0)) => pass_with(
                RX_SKIPPED,
                "the rx buffer at the reserved range came back with used len 0",
            ),
            Some((id, len)) => fail(
                RX_SKIPPED,
                format_args!(
                    "the rx buffer at the reserved range came back as id {id} with used len {len}"
                ),
            ),
            None => fail(
                RX_SKIPPED,
                "the rx buffer at the reserved range never came back",
            ),
        }
        reserved.check();
    }
    // Barrier 3: VM0 is done sending.
    barrier();
    let quiet = Deadline::after_ms(QUIET_MS);
    while !quiet.expired() {
        if let Some(msg) = dev.recv() {
            note_other(&msg.header);
            dev.recycle(&msg);
        }
        core::hint::spin_loop();
    }
    let stats = dev.stats();
    let clean = first_other.is_none() && stats.bad_used == 0 && stats.rx_overlong == 0;
    match first_other {
        Some(h) if !clean => fail(
            NOTHING_ELSE_ARRIVED,
            format_args!(
                "{others} other message(s); first: seq {} src {} dst {} len {}",
                h.seq, h.src, h.dst, h.len
            ),
        ),
        _ => {
            check!(
                NOTHING_ELSE_ARRIVED,
                clean,
                "only the good message; rx used elements naming no buffer {}, too long {}",
                stats.bad_used,
                stats.rx_overlong
            );
        }
    }
    0
}
