//! `hostile`: makes requests the VMM must refuse, one at a time, and checks the STATUS
//! register after each (one record per case, named after it). Finally checks that the device
//! still works, and reports the number of bad requests as sample 0, for the host to compare
//! with its own count of refused requests.
//!
//! Each bad request breaks exactly one rule; every other field is valid. Bad result records
//! are FAIL records named `accepted-bad-record`, so a VMM that accepts one shows a failure.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt;

use pageflip_guest::abi::mmio::{
    console_arg, Status, CONSOLE, CONSOLE_MAX, GUEST_ERRORS_LISTED, MAGIC, MAGIC_VALUE, PHASE,
    PHASE_END, RESULT, SAMPLES, SAMPLES_MAX,
};
use pageflip_guest::abi::{RecordKind, ResultRecord, SampleDesc, RECORD_MESSAGE_LEN};
use pageflip_guest::abi::{PAGE_SIZE, RECORD_NAME_LEN};
use pageflip_guest::mmio::write_gpa;
use pageflip_guest::{
    boot_info, check, fail, mmio_read, mmio_write, pass_with, println, sample, status_raw,
};

pageflip_guest::entry!(main);

/// A device offset inside the device page where no register is.
const NO_REGISTER: u64 = 0x800;
/// Bad requests made in a row at the end, so the total passes the result's list limit.
const FLOOD: u64 = GUEST_ERRORS_LISTED;
/// A PHASE value that is neither PHASE_BEGIN nor PHASE_END.
const BAD_PHASE: u64 = 7;
/// A record kind that is no RecordKind.
const BAD_KIND: u32 = 9;

/// A STATUS value, by name if it is a [`Status`].
struct StatusText(u64);

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Status::from_u64(self.0) {
            Some(s) => f.write_str(s.name()),
            None => write!(f, "unknown status {}", self.0),
        }
    }
}

/// Records `name` as passed if the STATUS register holds `expected`.
fn expect_status(name: &str, expected: Status) {
    let got = status_raw();
    if got == expected as u64 {
        pass_with(name, format_args!("status {}", expected.name()));
    } else {
        fail(
            name,
            format_args!("expected {}, got {}", expected.name(), StatusText(got)),
        );
    }
}

/// Counts the bad requests.
struct Hostile {
    bad: u64,
}

impl Hostile {
    /// Makes the bad `request`, then checks that it was refused with `expected`.
    fn bad(&mut self, name: &str, expected: Status, request: impl FnOnce()) {
        request();
        self.bad += 1;
        expect_status(name, expected);
    }
}

/// A valid FAIL record; the cases break one field of it.
fn base_record() -> ResultRecord {
    const NAME: &[u8] = b"accepted-bad-record";
    const MESSAGE: &[u8] = b"the VMM accepted a result record it must refuse";
    let mut r = ResultRecord::zeroed();
    r.kind = RecordKind::Fail as u32;
    r.name[..NAME.len()].copy_from_slice(NAME);
    r.name_len = NAME.len() as u32;
    r.message[..MESSAGE.len()].copy_from_slice(MESSAGE);
    r.message_len = MESSAGE.len() as u32;
    r
}

/// Writes the GPA of `r` (guest memory: the stack) to the RESULT register.
fn write_record(r: &ResultRecord) {
    mmio_write(RESULT, r as *const ResultRecord as u64);
}

/// Writes the GPA of `d` (guest memory: the stack) to the SAMPLES register.
fn write_desc(d: &SampleDesc) {
    mmio_write(SAMPLES, d as *const SampleDesc as u64);
}

