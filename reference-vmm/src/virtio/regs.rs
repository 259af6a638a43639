//! The virtio-mmio register file of one datagram device (virtio 1.2, 4.2.2) and its
//! initialization state machine (3.1): status, feature negotiation, queue setup, reset.
//! Queue state itself is virtio-queue's [`Queue`].

use pageflip_abi::virtio::{
    DgramConfig, DEVICE_FEATURES, DEVICE_ID, F_EVENT_IDX, F_VERSION_1, MAGIC, NUM_QUEUES,
    QUEUE_NUM_MAX, REG_CONFIG, REG_CONFIG_GENERATION, REG_DEVICE_FEATURES, REG_DEVICE_FEATURES_SEL,
    REG_DEVICE_ID, REG_DRIVER_FEATURES, REG_DRIVER_FEATURES_SEL, REG_INTERRUPT_ACK,
    REG_INTERRUPT_STATUS, REG_MAGIC_VALUE, REG_QUEUE_DESC_HIGH, REG_QUEUE_DESC_LOW,
    REG_QUEUE_DEVICE_HIGH, REG_QUEUE_DEVICE_LOW, REG_QUEUE_DRIVER_HIGH, REG_QUEUE_DRIVER_LOW,
    REG_QUEUE_NOTIFY, REG_QUEUE_NUM, REG_QUEUE_NUM_MAX, REG_QUEUE_READY, REG_QUEUE_SEL, REG_STATUS,
    REG_VENDOR_ID, REG_VERSION, STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, VENDOR_ID, VERSION,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::chain::{check_range, RangeError};
use crate::inject::Fault;

/// Size of the configuration space ([`DgramConfig`]).
const CONFIG_SIZE: u64 = std::mem::size_of::<DgramConfig>() as u64;

/// Status bits a driver may set.
const DRIVER_BITS: u32 =
    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK | STATUS_FAILED;

/// The register's name at `offset` in the window, for logs and guest errors.
pub fn register_name(offset: u64) -> &'static str {
    match offset {
        REG_MAGIC_VALUE => "MagicValue",
        REG_VERSION => "Version",
        REG_DEVICE_ID => "DeviceID",
        REG_VENDOR_ID => "VendorID",
        REG_DEVICE_FEATURES => "DeviceFeatures",
        REG_DEVICE_FEATURES_SEL => "DeviceFeaturesSel",
        REG_DRIVER_FEATURES => "DriverFeatures",
        REG_DRIVER_FEATURES_SEL => "DriverFeaturesSel",
        REG_QUEUE_SEL => "QueueSel",
        REG_QUEUE_NUM_MAX => "QueueNumMax",
        REG_QUEUE_NUM => "QueueNum",
        REG_QUEUE_READY => "QueueReady",
        REG_QUEUE_NOTIFY => "QueueNotify",
        REG_INTERRUPT_STATUS => "InterruptStatus",
        REG_INTERRUPT_ACK => "InterruptACK",
        REG_STATUS => "Status",
        REG_QUEUE_DESC_LOW => "QueueDescLow",
        REG_QUEUE_DESC_HIGH => "QueueDescHigh",
        REG_QUEUE_DRIVER_LOW => "QueueDriverLow",
        REG_QUEUE_DRIVER_HIGH => "QueueDriverHigh",
        REG_QUEUE_DEVICE_LOW => "QueueDeviceLow",
        REG_QUEUE_DEVICE_HIGH => "QueueDeviceHigh",
        REG_CONFIG_GENERATION => "ConfigGeneration",
        o if (REG_CONFIG..REG_CONFIG + CONFIG_SIZE).contains(&o) => "Config",
        _ => "unknown",
    }
}

