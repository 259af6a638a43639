//! Hermetic tests of the register state machine and the relay: real guest memory, queues
//! driven by virtio-queue's `MockSplitQueue` (the driver's side, [`super::mock`]), no KVM.

use pageflip_abi::virtio::*;
use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use vm_memory::{Bytes, GuestAddress};

use super::mock::*;
use crate::inject::Fault;

#[test]
fn identity_features_and_config() {
    let t = Run::new(3, None);
    assert_eq!(t.r(1, REG_MAGIC_VALUE), MAGIC);
    assert_eq!(t.r(1, REG_VERSION), 2);
    assert_eq!(t.r(1, REG_DEVICE_ID), DEVICE_ID);
    assert_eq!(t.r(1, REG_VENDOR_ID), VENDOR_ID);
    t.w(1, REG_DEVICE_FEATURES_SEL, 0);
    assert_eq!(t.r(1, REG_DEVICE_FEATURES), DEVICE_FEATURES as u32);
    t.w(1, REG_DEVICE_FEATURES_SEL, 1);
    assert_eq!(t.r(1, REG_DEVICE_FEATURES), (DEVICE_FEATURES >> 32) as u32);
    assert_eq!(t.r(1, REG_CONFIG), 1, "vm_id");
    assert_eq!(t.r(1, REG_CONFIG + 4), 3, "num_vms");
    assert_eq!(t.r(1, REG_CONFIG + 8), MAX_PAYLOAD);
    let mut b = [0u8; 2];
    t.hub.mmio_read(1, REG_CONFIG + 4, &mut b);
    assert_eq!(u16::from_le_bytes(b), 3, "2-byte config read");
    let mut b = [0u8; 1];
    t.hub.mmio_read(1, REG_CONFIG, &mut b);
    assert_eq!(b[0], 1, "1-byte config read");
    assert!(t.errors(1).is_empty());
    // A 2-byte access to a register is refused.
    t.hub.mmio_read(1, REG_MAGIC_VALUE, &mut [0u8; 2]);
    t.hub.mmio_write(1, REG_STATUS, &[1u8]);
    assert_eq!(t.r(1, REG_STATUS), 0);
    assert_eq!(
        t.errors(1),
        vec![
            ("virtio:MagicValue".into(), "refused".into()),
            ("virtio:Status".into(), "refused".into())
        ]
    );
}

