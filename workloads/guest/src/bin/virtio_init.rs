//! `virtio_init` (1 VM): the virtio datagram device's initialisation step by step, and its
//! refusal of bad initialisations, as `params[0]` says
//! ([`pageflip_guest::abi::probes::virtio_init`]). `main` returns 0 in every mode: the
//! records carry the verdict.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::virtio_init::*;
use pageflip_guest::abi::virtio::{
    self as vio, DgramConfig, DEVICE_FEATURES, F_EVENT_IDX, F_VERSION_1, QUEUE_NUM_MAX,
    REG_QUEUE_DESC_LOW, REG_QUEUE_DEVICE_LOW, REG_QUEUE_DRIVER_LOW, REG_QUEUE_NUM,
    REG_QUEUE_NUM_MAX, REG_QUEUE_READY, RX_QUEUE, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, TX_QUEUE,
};
use pageflip_guest::arena::Arena;
use pageflip_guest::virtio::{DgramDevice, Options, Transport, Virtqueue};
use pageflip_guest::{boot_info, check, fail, pass_with};

pageflip_guest::entry!(main);

/// Status of a device that finished its initialisation.
const RUNNING: u32 = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
/// Status after a successful feature negotiation.
const NEGOTIATED: u32 = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;

fn main() -> u64 {
    let bi = boot_info();
    let mode = bi.params[MODE];
    if mode >= MODES {
        fail(PARAMS, format_args!("unknown mode {mode}"));
        return 0;
    }
    pass_with(PARAMS, format_args!("mode {mode}"));
    let t = match Transport::new() {
        Ok(t) => {
            pass_with(TRANSPORT, "virtio");
            t
        }
        Err(e) => {
            fail(TRANSPORT, e);
            return 0;
        }
    };
    let mut arena = Arena::new();
    match mode {
        MODE_FULL => {
            full(&t, &mut arena);
            return 0;
        }
        MODE_NO_VERSION_1 => refused_features(&t, F_EVENT_IDX),
        MODE_UNOFFERED_FEATURE => refused_features(&t, F_VERSION_1 | 1 << UNOFFERED_FEATURE_BIT),
        MODE_QUEUE_NUM_NOT_POW2 => bad_queue_num(&t, &mut arena, QUEUE_NUM_NOT_POW2),
        MODE_QUEUE_NUM_ABOVE_MAX => bad_queue_num(&t, &mut arena, QUEUE_NUM_ABOVE_MAX),
        MODE_NOTIFY_UNREADY => notify_unready(&t),
        _ => ring_reserved(&t, &mut arena),
    }
    // A driver that gives up sets FAILED; then a fresh start must work.
    t.add_status(STATUS_FAILED);
    recovers(&mut arena);
    0
}

/// Mode 0: every step of the handshake, one record each; stops at a step that leaves the
/// next ones meaningless.
fn full(t: &Transport, arena: &mut Arena) {
    let id = t.identity();
    let magic_ok = check!(
        MAGIC,
        id.magic == vio::MAGIC,
        "MagicValue {:#x}, want {:#x}",
        id.magic,
        vio::MAGIC
    );
    let version_ok = check!(
        VERSION,
        id.version == vio::VERSION,
        "Version {}, want {}",
        id.version,
        vio::VERSION
    );
    check!(
        DEVICE_ID,
        id.device_id == vio::DEVICE_ID,
        "DeviceID {:#x}, want {:#x}",
        id.device_id,
        vio::DEVICE_ID
    );
    check!(
        VENDOR_ID,
        id.vendor_id == vio::VENDOR_ID,
        "VendorID {:#x}, want {:#x}",
        id.vendor_id,
        vio::VENDOR_ID
    );
    if !magic_ok || !version_ok {
        return;
    }
    match t.reset() {
        Ok(()) => pass_with(RESET, "status reads 0"),
        Err(e) => {
            fail(RESET, e);
            return;
        }
    }
    t.acknowledge();
    let offered = t.device_features();
    check!(
        FEATURES_OFFERED,
        offered == DEVICE_FEATURES,
        "offered {offered:#x}, want {DEVICE_FEATURES:#x}"
    );
    let wanted = F_VERSION_1 | F_EVENT_IDX;
    match t.negotiate(wanted) {
        Ok(()) => {
            let s = t.status();
            check!(
                FEATURES_OK,
                s == NEGOTIATED,
                "accepted {wanted:#x}, status {s:#x} (want {NEGOTIATED:#x})"
            );
        }
        Err(e) => {
            fail(FEATURES_OK, e);
            return;
        }
    }
    for (queue, name) in [(RX_QUEUE, QUEUE_SETUP_RX), (TX_QUEUE, QUEUE_SETUP_TX)] {
        t.select_queue(queue);
        let max = t.read(REG_QUEUE_NUM_MAX);
        let vq = match Virtqueue::alloc(arena, queue, QUEUE_SIZE, true) {
            Ok(vq) => vq,
            Err(e) => {
                fail(name, e);
                return;
            }
        };
        match vq.setup(t) {
            Ok(()) => {
                check!(
                    name,
                    max == QUEUE_NUM_MAX,
                    "ready with {QUEUE_SIZE} entries; QueueNumMax {max} (want {QUEUE_NUM_MAX})"
                );
            }
            Err(e) => {
                fail(name, e);
                return;
            }
        }
    }
    match t.driver_ok() {
        Ok(()) => {
            let s = t.status();
            check!(DRIVER_OK, s == RUNNING, "status {s:#x} (want {RUNNING:#x})");
        }
        Err(e) => {
            fail(DRIVER_OK, e);
            return;
        }
    }
    let bi = boot_info();
    let want = DgramConfig {
        vm_id: bi.vm_id,
        num_vms: bi.num_vms,
        max_payload: vio::MAX_PAYLOAD,
        reserved: 0,
    };
    let got = t.config();
    check!(
        CONFIG_SPACE,
        got == want,
        "config (vm_id {}, num_vms {}, max_payload {}, reserved {}), want ({}, {}, {}, 0)",
        got.vm_id,
        got.num_vms,
        got.max_payload,
        got.reserved,
        want.vm_id,
        want.num_vms,
        want.max_payload
    );
    match t.reset() {
        Ok(()) => pass_with(RESET_CLEARS_STATUS, "status reads 0"),
        Err(e) => fail(RESET_CLEARS_STATUS, e),
    }
    let mut ready = [0u32; 2];
    for (q, r) in [RX_QUEUE, TX_QUEUE].into_iter().zip(ready.iter_mut()) {
        t.select_queue(q);
        *r = t.read(REG_QUEUE_READY);
    }
    check!(
        RESET_CLEARS_QUEUES,
        ready == [0, 0],
        "QueueReady after reset: rx {}, tx {}",
        ready[0],
        ready[1]
    );
}

