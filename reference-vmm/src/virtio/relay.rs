//! The relay: moves each message from a sender's tx queue into a buffer of the receiver's rx
//! queue (a copy, as virtio-vsock does), completes the tx chain with a [`TxStatus`], and
//! holds a sender back while its receiver has no rx buffer. Every chain is first walked
//! and checked by the device ([`chain::walk`]); the queues and the copies are
//! virtio-queue's (`Queue`, `DescriptorChain`, `Reader`, `Writer`), over the device's view
//! of guest memory (`VirtioDevice::view`).

use std::io::{Read, Write};
use std::ops::Deref;
use std::time::Instant;

use pageflip_abi::virtio::{DgramHeader, TxStatus, HEADER_SIZE, MAX_PAYLOAD, RX_QUEUE, TX_QUEUE};
use virtio_queue::{DescriptorChain, QueueOwnedT, QueueT, Reader, Writer};
use vm_memory::{ByteValued, GuestMemory, GuestMemoryMmap};

use super::chain::{self, Broken, Walked};
use super::device::{VirtioDevice, DROPPED};
use crate::inject::Fault;

const RX: usize = RX_QUEUE as usize;
const TX: usize = TX_QUEUE as usize;
/// Every this many rx chains, the `drop-used-update` fault loses one.
const DROP_EVERY: u64 = 1000;

/// Walks chain `chain` of queue `q` of device `dev` ([`chain::walk`]) in `mem`.
fn walk_chain<M>(
    dev: &VirtioDevice,
    q: usize,
    mem: &GuestMemoryMmap,
    chain: &DescriptorChain<M>,
) -> Result<Walked, Broken>
where
    M: Deref,
    M::Target: GuestMemory,
{
    let queue = &dev.regs.queues[q];
    chain::walk(
        mem,
        queue.desc_table(),
        queue.size(),
        chain.head_index(),
        dev.mem_size(),
        dev.regs.fault() == Some(Fault::AcceptIndirect),
    )
}

/// Decodes a [`DgramHeader`] (the one codec: `ByteValued`; x86-64 hosts are little-endian,
/// as the ABI is).
fn parse_header(b: &[u8; HEADER_SIZE as usize]) -> DgramHeader {
    let mut h = DgramHeader::default();
    h.as_mut_slice().copy_from_slice(b);
    h
}

/// How one tx chain went.
enum Delivery {
    /// Copied into the receiver's buffer.
    Sent,
    /// Completed with this status (not ok), for this reason.
    Failed(TxStatus, String),
    /// The receiver has no rx buffer: the chain went back to the tx queue.
    Held,
    /// The chain went back to the tx queue and must be popped again now.
    Retry,
}

/// What processing one tx chain left.
enum Step {
    /// A chain was handled; look for the next.
    Next,
    /// The tx queue is empty.
    Empty,
    /// Stop: the sender is held back or its device needs reset.
    Stop,
}

/// Processes VM `s`'s tx queue with the standard notification-suppression loop: disable
/// notifications, process every chain, re-enable, and go on if more arrived meanwhile.
pub fn process_tx(devs: &mut [VirtioDevice], s: usize, fault: Option<Fault>) {
    process_tx_with(devs, s, fault, true)
}

/// Processes VM `s`'s tx queue; with `rearm` false it leaves notifications off at the end
/// (the ioeventfd backend's busy-poll window: it looks at the ring again itself).
pub fn process_tx_with(devs: &mut [VirtioDevice], s: usize, fault: Option<Fault>, rearm: bool) {
    let view = devs[s].view.clone();
    let mem = &*view;
    loop {
        if !devs[s].regs.running() || !devs[s].regs.queues[TX].ready() {
            return;
        }
        if let Err(e) = devs[s].regs.queues[TX].disable_notification(mem) {
            devs[s].needs_reset("tx", format!("writing the used ring: {e}"));
            return;
        }
        loop {
            match next_tx(devs, s, mem, fault) {
                Step::Next => {}
                Step::Empty => break,
                Step::Stop => return,
            }
        }
        if !rearm {
            return;
        }
        match devs[s].regs.queues[TX].enable_notification(mem) {
            Ok(true) => continue,
            Ok(false) => return,
            Err(e) => {
                devs[s].needs_reset("tx", format!("reading the available ring: {e}"));
                return;
            }
        }
    }
}

