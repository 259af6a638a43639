//! Access to the pageflip MMIO device at [`MMIO_BASE`]: every access is one VM exit.

use core::arch::asm;

use pageflip_abi::mmio::{Status, BARRIER, DOORBELL, PHASE, PHASE_BEGIN, PHASE_END, STATUS};
use pageflip_abi::virtio::{VIRTIO_MMIO_GPA, VIRTIO_MMIO_SIZE};
use pageflip_abi::{MMIO_BASE, MMIO_SIZE};

/// The guest address of the device register at `offset`, checked to be an aligned 8-byte
/// register inside the device page.
#[inline(always)]
fn register(offset: u64) -> u64 {
    assert!(
        offset <= MMIO_SIZE - 8 && offset % 8 == 0,
        "not a register offset"
    );
    MMIO_BASE + offset
}

/// Writes `value` to the device register at `offset`: one 8-byte `mov` to
/// `MMIO_BASE + offset`. Panics if `offset` is not an 8-byte aligned offset inside the device.
///
/// The write is ordered after every memory access the program made before it (the VMM may
/// read guest memory the value points to).
#[inline(always)]
pub fn mmio_write(offset: u64, value: u64) {
    // SAFETY: the register lies in the MMIO device page, which the identity map maps at CPL3
    // and no memslot backs: the access exits to the VMM and touches no memory of this
    // program. `write_gpa`'s asm has no `nomem` option, so it is a compiler barrier: memory
    // the VMM reads for this request is written before the exit.
    unsafe { write_gpa(register(offset), value) }
}

/// Reads the device register at `offset`: one 8-byte `mov` from `MMIO_BASE + offset`.
/// Panics if `offset` is not an 8-byte aligned offset inside the device.
#[inline(always)]
pub fn mmio_read(offset: u64) -> u64 {
    // SAFETY: the device page is mapped, backed by no memory, and aligned (`register`
    // checks): the access exits to the VMM, which supplies the value; no Rust reference
    // covers it.
    unsafe { read_gpa(register(offset)) }
}

/// The raw value of the [`STATUS`] register: the status of the last request.
#[inline]
pub fn status_raw() -> u64 {
    mmio_read(STATUS)
}

/// The [`Status`] of the last request. Panics if the VMM returns a value that is no
/// [`Status`] (an ABI violation); use [`status_raw`] to see such values.
pub fn status() -> Status {
    let raw = status_raw();
    match Status::from_u64(raw) {
        Some(s) => s,
        None => panic!("STATUS register holds {raw}, which is no Status"),
    }
}

/// Rings the doorbell with `value`: a bare exit the VMM only counts.
#[inline(always)]
pub fn doorbell(value: u64) {
    mmio_write(DOORBELL, value);
}

/// Starts the measured phase (the VMM snapshots KVM statistics).
#[inline(always)]
pub fn phase_begin() {
    mmio_write(PHASE, PHASE_BEGIN);
}

/// Ends the measured phase (the VMM snapshots KVM statistics).
#[inline(always)]
pub fn phase_end() {
    mmio_write(PHASE, PHASE_END);
}

/// Waits until every VM of the run that is still running has reached the barrier.
#[inline]
pub fn barrier() {
    mmio_write(BARRIER, 0);
}

/// Reads the 8 bytes at guest physical address `gpa` with one `mov`, whatever lies there:
/// guest memory, the device, or nothing (then the VMM stops the VM, or a fault shuts it
/// down).
///
/// # Safety
///
/// `gpa` must be 8-byte aligned, and no Rust reference may be live that gives exclusive
/// access to these bytes. A read of an address outside the identity map faults (VM
/// shutdown); a read of a GPA that nothing owns stops the VM.
#[inline(always)]
pub unsafe fn read_gpa(gpa: u64) -> u64 {
    let value: u64;
    // SAFETY: the caller guarantees that reading `gpa` conflicts with no Rust reference; the
    // access is a plain load which, whatever it hits, changes no memory of this program.
    unsafe {
        asm!(
            "mov {value}, qword ptr [{addr}]",
            addr = in(reg) gpa,
            value = lateout(reg) value,
            options(nostack, preserves_flags),
        );
    }
    value
}

/// Writes `value` to guest physical address `gpa` with one 8-byte `mov`.
///
/// # Safety
///
/// `gpa` must be 8-byte aligned and hold no data of this program (no Rust object, no stack,
/// no image): e.g. free memory from [`pageflip_abi::BootInfo::free_start`]. A write to an
/// unmapped or read-only page faults (VM shutdown).
#[inline(always)]
pub unsafe fn write_gpa(gpa: u64, value: u64) {
    // SAFETY: the caller guarantees that `gpa` holds no data of this program, so the store
    // changes nothing Rust relies on.
    unsafe {
        asm!(
            "mov qword ptr [{addr}], {value}",
            addr = in(reg) gpa,
            value = in(reg) value,
            options(nostack, preserves_flags),
        );
    }
}

