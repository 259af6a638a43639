//! What the workloads `stream`, `pingpong`, `fanin` and `chain` share, over any transport of
//! [`crate::link`] (parameters: [`crate::params`]; ABI: [`pageflip_abi::probes::ipc_workloads`]).
//!
//! [`run`] is the entry point: it reads the [`Params`], brings up the run's transport as a
//! [`Link`] and runs a [`Program`] on a [`Workload`] over it. Programs are generic over the
//! link, so each transport gets its own compiled loops: choosing the transport at run time
//! costs nothing per message.
//!
//! - `vm.rs`: [`Workload`], one VM of a workload (its link, memory, receiver set-up, measured
//!   phase and samples);
//! - `one_way.rs`: the sending and receiving sides of `stream` and `fanin`
//!   ([`Workload::send_all`], [`Workload::receive_all`]), which are also `chain`'s first
//!   and last VMs;
//! - `chain.rs`: `chain`'s middle VMs ([`Workload::forward_all`]); `pingpong`'s rounds are
//!   its own (`src/bin/pingpong.rs`).

use pageflip_abi::probes::ipc_records::{MEMORY_SIZE, TRANSPORT};
use pageflip_abi::probes::ipc_workloads::PER_MESSAGE_MAX;
use pageflip_abi::{
    PAGE_SIZE, TRANSPORT_NONE, TRANSPORT_QUEUES, TRANSPORT_SHMEM, TRANSPORT_VIRTIO,
};

use crate::arena::{zero_pages, Arena};
use crate::boot_info;
use crate::ipc::Ipc;
use crate::link::{Link, Queues, Shmem, Virtio};
use crate::params::Params;
use crate::results::fail;

mod chain;
mod one_way;
mod vm;

pub use vm::Workload;

/// Records FAIL `memory-size`: `what` did not fit in free memory.
pub fn out_of_memory(what: &str, pages: u64, arena: &Arena) {
    fail(
        MEMORY_SIZE,
        format_args!(
            "{what} needs {pages} pages of free memory, {} left (of {} MiB)",
            arena.left() / PAGE_SIZE,
            boot_info().mem_size >> 20
        ),
    );
}

/// A workload's body, run by [`run`] over the run's transport.
pub trait Program {
    /// Runs on `w` (parameters read, transport up, `ipc-transport` recorded); returns the
    /// exit code.
    fn run<L: Link>(self, w: &mut Workload<L>) -> u64;
}

/// The transports [`run`] can bring up.
enum Transport {
    Queues,
    Virtio,
    Shmem,
}

/// The entry point of the workloads: reads and records the parameters ([`Params::from_boot`]),
/// sets aside the per-message samples, brings up the run's transport (from the boot info's
/// `transport`) as a [`Link`], records PASS `ipc-transport` with its name, and runs `program`
/// on the [`Workload`]. Records a FAIL (`params`, `memory-size` or `ipc-transport`) and
/// returns 1 if one of them fails.
///
/// A boot info with transport [`TRANSPORT_NONE`] and the IPC header's magic set is a
/// remap/copy run of a VMM that does not fill in `transport`.
pub fn run<P: Program>(program: P) -> u64 {
    let Some(params) = Params::from_boot() else {
        return 1;
    };
    let mut arena = Arena::new();
    let pages = (PER_MESSAGE_MAX as u64 * 8).div_ceil(PAGE_SIZE);
    let Some(per_message) = arena.alloc(pages) else {
        out_of_memory("the per-message samples", pages, &arena);
        return 1;
    };
    zero_pages(per_message, pages);
    let transport = match boot_info().transport {
        TRANSPORT_QUEUES | TRANSPORT_NONE => Transport::Queues,
        TRANSPORT_VIRTIO => Transport::Virtio,
        TRANSPORT_SHMEM => Transport::Shmem,
        other => {
            fail(
                TRANSPORT,
                format_args!("unknown transport {other} in the boot info"),
            );
            return 1;
        }
    };
    match transport {
        Transport::Queues => {
            let Some(ipc) = Ipc::init(params.batch, params.wait_timeout_us) else {
                fail(
                    TRANSPORT,
                    if boot_info().transport == TRANSPORT_NONE {
                        "the run has no transport (and the IPC header's magic is not set): \
                         run with transport remap, copy, virtio or shmem"
                    } else {
                        "the boot info says remap-IPC queues, but the IPC header's magic is not set"
                    },
                );
                return 1;
            };
            let link = Queues::new(ipc, &params);
            Workload::new(link, params, arena, per_message).run(program)
        }
        Transport::Virtio => match Virtio::new(&params, &mut arena) {
            Ok(link) => Workload::new(link, params, arena, per_message).run(program),
            Err(e) => {
                fail(TRANSPORT, format_args!("virtio: {e}"));
                1
            }
        },
        Transport::Shmem => {
            let link = Shmem::new(&params);
            Workload::new(link, params, arena, per_message).run(program)
        }
    }
}
