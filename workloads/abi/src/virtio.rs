//! The pageflip datagram device: a virtio-mmio device (virtio 1.2, modern interface, split
//! virtqueues) that carries messages between the VMs of a run, vsock-like: the VMM relays each
//! buffer from the sender's tx queue into a buffer of the receiver's rx queue (a copy).
//!
//! Register offsets and bits are those of the virtio 1.2 specification (4.2.2, 2.1, 6); they
//! are repeated here because guests are `no_std` and the VMM checks them against
//! `virtio-bindings` in a test.
//!
//! # Messages
//!
//! A tx chain is: device-readable bytes holding a [`DgramHeader`] followed by `len` payload
//! bytes (split over any number of descriptors), then one device-writable descriptor of at
//! least 4 bytes where the device writes a [`TxStatus`] (like virtio-blk's status byte). Used
//! length of a tx chain: 4 if the status was written, 0 if the chain was dropped.
//!
//! An rx chain is device-writable: the device writes a [`DgramHeader`] (with `src` set by the
//! device, never by the sender) followed by the payload; used length = header + payload.

/// GPA of the virtio-mmio register window (one page) of a VM's datagram device, present when
/// the run's transport is virtio ([`crate::BootInfo::transport`]).
pub const VIRTIO_MMIO_GPA: u64 = crate::MMIO_BASE + 0x1000;
/// Size of the register window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;

/// `MagicValue` register: "virt".
pub const REG_MAGIC_VALUE: u64 = 0x000;
/// `Version` register: 2 (the modern interface).
pub const REG_VERSION: u64 = 0x004;
/// `DeviceID` register.
pub const REG_DEVICE_ID: u64 = 0x008;
/// `VendorID` register.
pub const REG_VENDOR_ID: u64 = 0x00c;
/// `DeviceFeatures` register (32 bits of the word selected by `DeviceFeaturesSel`).
pub const REG_DEVICE_FEATURES: u64 = 0x010;
/// `DeviceFeaturesSel` register.
pub const REG_DEVICE_FEATURES_SEL: u64 = 0x014;
/// `DriverFeatures` register.
pub const REG_DRIVER_FEATURES: u64 = 0x020;
/// `DriverFeaturesSel` register.
pub const REG_DRIVER_FEATURES_SEL: u64 = 0x024;
/// `QueueSel` register.
pub const REG_QUEUE_SEL: u64 = 0x030;
/// `QueueNumMax` register.
pub const REG_QUEUE_NUM_MAX: u64 = 0x034;
/// `QueueNum` register.
pub const REG_QUEUE_NUM: u64 = 0x038;
/// `QueueReady` register.
pub const REG_QUEUE_READY: u64 = 0x044;
/// `QueueNotify` register: the driver writes a queue index to notify the device.
pub const REG_QUEUE_NOTIFY: u64 = 0x050;
/// `InterruptStatus` register.
pub const REG_INTERRUPT_STATUS: u64 = 0x060;
/// `InterruptACK` register.
pub const REG_INTERRUPT_ACK: u64 = 0x064;
/// `Status` register (device status field).
pub const REG_STATUS: u64 = 0x070;
/// `QueueDescLow` register.
pub const REG_QUEUE_DESC_LOW: u64 = 0x080;
/// `QueueDescHigh` register.
pub const REG_QUEUE_DESC_HIGH: u64 = 0x084;
/// `QueueDriverLow` register (the available ring).
pub const REG_QUEUE_DRIVER_LOW: u64 = 0x090;
/// `QueueDriverHigh` register.
pub const REG_QUEUE_DRIVER_HIGH: u64 = 0x094;
/// `QueueDeviceLow` register (the used ring).
pub const REG_QUEUE_DEVICE_LOW: u64 = 0x0a0;
/// `QueueDeviceHigh` register.
pub const REG_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
/// `ConfigGeneration` register.
pub const REG_CONFIG_GENERATION: u64 = 0x0fc;
/// Start of the device-specific configuration space ([`DgramConfig`]).
pub const REG_CONFIG: u64 = 0x100;

/// Value of `MagicValue`: "virt" in little-endian bytes.
pub const MAGIC: u32 = 0x7472_6976;
/// Value of `Version` for the modern (virtio 1.x) interface.
pub const VERSION: u32 = 2;
/// `DeviceID` of the pageflip datagram device. Not assigned by the virtio specification
/// (assigned IDs are below 64); chosen for this experimental device.
pub const DEVICE_ID: u32 = 0xf0;
/// `VendorID`: "PFLP" in little-endian bytes.
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"PFLP");

/// Device status bit ACKNOWLEDGE (2.1).
pub const STATUS_ACKNOWLEDGE: u32 = 1;
/// Device status bit DRIVER.
pub const STATUS_DRIVER: u32 = 2;
/// Device status bit DRIVER_OK.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Device status bit FEATURES_OK.
pub const STATUS_FEATURES_OK: u32 = 8;
/// Device status bit DEVICE_NEEDS_RESET.
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 64;
/// Device status bit FAILED.
pub const STATUS_FAILED: u32 = 128;

