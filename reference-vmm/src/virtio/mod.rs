//! The virtio datagram device (`pageflip_abi::virtio`): one virtio-mmio device (virtio 1.2,
//! modern) per VM at `VIRTIO_MMIO_GPA`, with an rx and a tx queue; the VMM relays each tx
//! buffer into a buffer of the destination's rx queue.
//!
//! - [`regs`]: the register file and initialization state machine of one device;
//! - [`device`]: one VM's device: registers, counters, guest errors;
//! - [`relay`]: the copy from tx to rx, over virtio-queue;
//! - [`backend`]: the ioeventfd thread that serves notifications without exits;
//! - `mock` (feature `test-utils`, for tests and benchmarks): the driver's side, without KVM;
//! - this module: the [`VirtioHub`], every device of the run behind one mutex, entered by the
//!   vCPU threads (register accesses, and notifications in `userspace` mode) and by the
//!   backend thread (`ioeventfd` mode).

pub mod backend;
pub mod chain;
pub mod device;
#[cfg(feature = "test-utils")]
pub mod mock;
pub mod regs;
pub mod relay;
pub mod transport;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::guest_errors::GuestErrorLog;
use pageflip_abi::virtio::{RX_QUEUE, TX_QUEUE, VIRTIO_MMIO_GPA, VIRTIO_MMIO_SIZE};
use pageflip_interface::{NotifyMode, TransportReport};

use crate::inject::Fault;
use crate::inject::Slowdown;
use crate::memory::{GuestRam, MemoryError};
use device::VirtioDevice;
use regs::Effect;

/// Every datagram device of a run.
#[derive(Debug)]
pub struct VirtioHub {
    devices: Mutex<Vec<VirtioDevice>>,
    fault: Option<Fault>,
}

impl VirtioHub {
    /// The devices of the VMs `vms` (name and memory, in run order), notified as `notify`
    /// says; `fault` is the injected fault, if any. Fails if a device's view of its VM's
    /// memory cannot be mapped.
    pub fn new(
        vms: Vec<(String, Arc<GuestRam>)>,
        notify: NotifyMode,
        fault: Option<Fault>,
    ) -> Result<VirtioHub, MemoryError> {
        let n = vms.len() as u32;
        let devices = vms
            .into_iter()
            .enumerate()
            .map(|(i, (name, ram))| VirtioDevice::new(i as u32, name, ram, n, notify.name(), fault))
            .collect::<Result<_, _>>()?;
        Ok(VirtioHub {
            devices: Mutex::new(devices),
            fault,
        })
    }

    /// The same devices with an injected slowdown (`--inject-slowdown-us`): the relay
    /// busy-waits on every tx buffer it relays, inside the interval counted as `move_ns`.
    pub fn with_slowdown(mut self, slowdown: Option<Slowdown>) -> VirtioHub {
        for dev in self.devices.get_mut().unwrap_or_else(|e| e.into_inner()) {
            dev.slowdown = slowdown;
        }
        self
    }