/// VM `d`'s driver added rx buffers: retries the senders held back for them; with none
/// waiting, turns `d`'s rx notifications off again (a sender that finds no buffer turns
/// them on).
pub fn rx_added(devs: &mut [VirtioDevice], d: usize, fault: Option<Fault>) {
    rx_added_with(devs, d, fault, true)
}

/// [`rx_added`]; with `rearm` false the senders' tx queues are left with notifications off.
///
/// The senders held back are served round-robin, one chain each per round, starting one
/// further each time, so that a receiver's buffers are shared fairly: no sender waits
/// behind the others for ever.
pub fn rx_added_with(devs: &mut [VirtioDevice], d: usize, fault: Option<Fault>, rearm: bool) {
    let n = devs.len();
    let start = devs[d].next_waiter % n;
    let mut active: Vec<usize> = (0..n)
        .map(|i| (start + i) % n)
        .filter(|&s| devs[s].blocked_on == Some(d as u32))
        .collect();
    if active.is_empty() {
        if devs[d].regs.running() && devs[d].regs.queues[RX].ready() {
            let view = devs[d].view.clone();
            if let Err(e) = devs[d].regs.queues[RX].disable_notification(&*view) {
                devs[d].needs_reset("rx", format!("writing the used ring: {e}"));
            }
        }
        return;
    }
    devs[d].next_waiter = start + 1;
    for &s in &active {
        devs[s].blocked_on = None;
    }
    while !active.is_empty() {
        let mut again = Vec::with_capacity(active.len());
        for s in active {
            if !devs[s].regs.running() || !devs[s].regs.queues[TX].ready() {
                continue;
            }
            let view = devs[s].view.clone();
            match next_tx(devs, s, &view, fault) {
                Step::Next => again.push(s),
                // Its ring is empty: finish as a notification would (re-arm, or go on if
                // more arrived meanwhile).
                Step::Empty => process_tx_with(devs, s, fault, rearm),
                Step::Stop => {}
            }
        }
        active = again;
    }
}

/// Whether another sender than `s` waits for VM `d`'s rx buffers: `s` then queues behind
/// it rather than taking the buffers first.
fn others_waiting(devs: &[VirtioDevice], s: usize, d: usize) -> bool {
    devs.iter()
        .enumerate()
        .any(|(t, dev)| t != s && dev.blocked_on == Some(d as u32))
}

/// Pops and handles one chain of `s`'s tx queue.
fn next_tx(
    devs: &mut [VirtioDevice],
    s: usize,
    mem: &GuestMemoryMmap,
    fault: Option<Fault>,
) -> Step {
    let popped = match devs[s].regs.queues[TX].iter(mem) {
        Ok(mut it) => it.next(),
        Err(e) => {
            devs[s].needs_reset("tx", format!("available ring: {e}"));
            return Step::Stop;
        }
    };
    let Some(chain) = popped else {
        return Step::Empty;
    };
    let head = chain.head_index();
    let walked = match walk_chain(&devs[s], TX, mem, &chain) {
        Ok(w) => w,
        Err(why) => {
            devs[s].needs_reset("tx", format!("chain at descriptor {head}: {why}"));
            return Step::Stop;
        }
    };
    // The status goes at the start of the chain's writable descriptors, as walked (the
    // first 4 bytes; virtio 1.2 2.7.4.2: readable, then writable).
    let status_ok = walked.writable_ok && walked.writable_bytes() >= 4;
    if !status_ok {
        let why = walked
            .refusal
            .map_or(String::new(), |r| format!(" (and {r})"));
        devs[s].guest_error(
            "tx",
            None,
            DROPPED,
            format!(
                "chain at descriptor {head} has no device-writable status buffer of 4 bytes in the guest's memory{why}; dropped, used length 0"
            ),
        );
        *devs[s].virtio.tx_errors.entry(DROPPED.into()).or_default() += 1;
        return complete_tx(devs, s, mem, head, 0);
    }
    let delivery = match &walked.refusal {
        None => deliver(devs, s, mem, chain, fault),
        Some(why) => Delivery::Failed(TxStatus::BadChain, why.to_string()),
    };
    let status = match delivery {
        Delivery::Sent => TxStatus::Ok,
        Delivery::Failed(status, detail) => {
            devs[s].guest_error(
                "tx",
                None,
                status.name(),
                format!("chain at descriptor {head}: {detail}"),
            );
            *devs[s]
                .virtio
                .tx_errors
                .entry(status.name().into())
                .or_default() += 1;
            status
        }
        Delivery::Held => return Step::Stop,
        Delivery::Retry => return Step::Next,
    };
    // At least 4 writable bytes in the guest's memory, all checked: this cannot fail.
    let written = walked.write_start(mem, &(status as u32).to_le_bytes());
    debug_assert!(written, "a checked status buffer took no status");
    complete_tx(devs, s, mem, head, 4)
}

