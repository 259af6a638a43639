//! A driver for the pageflip datagram device ([`pageflip_abi::virtio`]): virtio-mmio
//! (virtio 1.2, modern interface) with split virtqueues, for guests that poll.
//!
//! Three layers, each usable on its own (the conformance probes use the lower ones to break
//! the rules on purpose):
//!
//! - [`Transport`]: the virtio-mmio registers (raw reads and writes, status, feature words,
//!   the configuration space, notifications) and the initialisation steps of virtio 1.2
//!   3.1.1 one by one ([`Transport::reset`], [`Transport::negotiate`], ...);
//! - [`Virtqueue`]: one split virtqueue in guest memory (descriptor table, available and used
//!   rings): write descriptors, publish chains, notify the device when it asked for it
//!   ([`Virtqueue::kick`]), take used elements, and program the queue registers
//!   ([`Virtqueue::setup`]);
//! - [`DgramDevice`]: the whole driver: [`DgramDevice::init`] negotiates and sets up the rx and
//!   tx queues with their buffers, [`DgramDevice::send`] / [`DgramDevice::tx_reap`] transmit,
//!   [`DgramDevice::recv`] / [`DgramDevice::recycle`] receive.
//!
//! # Interrupts and notifications
//!
//! Guests have no interrupts: they look at used rings by polling. The driver still fills in
//! what a device reads to decide whether to notify the driver, as if it wanted every
//! notification: without VIRTIO_F_EVENT_IDX the available ring's flags stay 0 (no
//! NO_INTERRUPT); with it, `used_event` is kept equal to the number of used elements the driver
//! has taken, i.e. "notify me when the next one is added". Driver-to-device notifications
//! (`QueueNotify` writes, each an exit) are made only when the device asks for them:
//! with EVENT_IDX when the new available index passes the device's `avail_event`
//! ([`pageflip_abi::virtio::need_event`]), else unless the used ring's NO_NOTIFY flag is set.
//!
//! # Memory ordering
//!
//! Rings live in free memory (identity mapped) that the device, running on VMM threads,
//! reads and writes while this vCPU runs. All ring accesses are volatile. Descriptors and the
//! available ring entry are written before the available index (release fence); the
//! notification decision reads `avail_event` / the used flags after the index store with a
//! full fence (a locked instruction: x86 may reorder a store with a later load of another
//! location); used elements (and the buffers they describe) are read after the used index
//! (acquire fence).

use core::fmt;

mod device;
mod queue;
mod transport;

pub use device::{DgramDevice, DriverStats, RxMsg, MAX_MSG_PAGES};
pub use queue::{store_desc, Desc, UsedElem, Virtqueue, MAX_ALLOC_QUEUE_SIZE};
pub use transport::{Identity, Transport};

/// Most messages in flight per queue: a tx chain takes 3 descriptors and queues have at most
/// [`pageflip_abi::virtio::QUEUE_NUM_MAX`] = 256 entries.
pub const MAX_DEPTH: u32 = 85;

/// Descriptors of a tx chain: header, payload, status.
pub const TX_CHAIN_DESCS: u32 = 3;

/// A tx status word the device has not written: the driver writes it into the status
/// descriptor before publishing the chain, and reports it for a chain whose used length is
/// below 4 (dropped without a status). No [`pageflip_abi::virtio::TxStatus`] has this value.
pub const STATUS_NOT_WRITTEN: u32 = u32::MAX;

/// How long [`Transport::reset`] waits for the status register to read 0.
pub const RESET_TIMEOUT_MS: u64 = 1_000;

/// What [`DgramDevice::init`] is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Negotiate VIRTIO_F_EVENT_IDX if the device offers it.
    pub event_idx: bool,
    /// Messages in flight per queue (tx chains and rx buffers), 1 to [`MAX_DEPTH`].
    pub depth: u32,
}

/// The size of both virtqueues for `depth` messages in flight: the smallest power of two of
/// at least `3 * depth` descriptors (at least 2).
pub const fn queue_size_for(depth: u32) -> u32 {
    let n = depth * TX_CHAIN_DESCS;
    if n <= 2 {
        2
    } else {
        n.next_power_of_two()
    }
}