/// Why a register access was refused (the guest's mistake; the access has no effect unless
/// said otherwise).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// Not a 4-byte access (or, in the config space, not 1, 2 or 4 bytes inside it).
    #[error("{0}-byte access; registers take 4-byte accesses, the config space 1, 2 or 4")]
    Size(usize),
    /// No register at this offset.
    #[error("no register at this offset")]
    NoRegister,
    /// A read of a write-only register.
    #[error("read of a write-only register")]
    WriteOnly,
    /// A write of a read-only register.
    #[error("write of a read-only register")]
    ReadOnly,
    /// A status write that clears bits (only writing 0 resets) or sets unknown bits.
    #[error("status {new:#x} after {old:#x}: bits may only be added (write 0 to reset)")]
    StatusBits {
        /// The status before.
        old: u32,
        /// The value written.
        new: u32,
    },
    /// A status bit set before the one it requires (3.1.1).
    #[error("status bit {bit:#x} set before {needs:#x}")]
    StatusOrder {
        /// The bit set.
        bit: u32,
        /// The bit it requires.
        needs: u32,
    },
    /// FEATURES_OK with features the device did not offer or without VERSION_1: the device
    /// leaves FEATURES_OK clear.
    #[error(
        "features {features:#x} refused: offered {offered:#x}, VERSION_1 required; FEATURES_OK stays clear"
    )]
    Features {
        /// What the driver asked for.
        features: u64,
        /// What the device offers.
        offered: u64,
    },
    /// A write to feature registers outside DRIVER..FEATURES_OK.
    #[error("driver features are writable only after DRIVER and before FEATURES_OK")]
    FeaturesState,
    /// A non-zero driver-features word above the second.
    #[error("driver features word {0} does not exist")]
    FeaturesWord(u32),
    /// A queue register written outside FEATURES_OK..DRIVER_OK or with the queue ready.
    #[error("queue registers are writable only after FEATURES_OK, before DRIVER_OK, with the queue not ready")]
    QueueState,
    /// A queue register of a queue that does not exist.
    #[error("no queue {0} (0 = rx, 1 = tx)")]
    NoQueue(u32),
    /// QueueNum not a power of two in `1..=QUEUE_NUM_MAX`.
    #[error("QueueNum {0} is not a power of two in 1..={QUEUE_NUM_MAX}")]
    QueueNum(u32),
    /// A misaligned ring address.
    #[error("ring address {0:#x} is misaligned (descriptors 16, driver area 2, device area 4)")]
    Align(u64),
    /// QueueReady=1 after a refused configuration write, or with rings virtio-queue finds
    /// invalid: the queue stays not ready.
    #[error("queue {0} is not valid (a configuration write was refused, or its rings are not in guest memory); QueueReady stays 0")]
    QueueInvalid(u32),
    /// QueueReady=1 with a ring that is not in the guest's own memory `[IMAGE_BASE,
    /// mem_size)`: the queue stays not ready.
    #[error("queue {queue}: the {ring} {error}; QueueReady stays 0")]
    RingRange {
        /// The queue.
        queue: u32,
        /// Which ring: `descriptor table`, `driver area` or `device area`.
        ring: &'static str,
        /// How it lies.
        error: RangeError,
    },
    /// QueueReady with a value other than 0 or 1.
    #[error("QueueReady value {0} is not 0 or 1")]
    ReadyValue(u32),
    /// A notification of a queue that does not exist or is not ready, or before DRIVER_OK.
    #[error("notify of queue {0}, which does not exist or is not ready (or before DRIVER_OK)")]
    Notify(u32),
}

/// What the device must do after a register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more.
    None,
    /// The driver notified queue `0` (an index below `NUM_QUEUES`, ready, after DRIVER_OK).
    Notify(u32),
    /// The driver reset the device (status 0).
    Reset,
    /// The driver set DRIVER_OK.
    DriverOk,
}

/// The register file of one device.
#[derive(Debug)]
pub struct Regs {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    /// The rx and tx queues.
    pub queues: [Queue; NUM_QUEUES as usize],
    config: DgramConfig,
    /// The injected fault, if any (`accept-unoffered-features`, `ignore-event-idx`).
    fault: Option<Fault>,
    /// The features of the last accepted FEATURES_OK, kept across resets.
    pub accepted_features: Option<u64>,
    /// Per queue: a configuration write was refused since the queue was last reset, so it
    /// may not become ready (the driver's configuration is not what it wrote).
    config_refused: [bool; NUM_QUEUES as usize],
}

fn new_queue() -> Queue {
    Queue::new(QUEUE_NUM_MAX as u16).expect("QUEUE_NUM_MAX is a valid queue size")
}