#[test]
fn unoffered_features_are_refused() {
    let t = Run::new(2, None);
    let s = t.negotiate(0, F_VERSION_1 | 1);
    assert_eq!(s & STATUS_FEATURES_OK, 0, "FEATURES_OK stays clear");
    assert_eq!(s, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    let s = t.negotiate(1, F_EVENT_IDX);
    assert_eq!(s & STATUS_FEATURES_OK, 0, "VERSION_1 is required");
    assert_eq!(
        t.errors(0),
        vec![("virtio:Status".into(), "refused".into())]
    );
    // After a reset, a good set is accepted.
    t.w(0, REG_STATUS, 0);
    assert_eq!(t.r(0, REG_STATUS), 0);
    assert_ne!(t.negotiate(0, FEATURES) & STATUS_FEATURES_OK, 0);
    let rep = t.report(0);
    assert_eq!(rep.features, Some(FEATURES));
    assert!(rep.event_idx);
    assert_eq!(rep.resets, 1);
}

#[test]
fn accept_unoffered_features_fault_accepts_them() {
    let t = Run::new(1, Some(Fault::AcceptUnofferedFeatures));
    assert_ne!(t.negotiate(0, 1) & STATUS_FEATURES_OK, 0);
}

#[test]
fn queue_registers_follow_the_state_machine() {
    let t = Run::new(1, None);
    t.w(0, REG_QUEUE_SEL, 0);
    t.w(0, REG_QUEUE_NUM, 8); // before FEATURES_OK
    assert_eq!(
        t.errors(0),
        vec![("virtio:QueueNum".into(), "refused".into())]
    );
    t.negotiate(0, FEATURES);
    assert_eq!(t.r(0, REG_QUEUE_NUM_MAX), QUEUE_NUM_MAX);
    t.w(0, REG_QUEUE_NUM, 3);
    t.w(0, REG_QUEUE_NUM, 512);
    t.w(0, REG_QUEUE_DESC_LOW, 0x1008); // misaligned
                                        // Rings outside guest memory: QueueReady stays 0.
    t.w(0, REG_QUEUE_DESC_LOW, 0);
    t.w(0, REG_QUEUE_DESC_HIGH, 1);
    t.w(0, REG_QUEUE_READY, 1);
    assert_eq!(t.r(0, REG_QUEUE_READY), 0);
    let e = t.errors(0);
    assert_eq!(e.len(), 4, "{e:?}");
    assert_eq!(e[3].0, "virtio:QueueReady");
    // Queue 2 does not exist.
    t.w(0, REG_QUEUE_SEL, 2);
    assert_eq!(t.r(0, REG_QUEUE_NUM_MAX), 0);
    t.w(0, REG_QUEUE_NUM, 8);
    // DRIVER_OK before FEATURES_OK is out of order (on a fresh device).
    t.w(0, REG_STATUS, 0);
    t.w(
        0,
        REG_STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK,
    );
    assert_eq!(t.r(0, REG_STATUS), 0);
    // Notify of a queue that is not ready.
    t.w(0, REG_QUEUE_NOTIFY, 1);
    let e = t.errors(0);
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(e[2].0, "virtio:QueueNotify");
}

#[test]
fn a_message_is_relayed_and_src_cannot_be_spoofed() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.add(&[(RXBUF, 16, true), (RXBUF + 16, 4096, true)]);
    t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let status = send(t.mem(0), &mut tx0, 0, 1, &payload);
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(status_at(t.mem(0), status), TxStatus::Ok as u32);
    assert_eq!(tx0.used_idx(), 1);
    assert_eq!(tx0.used(0), (0, 4));
    assert_eq!(rx1.used_idx(), 1);
    assert_eq!(rx1.used(0), (0, HEADER_SIZE + 1000));
    let mut got = vec![0u8; 24 + 1000];
    t.mem(1)
        .read_slice(&mut got[..16], GuestAddress(RXBUF))
        .unwrap();
    t.mem(1)
        .read_slice(&mut got[16..], GuestAddress(RXBUF + 16))
        .unwrap();
    assert_eq!(
        &got[..24],
        &header(0, 0, 1, 1000)[..],
        "src set by the device"
    );
    assert_eq!(&got[24..], &payload[..]);
    let rep = t.hub.report("virtio-userspace".into());
    assert_eq!((rep.vms[0].sent, rep.vms[1].received), (1, 1));
    assert_eq!(rep.vms[0].bytes_copied, 1000);
    let v0 = rep.vms[0].virtio.clone().unwrap();
    assert_eq!((v0.tx_chains, v0.tx_notifications), (1, 1));
    assert_eq!(rep.vms[1].virtio.clone().unwrap().rx_chains, 1);
    assert!(v0.tx_errors.is_empty());
    assert!(t.errors(0).is_empty() && t.errors(1).is_empty());
}

#[test]
fn without_rx_buffers_the_sender_is_held_back_then_delivered() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    let status = send(t.mem(0), &mut tx0, 0, 1, b"hello");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx0.used_idx(), 0, "held back");
    assert_eq!(status_at(t.mem(0), status), 0xffff_ffff);
    // The device asked VM 1 to notify its next rx buffer.
    assert!(need_event(
        rx1.avail_event(),
        rx1.avail_idx() + 1,
        rx1.avail_idx()
    ));
    rx1.add(&[(RXBUF, 4096, true)]);
    t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
    assert_eq!(tx0.used_idx(), 1);
    assert_eq!(status_at(t.mem(0), status), TxStatus::Ok as u32);
    assert_eq!(rx1.used(0), (0, HEADER_SIZE + 5));
}

