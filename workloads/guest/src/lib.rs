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
//! - [`arena`]: this VM's free memory (page predicates, the bump allocator, page pools);
//!   [`prefault`]: touching memory before a measured phase;
//! - [`payload`]: message payload patterns and their verification;
//! - [`check`](mod@check): the checks of received messages, over any transport
//!   ([`check::StreamReceiver`]);
//! - [`ipc`]: the remap-IPC queues (send ring, post ring, receive ring, control header) and
//!   the sender that retries refused messages;
//! - [`virtio`]: the virtio datagram driver;
//! - [`link`]: one VM's messaging over any transport (remap/copy queues, virtio, shmem);
//! - [`params`] and [`workload`]: the parameters and shared code of the workloads `stream`,
//!   `pingpong` and `fanin`, above [`link`];
//! - [`text`]: short texts for record messages;
//! - [`rdtsc`], the `mem*` functions the compiler needs, and a panic handler.
//!
//! The messaging modules are layered, each importing only from the layers before it:
//! `arena`, `prefault` → `payload` → `check`, `params` → `ipc`, `virtio` → `link` →
//! `workload`.
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
