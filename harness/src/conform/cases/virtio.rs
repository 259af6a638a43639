//! The conformance cases of the virtio transport: the initialisation handshake and each of its
//! rejection paths, delivery, order and integrity with the same workloads and checks as the
//! other transports, EVENT_IDX notification suppression counted by KVM, and every kind of bad
//! input from a guest with the VMM still running.

use pageflip_abi::phase::WORKLOAD_VM_MAX_BOOKKEEPING_EXITS;
use pageflip_abi::probes::{ipc_workloads as w, virtio_hostile, virtio_init};
use pageflip_interface::{NotifyMode, RunConfig, RunResult, TransportConfig};

use crate::conform::cases::build::{
    both, custom, ipc_layout, link_params, measured, pingpong_counts, run, stream, workload_counts,
};
use crate::conform::cases::Case;

/// A sample of a workload VM's header.
fn sample(result: &RunResult, vm: usize, index: usize) -> Result<u64, String> {
    result.vms[vm]
        .samples
        .get(index)
        .copied()
        .ok_or_else(|| format!("VM{vm} reported no sample {index}"))
}

/// Notifications counted by KVM equal those the driver made, in every VM's measured phase:
/// with userspace notify each is one MMIO exit; with ioeventfd each is one in-kernel exit
/// (`exits` beyond MMIO and interrupt exits) and no MMIO exit.
pub fn notifications_match(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let TransportConfig::Virtio { notify } = config.transport else {
        return Err("not a virtio run".into());
    };
    for vm in 0..config.vms.len() {
        let driver = sample(result, vm, w::S_NOTIFICATIONS)?;
        let mmio = measured(result, vm, "mmio_exits")?;
        match notify {
            NotifyMode::Userspace => {
                let other = mmio.checked_sub(driver).ok_or_else(|| {
                    format!(
                        "VM{vm}: the driver made {driver} notifications, KVM saw {mmio} MMIO exits"
                    )
                })?;
                if other == 0 || other > WORKLOAD_VM_MAX_BOOKKEEPING_EXITS {
                    return Err(format!(
                        "VM{vm}: {mmio} MMIO exits for {driver} notifications: {other} others, expected 1 or 2 (PHASE end, barrier)"
                    ));
                }
            }
            NotifyMode::Ioeventfd => {
                if mmio == 0 || mmio > WORKLOAD_VM_MAX_BOOKKEEPING_EXITS {
                    return Err(format!(
                        "VM{vm}: {mmio} MMIO exits to userspace in the phase, expected 1 or 2 (PHASE end, barrier): notifications must not exit to userspace"
                    ));
                }
                let exits = measured(result, vm, "exits")?;
                let irq = measured(result, vm, "irq_exits")?;
                let in_kernel = exits.saturating_sub(mmio + irq);
                if in_kernel != driver {
                    return Err(format!(
                        "VM{vm}: KVM counted {in_kernel} in-kernel exits (exits {exits} - mmio {mmio} - irq {irq}), the driver made {driver} notifications"
                    ));
                }
            }
        }
    }
    // The device saw at least what the drivers made in their phases.
    let t = result
        .transport
        .as_ref()
        .expect("checked by workload_counts");
    for (vm, v) in t.vms.iter().enumerate() {
        let dev = v
            .virtio
            .as_ref()
            .ok_or("a virtio run without virtio counters")?;
        let seen = dev.tx_notifications + dev.rx_notifications;
        let driver = sample(result, vm, w::S_NOTIFICATIONS)?;
        if seen < driver {
            return Err(format!(
                "VM{vm}: the device received {seen} notifications, the driver made {driver} in its phase alone"
            ));
        }
    }
    Ok(())
}

/// Most driver notifications per message with EVENT_IDX on a streaming workload at depth 32
/// (issue target, `docs/abi.md`): the device asks for a notification only when it has
/// caught up with the ring, so a sender that keeps its queue full notifies once per batch.
pub const EVENT_IDX_MAX_PER_MESSAGE: f64 = 0.1;