#[test]
fn bad_destination_and_length_are_reported_to_the_sender() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.add(&[(RXBUF, 4096, true)]);
    let to_self = send(t.mem(0), &mut tx0, 0, 0, b"x");
    let to_nobody = send(t.mem(0), &mut tx0, 1, 9, b"x");
    // len larger than what the chain holds.
    let at = BUF + 2 * 0x1_0000;
    t.mem(0)
        .write_slice(&header(2, 0, 1, 100), GuestAddress(at))
        .unwrap();
    tx0.add(&[(at, HEADER_SIZE + 10, false), (at + 0x8000, 4, true)]);
    let too_long = send(
        t.mem(0),
        &mut tx0,
        3,
        1,
        &vec![0u8; MAX_PAYLOAD as usize + 1],
    );
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(
        status_at(t.mem(0), to_self),
        TxStatus::BadDestination as u32
    );
    assert_eq!(
        status_at(t.mem(0), to_nobody),
        TxStatus::BadDestination as u32
    );
    assert_eq!(status_at(t.mem(0), at + 0x8000), TxStatus::BadLength as u32);
    assert_eq!(status_at(t.mem(0), too_long), TxStatus::BadLength as u32);
    assert_eq!(tx0.used_idx(), 4);
    assert_eq!(rx1.used_idx(), 0, "nothing delivered");
    let rep = t.report(0);
    assert_eq!(rep.tx_errors["bad-destination"], 2);
    assert_eq!(rep.tx_errors["bad-length"], 2);
    let e = t.errors(0);
    assert_eq!(e.len(), 4);
    assert_eq!(e[0], ("virtio:tx".into(), "bad-destination".into()));
}

#[test]
fn descriptors_outside_memory_complete_with_bad_chain() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (_rx1, _tx1) = t.up(1, FEATURES);
    let status = BUF + 0x8000;
    tx0.add(&[(MEM - 8, 64, false), (status, 4, true)]);
    tx0.add(&[(u64::MAX - 8, 64, false), (status + 4, 4, true)]);
    // No writable status inside memory: dropped with used length 0.
    tx0.add(&[(BUF, 64, false), (MEM + 0x1000, 4, true)]);
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(status_at(t.mem(0), status), TxStatus::BadChain as u32);
    assert_eq!(status_at(t.mem(0), status + 4), TxStatus::BadChain as u32);
    assert_eq!(tx0.used_idx(), 3);
    assert_eq!(tx0.used(2).1, 0);
    let rep = t.report(0);
    assert_eq!(
        (rep.tx_errors["bad-chain"], rep.tx_errors["dropped"]),
        (2, 1)
    );
    assert_eq!(t.errors(0).len(), 3);
}

#[test]
fn a_looping_chain_needs_reset() {
    let t = Run::new(2, None);
    let (_rx0, tx0) = t.up(0, FEATURES);
    let (_rx1, _tx1) = t.up(1, FEATURES);
    // Two descriptors pointing at each other.
    let d = |next| RawDescriptor::from(SplitDescriptor::new(BUF, 8, VIRTQ_DESC_F_NEXT, next));
    tx0.q.add_desc_chains(&[d(1), d(0)], 0).unwrap();
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    let s = t.r(0, REG_STATUS);
    assert_ne!(s & STATUS_DEVICE_NEEDS_RESET, 0);
    assert_eq!(tx0.used_idx(), 0);
    assert_eq!(t.report(0).needs_reset, 1);
    assert_eq!(
        t.errors(0),
        vec![("virtio:tx".into(), "needs-reset".into())]
    );
    // Further notifications are ignored quietly; a reset brings the device back.
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert!(t.errors(0).is_empty());
    t.w(0, REG_STATUS, 0);
    assert_eq!(t.r(0, REG_STATUS), 0);
}

#[test]
fn event_idx_asks_for_exactly_one_notification() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.post_rx_buffers(3);
    send(t.mem(0), &mut tx0, 0, 1, b"a");
    send(t.mem(0), &mut tx0, 1, 1, b"b");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx0.used_idx(), 2);
    let old = tx0.avail_idx();
    assert_eq!(tx0.avail_event(), old, "avail_event = next_avail");
    // One more buffer needs a notification, the one after it does not.
    assert!(need_event(tx0.avail_event(), old + 1, old));
    assert!(!need_event(tx0.avail_event(), old + 2, old + 1));
}

