//! Registers of the pageflip MMIO device at [`crate::MMIO_BASE`]. Every register is 64 bits
//! wide at an 8-byte aligned offset; each access is one VM exit.
//!
//! A request that the VMM refuses leaves a [`Status`] other than `Ok` in [`STATUS`], is logged
//! by the VMM and listed in the run's result; the guest keeps running. Accesses to a GPA that
//! is neither guest memory nor this device stop the VM.

/// R: always [`MAGIC_VALUE`]; lets a guest check that the device is there.
pub const MAGIC: u64 = 0x00;
/// R: the [`Status`] of the last request (reading it does not reset it).
pub const STATUS: u64 = 0x08;
/// W: print guest text; value = [`console_arg`]`(gpa, len)`, `len` at most [`CONSOLE_MAX`].
pub const CONSOLE: u64 = 0x10;
/// W: GPA of a [`crate::ResultRecord`] to append to the run's results.
pub const RESULT: u64 = 0x18;
/// W: GPA of a [`crate::SampleDesc`]; the VMM copies its samples out at once (appending).
pub const SAMPLES: u64 = 0x20;
/// W: [`PHASE_BEGIN`] or [`PHASE_END`]: the VMM snapshots KVM statistics at both.
pub const PHASE: u64 = 0x28;
/// W: any value. Counted, no other effect: the bare exit that exit counts are checked with.
pub const DOORBELL: u64 = 0x30;
/// W: the guest's exit code (0 = success). The vCPU is not entered again.
pub const DONE: u64 = 0x38;
/// W: any value. Returns when every VM of the run that is still running has written it
/// (VMs that finished or died leave the barrier).
pub const BARRIER: u64 = 0x40;

/// W: the remap-IPC send instruction's exit: [`crate::ipc::DOORBELL_SEND`] (drain if the ring
/// holds a batch or an urgent descriptor) or [`crate::ipc::DOORBELL_FLUSH`] (drain all).
/// Every other exit of the VM to the VMM drains its send ring too, before it is handled.
pub const IPC_DOORBELL: u64 = 0x48;
/// R: blocking receive: returns the number of entries in the VM's receive ring once it is
/// non-empty, or 0 after the header's `wait_timeout_us`.
pub const IPC_RECV_WAIT: u64 = 0x50;

/// Value of the [`MAGIC`] register: "PGFLIP01" in little-endian bytes.
pub const MAGIC_VALUE: u64 = u64::from_le_bytes(*b"PGFLIP01");
/// [`PHASE`] value that starts the measured phase.
pub const PHASE_BEGIN: u64 = 1;
/// [`PHASE`] value that ends the measured phase.
pub const PHASE_END: u64 = 2;
/// Largest console write in bytes.
pub const CONSOLE_MAX: u64 = 4096;
/// Largest number of samples in one [`crate::SampleDesc`].
pub const SAMPLES_MAX: u64 = 1 << 20;
/// Largest number of samples the VMM keeps per VM over a whole run.
pub const SAMPLES_TOTAL_MAX: u64 = 4 << 20;
/// Largest number of result records the VMM keeps per VM.
pub const RECORDS_MAX: u64 = 4096;
/// Refused requests the VMM lists per VM and device in the result's `guest_errors` (the
/// first ones); `guest_errors_total` counts them all.
pub const GUEST_ERRORS_LISTED: u64 = 1000;

/// Encodes the [`CONSOLE`] register value: the GPA in bits 0..48, the length in bits 48..64.
pub const fn console_arg(gpa: u64, len: u64) -> u64 {
    (gpa & ((1 << 48) - 1)) | (len << 48)
}

/// Decodes a [`CONSOLE`] register value into `(gpa, len)`.
pub const fn console_arg_decode(value: u64) -> (u64, u64) {
    (value & ((1 << 48) - 1), value >> 48)
}

/// Status of the last request to the device, read from [`STATUS`].
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The request was carried out.
    Ok = 0,
    /// An address (or address + length) lies outside the VM's guest memory.
    BadAddress = 1,
    /// A length or count is zero where it may not be, or above its limit.
    BadLength = 2,
    /// A value is not one the register accepts (e.g. an unknown record kind or phase).
    BadValue = 3,
    /// No register at this offset, or the access is of the wrong kind (read of a W register).
    BadRegister = 4,
    /// The request is refused in the current state (e.g. a second measured phase).
    BadState = 5,
    /// A per-run limit was reached (records, samples); the request was dropped.
    LimitReached = 6,
}

impl Status {
    /// Decodes a [`STATUS`] register value.
    pub const fn from_u64(v: u64) -> Option<Status> {
        Some(match v {
            0 => Status::Ok,
            1 => Status::BadAddress,
            2 => Status::BadLength,
            3 => Status::BadValue,
            4 => Status::BadRegister,
            5 => Status::BadState,
            6 => Status::LimitReached,
            _ => return None,
        })
    }

    /// A short snake_case name, as used in result JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BadAddress => "bad_address",
            Status::BadLength => "bad_length",
            Status::BadValue => "bad_value",
            Status::BadRegister => "bad_register",
            Status::BadState => "bad_state",
            Status::LimitReached => "limit_reached",
        }
    }
}

/// Name of a register offset, for log lines and reports.
pub const fn register_name(offset: u64) -> &'static str {
    match offset {
        MAGIC => "magic",
        STATUS => "status",
        CONSOLE => "console",
        RESULT => "result",
        SAMPLES => "samples",
        PHASE => "phase",
        DOORBELL => "doorbell",
        DONE => "done",
        BARRIER => "barrier",
        IPC_DOORBELL => "ipc_doorbell",
        IPC_RECV_WAIT => "ipc_recv_wait",
        _ => "unknown",
    }
}