    /// Whether `gpa` lies in the register window of the devices.
    pub fn contains(gpa: u64) -> bool {
        (VIRTIO_MMIO_GPA..VIRTIO_MMIO_GPA + VIRTIO_MMIO_SIZE).contains(&gpa)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<VirtioDevice>> {
        // A panic while holding the lock leaves counters, not memory, inconsistent.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// VM `vm`'s guest reads `data.len()` bytes at `offset` in the window.
    pub fn mmio_read(&self, vm: usize, offset: u64, data: &mut [u8]) {
        let mut devs = self.lock();
        let dev = &mut devs[vm];
        let value = dev.regs.read(offset, data.len()).unwrap_or_else(|e| {
            dev.refuse(regs::register_name(offset), offset, &e);
            0
        });
        let bytes = u64::from(value).to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    /// VM `vm`'s guest writes `data` at `offset` in the window.
    pub fn mmio_write(&self, vm: usize, offset: u64, data: &[u8]) {
        let mut devs = self.lock();
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        let value = u32::from_le_bytes(v);
        let (view, mem_size) = (devs[vm].view.clone(), devs[vm].mem_size());
        match devs[vm]
            .regs
            .write(offset, data.len(), value, &view, mem_size)
        {
            Ok(Effect::Notify(q)) => {
                devs[vm].count_notifications(q, 1);
                self.process(&mut devs, vm, q);
            }
            Ok(Effect::Reset) => {
                devs[vm].reset();
                // Senders held back for this VM now find it down.
                relay::rx_added(&mut devs, vm, self.fault);
            }
            Ok(Effect::None | Effect::DriverOk) => {}
            Err(e) => devs[vm].refuse(regs::register_name(offset), offset, &e),
        }
        flush(&mut devs);
    }

    /// `count` notifications of queue `queue` of VM `vm` arrived through its ioeventfd. A tx
    /// queue is left with notifications off once emptied: the backend polls it for a while,
    /// then calls [`VirtioHub::rearm`].
    pub fn notified(&self, vm: usize, queue: u32, count: u64) {
        let mut devs = self.lock();
        devs[vm].count_notifications(queue, count);
        if devs[vm].regs.status() & pageflip_abi::virtio::STATUS_DEVICE_NEEDS_RESET != 0 {
            return;
        }
        if let Err(e) = devs[vm].regs.check_notify(queue) {
            let offset = pageflip_abi::virtio::REG_QUEUE_NOTIFY;
            devs[vm].refuse(regs::register_name(offset), offset, &e);
            return;
        }
        match queue {
            TX_QUEUE => relay::process_tx_with(&mut devs, vm, self.fault, false),
            RX_QUEUE => relay::rx_added_with(&mut devs, vm, self.fault, false),
            _ => {}
        }
        flush(&mut devs);
    }

    /// The ioeventfd backend's busy poll: processes every running device's tx queue without
    /// re-arming notifications; returns the tx chains consumed.
    pub fn poll(&self) -> u64 {
        let mut devs = self.lock();
        let before: u64 = devs.iter().map(|d| d.virtio.tx_chains).sum();
        for vm in 0..devs.len() {
            if devs[vm].blocked_on.is_none() {
                relay::process_tx_with(&mut devs, vm, self.fault, false);
            }
        }
        flush(&mut devs);
        devs.iter().map(|d| d.virtio.tx_chains).sum::<u64>() - before
    }

    /// Ends a busy poll: re-arms every tx queue's notifications (processing what arrived
    /// meanwhile), so that the next buffer a driver adds notifies the device.
    pub fn rearm(&self) {
        let mut devs = self.lock();
        for vm in 0..devs.len() {
            if devs[vm].blocked_on.is_none() {
                relay::process_tx(&mut devs, vm, self.fault);
            }
        }
        flush(&mut devs);
    }

    fn process(&self, devs: &mut [VirtioDevice], vm: usize, queue: u32) {
        match queue {
            TX_QUEUE => relay::process_tx(devs, vm, self.fault),
            RX_QUEUE => relay::rx_added(devs, vm, self.fault),
            _ => {}
        }
    }

    /// The transport report of the run so far, of kind `kind` (the config's transport name).
    pub fn report(&self, kind: String) -> TransportReport {
        TransportReport {
            kind,
            vms: self.lock().iter().map(VirtioDevice::report).collect(),
            ownership: None,
            pre_fault: None,
        }
    }

    /// Takes the guest errors the device of VM `vm` recorded.
    pub fn take_guest_errors(&self, vm: usize) -> GuestErrorLog {
        std::mem::take(&mut self.lock()[vm].errors)
    }
}

/// Decides the used-buffer notifications of every device with new used entries.
fn flush(devs: &mut [VirtioDevice]) {
    for d in devs {
        d.flush_used_notifications();
    }
}