#[test]
fn used_buffer_notifications_follow_the_drivers_used_event_and_flags() {
    // Device to driver: there are no interrupts, but the device decides (and counts) each
    // notification it would send by the driver's rules.
    let sent = |t: &Run, vm| {
        let r = t.report(vm);
        (r.used_notifications, r.used_suppressed)
    };
    // EVENT_IDX: the driver asks to be told when the used index passes used_event = 1.
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.post_rx_buffers(4);
    tx0.set_used_event(1);
    send(t.mem(0), &mut tx0, 0, 1, b"a");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx0.used_idx(), 1);
    assert_eq!(
        sent(&t, 0),
        (0, 1),
        "used index 1 has not passed used_event 1"
    );
    send(t.mem(0), &mut tx0, 1, 1, b"b");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(sent(&t, 0), (1, 1), "used index 2 passed it");
    send(t.mem(0), &mut tx0, 2, 1, b"c");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(sent(&t, 0), (1, 2), "used_event was not moved on");
    // Without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT suppresses, its absence does not.
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, F_VERSION_1);
    let (mut rx1, _tx1) = t.up(1, F_VERSION_1);
    rx1.post_rx_buffers(2);
    tx0.set_avail_flags(1);
    send(t.mem(0), &mut tx0, 0, 1, b"a");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(sent(&t, 0), (0, 1));
    tx0.set_avail_flags(0);
    send(t.mem(0), &mut tx0, 1, 1, b"b");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(sent(&t, 0), (1, 1));
}

#[test]
fn abi_constants_match_virtio_bindings() {
    use virtio_bindings::virtio_config as c;
    use virtio_bindings::virtio_mmio as m;
    use virtio_bindings::virtio_ring as r;
    let regs = [
        (REG_MAGIC_VALUE, m::VIRTIO_MMIO_MAGIC_VALUE),
        (REG_VERSION, m::VIRTIO_MMIO_VERSION),
        (REG_DEVICE_ID, m::VIRTIO_MMIO_DEVICE_ID),
        (REG_VENDOR_ID, m::VIRTIO_MMIO_VENDOR_ID),
        (REG_DEVICE_FEATURES, m::VIRTIO_MMIO_DEVICE_FEATURES),
        (REG_DEVICE_FEATURES_SEL, m::VIRTIO_MMIO_DEVICE_FEATURES_SEL),
        (REG_DRIVER_FEATURES, m::VIRTIO_MMIO_DRIVER_FEATURES),
        (REG_DRIVER_FEATURES_SEL, m::VIRTIO_MMIO_DRIVER_FEATURES_SEL),
        (REG_QUEUE_SEL, m::VIRTIO_MMIO_QUEUE_SEL),
        (REG_QUEUE_NUM_MAX, m::VIRTIO_MMIO_QUEUE_NUM_MAX),
        (REG_QUEUE_NUM, m::VIRTIO_MMIO_QUEUE_NUM),
        (REG_QUEUE_READY, m::VIRTIO_MMIO_QUEUE_READY),
        (REG_QUEUE_NOTIFY, m::VIRTIO_MMIO_QUEUE_NOTIFY),
        (REG_INTERRUPT_STATUS, m::VIRTIO_MMIO_INTERRUPT_STATUS),
        (REG_INTERRUPT_ACK, m::VIRTIO_MMIO_INTERRUPT_ACK),
        (REG_STATUS, m::VIRTIO_MMIO_STATUS),
        (REG_QUEUE_DESC_LOW, m::VIRTIO_MMIO_QUEUE_DESC_LOW),
        (REG_QUEUE_DESC_HIGH, m::VIRTIO_MMIO_QUEUE_DESC_HIGH),
        (REG_QUEUE_DRIVER_LOW, m::VIRTIO_MMIO_QUEUE_AVAIL_LOW),
        (REG_QUEUE_DRIVER_HIGH, m::VIRTIO_MMIO_QUEUE_AVAIL_HIGH),
        (REG_QUEUE_DEVICE_LOW, m::VIRTIO_MMIO_QUEUE_USED_LOW),
        (REG_QUEUE_DEVICE_HIGH, m::VIRTIO_MMIO_QUEUE_USED_HIGH),
        (REG_CONFIG_GENERATION, m::VIRTIO_MMIO_CONFIG_GENERATION),
        (REG_CONFIG, m::VIRTIO_MMIO_CONFIG),
    ];
    for (ours, theirs) in regs {
        assert_eq!(ours, u64::from(theirs), "register {ours:#x}");
    }
    assert_eq!(MAGIC, u32::from_le_bytes(*b"virt"));
    let status = [
        (STATUS_ACKNOWLEDGE, c::VIRTIO_CONFIG_S_ACKNOWLEDGE),
        (STATUS_DRIVER, c::VIRTIO_CONFIG_S_DRIVER),
        (STATUS_DRIVER_OK, c::VIRTIO_CONFIG_S_DRIVER_OK),
        (STATUS_FEATURES_OK, c::VIRTIO_CONFIG_S_FEATURES_OK),
        (STATUS_DEVICE_NEEDS_RESET, c::VIRTIO_CONFIG_S_NEEDS_RESET),
        (STATUS_FAILED, c::VIRTIO_CONFIG_S_FAILED),
    ];
    for (ours, theirs) in status {
        assert_eq!(ours, theirs);
    }
    assert_eq!(F_VERSION_1, 1 << c::VIRTIO_F_VERSION_1);
    assert_eq!(F_EVENT_IDX, 1 << r::VIRTIO_RING_F_EVENT_IDX);
    assert_eq!(u32::from(VIRTQ_DESC_F_NEXT), r::VRING_DESC_F_NEXT);
    assert_eq!(u32::from(VIRTQ_DESC_F_WRITE), r::VRING_DESC_F_WRITE);
    assert_eq!(u32::from(VIRTQ_DESC_F_INDIRECT), r::VRING_DESC_F_INDIRECT);
    assert_eq!(
        u32::from(VIRTQ_AVAIL_F_NO_INTERRUPT),
        r::VRING_AVAIL_F_NO_INTERRUPT
    );
    assert_eq!(u32::from(VIRTQ_USED_F_NO_NOTIFY), r::VRING_USED_F_NO_NOTIFY);
}