/// EVENT_IDX suppression: the counts agree ([`notifications_match`]), the sender's driver
/// left notifications out, and notified at most [`EVENT_IDX_MAX_PER_MESSAGE`] per message.
pub fn event_idx_suppresses(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    notifications_match(config, result)?;
    let count = config.vms[0].params[w::COUNT];
    let made = sample(result, 0, w::S_NOTIFICATIONS)?;
    let suppressed = sample(result, 0, w::S_SUPPRESSED)?;
    let dev = result.transport.as_ref().expect("checked").vms[0]
        .virtio
        .as_ref()
        .expect("checked");
    if !dev.event_idx {
        return Err("the device reports EVENT_IDX not negotiated".into());
    }
    let per = made as f64 / count as f64;
    if suppressed == 0 || per > EVENT_IDX_MAX_PER_MESSAGE {
        return Err(format!(
            "sender: {made} notifications ({per:.3} per message, at most {EVENT_IDX_MAX_PER_MESSAGE} allowed), {suppressed} suppressed, for {count} messages"
        ));
    }
    Ok(())
}

/// What the guest error of bad-input case `case` must say (the log line names the real
/// reason), if the case pins it.
fn hostile_detail(case: u64) -> Option<&'static str> {
    use virtio_hostile as h;
    Some(match case {
        h::CASE_INDIRECT => "VIRTQ_DESC_F_INDIRECT",
        h::CASE_LEN_MAX => "longer than 2^32 - 1 bytes",
        h::CASE_STATUS_RESERVED | h::CASE_PAYLOAD_RESERVED | h::CASE_RX_RESERVED => {
            "reserved range"
        }
        h::CASE_LOOP => "a loop",
        _ => return None,
    })
}

/// The hostile VM's bad requests reached the VMM's log of guest errors (saying what was
/// wrong, for the cases `hostile_detail` pins), the run completed, and the device counted
/// what it did. Case 10's hostile VM is the receiver, VM1; in every other case VM0.
pub fn hostile_logged(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let case = config.vms[0].params.first().copied().unwrap_or(0);
    let rx_case = case == virtio_hostile::CASE_RX_RESERVED;
    let (bad, good) = if rx_case { (1, 0) } else { (0, 1) };
    let errors = &result.vms[bad].guest_errors;
    if errors.is_empty() {
        return Err(format!(
            "bad input case {case}: VM{bad} has no guest error logged"
        ));
    }
    if let Some(want) = hostile_detail(case) {
        if !errors.iter().any(|e| e.detail.contains(want)) {
            let seen: Vec<&str> = errors.iter().map(|e| e.detail.as_str()).collect();
            return Err(format!(
                "bad input case {case}: no guest error of VM{bad} says {want:?}; they say {seen:?}"
            ));
        }
    }
    if let Some(e) = result.vms[good].guest_errors.first() {
        return Err(format!(
            "a well-behaved VM has a guest error: {} {} {}",
            e.register, e.status, e.detail
        ));
    }
    let t = result
        .transport
        .as_ref()
        .ok_or("the result has no `transport` report")?;
    let dev = t.vms[0]
        .virtio
        .as_ref()
        .ok_or("a virtio run without virtio counters")?;
    let tx_errors: u64 = dev.tx_errors.values().sum();
    let want_reset = case == virtio_hostile::CASE_LOOP;
    if want_reset && dev.needs_reset == 0 {
        return Err("a looping chain did not set DEVICE_NEEDS_RESET".into());
    }
    if !want_reset && dev.needs_reset != 0 {
        return Err(format!(
            "bad input case {case}: the device set DEVICE_NEEDS_RESET {} time(s); a bad chain or buffer must not",
            dev.needs_reset
        ));
    }
    if rx_case && tx_errors != 0 {
        return Err(format!(
            "VM0's good message counted tx errors {:?}",
            dev.tx_errors
        ));
    }
    if !want_reset && !rx_case && tx_errors == 0 {
        return Err(format!(
            "bad input case {case}: the device counted no tx error"
        ));
    }
    // The good message after the bad one was delivered.
    if t.vms[1].received != 1 {
        return Err(format!(
            "VM1 received {} messages, expected exactly the good one",
            t.vms[1].received
        ));
    }
    Ok(())
}

