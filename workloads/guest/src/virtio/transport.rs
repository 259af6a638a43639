//! The virtio-mmio register window of the datagram device, and the initialisation steps of
//! virtio 1.2 3.1.1 one by one.

use pageflip_abi::virtio::{
    DgramConfig, DEVICE_ID, F_VERSION_1, MAGIC, REG_CONFIG, REG_CONFIG_GENERATION,
    REG_DEVICE_FEATURES, REG_DEVICE_FEATURES_SEL, REG_DEVICE_ID, REG_DRIVER_FEATURES,
    REG_DRIVER_FEATURES_SEL, REG_MAGIC_VALUE, REG_QUEUE_NOTIFY, REG_QUEUE_SEL, REG_STATUS,
    REG_VENDOR_ID, REG_VERSION, STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, VERSION,
};
use pageflip_abi::TRANSPORT_VIRTIO;

use super::{InitError, RESET_TIMEOUT_MS};
use crate::mmio::{virtio_read32, virtio_write32};
use crate::tsc::Deadline;

/// Attempts at reading a consistent configuration space (`ConfigGeneration` unchanged).
const CONFIG_ATTEMPTS: u32 = 100;

/// What the identification registers hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `MagicValue`.
    pub magic: u32,
    /// `Version`.
    pub version: u32,
    /// `DeviceID`.
    pub device_id: u32,
    /// `VendorID`.
    pub vendor_id: u32,
}

/// The virtio-mmio register window of this VM's datagram device. Every method is one or a
/// few register accesses, each an exit to the VMM.
#[derive(Debug)]
pub struct Transport {
    _private: (),
}

impl Transport {
    /// The device's window, if the run's transport is virtio ([`InitError::NotVirtio`]
    /// otherwise: without a device, touching the window stops the VM). Several `Transport`s
    /// may exist; they are the same registers.
    pub fn new() -> Result<Transport, InitError> {
        let transport = crate::boot_info().transport;
        if transport != TRANSPORT_VIRTIO {
            return Err(InitError::NotVirtio { transport });
        }
        Ok(Transport { _private: () })
    }

    /// Reads the 32-bit register at `reg` (a `REG_*` offset).
    #[inline]
    pub fn read(&self, reg: u64) -> u32 {
        virtio_read32(reg)
    }

    /// Writes the 32-bit register at `reg` (a `REG_*` offset); ordered after every memory
    /// access before it.
    #[inline]
    pub fn write(&self, reg: u64, value: u32) {
        virtio_write32(reg, value);
    }

    /// The identification registers.
    pub fn identity(&self) -> Identity {
        Identity {
            magic: self.read(REG_MAGIC_VALUE),
            version: self.read(REG_VERSION),
            device_id: self.read(REG_DEVICE_ID),
            vendor_id: self.read(REG_VENDOR_ID),
        }
    }

    /// Checks `MagicValue`, `Version` and `DeviceID` (in this order; `VendorID` is not
    /// checked: drivers match on the device id).
    pub fn identify(&self) -> Result<Identity, InitError> {
        let id = self.identity();
        if id.magic != MAGIC {
            return Err(InitError::NoDevice { magic: id.magic });
        }
        if id.version != VERSION {
            return Err(InitError::Version(id.version));
        }
        if id.device_id != DEVICE_ID {
            return Err(InitError::DeviceId(id.device_id));
        }
        Ok(id)
    }

    /// The device status register.
    #[inline]
    pub fn status(&self) -> u32 {
        self.read(REG_STATUS)
    }

    /// Writes the device status register.
    #[inline]
    pub fn set_status(&self, status: u32) {
        self.write(REG_STATUS, status);
    }

    /// Reads the status register and writes it back with `bits` added.
    pub fn add_status(&self, bits: u32) {
        let s = self.status();
        self.set_status(s | bits);
    }

    /// Resets the device: writes 0 to the status register and waits (at most
    /// [`RESET_TIMEOUT_MS`]) until it reads 0.
    pub fn reset(&self) -> Result<(), InitError> {
        self.set_status(0);
        let deadline = Deadline::after_ms(RESET_TIMEOUT_MS);
        loop {
            let status = self.status();
            if status == 0 {
                return Ok(());
            }
            if deadline.expired() {
                return Err(InitError::ResetTimeout { status });
            }
            core::hint::spin_loop();
        }
    }