#[test]
fn drop_used_update_fault_loses_the_1000th_message() {
    for (fault, lost) in [(None, 0), (Some(Fault::DropUsedUpdate), 1)] {
        let t = Run::new(2, fault);
        let (_rx0, mut tx0) = t.up(0, FEATURES);
        let (mut rx1, _tx1) = t.up(1, FEATURES);
        for i in 0..1000u64 {
            rx1.add(&[(RXBUF + (i % 16) * 0x1000, 4096, true)]);
            t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
            send(t.mem(0), &mut tx0, i % 16, 1, b"m");
            t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
        }
        assert_eq!(tx0.used_idx(), 1000, "every send completed ok");
        assert_eq!(rx1.used_idx(), 1000 - lost);
    }
}

#[test]
fn ignore_event_idx_fault_never_moves_avail_event() {
    // With EVENT_IDX negotiated, a correct device re-arms by publishing avail_event after
    // it empties the tx ring; the mutant never does, so the driver would never notify again.
    for (fault, want) in [(None, 1), (Some(Fault::IgnoreEventIdx), 0)] {
        let t = Run::new(2, fault);
        let (_rx0, mut tx0) = t.up(0, FEATURES);
        let (mut rx1, _tx1) = t.up(1, FEATURES);
        rx1.add(&[(RXBUF, 4096, true)]);
        t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
        send(t.mem(0), &mut tx0, 0, 1, b"m");
        t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
        assert_eq!(tx0.used_idx(), 1, "{fault:?}: the message went through");
        assert_eq!(tx0.avail_event(), want, "{fault:?}");
    }
}

