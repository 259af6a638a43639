//! The pageflip guest runtime: what every guest program links against.
//!
//! A guest runs alone on one vCPU, at CPL3 in 64-bit long mode with identity-mapped memory
//! (virtual address == guest physical address), without interrupts or an IDT: any exception
//! shuts the VM down. It talks to the VMM only through guest memory and the pageflip MMIO
//! device ([`pageflip_abi::mmio`]). This crate provides:
//!
//! - the entry point `_start` and [`entry!`], which names the program's `fn main() -> u64`;
//! - [`boot_info`], the boot-info page the VMM wrote;
//! - MMIO access ([`mmio_write`], [`mmio_read`], [`status`], [`doorbell`], ...);
//! - a line-buffered console ([`print!`], [`println!`]);
//! - result records ([`pass`], [`fail`], [`skip`], [`check!`]) and samples ([`sample`]);
//! - [`ipc`]: remap IPC (send and receive rings, checked streams);
//! - [`params`] and [`workload`]: the parameters and shared code of the workloads `stream`,
//!   `pingpong` and `fanin`;
//! - [`link`]: the workloads' messaging over any transport (remap/copy queues, virtio,
//!   shmem); [`virtio`]: the virtio datagram driver;
//! - [`rdtsc`], the `mem*` functions the compiler needs, and a panic handler.
//!
//! When `main` returns, the runtime flushes the samples, prints
//! `SUMMARY: N tests, F failed, S skipped` and writes the exit code to
//! [`pageflip_abi::mmio::DONE`].
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub use pageflip_abi as abi;

pub mod arena;
pub mod boot;
pub mod check;
pub mod console;
pub mod entry;
mod global;
pub mod ipc;
pub mod link;
pub mod mem;
pub mod mmio;
mod panic;
pub mod params;
pub mod payload;
pub mod prefault;
pub mod results;
pub mod samples;
pub mod text;
pub mod tsc;
pub mod virtio;
pub mod workload;

pub use boot::boot_info;
pub use entry::exit;
pub use mmio::{
    barrier, doorbell, mmio_read, mmio_write, phase_begin, phase_end, status, status_raw,
};
pub use results::{fail, pass, pass_with, skip};
pub use samples::{flush_samples, sample};
pub use tsc::rdtsc;