/// Puts tx chain `head` in the used ring with `len` bytes written.
fn complete_tx(
    devs: &mut [VirtioDevice],
    s: usize,
    mem: &GuestMemoryMmap,
    head: u16,
    len: u32,
) -> Step {
    devs[s].virtio.tx_chains += 1;
    devs[s].used_pending[TX] = true;
    match devs[s].regs.queues[TX].add_used(mem, head, len) {
        Ok(()) => Step::Next,
        Err(e) => {
            devs[s].needs_reset("tx", format!("adding to the used ring: {e}"));
            Step::Stop
        }
    }
}

/// Reads the message of tx chain `chain` of VM `s` and copies it into an rx buffer of its
/// destination.
fn deliver(
    devs: &mut [VirtioDevice],
    s: usize,
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<&GuestMemoryMmap>,
    fault: Option<Fault>,
) -> Delivery {
    let fail = |st: TxStatus, detail: String| Delivery::Failed(st, detail);
    let mut reader = match Reader::<()>::new(mem, chain) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                TxStatus::BadChain,
                format!("a readable descriptor is outside the guest's memory: {e}"),
            )
        }
    };
    let mut hb = [0u8; HEADER_SIZE as usize];
    if reader.available_bytes() < hb.len() || reader.read_exact(&mut hb).is_err() {
        return fail(
            TxStatus::BadChain,
            format!(
                "{} readable bytes, less than a {HEADER_SIZE}-byte header",
                reader.available_bytes()
            ),
        );
    }
    let header = parse_header(&hb);
    let len = header.len;
    let after = reader.available_bytes();
    if len > MAX_PAYLOAD || len as usize > after {
        return fail(
            TxStatus::BadLength,
            format!(
                "len {len}: above {MAX_PAYLOAD} or the {after} readable bytes after the header"
            ),
        );
    }
    let d = header.dst as usize;
    if d >= devs.len() || d == s {
        return fail(
            TxStatus::BadDestination,
            format!("dst {d} is not another VM of the run"),
        );
    }
    if !devs[d].regs.running() || !devs[d].regs.queues[RX].ready() {
        return fail(
            TxStatus::DestinationDown,
            format!("VM {d}'s device is not running or its rx queue not ready"),
        );
    }
    let dview = devs[d].view.clone();
    let dmem = &*dview;
    if others_waiting(devs, s, d) {
        // Fairness: queue behind the senders already held back for `d`.
        devs[s].regs.queues[TX].go_to_previous_position();
        devs[s].blocked_on = Some(d as u32);
        return Delivery::Held;
    }
    loop {
        let popped = match devs[d].regs.queues[RX].iter(dmem) {
            Ok(mut it) => it.next(),
            Err(e) => {
                devs[d].needs_reset("rx", format!("available ring: {e}"));
                return fail(
                    TxStatus::DestinationDown,
                    format!("VM {d}'s rx queue broke"),
                );
            }
        };
        let Some(rx) = popped else {
            // No buffer: hold the chain back until the receiver adds one.
            devs[s].regs.queues[TX].go_to_previous_position();
            return match devs[d].regs.queues[RX].enable_notification(dmem) {
                Ok(false) => {
                    devs[s].blocked_on = Some(d as u32);
                    Delivery::Held
                }
                Ok(true) => Delivery::Retry,
                Err(e) => {
                    devs[d].needs_reset("rx", format!("writing the used ring: {e}"));
                    Delivery::Retry
                }
            };
        };
        let rhead = rx.head_index();
        let writer = match walk_chain(&devs[d], RX, dmem, &rx) {
            Err(why) => {
                devs[d].needs_reset("rx", format!("chain at descriptor {rhead}: {why}"));
                return fail(
                    TxStatus::DestinationDown,
                    format!("VM {d}'s rx queue broke"),
                );
            }
            Ok(Walked {
                refusal: Some(why), ..
            }) => Err(why.to_string()),
            Ok(Walked { readable: 0, .. }) => Writer::<()>::new(dmem, rx)
                .map_err(|e| format!("a descriptor is outside guest memory: {e}")),
            Ok(_) => Err("an rx chain must be device-writable only".to_string()),
        };
        let mut writer = match writer {
            Ok(w) => w,
            Err(why) => {
                // The receiver's mistake: consume its buffer with nothing written (used
                // length 0), try the next.
                devs[d].guest_error(
                    "rx",
                    None,
                    TxStatus::BadChain.name(),
                    format!("chain at descriptor {rhead}: {why}"),
                );
                if !discard_rx(&mut devs[d], dmem, rhead) {
                    return fail(
                        TxStatus::DestinationDown,
                        format!("VM {d}'s rx queue broke"),
                    );
                }
                continue;
            }
        };
        let total = HEADER_SIZE + len;
        if writer.available_bytes() < total as usize {
            devs[d].regs.queues[RX].go_to_previous_position();
            return fail(
                TxStatus::TooBig,
                format!(
                    "VM {d}'s rx buffer holds {} bytes, the message {total}",
                    writer.available_bytes()
                ),
            );
        }
        let started = Instant::now();
        let out = DgramHeader {
            src: s as u32,
            ..header
        };
        let copied = writer
            .write_all(out.as_slice())
            .and_then(|()| std::io::copy(&mut (&mut reader).take(u64::from(len)), &mut writer));
        if let Some(slowdown) = devs[s].slowdown {
            slowdown.spin();
        }
        let move_ns = started.elapsed().as_nanos() as u64;
        if let Err(e) = copied {
            discard_rx(&mut devs[d], dmem, rhead);
            return fail(
                TxStatus::BadChain,
                format!("copying the message failed: {e}"),
            );
        }
        publish_rx(&mut devs[d], dmem, rhead, total, fault);
        let c = &mut devs[s].counters;
        c.sent += 1;
        c.bytes_copied += u64::from(len);
        c.move_ns += move_ns;
        return Delivery::Sent;
    }
}

/// Puts rx chain `head` of device `dev` in its used ring with nothing written; false if
/// the queue broke.
fn discard_rx(dev: &mut VirtioDevice, mem: &GuestMemoryMmap, head: u16) -> bool {
    dev.used_pending[RX] = true;
    match dev.regs.queues[RX].add_used(mem, head, 0) {
        Ok(()) => true,
        Err(e) => {
            dev.needs_reset("rx", format!("adding to the used ring: {e}"));
            false
        }
    }
}

/// Puts filled rx chain `head` of device `dev` in its used ring (unless the
/// `drop-used-update` fault loses it).
fn publish_rx(
    dev: &mut VirtioDevice,
    mem: &GuestMemoryMmap,
    head: u16,
    len: u32,
    fault: Option<Fault>,
) {
    let nth = dev.virtio.rx_chains;
    dev.virtio.rx_chains += 1;
    dev.counters.received += 1;
    if fault == Some(Fault::DropUsedUpdate) && nth % DROP_EVERY == DROP_EVERY - 1 {
        return;
    }
    dev.used_pending[RX] = true;
    if let Err(e) = dev.regs.queues[RX].add_used(mem, head, len) {
        dev.needs_reset("rx", format!("adding to the used ring: {e}"));
    }
}
