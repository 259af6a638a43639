//! PLACEHOLDER for the virtio datagram driver, which is being written in another worktree and
//! replaces this file when it is merged. It has the driver's API (the signatures
//! [`crate::link::virtio`] is written against) and no driver: [`DgramDevice::init`] always
//! fails, so a virtio run records FAIL `ipc-transport` until the real driver lands.

use core::fmt;

use pageflip_abi::virtio::DgramHeader;

use crate::ipc::Arena;

/// How the driver sets the device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Negotiate VIRTIO_F_EVENT_IDX.
    pub event_idx: bool,
    /// Messages in flight per virtqueue.
    pub depth: u32,
}

/// Why [`DgramDevice::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// This build has no virtio driver (placeholder).
    NoDriver,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NoDriver => f.write_str("this guest build has no virtio driver"),
        }
    }
}

/// A received message, in an rx buffer of the driver until [`DgramDevice::recycle`].
#[derive(Clone, Copy, Debug)]
pub struct RxMsg {
    /// The descriptor id of the rx buffer.
    pub id: u16,
    /// The header the device wrote.
    pub header: DgramHeader,
    /// The payload's pages (page-aligned, contiguous).
    pub pages: [u64; 16],
    /// Valid entries of `pages`.
    pub npages: u32,
    /// The used length the device wrote (header + payload).
    pub used_len: u32,
}

/// The driver's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverStats {
    /// QueueNotify writes made.
    pub notifications: u64,
    /// Notifications left out because the device did not ask for them.
    pub suppressed: u64,
    /// Tx chains completed by the device.
    pub tx_completed: u64,
    /// Of those, chains whose status was not ok.
    pub tx_errors: u64,
    /// The first of those: (sequence number, raw status).
    pub first_tx_error: Option<(u64, u32)>,
}

/// The datagram device's driver (placeholder: never initialised).
pub struct DgramDevice;

impl DgramDevice {
    /// Sets up the device; the placeholder always fails.
    pub fn init(
        _opts: Options,
        _arena: &mut Arena,
        _max_payload: u32,
    ) -> Result<DgramDevice, InitError> {
        Err(InitError::NoDriver)
    }

    /// Whether VIRTIO_F_EVENT_IDX was negotiated.
    pub fn event_idx(&self) -> bool {
        false
    }

    /// Takes completed tx chains back; returns how many.
    pub fn tx_reap(&mut self) -> u32 {
        0
    }

    /// Free tx buffers.
    pub fn tx_free(&self) -> u32 {
        0
    }

    /// Sends a message (`fill` writes the payload into the pages it is given); `false` if no
    /// tx buffer is free.
    pub fn send(
        &mut self,
        _dst: u32,
        _seq: u64,
        _len: u32,
        _flags: u32,
        _fill: impl FnOnce(&[u64]),
    ) -> bool {
        false
    }

    /// The next received message, if any.
    pub fn recv(&mut self) -> Option<RxMsg> {
        None
    }

    /// Gives `msg`'s rx buffer back to the device.
    pub fn recycle(&mut self, _msg: &RxMsg) {}

    /// The driver's counters.
    pub fn stats(&self) -> DriverStats {
        DriverStats::default()
    }
}