/// Why [`DgramDevice::init`] (or one of its steps) failed: each variant names the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The run's transport is not virtio (`boot_info().transport`): there is no device to
    /// look at (reading its window would stop the VM).
    NotVirtio {
        /// The boot info's transport.
        transport: u32,
    },
    /// [`Options::depth`] is 0 or above [`MAX_DEPTH`].
    BadDepth(u32),
    /// The payload size asked for is above [`pageflip_abi::virtio::MAX_PAYLOAD`].
    BadMaxPayload(u32),
    /// `MagicValue` is not "virt".
    NoDevice {
        /// What the register held.
        magic: u32,
    },
    /// `Version` is not 2.
    Version(u32),
    /// `DeviceID` is not [`pageflip_abi::virtio::DEVICE_ID`].
    DeviceId(u32),
    /// The status register did not read 0 within [`RESET_TIMEOUT_MS`] of writing 0.
    ResetTimeout {
        /// The last value read.
        status: u32,
    },
    /// The device does not offer VIRTIO_F_VERSION_1.
    NoVersion1 {
        /// The device's features.
        offered: u64,
    },
    /// FEATURES_OK did not stay set after the driver wrote its features and FEATURES_OK.
    FeaturesRefused {
        /// The device's features.
        offered: u64,
        /// The features the driver wrote.
        wanted: u64,
    },
    /// `QueueReady` of the queue read 1 before the driver set it up.
    QueueAlreadyReady {
        /// The queue.
        queue: u32,
    },
    /// `QueueNumMax` of the queue is smaller than the queue size needed (0: no such queue).
    QueueTooSmall {
        /// The queue.
        queue: u32,
        /// Its `QueueNumMax`.
        max: u32,
    },
    /// `QueueReady` read 0 after the driver set up the queue and wrote 1.
    QueueNotReady {
        /// The queue.
        queue: u32,
    },
    /// Free memory is too small for the rings and buffers.
    OutOfMemory {
        /// Bytes needed.
        needed: u64,
        /// Bytes left in the arena.
        left: u64,
    },
    /// After the driver set DRIVER_OK the status lacked it, or showed DEVICE_NEEDS_RESET or
    /// FAILED.
    DriverOkRefused {
        /// The status read back.
        status: u32,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InitError::NotVirtio { transport } => {
                write!(
                    f,
                    "transport: the run's transport is {transport}, not virtio"
                )
            }
            InitError::BadDepth(d) => write!(f, "options: depth {d} is not in 1..={MAX_DEPTH}"),
            InitError::BadMaxPayload(p) => write!(
                f,
                "options: max payload {p} is above {}",
                pageflip_abi::virtio::MAX_PAYLOAD
            ),
            InitError::NoDevice { magic } => write!(f, "magic: MagicValue is {magic:#x}"),
            InitError::Version(v) => write!(f, "version: Version is {v}, not 2"),
            InitError::DeviceId(id) => write!(f, "device-id: DeviceID is {id:#x}"),
            InitError::ResetTimeout { status } => {
                write!(f, "reset: status still {status:#x} after writing 0")
            }
            InitError::NoVersion1 { offered } => {
                write!(f, "features: VERSION_1 not offered (features {offered:#x})")
            }
            InitError::FeaturesRefused { offered, wanted } => write!(
                f,
                "features-ok: refused (offered {offered:#x}, driver wrote {wanted:#x})"
            ),
            InitError::QueueAlreadyReady { queue } => {
                write!(f, "queue-setup: queue {queue} is ready before setup")
            }
            InitError::QueueTooSmall { queue, max } => {
                write!(f, "queue-setup: queue {queue} has QueueNumMax {max}")
            }
            InitError::QueueNotReady { queue } => {
                write!(
                    f,
                    "queue-setup: queue {queue}'s QueueReady reads 0 after setup"
                )
            }
            InitError::OutOfMemory { needed, left } => write!(
                f,
                "memory: rings and buffers need {needed} bytes, {left} left"
            ),
            InitError::DriverOkRefused { status } => {
                write!(f, "driver-ok: status {status:#x} after setting DRIVER_OK")
            }
        }
    }
}
