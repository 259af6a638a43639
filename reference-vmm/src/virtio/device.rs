//! One VM's datagram device: its register file, the memory it reaches, its counters and the
//! guest errors it recorded.

use std::sync::Arc;

use pageflip_abi::virtio::{
    DgramConfig, F_EVENT_IDX, MAX_PAYLOAD, RX_QUEUE, TX_QUEUE, VIRTQ_AVAIL_F_NO_INTERRUPT,
};
use pageflip_abi::IMAGE_BASE;
use pageflip_interface::{TransportVmReport, VirtioVmReport};
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::regs::{AccessError, Regs};
use crate::guest_errors::GuestErrorLog;
use crate::inject::Fault;
use crate::inject::Slowdown;
use crate::memory::{GuestRam, MemoryError};

/// Guest-error status of a refused register access or notification.
pub const REFUSED: &str = "refused";
/// Guest-error status of a tx chain dropped without a status (no writable status buffer).
pub const DROPPED: &str = "dropped";
/// Guest-error status of a broken queue: the device set DEVICE_NEEDS_RESET.
pub const NEEDS_RESET: &str = "needs-reset";

/// The datagram device of one VM.
#[derive(Debug)]
pub struct VirtioDevice {
    /// The VM's id.
    pub id: u32,
    /// The VM's name, for logs.
    pub name: String,
    /// The VM's memory.
    pub ram: Arc<GuestRam>,
    /// The device's view of it: only the guest's own memory, `[IMAGE_BASE, mem_size)`, the
    /// same pages mapped again. Every queue and buffer access of the device goes through
    /// it, so the device can neither read nor write the VMM's reserved range below
    /// `IMAGE_BASE` (GDT, page tables, boot info, control structures, stack), whatever the
    /// guest writes into its rings (`docs/abi.md`, "Bad input").
    pub view: Arc<GuestMemoryMmap>,
    /// Registers and queues.
    pub regs: Regs,
    /// The VM whose rx buffers the head of this device's tx queue waits for.
    pub blocked_on: Option<u32>,
    /// Where the next round-robin over the senders held back for this VM's rx buffers
    /// starts (so that no sender always comes last).
    pub next_waiter: usize,
    /// Used entries added per queue since the last used-buffer notification decision.
    pub used_pending: [bool; 2],
    /// Transport counters (`virtio` left None; see [`VirtioDevice::report`]).
    pub counters: TransportVmReport,
    /// Virtio counters.
    pub virtio: VirtioVmReport,
    /// Guest errors of this device.
    pub errors: GuestErrorLog,
    /// The injected slowdown, spent on every tx buffer of this device that is relayed.
    pub slowdown: Option<Slowdown>,
}

impl VirtioDevice {
    /// The device of VM `id` of `num_vms`, notified as `notify` says, with the injected
    /// `fault`, if any; fails if its view of the memory cannot be mapped.
    pub fn new(
        id: u32,
        name: String,
        ram: Arc<GuestRam>,
        num_vms: u32,
        notify: &str,
        fault: Option<Fault>,
    ) -> Result<VirtioDevice, MemoryError> {
        let config = DgramConfig {
            vm_id: id,
            num_vms,
            max_payload: MAX_PAYLOAD,
            reserved: 0,
        };
        let view = Arc::new(ram.view_from(IMAGE_BASE)?);
        Ok(VirtioDevice {
            id,
            name,
            ram,
            view,
            regs: Regs::new(config, fault),
            blocked_on: None,
            next_waiter: 0,
            used_pending: [false; 2],
            counters: TransportVmReport::default(),
            virtio: VirtioVmReport {
                notify: notify.into(),
                ..Default::default()
            },
            errors: GuestErrorLog::default(),
            slowdown: None,
        })
    }

    /// The VM's memory size (the device's view ends there).
    pub fn mem_size(&self) -> u64 {
        self.ram.size()
    }

    /// Records a guest error about `what` (`virtio:<what>`).
    pub fn guest_error(&mut self, what: &str, offset: Option<u64>, status: &str, detail: String) {
        self.errors.record(
            &self.name,
            &format!("virtio:{what}"),
            offset,
            status,
            detail,
        );
    }

    /// Records a refused register access.
    pub fn refuse(&mut self, register: &str, offset: u64, e: &AccessError) {
        self.guest_error(register, Some(offset), REFUSED, e.to_string());
    }

    /// The device found a queue broken (`what`: `tx` or `rx`): sets DEVICE_NEEDS_RESET and
    /// stops processing until the driver resets it.
    pub fn needs_reset(&mut self, what: &str, detail: String) {
        self.regs.set_needs_reset();
        self.blocked_on = None;
        self.virtio.needs_reset += 1;
        self.guest_error(what, None, NEEDS_RESET, detail);
    }

    /// The driver reset the device.
    pub fn reset(&mut self) {
        self.blocked_on = None;
        self.used_pending = [false; 2];
        self.virtio.resets += 1;
    }

    /// Counts a driver notification of `queue`.
    pub fn count_notifications(&mut self, queue: u32, n: u64) {
        match queue {
            RX_QUEUE => self.virtio.rx_notifications += n,
            TX_QUEUE => self.virtio.tx_notifications += n,
            _ => {}
        }
    }

    /// Decides the used-buffer notifications of the queues that got used entries since the
    /// last decision, and counts them (sent or suppressed), by the specification's 2.7.10:
    /// with EVENT_IDX the driver's `used_event` decides (virtio-queue's
    /// `needs_notification`), without it the available ring's `VIRTQ_AVAIL_F_NO_INTERRUPT`
    /// flag (which virtio-queue 0.18 does not read).
    pub fn flush_used_notifications(&mut self) {
        for q in 0..2 {
            if !std::mem::take(&mut self.used_pending[q]) {
                continue;
            }
            let mem = &*self.view;
            let queue = &mut self.regs.queues[q];
            let decision = if queue.event_idx_enabled() {
                queue.needs_notification(mem).map_err(|e| e.to_string())
            } else {
                mem.read_obj::<u16>(GuestAddress(queue.avail_ring()))
                    .map(|flags| u16::from_le(flags) & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
                    .map_err(|e| e.to_string())
            };
            match decision {
                Ok(true) => self.virtio.used_notifications += 1,
                Ok(false) => self.virtio.used_suppressed += 1,
                Err(e) => log::warn!(
                    "{}: reading the driver's notification suppression of queue {q}: {e}",
                    self.name
                ),
            }
        }
    }

    /// This device's transport report.
    pub fn report(&self) -> TransportVmReport {
        let features = self.regs.accepted_features;
        TransportVmReport {
            virtio: Some(VirtioVmReport {
                features,
                event_idx: features.is_some_and(|f| f & F_EVENT_IDX != 0),
                ..self.virtio.clone()
            }),
            ..self.counters.clone()
        }
    }
}