/// A rejected handshake step was logged as a guest error.
pub fn init_rejection_logged(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let mode = config.vms[0].params.first().copied().unwrap_or(0);
    if result.vms[0].guest_errors.is_empty() {
        return Err(format!(
            "handshake mode {mode}: the device refused a step but logged no guest error"
        ));
    }
    Ok(())
}

/// The virtio cases.
pub fn all() -> Vec<Case> {
    let ioeventfd = TransportConfig::Virtio {
        notify: NotifyMode::Ioeventfd,
    };
    let userspace = TransportConfig::Virtio {
        notify: NotifyMode::Userspace,
    };
    let mut cases = vec![run(
        "virtio-init",
        "the full virtio 1.2 initialisation: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK",
        ipc_layout(&ioeventfd, stream(&[virtio_init::MODE_FULL], 1, pageflip_workloads::VIRTIO_INIT)),
        both(1),
    )];
    for (name, mode, description) in INIT_REJECTIONS {
        cases.push(run(
            name,
            description,
            ipc_layout(
                &ioeventfd,
                stream(&[mode], 1, pageflip_workloads::VIRTIO_INIT),
            ),
            [
                both(1),
                vec![custom("rejection logged", init_rejection_logged)],
            ]
            .concat(),
        ));
    }
    for (t, names) in [
        (
            &ioeventfd,
            [
                "virtio-delivery-ioeventfd",
                "virtio-multipage-ioeventfd",
                "virtio-fanin-ioeventfd",
                "virtio-pingpong-ioeventfd",
            ],
        ),
        (
            &userspace,
            [
                "virtio-delivery-userspace",
                "virtio-multipage-userspace",
                "virtio-fanin-userspace",
                "virtio-pingpong-userspace",
            ],
        ),
    ] {
        let counts = || vec![custom("notifications counted by KVM", notifications_match)];
        cases.push(run(
            names[0],
            "100,000 messages over virtio: every byte intact, FIFO, gap-free, no duplicates, nothing lost",
            ipc_layout(t, stream(&link_params(100_000, 64, w::RECV_POLL, true, 32), 2, pageflip_workloads::STREAM)),
            [both(2), counts()].concat(),
        ));
        cases.push(run(
            names[1],
            "64 KiB messages over virtio arrive whole",
            ipc_layout(
                t,
                stream(
                    &link_params(500, 64 * 1024, w::RECV_POLL, true, 8),
                    2,
                    pageflip_workloads::STREAM,
                ),
            ),
            [both(2), counts()].concat(),
        ));
        cases.push(run(
            names[2],
            "three senders, one receiver over virtio: every message names the right source",
            ipc_layout(
                t,
                stream(
                    &link_params(2000, 4096, w::RECV_POLL, true, 32),
                    4,
                    pageflip_workloads::FANIN,
                ),
            ),
            [both(4), counts()].concat(),
        ));
        cases.push(run(
            names[3],
            "ping-pong over virtio: every round trip completes, both directions checked",
            ipc_layout(
                t,
                stream(
                    &link_params(2000, 4096, w::RECV_POLL, true, 32),
                    2,
                    pageflip_workloads::PINGPONG,
                ),
            ),
            [both(2), vec![custom("transport counts", pingpong_counts)]].concat(),
        ));
    }
    cases.push(run(
        "virtio-event-idx",
        "EVENT_IDX at depth 32: the sender notifies only when the device asks, at most 0.1 times per message, as KVM counts",
        ipc_layout(
            &ioeventfd,
            stream(&link_params(20_000, 64, w::RECV_POLL, true, 32), 2, pageflip_workloads::STREAM),
        ),
        [both(2), vec![custom("EVENT_IDX suppression", event_idx_suppresses)]].concat(),
    ));
    cases.push(run(
        "virtio-no-event-idx",
        "without EVENT_IDX the driver follows the used ring's NO_NOTIFY flag; KVM counts what it made",
        ipc_layout(
            &userspace,
            stream(&link_params(20_000, 64, w::RECV_POLL, false, 32), 2, pageflip_workloads::STREAM),
        ),
        [
            both(2),
            vec![custom("notifications counted by KVM", notifications_match)],
        ]
        .concat(),
    ));
    for (name, case, description) in HOSTILE {
        cases.push(run(
            name,
            description,
            ipc_layout(
                &ioeventfd,
                stream(&[case], 2, pageflip_workloads::VIRTIO_HOSTILE),
            ),
            [
                both(2),
                vec![custom("logged and recovered", hostile_logged)],
            ]
            .concat(),
        ));
    }
    cases
}