#[test]
fn held_senders_share_a_receivers_buffers_round_robin() {
    let t = Run::new(3, None);
    let (mut rx0, _tx0) = t.up(0, FEATURES);
    let (_rx1, mut tx1) = t.up(1, FEATURES);
    let (_rx2, mut tx2) = t.up(2, FEATURES);
    // VM 1 sends two messages to VM 0, which has no buffer: held back.
    for slot in 0..2 {
        send(t.mem(1), &mut tx1, slot, 0, b"one");
    }
    t.w(1, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx1.used_idx(), 0);
    // A buffer appears before VM 0 notifies it: VM 2, coming later, queues behind VM 1.
    rx0.add(&[(RXBUF, 4096, true)]);
    for slot in 0..2 {
        send(t.mem(2), &mut tx2, slot, 0, b"two");
    }
    t.w(2, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx2.used_idx(), 0, "VM 2 waits behind VM 1");
    // A second buffer and the notification: one message from each sender, VM 1's first.
    rx0.add(&[(RXBUF + 0x1000, 4096, true)]);
    t.w(0, REG_QUEUE_NOTIFY, RX_QUEUE);
    assert_eq!((tx1.used_idx(), tx2.used_idx()), (1, 1));
    let src = |i: u64| -> u32 {
        t.mem(0)
            .read_obj(GuestAddress(RXBUF + i * 0x1000 + 8))
            .unwrap()
    };
    assert_eq!([src(0), src(1)], [1, 2]);
    // Two more: the rest, one each again.
    rx0.add(&[(RXBUF + 0x2000, 4096, true)]);
    rx0.add(&[(RXBUF + 0x3000, 4096, true)]);
    t.w(0, REG_QUEUE_NOTIFY, RX_QUEUE);
    assert_eq!((tx1.used_idx(), tx2.used_idx()), (2, 2));
    assert_eq!([src(2), src(3)], [1, 2]);
}

#[test]
fn a_slowdown_spins_inside_move_ns_and_changes_nothing_else() {
    let slowdown = crate::inject::Slowdown::from_us(3_000).unwrap();
    let t = Run::new(2, None).with_slowdown(Some(slowdown));
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.add(&[(RXBUF, 4096, true)]);
    let status = send(t.mem(0), &mut tx0, 0, 1, b"slow");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(status_at(t.mem(0), status), TxStatus::Ok as u32);
    assert_eq!(rx1.used(0), (0, HEADER_SIZE + 4));
    let vm = &t.hub.report("virtio-userspace".into()).vms[0];
    assert_eq!(vm.sent, 1);
    // One spin inside the timed interval: at least its duration, by construction.
    assert!(vm.move_ns >= 3_000_000, "{}", vm.move_ns);
}

/// A 4-byte status buffer of the test's own (above `IMAGE_BASE`), pre-set to "not written".
fn status_slot(t: &Run, i: u64) -> u64 {
    let at = BUF + 0xf000 + 4 * i;
    t.mem(0)
        .write_obj(0xffff_ffffu32, GuestAddress(at))
        .unwrap();
    at
}