/// Resets the device and sets ACKNOWLEDGE and DRIVER; records a FAIL `reset` and returns
/// false if the reset does not complete.
fn start(t: &Transport) -> bool {
    if let Err(e) = t.reset() {
        fail(RESET, e);
        return false;
    }
    t.acknowledge();
    true
}

/// Starts and negotiates VERSION_1 | EVENT_IDX; records a FAIL `features-ok` and returns
/// false if that is refused.
fn start_negotiated(t: &Transport) -> bool {
    if !start(t) {
        return false;
    }
    if let Err(e) = t.negotiate(F_VERSION_1 | F_EVENT_IDX) {
        fail(FEATURES_OK, e);
        return false;
    }
    true
}

/// Modes 1 and 2: the driver accepts `features`, which the device must refuse.
fn refused_features(t: &Transport, features: u64) {
    if !start(t) {
        return;
    }
    match t.negotiate(features) {
        Err(e) => pass_with(FEATURES_OK_REFUSED, e),
        Ok(()) => fail(
            FEATURES_OK_REFUSED,
            format_args!(
                "FEATURES_OK stayed set for driver features {features:#x} (status {:#x})",
                t.status()
            ),
        ),
    }
}

/// Modes 3 and 4: the rx queue is set up with `num` entries, which the device must refuse.
fn bad_queue_num(t: &Transport, arena: &mut Arena, num: u32) {
    if !start_negotiated(t) {
        return;
    }
    let vq = match Virtqueue::alloc(arena, RX_QUEUE, num, true) {
        Ok(vq) => vq,
        Err(e) => {
            fail(QUEUE_NUM_REFUSED, e);
            return;
        }
    };
    let ready = vq.program(t);
    check!(
        QUEUE_NUM_REFUSED,
        !ready,
        "QueueNum {num}: QueueReady reads {} after writing 1",
        u32::from(ready)
    );
}

/// Mode 5: notifications of a queue that is not set up and of one that does not exist,
/// before DRIVER_OK.
fn notify_unready(t: &Transport) {
    if !start_negotiated(t) {
        return;
    }
    t.notify(TX_QUEUE);
    t.notify(NO_SUCH_QUEUE);
    let s = t.status();
    check!(
        NOTIFY_UNREADY_IGNORED,
        s == NEGOTIATED,
        "after QueueNotify {TX_QUEUE} and {NO_SUCH_QUEUE}: status {s:#x} (want {NEGOTIATED:#x})"
    );
}

/// Mode 6: the rx queue's used ring in the boot-info page, which the device must refuse.
fn ring_reserved(t: &Transport, arena: &mut Arena) {
    if !start_negotiated(t) {
        return;
    }
    let vq = match Virtqueue::alloc(arena, RX_QUEUE, QUEUE_SIZE, true) {
        Ok(vq) => vq,
        Err(e) => {
            fail(RING_RESERVED_REFUSED, e);
            return;
        }
    };
    t.select_queue(RX_QUEUE);
    t.write(REG_QUEUE_NUM, QUEUE_SIZE);
    for (low, gpa) in [
        (REG_QUEUE_DESC_LOW, vq.desc_gpa()),
        (REG_QUEUE_DRIVER_LOW, vq.avail_gpa()),
        (REG_QUEUE_DEVICE_LOW, RING_RESERVED_GPA),
    ] {
        t.write(low, gpa as u32);
        t.write(low + 4, (gpa >> 32) as u32);
    }
    t.write(REG_QUEUE_READY, 1);
    let ready = t.read(REG_QUEUE_READY);
    check!(
        RING_RESERVED_REFUSED,
        ready == 0,
        "used ring at {RING_RESERVED_GPA:#x}: QueueReady reads {ready} after writing 1"
    );
}

/// Modes 1 to 6: a full initialisation after the rejection.
fn recovers(arena: &mut Arena) {
    let opts = Options {
        event_idx: true,
        depth: DEPTH,
    };
    match DgramDevice::init(opts, arena, vio::MAX_PAYLOAD) {
        Ok(dev) => {
            let s = dev.status();
            check!(
                RECOVERS,
                s == RUNNING,
                "initialised, features {:#x}, status {s:#x} (want {RUNNING:#x})",
                dev.features()
            );
        }
        Err(e) => fail(RECOVERS, e),
    }
}