/// The handshake rejection cases: name, `virtio_init` mode, description.
const INIT_REJECTIONS: [(&str, u64, &str); 6] = [
    (
        "virtio-init-no-version-1",
        virtio_init::MODE_NO_VERSION_1,
        "a driver that does not accept VERSION_1 is refused FEATURES_OK, and can start over",
    ),
    (
        "virtio-init-unoffered-feature",
        virtio_init::MODE_UNOFFERED_FEATURE,
        "a driver that accepts a feature the device did not offer is refused FEATURES_OK",
    ),
    (
        "virtio-init-queue-size",
        virtio_init::MODE_QUEUE_NUM_NOT_POW2,
        "a queue size that is not a power of two leaves QueueReady at 0",
    ),
    (
        "virtio-init-queue-too-big",
        virtio_init::MODE_QUEUE_NUM_ABOVE_MAX,
        "a queue size above QueueNumMax leaves QueueReady at 0",
    ),
    (
        "virtio-init-notify-unready",
        virtio_init::MODE_NOTIFY_UNREADY,
        "notifying a queue that is not set up is ignored and logged; the VM keeps running",
    ),
    (
        "virtio-init-ring-reserved",
        virtio_init::MODE_RING_RESERVED,
        "a used ring below 0x20_0000 (in the boot-info page) leaves QueueReady at 0",
    ),
];

/// The bad-input cases: name, `virtio_hostile` case, description.
const HOSTILE: [(&str, u64, &str); 11] = [
    (
        "virtio-bad-address",
        virtio_hostile::CASE_BEYOND_MEMORY,
        "a descriptor outside guest memory: status bad-chain, logged, the next message arrives",
    ),
    (
        "virtio-bad-overflow",
        virtio_hostile::CASE_ADDR_OVERFLOW,
        "a descriptor whose address + length overflows: status bad-chain, logged",
    ),
    (
        "virtio-bad-loop",
        virtio_hostile::CASE_LOOP,
        "a looping chain sets DEVICE_NEEDS_RESET; after a reset the device works again",
    ),
    (
        "virtio-bad-length",
        virtio_hostile::CASE_LEN_BEYOND_CHAIN,
        "a header longer than the chain: status bad-length, nothing delivered",
    ),
    (
        "virtio-bad-destination",
        virtio_hostile::CASE_BAD_DST,
        "a message to itself or to a VM that does not exist: status bad-destination",
    ),
    (
        "virtio-bad-no-status",
        virtio_hostile::CASE_NO_STATUS,
        "a tx chain with no writable status descriptor is dropped (used length 0) and logged",
    ),
    (
        "virtio-bad-indirect",
        virtio_hostile::CASE_INDIRECT,
        "VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC: the table is not read, the chain dropped (used length 0), nothing delivered",
    ),
    (
        "virtio-bad-len-max",
        virtio_hostile::CASE_LEN_MAX,
        "a descriptor length of 0xffffffff: status bad-chain (not DEVICE_NEEDS_RESET), logged as too long",
    ),
    (
        "virtio-bad-status-reserved",
        virtio_hostile::CASE_STATUS_RESERVED,
        "a status descriptor in the boot-info page: not written (used length 0), the page unchanged",
    ),
    (
        "virtio-bad-payload-reserved",
        virtio_hostile::CASE_PAYLOAD_RESERVED,
        "a payload read from the page tables: status bad-chain, nothing delivered",
    ),
    (
        "virtio-bad-rx-reserved",
        virtio_hostile::CASE_RX_RESERVED,
        "an rx buffer in the boot-info page: skipped with used length 0, the page unchanged, the message lands in the next buffer",
    ),
];
