//! The pageflip guest ABI, shared by the VMM (host) and the guests (`no_std`).
//!
//! Everything a guest and a VMM must agree on lives here: the guest physical memory map,
//! the MMIO registers of the pageflip device, the boot-info page and the result records.
//! `docs/abi.md` explains the same in prose. All layouts are `#[repr(C)]`, little endian,
//! and use only integer fields, so the host may read them from guest memory byte by byte.
#![no_std]

#[cfg(feature = "vm-memory")]
pub mod bytes;
pub mod ipc;
pub mod layout;
pub mod mmio;
pub mod phase;
pub mod probes;
pub mod records;
pub mod shmem;
pub mod splitmix;
pub mod virtio;

pub use layout::*;
pub use records::*;

/// Version of this ABI. The VMM writes it into [`BootInfo::abi_version`].
pub const ABI_VERSION: u32 = 1;

/// Size of a guest page.
pub const PAGE_SIZE: u64 = 4096;

/// Largest number of VMs in one run.
pub const MAX_VMS: usize = 8;

/// Largest number of run parameters the harness may hand to one VM.
pub const MAX_PARAMS: usize = 16;

/// Exit code of a guest whose runtime caught a panic.
pub const EXIT_PANIC: u64 = 101;