#[test]
fn the_reserved_range_below_image_base_is_never_read_nor_written() {
    use pageflip_abi::{BOOT_INFO_GPA, IMAGE_BASE};
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    let canary = vec![0x5au8; 256];
    for vm in 0..2 {
        t.mem(vm)
            .write_slice(&canary, GuestAddress(BOOT_INFO_GPA + 0xf00))
            .unwrap();
    }
    t.mem(0)
        .write_slice(&header(1, 0, 1, 8), GuestAddress(BUF))
        .unwrap();
    // A payload read from the page tables: bad-chain, nothing delivered.
    let s0 = status_slot(&t, 0);
    tx0.add(&[(BUF, HEADER_SIZE, false), (0x2000, 8, false), (s0, 4, true)]);
    // A status descriptor in the boot-info page: nowhere to put a status, dropped.
    tx0.add(&[
        (BUF, HEADER_SIZE, false),
        (BUF + 0x100, 8, false),
        (BOOT_INFO_GPA + 0xf00, 4, true),
    ]);
    // A descriptor straddling IMAGE_BASE.
    let s2 = status_slot(&t, 2);
    tx0.add(&[(IMAGE_BASE - 8, HEADER_SIZE, false), (s2, 4, true)]);
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(status_at(t.mem(0), s0), TxStatus::BadChain as u32);
    assert_eq!(status_at(t.mem(0), s2), TxStatus::BadChain as u32);
    assert_eq!(tx0.used_idx(), 3);
    assert_eq!((tx0.used(0).1, tx0.used(1).1, tx0.used(2).1), (4, 0, 4));
    assert_eq!(rx1.used_idx(), 0, "nothing delivered");
    let rep = t.report(0);
    assert_eq!(
        (rep.tx_errors["bad-chain"], rep.tx_errors["dropped"]),
        (2, 1)
    );
    // VM 1's first rx buffer lies in its boot-info page: skipped with used length 0, the
    // message lands in the next one.
    rx1.add(&[(BOOT_INFO_GPA + 0xf00, 128, true)]);
    rx1.add(&[(RXBUF, 4096, true)]);
    t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
    let ok = send(t.mem(0), &mut tx0, 3, 1, b"reserved");
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(status_at(t.mem(0), ok), TxStatus::Ok as u32);
    assert_eq!(rx1.used_idx(), 2);
    assert_eq!(rx1.used(0), (0, 0), "the reserved buffer is skipped");
    assert_eq!(rx1.used(1), (1, HEADER_SIZE + 8));
    let e1 = t.errors(1);
    assert_eq!(e1, vec![("virtio:rx".into(), "bad-chain".into())]);
    for vm in 0..2 {
        let mut got = vec![0u8; 256];
        t.mem(vm)
            .read_slice(&mut got, GuestAddress(BOOT_INFO_GPA + 0xf00))
            .unwrap();
        assert_eq!(got, canary, "VM {vm}'s boot-info page is unchanged");
    }
}

#[test]
fn rings_in_the_reserved_range_are_refused() {
    use pageflip_abi::BOOT_INFO_GPA;
    for ring in [
        REG_QUEUE_DESC_LOW,
        REG_QUEUE_DRIVER_LOW,
        REG_QUEUE_DEVICE_LOW,
    ] {
        let t = Run::new(1, None);
        t.negotiate(0, FEATURES);
        let d = Driver::new(t.mem(0), RXQ_GPA);
        t.w(0, REG_QUEUE_SEL, RX_QUEUE);
        t.w(0, REG_QUEUE_NUM, u32::from(QSIZE));
        for (lo, a) in [
            (REG_QUEUE_DESC_LOW, d.desc),
            (REG_QUEUE_DRIVER_LOW, d.avail),
            (REG_QUEUE_DEVICE_LOW, d.used),
        ] {
            let a = if lo == ring { BOOT_INFO_GPA } else { a };
            t.w(0, lo, a as u32);
            t.w(0, lo + 4, (a >> 32) as u32);
        }
        t.w(0, REG_QUEUE_READY, 1);
        assert_eq!(t.r(0, REG_QUEUE_READY), 0, "ring register {ring:#x}");
        let e = t.hub.take_guest_errors(0).list;
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].detail.contains("reserved range"), "{}", e[0].detail);
    }
}