/// Defines an unsafe read and write of one `$ty` at a guest physical address, with one `mov`
/// of that width (`$width` is the operand size keyword, `$class`/`$modifier` the register).
macro_rules! gpa_access {
    ($read:ident, $write:ident, $ty:ty, $width:literal, $class:ident, $modifier:literal) => {
        #[doc = concat!(
            "Reads the ", stringify!($ty), " at guest physical address `gpa` with one `mov` of ",
            "that width (an MMIO register of that width, or guest memory).\n\n",
            "# Safety\n\n",
            "As for [`read_gpa`]: `gpa` must be aligned to the width and conflict with no Rust ",
            "reference; an unmapped address faults, a GPA nothing owns stops the VM."
        )]
        #[inline(always)]
        pub unsafe fn $read(gpa: u64) -> $ty {
            let value: $ty;
            // SAFETY: the caller guarantees that reading `gpa` conflicts with no Rust
            // reference; a plain load changes no memory of this program.
            unsafe {
                asm!(
                    concat!("mov {value", $modifier, "}, ", $width, " ptr [{addr}]"),
                    addr = in(reg) gpa,
                    value = lateout($class) value,
                    options(nostack, preserves_flags),
                );
            }
            value
        }

        #[doc = concat!(
            "Writes the ", stringify!($ty), " `value` to guest physical address `gpa` with one ",
            "`mov` of that width.\n\n",
            "# Safety\n\n",
            "As for [`write_gpa`]: `gpa` must be aligned to the width and hold no data of this ",
            "program (an MMIO register, or free memory)."
        )]
        #[inline(always)]
        pub unsafe fn $write(gpa: u64, value: $ty) {
            // SAFETY: the caller guarantees that `gpa` holds no data of this program. The asm
            // has no `nomem` option: memory stores before it are not moved after it.
            unsafe {
                asm!(
                    concat!("mov ", $width, " ptr [{addr}], {value", $modifier, "}"),
                    addr = in(reg) gpa,
                    value = in($class) value,
                    options(nostack, preserves_flags),
                );
            }
        }
    };
}

gpa_access!(read_gpa_u32, write_gpa_u32, u32, "dword", reg, ":e");
gpa_access!(read_gpa_u16, write_gpa_u16, u16, "word", reg, ":x");
gpa_access!(read_gpa_u8, write_gpa_u8, u8, "byte", reg_byte, "");

/// The guest address of the virtio-mmio register at `offset` accessed `width` bytes wide,
/// checked to be aligned and inside the register window at [`VIRTIO_MMIO_GPA`].
#[inline(always)]
fn virtio_register(offset: u64, width: u64) -> u64 {
    assert!(
        offset % width == 0 && offset < VIRTIO_MMIO_SIZE,
        "not a virtio-mmio register offset"
    );
    VIRTIO_MMIO_GPA + offset
}

/// Reads the 32-bit virtio-mmio register at `offset` (one 4-byte `mov`, one exit). Panics if
/// `offset` is not 4-byte aligned inside the window.
///
/// Only call it when the run's transport is virtio (`boot_info().transport ==
/// TRANSPORT_VIRTIO`): without the device nothing owns the window and the VM is stopped.
#[inline(always)]
pub fn virtio_read32(offset: u64) -> u32 {
    // SAFETY: the window lies above guest memory inside the identity map and no memslot
    // backs it: the access exits to the VMM and touches no memory of this program.
    unsafe { read_gpa_u32(virtio_register(offset, 4)) }
}

/// Writes the 32-bit virtio-mmio register at `offset` (one 4-byte `mov`, one exit), ordered
/// after every memory access before it (the device may read the rings it points to). Panics
/// if `offset` is not 4-byte aligned inside the window. See [`virtio_read32`].
#[inline(always)]
pub fn virtio_write32(offset: u64, value: u32) {
    // SAFETY: as in `virtio_read32`; the asm is a compiler barrier.
    unsafe { write_gpa_u32(virtio_register(offset, 4), value) }
}

/// Reads 16 bits of the virtio-mmio window at `offset` (the device-specific configuration
/// space allows narrower accesses). Panics if `offset` is not 2-byte aligned inside the
/// window. See [`virtio_read32`].
#[inline(always)]
pub fn virtio_read16(offset: u64) -> u16 {
    // SAFETY: as in `virtio_read32`.
    unsafe { read_gpa_u16(virtio_register(offset, 2)) }
}

/// Writes 16 bits of the virtio-mmio window at `offset`. See [`virtio_read16`].
#[inline(always)]
pub fn virtio_write16(offset: u64, value: u16) {
    // SAFETY: as in `virtio_write32`.
    unsafe { write_gpa_u16(virtio_register(offset, 2), value) }
}

/// Reads the byte of the virtio-mmio window at `offset`. Panics if `offset` is outside the
/// window. See [`virtio_read32`].
#[inline(always)]
pub fn virtio_read8(offset: u64) -> u8 {
    // SAFETY: as in `virtio_read32`.
    unsafe { read_gpa_u8(virtio_register(offset, 1)) }
}

/// Writes the byte of the virtio-mmio window at `offset`. See [`virtio_read8`].
#[inline(always)]
pub fn virtio_write8(offset: u64, value: u8) {
    // SAFETY: as in `virtio_write32`.
    unsafe { write_gpa_u8(virtio_register(offset, 1), value) }
}