fn main() -> u64 {
    let bi = boot_info();
    let mem = bi.mem_size;
    // Free memory, for buffers that are valid but hold nothing of this program.
    let scratch = bi.free_start;
    if scratch % PAGE_SIZE != 0 || scratch + 2 * PAGE_SIZE > mem {
        fail(
            "memory-size",
            format_args!("free memory [{scratch:#x}, {mem:#x}) is not two aligned pages"),
        );
        return 1;
    }
    println!("hostile: making bad requests (memory ends at {mem:#x})");
    let mut h = Hostile { bad: 0 };

    // CONSOLE: the text must lie in memory, 1..=CONSOLE_MAX bytes.
    h.bad("console-outside-memory", Status::BadAddress, || {
        mmio_write(CONSOLE, console_arg(mem, 16))
    });
    h.bad("console-too-long", Status::BadLength, || {
        mmio_write(CONSOLE, console_arg(scratch, CONSOLE_MAX + 1))
    });
    h.bad("console-empty", Status::BadLength, || {
        mmio_write(CONSOLE, console_arg(scratch, 0))
    });

    // RESULT: the whole record in memory, a known kind, 1..=64 name and 0..=240 message bytes.
    h.bad("result-outside-memory", Status::BadAddress, || {
        mmio_write(RESULT, mem)
    });
    h.bad("result-straddles-end", Status::BadAddress, || {
        // A plausible start of a record (kind FAIL, name_len 1) in the last 8 bytes.
        let head = RecordKind::Fail as u64 | (1 << 32);
        // SAFETY: the last 8 bytes of memory are free memory (above free_start, checked).
        unsafe { write_gpa(mem - 8, head) };
        mmio_write(RESULT, mem - 8)
    });
    h.bad("result-bad-kind", Status::BadValue, || {
        let mut r = base_record();
        r.kind = BAD_KIND;
        write_record(&r)
    });
    h.bad("result-empty-name", Status::BadLength, || {
        let mut r = base_record();
        r.name_len = 0;
        write_record(&r)
    });
    h.bad("result-name-too-long", Status::BadLength, || {
        let mut r = base_record();
        r.name_len = RECORD_NAME_LEN as u32 + 1;
        write_record(&r)
    });
    h.bad("result-message-too-long", Status::BadLength, || {
        let mut r = base_record();
        r.message_len = RECORD_MESSAGE_LEN as u32 + 1;
        write_record(&r)
    });

    // SAMPLES: descriptor in memory, 1..=SAMPLES_MAX samples, 8-byte aligned and in memory.
    h.bad("samples-desc-outside-memory", Status::BadAddress, || {
        mmio_write(SAMPLES, mem)
    });
    h.bad("samples-count-zero", Status::BadLength, || {
        write_desc(&SampleDesc {
            gpa: scratch,
            count: 0,
        })
    });
    h.bad("samples-count-too-large", Status::BadLength, || {
        write_desc(&SampleDesc {
            gpa: scratch,
            count: SAMPLES_MAX + 1,
        })
    });
    h.bad("samples-beyond-memory", Status::BadAddress, || {
        write_desc(&SampleDesc {
            gpa: mem - 16,
            count: 4,
        })
    });
    h.bad("samples-misaligned", Status::BadAddress, || {
        write_desc(&SampleDesc {
            gpa: scratch + 4,
            count: 1,
        })
    });

    // PHASE: only PHASE_BEGIN, then PHASE_END.
    h.bad("phase-bad-value", Status::BadValue, || {
        mmio_write(PHASE, BAD_PHASE)
    });
    h.bad("phase-end-without-begin", Status::BadState, || {
        mmio_write(PHASE, PHASE_END)
    });

    // Register access: reads of write-only registers, writes of read-only ones, no register.
    h.bad("read-write-only-register", Status::BadRegister, || {
        let _ = mmio_read(CONSOLE);
    });
    h.bad("write-read-only-register", Status::BadRegister, || {
        mmio_write(MAGIC, 0)
    });
    h.bad("write-no-register", Status::BadRegister, || {
        mmio_write(NO_REGISTER, 0)
    });

    // A flood past the result's list limit: the VMM lists the first GUEST_ERRORS_LISTED
    // and counts every one (`guest_errors_total`).
    for _ in 0..FLOOD {
        mmio_write(NO_REGISTER, 0);
        h.bad += 1;
    }
    expect_status("flood-refused", Status::BadRegister);

    // The device still works: a good console write (this line), then MAGIC.
    println!("hostile: made {} bad requests", h.bad);
    expect_status("good-console-write", Status::Ok);
    let magic = mmio_read(MAGIC);
    let st = status_raw();
    check!(
        "magic-after-refusals",
        magic == MAGIC_VALUE && st == Status::Ok as u64,
        "MAGIC read {magic:#x} (want {MAGIC_VALUE:#x}), status {}",
        StatusText(st)
    );

    sample(h.bad);
    0
}