    /// Sets ACKNOWLEDGE, then DRIVER (two status writes, steps 2 and 3).
    pub fn acknowledge(&self) {
        self.set_status(STATUS_ACKNOWLEDGE);
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    }

    /// The device's 64 feature bits (`DeviceFeatures` words 0 and 1).
    pub fn device_features(&self) -> u64 {
        self.write(REG_DEVICE_FEATURES_SEL, 0);
        let lo = self.read(REG_DEVICE_FEATURES);
        self.write(REG_DEVICE_FEATURES_SEL, 1);
        let hi = self.read(REG_DEVICE_FEATURES);
        (u64::from(hi) << 32) | u64::from(lo)
    }

    /// Writes the driver's 64 feature bits (`DriverFeatures` words 0 and 1).
    pub fn write_driver_features(&self, features: u64) {
        self.write(REG_DRIVER_FEATURES_SEL, 0);
        self.write(REG_DRIVER_FEATURES, features as u32);
        self.write(REG_DRIVER_FEATURES_SEL, 1);
        self.write(REG_DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// Steps 4 to 6: writes `wanted` as the driver's features (whatever the device offers:
    /// probes write features the device must refuse), adds FEATURES_OK and reads the status
    /// back: [`InitError::FeaturesRefused`] unless FEATURES_OK is still set.
    pub fn negotiate(&self, wanted: u64) -> Result<(), InitError> {
        let offered = self.device_features();
        self.write_driver_features(wanted);
        self.add_status(STATUS_FEATURES_OK);
        if self.status() & STATUS_FEATURES_OK == 0 {
            return Err(InitError::FeaturesRefused { offered, wanted });
        }
        Ok(())
    }

    /// The features [`crate::virtio::DgramDevice::init`] asks for: VERSION_1, and `extra`
    /// (e.g. EVENT_IDX) where the device offers it. [`InitError::NoVersion1`] if the device
    /// does not offer VERSION_1.
    pub fn features_to_ask(&self, extra: u64) -> Result<u64, InitError> {
        let offered = self.device_features();
        if offered & F_VERSION_1 == 0 {
            return Err(InitError::NoVersion1 { offered });
        }
        Ok(F_VERSION_1 | (extra & offered))
    }

    /// Step 8: adds DRIVER_OK and reads the status back: [`InitError::DriverOkRefused`] if
    /// DRIVER_OK is not set or DEVICE_NEEDS_RESET or FAILED is.
    pub fn driver_ok(&self) -> Result<(), InitError> {
        self.add_status(STATUS_DRIVER_OK);
        let status = self.status();
        if status & STATUS_DRIVER_OK == 0
            || status & (STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED) != 0
        {
            return Err(InitError::DriverOkRefused { status });
        }
        Ok(())
    }

    /// Selects queue `queue` (`QueueSel`) for the queue registers.
    #[inline]
    pub fn select_queue(&self, queue: u32) {
        self.write(REG_QUEUE_SEL, queue);
    }

    /// Notifies the device of new buffers in queue `queue` (`QueueNotify`).
    #[inline]
    pub fn notify(&self, queue: u32) {
        self.write(REG_QUEUE_NOTIFY, queue);
    }

    /// The device-specific configuration space, read with 32-bit accesses until
    /// `ConfigGeneration` is the same before and after (at most 100 attempts; the last read
    /// is returned either way).
    pub fn config(&self) -> DgramConfig {
        let mut config = DgramConfig {
            vm_id: 0,
            num_vms: 0,
            max_payload: 0,
            reserved: 0,
        };
        for _ in 0..CONFIG_ATTEMPTS {
            let before = self.read(REG_CONFIG_GENERATION);
            config = DgramConfig {
                vm_id: self.read(REG_CONFIG),
                num_vms: self.read(REG_CONFIG + 4),
                max_payload: self.read(REG_CONFIG + 8),
                reserved: self.read(REG_CONFIG + 12),
            };
            if self.read(REG_CONFIG_GENERATION) == before {
                break;
            }
        }
        config
    }
}