/// Feature bit VIRTIO_F_EVENT_IDX (29): `used_event` / `avail_event` suppression.
pub const F_EVENT_IDX: u64 = 1 << 29;
/// Feature bit VIRTIO_F_VERSION_1 (32): the modern interface; required.
pub const F_VERSION_1: u64 = 1 << 32;
/// Every feature the device offers.
pub const DEVICE_FEATURES: u64 = F_VERSION_1 | F_EVENT_IDX;

/// Queue index of the receive queue.
pub const RX_QUEUE: u32 = 0;
/// Queue index of the transmit queue.
pub const TX_QUEUE: u32 = 1;
/// Number of queues.
pub const NUM_QUEUES: u32 = 2;
/// `QueueNumMax` of both queues.
pub const QUEUE_NUM_MAX: u32 = 256;

/// Descriptor flag NEXT (2.7.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag WRITE: device-writable.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag INDIRECT (2.7.5.3): the buffer is a table of descriptors. The device does
/// not offer `VIRTIO_F_INDIRECT_DESC`: a chain with this flag is refused (bad-chain).
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available-ring flag NO_INTERRUPT (without EVENT_IDX).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag NO_NOTIFY (without EVENT_IDX).
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// Largest payload of one message, in bytes.
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// The device-specific configuration space, read-only, at [`REG_CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DgramConfig {
    /// This VM's id (the `src` of what it sends).
    pub vm_id: u32,
    /// Number of VMs in the run (valid destinations are `0..num_vms` except `vm_id`).
    pub num_vms: u32,
    /// [`MAX_PAYLOAD`].
    pub max_payload: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// The header in front of every message, little-endian.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DgramHeader {
    /// Sequence number, chosen by the sender, delivered unchanged.
    pub seq: u64,
    /// Source VM: ignored on tx; written by the device on rx.
    pub src: u32,
    /// Destination VM.
    pub dst: u32,
    /// Payload bytes after the header.
    pub len: u32,
    /// Flags, delivered unchanged (none defined).
    pub flags: u32,
}

/// Size of [`DgramHeader`] in bytes.
pub const HEADER_SIZE: u32 = core::mem::size_of::<DgramHeader>() as u32;
const _: () = assert!(HEADER_SIZE == 24);
const _: () = assert!(core::mem::size_of::<DgramConfig>() == 16);

/// What the device writes in the status descriptor of a tx chain.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Delivered into a buffer of the destination's rx queue.
    Ok = 0,
    /// `dst` is not another VM of the run.
    BadDestination = 1,
    /// `len` is above [`MAX_PAYLOAD`] or more than the chain's readable bytes after the header.
    BadLength = 2,
    /// The destination's rx buffer is smaller than header + payload (the message is dropped).
    TooBig = 3,
    /// The destination's device is not ready (not DRIVER_OK, or needs reset).
    DestinationDown = 4,
    /// The chain is malformed (no header; a descriptor outside the guest's memory
    /// `[IMAGE_BASE, mem_size)`, whose address + length overflows, or with
    /// `VIRTQ_DESC_F_INDIRECT`; lengths adding up to more than `u32::MAX`; readable after
    /// writable).
    BadChain = 5,
}

impl TxStatus {
    /// The status with value `v`.
    pub const fn from_u32(v: u32) -> Option<TxStatus> {
        Some(match v {
            0 => TxStatus::Ok,
            1 => TxStatus::BadDestination,
            2 => TxStatus::BadLength,
            3 => TxStatus::TooBig,
            4 => TxStatus::DestinationDown,
            5 => TxStatus::BadChain,
            _ => return None,
        })
    }

    /// Its name in logs and records.
    pub const fn name(self) -> &'static str {
        match self {
            TxStatus::Ok => "ok",
            TxStatus::BadDestination => "bad-destination",
            TxStatus::BadLength => "bad-length",
            TxStatus::TooBig => "too-big",
            TxStatus::DestinationDown => "destination-down",
            TxStatus::BadChain => "bad-chain",
        }
    }
}

/// `vring_need_event` of the specification (2.7.10): whether moving an index from `old` to
/// `new` passes `event`, so that the other side asked to be notified.
pub const fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_event_matches_the_spec() {
        // The first index past `event` asks for a notification, the ones after it do not.
        assert!(need_event(0, 1, 0));
        assert!(!need_event(5, 1, 0));
        assert!(need_event(5, 6, 0));
        assert!(!need_event(5, 7, 6));
        // Wrapping indices.
        assert!(need_event(u16::MAX, 0, u16::MAX));
        assert!(!need_event(3, 3, 2));
    }

    #[test]
    fn statuses_round_trip() {
        for v in 0..6 {
            assert_eq!(TxStatus::from_u32(v).map(|s| s as u32), Some(v));
        }
        assert_eq!(TxStatus::from_u32(6), None);
    }
}