#[test]
fn indirect_descriptors_are_refused_without_the_feature() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.post_rx_buffers(4);
    t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
    // An indirect table of header, payload and status, as a driver with the feature makes.
    let table = BUF + 0x4000;
    let st = status_slot(&t, 0);
    t.mem(0)
        .write_slice(&header(1, 0, 1, 8), GuestAddress(BUF))
        .unwrap();
    for (i, (addr, len, flags)) in [
        (BUF, HEADER_SIZE, VIRTQ_DESC_F_NEXT),
        (BUF + 0x100, 8, VIRTQ_DESC_F_NEXT),
        (st, 4, VIRTQ_DESC_F_WRITE),
    ]
    .into_iter()
    .enumerate()
    {
        let d = SplitDescriptor::new(addr, len, flags, i as u16 + 1);
        t.mem(0)
            .write_obj(d, GuestAddress(table + 16 * i as u64))
            .unwrap();
    }
    let head = tx0.add(&[(table, 48, false)]);
    // add() gives no way to set INDIRECT: set it on the stored descriptor.
    let at = GuestAddress(tx0.desc + 16 * u64::from(head) + 12);
    t.mem(0).write_obj(VIRTQ_DESC_F_INDIRECT, at).unwrap();
    // The same table behind a header and before a direct status descriptor.
    let st2 = status_slot(&t, 1);
    let h2 = tx0.add(&[
        (BUF, HEADER_SIZE, false),
        (table, 48, false),
        (st2, 4, true),
    ]);
    let at = GuestAddress(tx0.desc + 16 * u64::from(h2 + 1) + 12);
    t.mem(0)
        .write_obj(VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, at)
        .unwrap();
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(tx0.used_idx(), 2);
    assert_eq!(
        tx0.used(0),
        (u32::from(head), 0),
        "dropped: no direct status"
    );
    assert_eq!(
        status_at(t.mem(0), st),
        0xffff_ffff,
        "the table is not read"
    );
    assert_eq!(tx0.used(1), (u32::from(h2), 4));
    assert_eq!(status_at(t.mem(0), st2), TxStatus::BadChain as u32);
    assert_eq!(rx1.used_idx(), 0, "nothing delivered");
    assert_eq!(t.r(0, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    let e = t.hub.take_guest_errors(0).list;
    assert!(
        e.iter().all(|e| e.detail.contains("VIRTQ_DESC_F_INDIRECT")),
        "{e:?}"
    );
}

#[test]
fn overlong_and_odd_descriptors_get_their_documented_status() {
    let t = Run::new(2, None);
    let (_rx0, mut tx0) = t.up(0, FEATURES);
    let (mut rx1, _tx1) = t.up(1, FEATURES);
    rx1.post_rx_buffers(4);
    t.w(1, REG_QUEUE_NOTIFY, RX_QUEUE);
    t.mem(0)
        .write_slice(&header(1, 0, 1, 8), GuestAddress(BUF))
        .unwrap();
    // Length 0xffffffff after the header: longer than 2^32 - 1 bytes in all.
    let s0 = status_slot(&t, 0);
    tx0.add(&[
        (BUF, HEADER_SIZE, false),
        (BUF + 0x100, u32::MAX, false),
        (s0, 4, true),
    ]);
    // Length 0xffffffff alone: past guest memory.
    let s1 = status_slot(&t, 1);
    tx0.add(&[(BUF + 0x100, u32::MAX, false), (s1, 4, true)]);
    // Write-only: no header to read.
    let s2 = status_slot(&t, 2);
    tx0.add(&[(s2, 4, true)]);
    // A zero-length descriptor pointing anywhere carries nothing: delivered.
    let s3 = status_slot(&t, 3);
    tx0.add(&[
        (BUF, HEADER_SIZE, false),
        (u64::MAX, 0, false),
        (BUF + 0x100, 8, false),
        (s3, 4, true),
    ]);
    t.w(0, REG_QUEUE_NOTIFY, TX_QUEUE);
    assert_eq!(
        t.r(0, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET,
        0,
        "no reset"
    );
    assert_eq!(tx0.used_idx(), 4);
    for s in [s0, s1, s2] {
        assert_eq!(
            status_at(t.mem(0), s),
            TxStatus::BadChain as u32,
            "{:?}",
            t.hub.take_guest_errors(0)
        );
    }
    assert_eq!(status_at(t.mem(0), s3), TxStatus::Ok as u32);
    assert_eq!(rx1.used_idx(), 1, "only the good one");
    let e = t.hub.take_guest_errors(0).list;
    assert!(
        e[0].detail.contains("longer than 2^32 - 1 bytes"),
        "{}",
        e[0].detail
    );
    assert!(
        e[1].detail.contains("reaches past guest memory"),
        "{}",
        e[1].detail
    );
    assert!(
        e[2].detail.contains("less than a 24-byte header"),
        "{}",
        e[2].detail
    );
}