/// Checks that queue `sel`'s three rings (2.7: descriptor table 16 x size bytes, driver
/// area 6 + 2 x size, device area 6 + 8 x size) lie in the guest's own memory, in that order.
fn check_rings(q: &Queue, mem_size: u64, sel: u32) -> Result<(), AccessError> {
    let n = u64::from(q.size());
    for (ring, addr, len) in [
        ("descriptor table", q.desc_table(), 16 * n),
        ("driver area", q.avail_ring(), 6 + 2 * n),
        ("device area", q.used_ring(), 6 + 8 * n),
    ] {
        check_range(mem_size, addr, len).map_err(|error| AccessError::RingRange {
            queue: sel,
            ring,
            error,
        })?;
    }
    Ok(())
}

fn set_low(v: u64, low: u32) -> u64 {
    (v & !0xffff_ffff) | u64::from(low)
}

fn set_high(v: u64, high: u32) -> u64 {
    (v & 0xffff_ffff) | (u64::from(high) << 32)
}

impl Regs {
    /// The fault injected into this device, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault
    }

    /// A device in reset state with config `config` and the injected `fault`, if any.
    pub fn new(config: DgramConfig, fault: Option<Fault>) -> Regs {
        Regs {
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: [new_queue(), new_queue()],
            config,
            fault,
            accepted_features: None,
            config_refused: [false; NUM_QUEUES as usize],
        }
    }

    /// The device status.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Whether the device processes queues: DRIVER_OK, neither FAILED nor NEEDS_RESET.
    pub fn running(&self) -> bool {
        self.status & (STATUS_DRIVER_OK | STATUS_FAILED | STATUS_DEVICE_NEEDS_RESET)
            == STATUS_DRIVER_OK
    }

    /// Sets DEVICE_NEEDS_RESET: the device stops processing until the driver resets it.
    pub fn set_needs_reset(&mut self) {
        self.status |= STATUS_DEVICE_NEEDS_RESET;
    }

    /// Resets the device (status 0 written): registers and queues to their initial state.
    pub fn reset(&mut self) {
        let accepted = self.accepted_features;
        *self = Regs::new(self.config, self.fault);
        self.accepted_features = accepted;
    }

    /// A guest read of `size` bytes at `offset` in the window.
    pub fn read(&self, offset: u64, size: usize) -> Result<u32, AccessError> {
        if (REG_CONFIG..REG_CONFIG + CONFIG_SIZE).contains(&offset) {
            return self.read_config(offset - REG_CONFIG, size);
        }
        if size != 4 {
            return Err(AccessError::Size(size));
        }
        let q = self.queue_sel;
        Ok(match offset {
            REG_MAGIC_VALUE => MAGIC,
            REG_VERSION => VERSION,
            REG_DEVICE_ID => DEVICE_ID,
            REG_VENDOR_ID => VENDOR_ID,
            REG_DEVICE_FEATURES => match self.device_features_sel {
                0 => DEVICE_FEATURES as u32,
                1 => (DEVICE_FEATURES >> 32) as u32,
                _ => 0,
            },
            REG_QUEUE_NUM_MAX if q < NUM_QUEUES => QUEUE_NUM_MAX,
            REG_QUEUE_NUM_MAX => 0,
            REG_QUEUE_READY => self.queue(q).is_some_and(|q| q.ready()) as u32,
            REG_INTERRUPT_STATUS | REG_CONFIG_GENERATION => 0,
            REG_STATUS => self.status,
            REG_DEVICE_FEATURES_SEL
            | REG_DRIVER_FEATURES
            | REG_DRIVER_FEATURES_SEL
            | REG_QUEUE_SEL
            | REG_QUEUE_NUM
            | REG_QUEUE_NOTIFY
            | REG_INTERRUPT_ACK
            | REG_QUEUE_DESC_LOW
            | REG_QUEUE_DESC_HIGH
            | REG_QUEUE_DRIVER_LOW
            | REG_QUEUE_DRIVER_HIGH
            | REG_QUEUE_DEVICE_LOW
            | REG_QUEUE_DEVICE_HIGH => return Err(AccessError::WriteOnly),
            _ => return Err(AccessError::NoRegister),
        })
    }

    fn read_config(&self, at: u64, size: usize) -> Result<u32, AccessError> {
        if !matches!(size, 1 | 2 | 4) || at + size as u64 > CONFIG_SIZE {
            return Err(AccessError::Size(size));
        }
        let c = self.config;
        let bytes: Vec<u8> = [c.vm_id, c.num_vms, c.max_payload, c.reserved]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut v = [0u8; 4];
        v[..size].copy_from_slice(&bytes[at as usize..at as usize + size]);
        Ok(u32::from_le_bytes(v))
    }

    fn queue(&self, q: u32) -> Option<&Queue> {
        self.queues.get(q as usize)
    }

    /// Checks that `queue` may be notified: it exists, is ready, and the device runs.
    pub fn check_notify(&self, queue: u32) -> Result<(), AccessError> {
        let ready = self.queue(queue).is_some_and(|q| q.ready());
        if ready && self.status & STATUS_DRIVER_OK != 0 {
            Ok(())
        } else {
            Err(AccessError::Notify(queue))
        }
    }

    /// A guest write of `value` (`size` bytes) at `offset` in the window; `mem` is the
    /// device's view of the VM's memory and `mem_size` the VM's memory size (to validate
    /// queues).
    pub fn write(
        &mut self,
        offset: u64,
        size: usize,
        value: u32,
        mem: &GuestMemoryMmap,
        mem_size: u64,
    ) -> Result<Effect, AccessError> {
        if size != 4 {
            return Err(AccessError::Size(size));
        }
        match offset {
            REG_STATUS => return self.write_status(value),
            REG_QUEUE_NOTIFY => {
                if self.status & STATUS_DEVICE_NEEDS_RESET != 0 {
                    // The device ignores its queues until reset; not a new mistake.
                    return Ok(Effect::None);
                }
                self.check_notify(value)?;
                return Ok(Effect::Notify(value));
            }
            REG_DEVICE_FEATURES_SEL => self.device_features_sel = value,
            REG_DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            REG_DRIVER_FEATURES => self.write_driver_features(value)?,
            REG_QUEUE_SEL => self.queue_sel = value,
            REG_INTERRUPT_ACK => {}
            REG_QUEUE_NUM
            | REG_QUEUE_READY
            | REG_QUEUE_DESC_LOW
            | REG_QUEUE_DESC_HIGH
            | REG_QUEUE_DRIVER_LOW
            | REG_QUEUE_DRIVER_HIGH
            | REG_QUEUE_DEVICE_LOW
            | REG_QUEUE_DEVICE_HIGH => self.write_queue(offset, value, mem, mem_size)?,
            REG_MAGIC_VALUE
            | REG_VERSION
            | REG_DEVICE_ID
            | REG_VENDOR_ID
            | REG_DEVICE_FEATURES
            | REG_QUEUE_NUM_MAX
            | REG_INTERRUPT_STATUS
            | REG_CONFIG_GENERATION => return Err(AccessError::ReadOnly),
            o if (REG_CONFIG..REG_CONFIG + CONFIG_SIZE).contains(&o) => {
                return Err(AccessError::ReadOnly)
            }
            _ => return Err(AccessError::NoRegister),
        }
        Ok(Effect::None)
    }

    fn write_driver_features(&mut self, value: u32) -> Result<(), AccessError> {
        if self.status & STATUS_DRIVER == 0 || self.status & STATUS_FEATURES_OK != 0 {
            return Err(AccessError::FeaturesState);
        }
        match self.driver_features_sel {
            0 => self.driver_features = set_low(self.driver_features, value),
            1 => self.driver_features = set_high(self.driver_features, value),
            _ if value == 0 => {}
            w => return Err(AccessError::FeaturesWord(w)),
        }
        Ok(())
    }

    fn write_status(&mut self, value: u32) -> Result<Effect, AccessError> {
        if value == 0 {
            self.reset();
            return Ok(Effect::Reset);
        }
        let old = self.status;
        // NEEDS_RESET belongs to the device: drivers write back what they read.
        let new = (value & !STATUS_DEVICE_NEEDS_RESET) | (old & STATUS_DEVICE_NEEDS_RESET);
        if new & !(DRIVER_BITS | STATUS_DEVICE_NEEDS_RESET) != 0 || old & !new != 0 {
            return Err(AccessError::StatusBits { old, new: value });
        }
        let added = new & !old;
        for (bit, needs) in [
            (STATUS_DRIVER, STATUS_ACKNOWLEDGE),
            (STATUS_FEATURES_OK, STATUS_DRIVER),
            (STATUS_DRIVER_OK, STATUS_FEATURES_OK),
        ] {
            if added & bit != 0 && new & needs == 0 {
                return Err(AccessError::StatusOrder { bit, needs });
            }
        }
        if added & STATUS_FEATURES_OK != 0 {
            let f = self.driver_features;
            let ok = f & !DEVICE_FEATURES == 0 && f & F_VERSION_1 != 0;
            if !ok && self.fault != Some(Fault::AcceptUnofferedFeatures) {
                self.status = new & !STATUS_FEATURES_OK;
                return Err(AccessError::Features {
                    features: f,
                    offered: DEVICE_FEATURES,
                });
            }
            self.accepted_features = Some(f);
            // The `ignore-event-idx` fault: the queues work as if EVENT_IDX were not
            // negotiated (suppression by the used ring's flags, which such a driver ignores).
            let event_idx = f & F_EVENT_IDX != 0 && self.fault != Some(Fault::IgnoreEventIdx);
            for q in &mut self.queues {
                q.set_event_idx(event_idx);
            }
        }
        self.status = new;
        Ok(if added & STATUS_DRIVER_OK != 0 {
            Effect::DriverOk
        } else {
            Effect::None
        })
    }

    fn write_queue(
        &mut self,
        offset: u64,
        value: u32,
        mem: &GuestMemoryMmap,
        mem_size: u64,
    ) -> Result<(), AccessError> {
        let sel = self.queue_sel;
        let setup = self.status & STATUS_FEATURES_OK != 0 && self.status & STATUS_DRIVER_OK == 0;
        let q = self
            .queues
            .get_mut(sel as usize)
            .ok_or(AccessError::NoQueue(sel))?;
        if offset == REG_QUEUE_READY && value == 0 && !q.ready() {
            return Ok(());
        }
        if !setup || q.ready() {
            return Err(AccessError::QueueState);
        }
        let refused = &mut self.config_refused[sel as usize];
        let result = Self::configure(q, offset, value, (mem, mem_size), *refused, sel);
        if result.is_err() && offset != REG_QUEUE_READY {
            *refused = true;
        }
        result
    }

    /// Applies one configuration write to queue `q` (`sel`), with `(mem, mem_size)` the
    /// device's view and the VM's memory size; `refused`: an earlier one was refused, so
    /// QueueReady = 1 is too.
    fn configure(
        q: &mut Queue,
        offset: u64,
        value: u32,
        (mem, mem_size): (&GuestMemoryMmap, u64),
        refused: bool,
        sel: u32,
    ) -> Result<(), AccessError> {
        let align =
            |r: Result<(), virtio_queue::Error>, a: u64| r.map_err(|_| AccessError::Align(a));
        match offset {
            REG_QUEUE_NUM => {
                let size = u16::try_from(value).map_err(|_| AccessError::QueueNum(value))?;
                q.try_set_size(size)
                    .map_err(|_| AccessError::QueueNum(value))?;
            }
            REG_QUEUE_READY if value == 1 && refused => {
                return Err(AccessError::QueueInvalid(sel));
            }
            REG_QUEUE_READY if value == 1 => {
                check_rings(q, mem_size, sel)?;
                q.set_ready(true);
                if !q.is_valid(mem) {
                    q.set_ready(false);
                    return Err(AccessError::QueueInvalid(sel));
                }
            }
            REG_QUEUE_READY => return Err(AccessError::ReadyValue(value)),
            REG_QUEUE_DESC_LOW | REG_QUEUE_DESC_HIGH => {
                let a = if offset == REG_QUEUE_DESC_LOW {
                    set_low(q.desc_table(), value)
                } else {
                    set_high(q.desc_table(), value)
                };
                align(q.try_set_desc_table_address(GuestAddress(a)), a)?;
            }
            REG_QUEUE_DRIVER_LOW | REG_QUEUE_DRIVER_HIGH => {
                let a = if offset == REG_QUEUE_DRIVER_LOW {
                    set_low(q.avail_ring(), value)
                } else {
                    set_high(q.avail_ring(), value)
                };
                align(q.try_set_avail_ring_address(GuestAddress(a)), a)?;
            }
            _ => {
                let a = if offset == REG_QUEUE_DEVICE_LOW {
                    set_low(q.used_ring(), value)
                } else {
                    set_high(q.used_ring(), value)
                };
                align(q.try_set_used_ring_address(GuestAddress(a)), a)?;
            }
        }
        Ok(())
    }
}
