//! `notify_floor` (1 VM, virtio transport): the cost of one virtio notification with nothing
//! to do — K = `params[0]` QueueNotify writes of the tx queue, which holds no chain — inside
//! the measured phase. With `{"kind":"virtio","notify":"ioeventfd"}` each write is an exit
//! KVM completes in the kernel by signalling an eventfd (the floor of in-kernel exits);
//! with `"userspace"` each is an MMIO exit to the VMM. Sample 0: the TSC ticks of the phase
//! (K notifications + the PHASE_BEGIN and PHASE_END writes, two userspace exits).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::notify_floor::{COUNT, WARMUP};
use pageflip_guest::abi::virtio::TX_QUEUE;
use pageflip_guest::arena::Arena;
use pageflip_guest::virtio::{DgramDevice, Options};
use pageflip_guest::{boot_info, fail, pass_with, phase_begin, phase_end, rdtsc, sample};

pageflip_guest::entry!(main);

fn main() -> u64 {
    let k = boot_info().params[COUNT];
    let mut arena = Arena::new();
    let opts = Options {
        event_idx: false,
        depth: 1,
    };
    let dev = match DgramDevice::init(opts, &mut arena, 64) {
        Ok(d) => d,
        Err(e) => {
            fail("virtio-init", e);
            return 1;
        }
    };
    let t = dev.transport();
    for _ in 0..WARMUP {
        t.notify(TX_QUEUE);
    }
    // The TSC is read outside the phase: the ticks cover the two phase writes and the K
    // notifications.
    let t0 = rdtsc();
    phase_begin();
    for _ in 0..k {
        t.notify(TX_QUEUE);
    }
    phase_end();
    sample(rdtsc() - t0);
    pass_with("notifications", format_args!("K={k}"));
    0
}
