//! What the conformance probes report, where host and guest must agree on it.

/// Layout of the samples the `hello` guest reports: its boot info, flattened.
pub mod hello {
    use crate::{MAX_PARAMS, MAX_VMS};

    /// Sample index of the VM id.
    pub const VM_ID: usize = 0;
    /// Sample index of the number of VMs.
    pub const NUM_VMS: usize = 1;
    /// Sample index of the memory size.
    pub const MEM_SIZE: usize = 2;
    /// Sample index of the number of peers.
    pub const NUM_PEERS: usize = 3;
    /// Sample index of the first of [`MAX_VMS`] peer ids (unused entries are `u64::MAX`).
    pub const PEER_IDS: usize = 4;
    /// Sample index of the number of params.
    pub const NUM_PARAMS: usize = PEER_IDS + MAX_VMS;
    /// Sample index of the first of [`MAX_PARAMS`] params (unused entries are 0).
    pub const PARAMS: usize = NUM_PARAMS + 1;
    /// Sample index of the TSC frequency in kHz.
    pub const TSC_KHZ: usize = PARAMS + MAX_PARAMS;
    /// Sample index of `free_start`.
    pub const FREE_START: usize = TSC_KHZ + 1;
    /// Number of samples.
    pub const COUNT: usize = FREE_START + 1;
}

/// Parameters of the `fault` guest.
pub mod fault {
    /// `params[0]`: write to the unmapped null page (#PF, no IDT: the VM shuts down).
    pub const NULL_WRITE: u64 = 0;
    /// `params[0]`: execute `ud2` (#UD, the VM shuts down).
    pub const INVALID_OPCODE: u64 = 1;
    /// `params[0]`: read the GPA `mem_size + 0x1000`, owned by no device.
    pub const UNOWNED_READ: u64 = 2;
    /// Offset above `mem_size` that [`UNOWNED_READ`] reads.
    pub const UNOWNED_OFFSET: u64 = 0x1000;
}

/// The `isolation` guest.
pub mod isolation {
    /// Bytes of its memory each VM fills with its secret, from `free_start`.
    pub const FILL_BYTES: u64 = 2 << 20;
    /// The 64-bit secret VM `id` writes; no other VM's memory may ever show it.
    pub const fn secret(id: u32) -> u64 {
        0x5ec2_e700_0000_0000 | ((id as u64 + 1) * 0x0001_0001_0001)
    }
    /// `params[0]` = 1: after the scans, read `mem_size + 0x1000` (must stop the VM).
    pub const PROBE_BEYOND: u64 = 1;
}

/// The `doorbell` guest: `params[0]` = K doorbell writes inside the measured phase.
pub mod doorbell {
    /// Doorbell writes the guest makes before the measured phase, to warm up.
    pub const WARMUP: u64 = 1;
    /// Sample index: TSC ticks from before the PHASE begin write to after the end write,
    /// K + 2 MMIO exit round trips.
    pub const S_PHASE_TSC: usize = 0;
}

/// The `notify_floor` guest (1 VM, virtio transport): K virtio QueueNotify writes of an empty
/// tx queue inside the measured phase — the floor of an in-kernel (ioeventfd) exit.
pub mod notify_floor {
    /// `params[COUNT]`: K, the notifications inside the measured phase.
    pub const COUNT: usize = 0;
    /// Notifications before the measured phase, to warm up.
    pub const WARMUP: u64 = 16;
    /// Sample index: TSC ticks from before the PHASE begin write to after the end write
    /// (K notifications + 2 userspace exits).
    pub const S_PHASE_TSC: usize = 0;
}

/// Names of the records the remap-IPC guests write (`stream`, `pingpong`, `fanin` and the
/// `ipc_*` probes), for the host to look for.
pub mod ipc_records {
    /// Receiver: every byte of every message matches its sender's pattern (and the length
    /// and page count are the ones sent, in 1 to 8 extents). With `ipc_workloads::TOUCH`
    /// the receiver reads only the first 64 bytes, or no payload at all (then only the
    /// entry is checked).
    pub const DELIVERY_INTEGRITY: &str = "delivery-integrity";
    /// Receiver: each sender's sequence numbers arrive in increasing order.
    pub const FIFO_PER_SENDER: &str = "fifo-per-sender";
    /// Receiver: each sender's sequence numbers arrive as 0, 1, 2, ... with no gap.
    pub const GAP_FREE: &str = "gap-free";
    /// Receiver: no message twice, nothing after the last expected one.
    pub const NO_DUPLICATES: &str = "no-duplicates";
    /// Receiver: the entry's source is a legitimate sender and its destination this VM.
    pub const IDS: &str = "ids";
    /// Receiver: every expected message arrived.
    pub const COUNT: &str = "count";
    /// Receiver: every message is where the transport must put it. Remap/copy: its landing
    /// extents are the first pages of the next areas this VM posted, in posting order (each
    /// taken whole but the last). Virtio: it is in an rx buffer of the
    /// driver (inside the memory the driver set aside, page-aligned, contiguous, and the same
    /// buffer every time for a descriptor id). Shmem: it is in the next slot of the ring from
    /// its source to this VM.
    pub const LANDING_PAGES: &str = "landing-pages";
    /// Sender: every message was eventually delivered (status Ok), in order; retries after
    /// QueueFull are allowed and counted in the message. Virtio: every tx chain completed
    /// with status ok. Shmem: every message was published and consumed by the receiver.
    pub const ALL_DELIVERED: &str = "all-delivered";
    /// Any IPC guest: the run has an IPC transport (the header's magic is set). A FAIL here
    /// means the guest ran with transport `none` and did nothing else.
    ///
    /// The workloads `stream`, `pingpong` and `fanin` record it PASS with the name of the
    /// transport they ran over as the whole message ([`TRANSPORT_QUEUES`],
    /// [`TRANSPORT_VIRTIO`] or [`TRANSPORT_SHMEM`]), or FAIL if the run's transport is
    /// missing, unknown or did not come up (the message says why).
    pub const TRANSPORT: &str = "ipc-transport";
    /// Message of a PASS [`TRANSPORT`]: the remap-IPC queues (`remap` or `copy`: the guest
    /// cannot tell them apart).
    pub const TRANSPORT_QUEUES: &str = "queues";
    /// Message of a PASS [`TRANSPORT`]: the virtio datagram device.
    pub const TRANSPORT_VIRTIO: &str = "virtio";
    /// Message of a PASS [`TRANSPORT`]: the shared-memory rings.
    pub const TRANSPORT_SHMEM: &str = "shmem";
    /// `chain`'s middle VMs: every one of the `count` messages arrived from the previous VM
    /// with its header (first 64 bytes) intact, in order, once each, and was delivered to the
    /// next VM; PASS with the count, FAIL with the first check that failed.
    pub const FORWARDED: &str = "forwarded";
    /// Any IPC guest: the run parameters are valid (FAIL says which is not).
    pub const PARAMS: &str = "params";
    /// Any IPC guest: guest memory is large enough for its buffers (FAIL says how much).
    pub const MEMORY_SIZE: &str = "memory-size";
}

/// The workloads `stream`, `pingpong`, `fanin` and `chain`: one parameter layout, one sample
/// layout, over every transport.
///
/// The guest picks the transport from [`crate::BootInfo::transport`]: the remap-IPC queues
/// ([`crate::TRANSPORT_QUEUES`], or [`crate::TRANSPORT_NONE`] with the IPC header's magic
/// set), the virtio datagram device ([`crate::TRANSPORT_VIRTIO`]) or the shared-memory rings
/// ([`crate::TRANSPORT_SHMEM`]), and records PASS `ipc-transport` with its name. Parameters
/// that do not apply to a transport are ignored (`BATCH`, `URGENT_EVERY`, `WAIT_TIMEOUT_US`
/// outside remap/copy; `EVENT_IDX`, `DEPTH` outside virtio); with virtio and shmem a
/// blocking receive polls. Sizes go up to [`MAX_SIZE`](ipc_workloads::MAX_SIZE) (8 MiB)
/// over the remap-IPC queues, up to
/// [`MAX_SIZE_VIRTIO_SHMEM`](ipc_workloads::MAX_SIZE_VIRTIO_SHMEM) (64 KiB) over virtio and
/// shmem (a larger size is a FAIL `params` there).
///
/// Over the queues a sender splits each message into extents of at most 512 pages (2 MiB: an
/// 8 MiB message is 4 extents), and a receiver posts each landing area as one entry of the
/// message's pages; buffers and landing areas of messages of 2 MiB or more are 2 MiB-aligned
/// (so that `remap-huge` can move sizes that are multiples of 2 MiB). A sender keeps
/// min(64, max(2, 32 MiB / stride)) message buffers, a receiver posts min(256, max(2,
/// 32 MiB / stride)) landing areas, where stride is the message's pages rounded up to 2 MiB
/// for messages of 2 MiB or more.
///
/// Roles by VM id: `stream`: VM0 sends `count` messages to VM1; `pingpong`: VM0 sends
/// message r to VM1, VM1 answers with a message of the same size, `count` rounds; `fanin`:
/// VMs 1..n-1 each send `count` messages to VM0; `chain` (K = the run's VMs, 3 to 8; 2 runs
/// as `stream`): VM0 sends `count` messages to VM1, each middle VM i (0 < i < K-1) receives
/// them from VM i-1, reads and checks only their first 64 bytes (whatever
/// [`TOUCH`](ipc_workloads::TOUCH) says)
/// and forwards each to VM i+1 as it is, and VM K-1 checks them as
/// [`CHECK`](ipc_workloads::CHECK) and [`TOUCH`](ipc_workloads::TOUCH) say. Other VMs exit at once with code 0. Give every VM the same parameters.
///
/// A chain's payloads keep VM0's pattern (pattern source 0 at every hop), while each entry's
/// source is the VM that forwarded it: VM K-1's `fifo-per-sender`, `gap-free` and `ids` see
/// one sender, VM K-2. A middle VM forwards without copying in the guest: over the remap-IPC
/// queues it sends the received landing extents as the message (remap variants: their frames
/// move on; copy: the VMM copies them) and posts them again once the send completed ok; over
/// virtio it sends a tx chain whose payload descriptor points at the rx buffer's payload and
/// recycles the rx buffer when the chain completes; over shmem it copies the slot's payload
/// into its slot of the next ring. It records PASS `forwarded`
/// ([`ipc_records::FORWARDED`]) with the count, or FAIL with the first check that failed
/// (the receiver's checks of the headers, or the forwards' delivery), instead of the
/// receiver's checks and `all-delivered`. Messages moved per run: (K-1) * `count`.
///
/// Every VM with a role records PASS `params` (the values it runs with), or FAIL `params`,
/// `ipc-transport` or `memory-size` and exits 1. Every receiver records the checks of
/// [`ipc_records`] (`delivery-integrity`, `fifo-per-sender`, `gap-free`,
/// `no-duplicates`, `ids`, `landing-pages`, `count`), every sender `all-delivered` (a
/// chain's middle VMs: `forwarded` instead).
///
/// Each VM marks a measured phase around its transfer loop. The receivers post their landing
/// pages, then all VMs meet at a start barrier: a VM that receives first (the receiver of
/// `stream` and `fanin`, VM1 of `pingpong`, every VM but VM0 of `chain`) begins its phase
/// *before* that barrier, a VM that
/// sends first begins it *after*, so that every delivery into a VM (and the TLB flushes it
/// causes) falls inside that VM's phase; a receiver's phase therefore also holds the
/// barrier's exit (a polling receiver shows `mmio_exits` = 2: the barrier and the PHASE end
/// write). A sender's phase ends once every message was delivered (after a final flush), a
/// receiver's once every expected message arrived, a chain's middle VM's once it has
/// forwarded every message and every forward was delivered. A second barrier follows the phase, after
/// which the receivers check that nothing more arrives.
pub mod ipc_workloads {
    /// `params[COUNT]`: messages per sender (`stream`, `fanin`) or rounds (`pingpong`);
    /// 0 = [`DEFAULT_COUNT`].
    pub const COUNT: usize = 0;
    /// `params[SIZE]`: message size in bytes, [`MIN_SIZE`] to [`MAX_SIZE`] (virtio and
    /// shmem: to [`MAX_SIZE_VIRTIO_SHMEM`]); 0 = [`DEFAULT_SIZE`]. A message has
    /// `ceil(size / 4096)` pages.
    pub const SIZE: usize = 1;
    /// `params[BATCH]`: batch size B of the deferred sends: 0 or 1 = immediate (every send
    /// exits), 2..=64 = deferred (the send that fills a batch exits).
    pub const BATCH: usize = 2;
    /// `params[RECV_MODE]`: [`RECV_POLL`] or [`RECV_BLOCK`].
    pub const RECV_MODE: usize = 3;
    /// `params[URGENT_EVERY]`: N > 0 flags every Nth message (sequence numbers N-1, 2N-1,
    /// ...) urgent; 0 = none.
    pub const URGENT_EVERY: usize = 4;
    /// `params[CHECK]`: [`CHECK_FULL`] or [`CHECK_LIGHT`]: how much of each payload the
    /// sender writes and the receiver checks (of what [`TOUCH`] lets it read).
    pub const CHECK: usize = 5;
    /// `params[WAIT_TIMEOUT_US]`: the blocking receive's timeout written to the header
    /// (0 = the VMM's default, 1 s); the receiver reads `IPC_RECV_WAIT` again after one.
    pub const WAIT_TIMEOUT_US: usize = 6;
    /// `params[IDLE_TIMEOUT_MS]`: a VM gives up (and records failures) after this many
    /// milliseconds without progress; 0 = [`DEFAULT_IDLE_TIMEOUT_MS`].
    pub const IDLE_TIMEOUT_MS: usize = 7;
    /// `params[EVENT_IDX]` (virtio only): 0 = negotiate VIRTIO_F_EVENT_IDX, 1 = do not
    /// (every used buffer is looked for by polling either way).
    pub const EVENT_IDX: usize = 8;
    /// `params[DEPTH]` (virtio only): messages in flight per virtqueue, 1 to [`MAX_DEPTH`];
    /// 0 = [`DEFAULT_DEPTH`]. The driver keeps this many rx buffers posted and has at most
    /// this many tx messages (chains) outstanding, so it is also the most messages a sender
    /// has in flight. Each message takes 3 descriptors (header, payload, status on tx), and a
    /// virtqueue has at most [`crate::virtio::QUEUE_NUM_MAX`] (256) descriptors: hence
    /// [`MAX_DEPTH`] = 256 / 3 = 85. The other transports ignore it (remap/copy: the send
    /// ring's up to 64 buffers; shmem: [`crate::shmem::RING_SLOTS`]).
    pub const DEPTH: usize = 9;
    /// `params[TOUCH]`: [`TOUCH_ALL`], [`TOUCH_HEADER`] or [`TOUCH_NONE`]: how much of each
    /// received payload the receiver reads (the sender writes as [`CHECK`] says either way).
    pub const TOUCH: usize = 10;
    /// `params[TOUCH]` (default): the receiver reads and checks the payload as [`CHECK`]
    /// says.
    pub const TOUCH_ALL: u64 = 0;
    /// `params[TOUCH]`: the receiver reads and checks only the first 64 bytes of each
    /// payload (one cache line), as [`CHECK`] says within them.
    pub const TOUCH_HEADER: u64 = 1;
    /// `params[TOUCH]`: the receiver does not read the payload at all; `delivery-integrity`
    /// then checks only the entry (length and extents; `ids` checks the ids).
    pub const TOUCH_NONE: u64 = 2;
    /// Default of `params[DEPTH]`.
    pub const DEFAULT_DEPTH: u64 = 32;
    /// Largest `params[DEPTH]`.
    pub const MAX_DEPTH: u64 = 85;

    /// Default of `params[COUNT]`.
    pub const DEFAULT_COUNT: u64 = 1000;
    /// Default of `params[SIZE]`.
    pub const DEFAULT_SIZE: u64 = 4096;
    /// Smallest message size.
    pub const MIN_SIZE: u64 = 64;
    /// Largest message size over the remap-IPC queues (remap variants, copy): 8 MiB, 2048
    /// pages ([`crate::ipc::MAX_MSG_PAGES`]).
    pub const MAX_SIZE: u64 = 8 << 20;
    /// Largest message size over virtio and shmem (16 pages: a virtio buffer, a shmem slot).
    pub const MAX_SIZE_VIRTIO_SHMEM: u64 = 64 * 1024;
    const _: () = assert!(MAX_SIZE == crate::ipc::MAX_MSG_PAGES as u64 * crate::PAGE_SIZE);
    const _: () = assert!(MAX_SIZE_VIRTIO_SHMEM == crate::virtio::MAX_PAYLOAD as u64);
    const _: () = assert!(MAX_SIZE_VIRTIO_SHMEM == crate::shmem::SLOT_BYTES);
    /// Default of `params[IDLE_TIMEOUT_MS]`.
    pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 10_000;
    /// `params[RECV_MODE]`: poll the receive ring (no exits while waiting).
    pub const RECV_POLL: u64 = 0;
    /// `params[RECV_MODE]`: block in `IPC_RECV_WAIT` reads (the read's exit also drains the
    /// VM's own send ring).
    pub const RECV_BLOCK: u64 = 1;
    /// `params[CHECK]`: every byte is written and checked.
    pub const CHECK_FULL: u64 = 0;
    /// `params[CHECK]`: only the first 8 bytes of each page and the last 8 bytes of the
    /// message are written and checked (the pages are otherwise not touched: for
    /// benchmarks of the data movement itself).
    pub const CHECK_LIGHT: u64 = 1;
    /// Guest memory (MiB) that is always enough for the largest messages and up to 1,000,000
    /// messages per sender (smaller runs fit in less; a VM that does not fit records a FAIL
    /// `memory-size`). A VM that both sends and receives (`pingpong`) needs, below 2 MiB, the
    /// image, the per-message samples (512 KiB), the receiver's bitmap (1 MB for 1,000,000
    /// messages), at most 32 MiB of message buffers and 32 MiB of landing areas, and up to
    /// 2 MiB of alignment before each of those two: about 72 MiB, hence 80.
    pub const MIN_MEMORY_MIB: u64 = 80;

    /// Sample index: TSC ticks of the transfer loop (from just after the PHASE begin write,
    /// or for a VM that receives first from just after the start barrier, to just before the
    /// PHASE end write).
    pub const S_LOOP_TSC: usize = 0;
    /// Sample index: messages this VM sent that were delivered.
    pub const S_SENT: usize = 1;
    /// Sample index: messages this VM received (entries taken, in the loop).
    pub const S_RECEIVED: usize = 2;
    /// Sample index: sends repeated after QueueFull (backpressure retries; 0 for virtio and
    /// shmem, which never refuse for backpressure: the sender waits for a free buffer/slot).
    pub const S_RETRIES: usize = 3;
    /// Sample index: the VMM's `drains` of this VM's send ring at the end (0 for virtio and
    /// shmem).
    pub const S_DRAINS: usize = 4;
    /// Sample index: n, the number of per-message samples that follow the header.
    pub const S_PER_MESSAGE: usize = 5;
    /// Sample index: driver-to-device notifications this VM made in the measured phase,
    /// counted by the guest (virtio: QueueNotify writes; remap and copy: doorbell writes,
    /// SEND and FLUSH; 0 for shmem).
    pub const S_NOTIFICATIONS: usize = 6;
    /// Sample index: notifications this VM's driver left out because the device did not ask
    /// for them (virtio with EVENT_IDX, or the used ring's NO_NOTIFY flag).
    pub const S_SUPPRESSED: usize = 7;
    /// Samples before the per-message ones.
    pub const S_HEADER: usize = 8;
    /// Most per-message samples (those of the first messages or rounds). They are: the
    /// receiver's inter-arrival TSC ticks in `stream` and `fanin` and the last VM's in
    /// `chain` (the first from the start barrier), VM0's round-trip TSC ticks in `pingpong`;
    /// none for the other roles (a chain's middle VMs report the header only: its
    /// [`S_LOOP_TSC`], [`S_SENT`] = forwards delivered, [`S_RECEIVED`]).
    pub const PER_MESSAGE_MAX: usize = 65536;
}

/// The `ipc_security` probe (2 VMs): after a send, the sender must not see what the
/// receiver writes into the received page.
///
/// VM1 posts landing pages; barrier; VM0 fills a page g of its free memory with its pattern
/// (src 0, seq 0, 4096 bytes) and sends it to VM1 (immediate); VM1 receives it (poll),
/// checks it (`received-intact`), fills the page with [`ipc_security::SECRET`]; barrier; VM0
/// records `send-ok`, scans g and all of its free memory for the secret
/// (`sender-cannot-see-secret`) and checks g (`sender-page-after-send`): all zero with remap,
/// still the pattern with copy.
pub mod ipc_security {
    /// `params[MODE]` (both VMs): [`MODE_REMAP`] or [`MODE_COPY`]: which page-after-send
    /// check VM0 makes (0: none, recorded as SKIP).
    pub const MODE: usize = 0;
    /// The run's transport is remap: g must read all zero after the send.
    pub const MODE_REMAP: u64 = 1;
    /// The run's transport is copy: g must still hold the pattern after the send.
    pub const MODE_COPY: u64 = 2;
    /// The word VM1 writes across the received page.
    pub const SECRET: u64 = 0x5ec2_e7a1_b0b1_d00d;
}

/// The `ipc_semantics` probe (2 VMs, the same params for both): exact exit counts of
/// immediate, deferred and urgent sends. VM1 receives (poll), checks and counts the
/// messages; VM0 sends 1-page messages inside its measured phase, where nothing else exits.
///
/// Records on VM0 (per test): 1 `complete-at-doorbell`; 2 `deferred-until-batch`,
/// `batch-drained`; 3 `normal-stays-pending`, `urgent-drains`; 4 `unrelated-exit-drains`;
/// all: `all-delivered`. VM1: the receiver checks of [`ipc_records`].
///
/// Flow control: with N > [`WINDOW`](ipc_semantics::WINDOW) messages VM1 sends VM0 acknowledgements (1-page
/// messages whose seq is the number of messages VM1 has taken so far), which VM0 reads by
/// polling (no exit) so that it never has more than [`WINDOW`](ipc_semantics::WINDOW) messages unacknowledged and
/// VM1's receive ring never overflows. With remap their delivery into VM0 may show in VM0's
/// non-MMIO exits and TLB counters, never in `mmio_exits`.
pub mod ipc_semantics {
    /// `params[TEST]`: which test ([`TEST_IMMEDIATE`] ...).
    pub const TEST: usize = 0;
    /// `params[N]`: messages (tests 1 and 2); a multiple of `params[BATCH]` for test 2.
    pub const N: usize = 1;
    /// `params[BATCH]`: batch size B of test 2 (2..=64).
    pub const BATCH: usize = 2;

    /// Test 1: N sends with batch 1, each Ok when its doorbell returns.
    pub const TEST_IMMEDIATE: u64 = 1;
    /// Test 2: N sends with batch B: no exit until a batch is full, one drain per batch.
    pub const TEST_DEFERRED: u64 = 2;
    /// Test 3: batch [`URGENT_BATCH`]: [`URGENT_NORMAL`] normal sends stay pending, one
    /// urgent send drains them all.
    pub const TEST_URGENT: u64 = 3;
    /// Test 4: batch [`URGENT_BATCH`]: one send stays pending, a `DOORBELL` write drains it.
    pub const TEST_UNRELATED_EXIT: u64 = 4;
    /// Batch size of tests 3 and 4.
    pub const URGENT_BATCH: u32 = 8;
    /// Normal sends before the urgent one in test 3.
    pub const URGENT_NORMAL: u64 = 3;
    /// Most messages VM0 has sent and VM1 has not acknowledged.
    pub const WINDOW: u64 = 64;

    /// Sample index (VM0): the VMM's `drains` of VM0's send ring at the end.
    pub const S_DRAINS: usize = 0;
    /// Sample index (VM0): messages sent in the phase.
    pub const S_SENT: usize = 1;
    /// Sample index (VM0): the VMM's `sent` counter at the end.
    pub const S_VMM_SENT: usize = 2;
    /// Sample index (VM0): the VMM's `refused` counter at the end.
    pub const S_VMM_REFUSED: usize = 3;

    /// The `mmio_exits` VM0's measured phase must show for `test` with `n` messages and
    /// batch `batch`: one per exiting send plus the PHASE end write (`None` for an unknown
    /// test or an `n` that is not a multiple of `batch` in test 2).
    pub const fn expected_mmio_exits(test: u64, n: u64, batch: u64) -> Option<u64> {
        match test {
            TEST_IMMEDIATE => Some(n + 1),
            TEST_DEFERRED => {
                if batch == 0 || !n.is_multiple_of(batch) {
                    None
                } else {
                    Some(n / batch + 1)
                }
            }
            TEST_URGENT | TEST_UNRELATED_EXIT => Some(2),
            _ => None,
        }
    }

    /// The VMM's `drains` of VM0's send ring the whole run must show (see
    /// [`expected_mmio_exits`]).
    pub const fn expected_drains(test: u64, n: u64, batch: u64) -> Option<u64> {
        match test {
            TEST_IMMEDIATE => Some(n),
            TEST_DEFERRED => {
                if batch == 0 || !n.is_multiple_of(batch) {
                    None
                } else {
                    Some(n / batch)
                }
            }
            TEST_URGENT | TEST_UNRELATED_EXIT => Some(1),
            _ => None,
        }
    }
}

/// The `ipc_hostile` probe (2 VMs): bad descriptors get their statuses, backpressure stalls
/// and loses nothing.
///
/// VM1 posts [`BACKPRESSURE_POSTED`](ipc_hostile::BACKPRESSURE_POSTED) one-page areas;
/// barrier. VM0 places one bad descriptor per case of [`CASES`](ipc_hostile::CASES) (each
/// breaking one rule, every other field valid: dst 1, 100 bytes, one extent of one page of its
/// free memory holding a payload) and flushes, and records the case by name: PASS if the
/// status it saw is the case's. The cases: `not-owned` (page 0x10_0000), `outside-memory`
/// (page = mem_size), `unaligned` (page + 8), `unknown-dest` (dst max(7, num_vms)),
/// `self-send`, `len-zero`, `len-beyond-pages` (4097 bytes in 1 page), `nextents-zero`,
/// `nextents-too-many` (9), `extent-zero-pages` (an extent of 0 pages), `extent-unaligned`
/// (a valid first extent, then one at page + 8), `extent-past-memory` (2 pages from
/// mem_size - 4096), `extent-into-reserved` (2 pages from 0x1f_f000: it starts below
/// 0x20_0000), `too-many-pages` (2049 contiguous pages of free memory in extents of 512),
/// `overlap` (2 pages, then the second of them). The check order (`docs/remap-ipc.md`,
/// "Descriptor checks"), each descriptor breaking two rules: `order-first-bad-extent-decides`
/// (a reserved extent, then one past memory: `not_owned`), `order-address-before-not-owned`
/// (one unaligned extent in the reserved range: `bad_address`), `order-extents-before-length`
/// (an extent past memory, `len` 0: `bad_address`), `order-length-before-overlap`
/// (overlapping extents, `len` 0: `bad_length`), `order-overlap-before-dest` (overlapping
/// extents, `dst` unknown: `overlap`). Then `bad-ring` (send_head = send_tail +
/// 65: header `ring_error` BadRing, send_tail unchanged; then send_head is restored),
/// `refused-page-untouched` (the page the bad descriptors named still holds its payload).
/// Then `backpressure-full`: 8 one-page messages (100 bytes each) placed and flushed at once,
/// exactly the first 4 Ok and the last 4 QueueFull;
/// `refused-pages-untouched`: the refused messages' pages still hold their payload; barrier;
/// VM1 posts more areas and receives; VM0 sends the refused messages again, one at a time,
/// until Ok (`backpressure-resent`), then one more message (`still-works`); VM1 checks the 9
/// messages with the receiver checks of [`ipc_records`] and records
/// `backpressure-nothing-lost` (seqs 0..8 intact and in order) and `still-works-received`;
/// final barrier. VM0 records `refused-count` (the header's `refused` equals the
/// descriptors it saw refused).
pub mod ipc_hostile {
    use crate::ipc::IpcStatus;

    /// The bad-descriptor cases, in the order VM0 places them: the record name and the
    /// status the VMM must give (see the module documentation for what each breaks).
    pub const CASES: [(&str, IpcStatus); 20] = [
        ("not-owned", IpcStatus::NotOwned),
        ("outside-memory", IpcStatus::BadAddress),
        ("unaligned", IpcStatus::BadAddress),
        ("unknown-dest", IpcStatus::UnknownDest),
        ("self-send", IpcStatus::SelfSend),
        ("len-zero", IpcStatus::BadLength),
        ("len-beyond-pages", IpcStatus::BadLength),
        ("nextents-zero", IpcStatus::TooManyExtents),
        ("nextents-too-many", IpcStatus::TooManyExtents),
        ("extent-zero-pages", IpcStatus::BadAddress),
        ("extent-unaligned", IpcStatus::BadAddress),
        ("extent-past-memory", IpcStatus::BadAddress),
        ("extent-into-reserved", IpcStatus::NotOwned),
        ("too-many-pages", IpcStatus::TooManyPages),
        ("overlap", IpcStatus::Overlap),
        ("order-first-bad-extent-decides", IpcStatus::NotOwned),
        ("order-address-before-not-owned", IpcStatus::BadAddress),
        ("order-extents-before-length", IpcStatus::BadAddress),
        ("order-length-before-overlap", IpcStatus::BadLength),
        ("order-overlap-before-dest", IpcStatus::Overlap),
    ];

    /// The status case `name` of [`CASES`] must get (`None` for an unknown name).
    pub fn expected(name: &str) -> Option<IpcStatus> {
        CASES.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
    }

    /// Pages VM1 posts before the backpressure test.
    pub const BACKPRESSURE_POSTED: u64 = 4;
    /// Messages VM0 sends at once in the backpressure test.
    pub const BACKPRESSURE_SENT: u64 = 8;
    /// Messages VM1 receives in all.
    pub const MESSAGES: u64 = BACKPRESSURE_SENT + 1;
    /// Sample index (VM0): descriptors VM0 saw refused (any status other than Ok; the bad
    /// ring is not a descriptor and not counted).
    pub const S_REFUSED: usize = 0;
    /// Sample index (VM0): the header's `refused` counter at the end.
    pub const S_VMM_REFUSED: usize = 1;
    /// Sample index (VM0): of [`S_REFUSED`], those refused with QueueFull.
    pub const S_QUEUE_FULL: usize = 2;
}

/// The `ipc_landing` probe (2 VMs, the same params for both): how a message lands in the
/// receiver's posted entries (`docs/remap-ipc.md`, "Landing"), and the status of every posted
/// entry the VMM skips. VM0 sends, one immediate send at a time (batch 1); VM1 posts and
/// checks; barriers separate the steps. `u` is the unit of the variant: 1 page, or 512 pages
/// (2 MiB) on `remap-huge`, where every extent sent or posted must be whole huge pages. Every
/// message but the 4 KiB one is `pages * 4096 - 100` bytes (so copy needs all its pages too).
///
/// VM1 records, in this order:
/// 1. [`GAPPED_EXTENTS`](ipc_landing::GAPPED_EXTENTS): a message whose extents are not
///    adjacent in VM0 (`[S, 1]`, `[S + 2, 2]`, `[S + 6, 5]` pages; on `remap-huge`
///    `[S, 1u]`, `[S + 2u, 1u]`, `[S + 4u, 2u]`) lands in two entries posted back to back
///    (`[L, 3]`, `[L + 3, 5]`; huge `[L, 1u]`, `[L + 1u, 3u]`): the entry lists exactly those
///    two, and every byte is VM0's pattern. Its pieces are adjacent in VM1's memory but not in
///    the frames that move, so a VMM that merges host mappings by GPA alone maps the wrong
///    frames (the `coalesce-across-gap` mutant).
/// 2. [`MULTI_LANDING`](ipc_landing::MULTI_LANDING): an 8 MiB message (2048 pages, 4 extents
///    of 512) lands across three entries of different sizes, the last used in part (1000,
///    1000, 100 pages: the entry lists 1000, 1000, 48; huge 512, 1024, 1024: 512, 1024, 512);
///    all three are retired with status ok; every byte checked.
/// 3. [`POST_STATUSES`](ipc_landing::POST_STATUSES): VM1 posts the entries of
///    [`BAD_POSTS`](ipc_landing::BAD_POSTS) (each breaks one rule; those that break two show
///    which check comes first), then a good entry `[A, 1u]`, then `[A, 2u]` (overlaps it:
///    overlap), then a good `[A + 2u, 1u]`; a `2u` message lands in `[A, 1u]`, `[A + 2u, 1u]`;
///    every entry has its status, the header's `post_refused` grew by 6, `post_tail` passed
///    them all.
/// 4. [`POST_BUSY`](ipc_landing::POST_BUSY): VM1 posts `[B, 1u]`, a message lands there and is
///    left unconsumed; VM1 posts `[B, 1u]` again (busy) and `[B + 1u, 1u]`; a second message
///    skips the busy entry and lands in the next one; the first message is still intact.
/// 5. [`LANDING_TOO_SMALL`](ipc_landing::LANDING_TOO_SMALL) (not `remap-huge`, where 8 whole
///    huge pages always hold a message: SKIP): 8 one-page entries posted, a 9-page message
///    gets landing_too_small and consumes nothing (statuses pending, `post_tail` unchanged);
///    a 1-page message then lands in the first entry.
/// 6. [`LANDING_QUEUE_FULL`](ipc_landing::LANDING_QUEUE_FULL): with `n` entries of `1u` posted
///    (the 7 left by step 5; on `remap-huge` 3 fresh ones), a message of `n + 1` units gets
///    queue_full (the post ring runs out first) and consumes nothing; one of `n` units then
///    takes them all, in order.
/// 7. `remap-huge` only (SKIP elsewhere): [`NOT_HUGE_POST`](ipc_landing::NOT_HUGE_POST): VM1
///    posts 512 pages at a GPA 4 KiB past a 2 MiB boundary and 100 pages at a 2 MiB boundary
///    (both not_huge), then `[H, 512]`; VM0's 4 KiB message gets not_huge
///    ([`NOT_HUGE_SEND`](ipc_landing::NOT_HUGE_SEND), on VM0), its 2 MiB message lands in
///    `[H, 512]` ([`HUGE_LANDS`](ipc_landing::HUGE_LANDS)).
/// 8. [`POST_REFUSED_COUNT`](ipc_landing::POST_REFUSED_COUNT): the header's `post_refused` is
///    [`expected_post_refused`](ipc_landing::expected_post_refused), and nothing else arrived.
///
/// VM0 records `<step>-send` for steps 1 to 6 (every send of the step had its status), the
/// huge ones of step 7, [`SENDER_PAGES`](ipc_landing::SENDER_PAGES) (after step 1 its gapped
/// extents read all zero on the remap variants, and still hold the payload with copy) and
/// [`REFUSED_COUNT`](ipc_landing::REFUSED_COUNT) (the header's `refused` equals the
/// descriptors it saw refused).
pub mod ipc_landing {
    use crate::ipc::IpcStatus;

    /// `params[VARIANT]` (both VMs): the run's transport, which the guest cannot tell apart
    /// otherwise ([`VARIANT_REMAP`] ...).
    pub const VARIANT: usize = 0;
    /// Transport `remap`.
    pub const VARIANT_REMAP: u64 = 1;
    /// Transport `remap-per-page`.
    pub const VARIANT_REMAP_PER_PAGE: u64 = 2;
    /// Transport `copy`.
    pub const VARIANT_COPY: u64 = 3;
    /// Transport `remap-huge`: every extent in units of 512 pages; the huge steps run.
    pub const VARIANT_REMAP_HUGE: u64 = 4;

    /// Whether `variant` is a known one.
    pub const fn valid(variant: u64) -> bool {
        matches!(
            variant,
            VARIANT_REMAP | VARIANT_REMAP_PER_PAGE | VARIANT_COPY | VARIANT_REMAP_HUGE
        )
    }

    /// Whether `variant` is `remap-huge`.
    pub const fn huge(variant: u64) -> bool {
        variant == VARIANT_REMAP_HUGE
    }

    /// VM1, step 1.
    pub const GAPPED_EXTENTS: &str = "gapped-extents";
    /// VM1, step 2.
    pub const MULTI_LANDING: &str = "multi-landing";
    /// VM1, step 3.
    pub const POST_STATUSES: &str = "post-statuses";
    /// VM1, step 4.
    pub const POST_BUSY: &str = "post-busy";
    /// VM1, step 5 (SKIP on `remap-huge`).
    pub const LANDING_TOO_SMALL: &str = "landing-too-small";
    /// VM1, step 6.
    pub const LANDING_QUEUE_FULL: &str = "landing-queue-full";
    /// VM1, step 7 (SKIP unless `remap-huge`).
    pub const NOT_HUGE_POST: &str = "not-huge-post";
    /// VM1, step 7 (SKIP unless `remap-huge`).
    pub const HUGE_LANDS: &str = "huge-lands";
    /// VM1, step 8.
    pub const POST_REFUSED_COUNT: &str = "post-refused-count";
    /// VM0, step 7 (SKIP unless `remap-huge`): the 4 KiB message got not_huge.
    pub const NOT_HUGE_SEND: &str = "not-huge-send";
    /// VM0: the header's `refused` equals the descriptors VM0 saw refused.
    pub const REFUSED_COUNT: &str = "refused-count";
    /// VM0, after step 1: its sent pages read zero (remap variants) or still hold the
    /// payload (copy).
    pub const SENDER_PAGES: &str = "sender-pages-after-send";

    /// VM1's records.
    pub const RECEIVER_RECORDS: [&str; 9] = [
        GAPPED_EXTENTS,
        MULTI_LANDING,
        POST_STATUSES,
        POST_BUSY,
        LANDING_TOO_SMALL,
        LANDING_QUEUE_FULL,
        NOT_HUGE_POST,
        HUGE_LANDS,
        POST_REFUSED_COUNT,
    ];
    /// VM0's records.
    pub const SENDER_RECORDS: [&str; 10] = [
        "gapped-extents-send",
        "multi-landing-send",
        "post-statuses-send",
        "post-busy-send",
        "landing-too-small-send",
        "landing-queue-full-send",
        NOT_HUGE_SEND,
        "huge-lands-send",
        REFUSED_COUNT,
        SENDER_PAGES,
    ];

    /// Whether record `name` (of either VM) is a SKIP on `variant`: the huge steps off
    /// `remap-huge`, landing-too-small on it.
    pub fn skipped(variant: u64, name: &str) -> bool {
        let huge_only = [NOT_HUGE_POST, HUGE_LANDS, NOT_HUGE_SEND, "huge-lands-send"];
        let not_huge = [LANDING_TOO_SMALL, "landing-too-small-send"];
        if huge(variant) {
            not_huge.contains(&name)
        } else {
            huge_only.contains(&name)
        }
    }

    /// The bad entries VM1 posts in step 3, in order: what each is, and its status. `G` is a
    /// page of VM1's free memory, `M` its memory size.
    pub const BAD_POSTS: [(&str, IpcStatus); 5] = [
        ("0 pages at G", IpcStatus::BadAddress),
        ("1 page at G + 8 (unaligned)", IpcStatus::BadAddress),
        ("2 pages at M - 4096 (past memory)", IpcStatus::BadAddress),
        (
            "2 pages at 0x1f_f000 (into the reserved range)",
            IpcStatus::NotOwned,
        ),
        (
            "0 pages at 0x10_0000 (reserved too: bad_address comes first)",
            IpcStatus::BadAddress,
        ),
    ];

    /// Messages delivered (VM0's `sent`, VM1's `received`) on every variant.
    pub const MESSAGES: u64 = 7;

    /// VM0's descriptors the VMM refuses on `variant`, by status, in a fixed order.
    pub const fn expected_refused(variant: u64) -> [(IpcStatus, u64); 2] {
        if huge(variant) {
            [(IpcStatus::QueueFull, 1), (IpcStatus::NotHuge, 1)]
        } else {
            [(IpcStatus::LandingTooSmall, 1), (IpcStatus::QueueFull, 1)]
        }
    }

    /// VM1's posted entries the VMM skips on `variant` (the header's `post_refused`): the
    /// bad ones and the overlap of step 3, the busy one of step 4, and the two not-huge
    /// ones of step 7.
    pub const fn expected_post_refused(variant: u64) -> u64 {
        let common = BAD_POSTS.len() as u64 + 1 + 1;
        if huge(variant) {
            common + 2
        } else {
            common
        }
    }

    /// Sample index (VM0): descriptors VM0 saw refused.
    pub const S_REFUSED: usize = 0;
    /// Sample index (VM0): the header's `refused` at the end.
    pub const S_VMM_REFUSED: usize = 1;
    /// Sample index (VM1): the header's `post_refused` at the end.
    pub const S_POST_REFUSED: usize = 0;
}

/// The `ipc_forward` probe (3 VMs): VM0 sends a message to VM1, VM1 forwards the received
/// pages unchanged (its landing extents as they are, same length and seq) to VM2.
///
/// VM1 and VM2 post two landing areas of the message's pages (2 MiB-aligned for messages of
/// 2 MiB or more); barrier; VM0 sends (records `send-ok`,
/// `sender-page-after-send`); VM1 receives it (`received-intact`: VM0's pattern), forwards it
/// (`forward-ok`) and checks its pages afterwards (`forwarder-page-after-send`: zero with
/// remap, unchanged with copy); VM2 receives it and records `forwarded-intact` (the payload
/// is VM0's pattern for seq 0) and `forward-ids` (src 1, dst 2, seq 0, the length sent).
pub mod ipc_forward {
    /// `params[MODE]` (all VMs): [`super::ipc_security::MODE_REMAP`] or
    /// [`super::ipc_security::MODE_COPY`] (0: the page-after-send checks are SKIPs).
    pub const MODE: usize = 0;
    /// `params[SIZE]` (all VMs): message size in bytes, 1 to 8388608 (8 MiB); 0 = 4096.
    pub const SIZE: usize = 1;
    /// Default of `params[SIZE]`.
    pub const DEFAULT_SIZE: u64 = 4096;
}

/// The `virtio_init` probe (1 VM): the initialisation of the virtio datagram device
/// ([`crate::virtio`]), step by step, and its refusal of bad initialisations.
///
/// `params[MODE]` selects what the guest does; every mode records `params` (FAIL for an
/// unknown mode) and `transport` (FAIL: the run's transport is not virtio, nothing else
/// runs). The guest's `main` returns 0 in every mode: the records carry the verdict (the
/// runtime still exits 1 when a FAIL was recorded).
///
/// - [`MODE_FULL`](virtio_init::MODE_FULL): the full handshake, one record per step:
///   `magic`, `version`, `device-id`, `vendor-id`, `reset` (status reads 0 after writing 0),
///   `features-offered` (exactly [`crate::virtio::DEVICE_FEATURES`]), `features-ok`
///   (VERSION_1 | EVENT_IDX accepted), `queue-setup-rx`, `queue-setup-tx` (QueueReady 0
///   before, QueueNumMax = [`crate::virtio::QUEUE_NUM_MAX`], QueueReady reads 1 after setup
///   with [`QUEUE_SIZE`](virtio_init::QUEUE_SIZE) entries), `driver-ok` (status reads
///   ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK), `config-space` ((vm_id, num_vms,
///   [`crate::virtio::MAX_PAYLOAD`], 0)), `reset-clears-status` (status reads 0 after writing
///   0), `reset-clears-queues` (QueueReady of both queues reads 0 after the reset).
/// - [`MODE_NO_VERSION_1`](virtio_init::MODE_NO_VERSION_1): the driver writes EVENT_IDX
///   only: `features-ok-refused` (FEATURES_OK does not stay set).
/// - [`MODE_UNOFFERED_FEATURE`](virtio_init::MODE_UNOFFERED_FEATURE): the driver writes
///   VERSION_1 | bit [`UNOFFERED_FEATURE_BIT`](virtio_init::UNOFFERED_FEATURE_BIT):
///   `features-ok-refused`.
/// - [`MODE_QUEUE_NUM_NOT_POW2`](virtio_init::MODE_QUEUE_NUM_NOT_POW2): the rx queue is set
///   up with QueueNum [`QUEUE_NUM_NOT_POW2`](virtio_init::QUEUE_NUM_NOT_POW2):
///   `queue-num-refused` (QueueReady reads 0 after writing 1).
/// - [`MODE_QUEUE_NUM_ABOVE_MAX`](virtio_init::MODE_QUEUE_NUM_ABOVE_MAX): the rx queue is set
///   up with QueueNum [`QUEUE_NUM_ABOVE_MAX`](virtio_init::QUEUE_NUM_ABOVE_MAX):
///   `queue-num-refused`.
/// - [`MODE_NOTIFY_UNREADY`](virtio_init::MODE_NOTIFY_UNREADY): after FEATURES_OK, before
///   any queue is set up and before DRIVER_OK, the driver writes QueueNotify = 1 (the tx
///   queue, not set up) and QueueNotify = [`NO_SUCH_QUEUE`](virtio_init::NO_SUCH_QUEUE):
///   `notify-unready-ignored` (the VM keeps running and the status still reads exactly
///   ACKNOWLEDGE | DRIVER | FEATURES_OK).
/// - [`MODE_RING_RESERVED`](virtio_init::MODE_RING_RESERVED): the rx queue is set up with
///   its device area at [`RING_RESERVED_GPA`](virtio_init::RING_RESERVED_GPA):
///   `ring-reserved-refused` (QueueReady reads 0 after writing 1).
///
/// After the rejection of modes 1 to 6 the driver sets FAILED (as a driver that gives up
/// does), then resets the device and initialises it fully ([`DEPTH`](virtio_init::DEPTH)
/// messages in flight, EVENT_IDX): `recovers` (the whole initialisation succeeds and the
/// status reads ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK).
pub mod virtio_init {
    /// `params[MODE]`: which mode.
    pub const MODE: usize = 0;
    /// Mode 0: the full handshake, step by step.
    pub const MODE_FULL: u64 = 0;
    /// Mode 1: the driver does not accept VERSION_1.
    pub const MODE_NO_VERSION_1: u64 = 1;
    /// Mode 2: the driver accepts a feature the device does not offer.
    pub const MODE_UNOFFERED_FEATURE: u64 = 2;
    /// Mode 3: QueueNum is not a power of two.
    pub const MODE_QUEUE_NUM_NOT_POW2: u64 = 3;
    /// Mode 4: QueueNum is above QueueNumMax.
    pub const MODE_QUEUE_NUM_ABOVE_MAX: u64 = 4;
    /// Mode 5: notifications of queues that are not set up, before DRIVER_OK.
    pub const MODE_NOTIFY_UNREADY: u64 = 5;
    /// Mode 6: the rx queue's device area (used ring) lies at [`RING_RESERVED_GPA`], below
    /// `IMAGE_BASE`.
    pub const MODE_RING_RESERVED: u64 = 6;
    /// Number of modes.
    pub const MODES: u64 = 7;

    /// Where mode 6 puts the used ring: in the boot-info page, which is not the guest's.
    pub const RING_RESERVED_GPA: u64 = crate::BOOT_INFO_GPA + 0x800;

    /// The feature bit mode 2 accepts (bit 0: not offered).
    pub const UNOFFERED_FEATURE_BIT: u32 = 0;
    /// The QueueNum of mode 3.
    pub const QUEUE_NUM_NOT_POW2: u32 = 100;
    /// The QueueNum of mode 4.
    pub const QUEUE_NUM_ABOVE_MAX: u32 = 512;
    /// The second queue index mode 5 notifies (no such queue).
    pub const NO_SUCH_QUEUE: u32 = 7;
    /// Queue size of mode 0's queues.
    pub const QUEUE_SIZE: u32 = 16;
    /// Messages in flight of the recovery initialisation.
    pub const DEPTH: u32 = 4;

    /// Record: the run's transport is virtio.
    pub const TRANSPORT: &str = "transport";
    /// Record: `params[MODE]` is a known mode.
    pub const PARAMS: &str = "params";
    /// Record (mode 0): MagicValue is "virt".
    pub const MAGIC: &str = "magic";
    /// Record (mode 0): Version is 2.
    pub const VERSION: &str = "version";
    /// Record (mode 0): DeviceID is [`crate::virtio::DEVICE_ID`].
    pub const DEVICE_ID: &str = "device-id";
    /// Record (mode 0): VendorID is [`crate::virtio::VENDOR_ID`].
    pub const VENDOR_ID: &str = "vendor-id";
    /// Record (mode 0): the status reads 0 after the driver writes 0 (before the handshake).
    pub const RESET: &str = "reset";
    /// Record (mode 0): the device offers exactly [`crate::virtio::DEVICE_FEATURES`].
    pub const FEATURES_OFFERED: &str = "features-offered";
    /// Record (mode 0): FEATURES_OK stays set after the driver accepts VERSION_1 | EVENT_IDX.
    pub const FEATURES_OK: &str = "features-ok";
    /// Record (mode 0): the rx queue's setup.
    pub const QUEUE_SETUP_RX: &str = "queue-setup-rx";
    /// Record (mode 0): the tx queue's setup.
    pub const QUEUE_SETUP_TX: &str = "queue-setup-tx";
    /// Record (mode 0): DRIVER_OK is set and the status shows nothing else wrong.
    pub const DRIVER_OK: &str = "driver-ok";
    /// Record (mode 0): the configuration space is (vm_id, num_vms, MAX_PAYLOAD, 0).
    pub const CONFIG_SPACE: &str = "config-space";
    /// Record (mode 0): the status reads 0 after a reset of the running device.
    pub const RESET_CLEARS_STATUS: &str = "reset-clears-status";
    /// Record (mode 0): QueueReady of both queues reads 0 after that reset.
    pub const RESET_CLEARS_QUEUES: &str = "reset-clears-queues";
    /// Record (modes 1, 2): FEATURES_OK did not stay set.
    pub const FEATURES_OK_REFUSED: &str = "features-ok-refused";
    /// Record (modes 3, 4): QueueReady reads 0 after the bad setup.
    pub const QUEUE_NUM_REFUSED: &str = "queue-num-refused";
    /// Record (mode 5): the notifications changed nothing.
    pub const NOTIFY_UNREADY_IGNORED: &str = "notify-unready-ignored";
    /// Record (mode 6): QueueReady reads 0 after the setup with a ring below `IMAGE_BASE`.
    pub const RING_RESERVED_REFUSED: &str = "ring-reserved-refused";
    /// Record (modes 1 to 6): reset and full initialisation succeed afterwards.
    pub const RECOVERS: &str = "recovers";
}

/// The `virtio_hostile` probe (2 VMs): bad tx chains get their documented answers, and the
/// device works afterwards.
///
/// Both VMs initialise their device ([`DEPTH`](virtio_hostile::DEPTH) messages in flight,
/// [`MAX_PAYLOAD`](virtio_hostile::MAX_PAYLOAD)-byte buffers; record `init`), then meet at a
/// barrier. VM0 (the hostile sender) makes one bad chain as `params[CASE]` says, from spare
/// descriptors: a readable header descriptor ({seq [`BAD_SEQ`](virtio_hostile::BAD_SEQ),
/// dst 1, len [`BAD_LEN`](virtio_hostile::BAD_LEN)}), a readable payload descriptor
/// (`BAD_LEN` bytes of pattern), a writable 4-byte status descriptor (pre-set to
/// `0xffff_ffff`), with one thing broken per case (see the `CASE_*` constants). It waits (2
/// s at most) for a used element or DEVICE_NEEDS_RESET and records `device-response`: PASS if
/// the device answered as [`expected`](virtio_hostile::expected) says (the message gives
/// the status word, the used length and the status register). Case 4 makes two chains and
/// records `device-response` (dst = VM0) and `device-response-unknown-dst` (dst
/// [`UNKNOWN_DST`](virtio_hostile::UNKNOWN_DST)). Case 6 puts the header, payload and
/// status descriptors in an indirect table named by the chain's only descriptor. Case 8
/// also records `reserved-untouched` (the boot-info page,
/// [`RESERVED_GPA`](virtio_hostile::RESERVED_GPA), is unchanged). Case 10 makes no bad
/// chain: VM1, before the first barrier, points its first available rx buffer at
/// [`RX_RESERVED_GPA`](virtio_hostile::RX_RESERVED_GPA); after receiving it records `rx-skipped` (that buffer came back with used
/// length 0, first) and `reserved-untouched`. VM0 then records
/// `nothing-arrived-at-sender` (its own rx queue got nothing).
///
/// Then VM0 resets and re-initialises the device if DEVICE_NEEDS_RESET is set or a chain was
/// not used (a device that answered correctly without needing a reset is used as it is),
/// and both VMs meet at a second barrier. VM0 sends one good message (seq
/// [`GOOD_SEQ`](virtio_hostile::GOOD_SEQ), [`GOOD_LEN`](virtio_hostile::GOOD_LEN) bytes of
/// the pattern of (src 0, seq 1)) to VM1 and records `recovered` (its status is Ok within 2 s;
/// the message says whether a reset was made); VM1 receives (2 s at most) and records
/// `received-intact` (src 0, dst 1, seq 1, the length, the pattern). A third barrier; then
/// VM1 polls [`QUIET_MS`](virtio_hostile::QUIET_MS) more and records `nothing-else-arrived`
/// (no message other than the good one arrived at any time, and no used element named no
/// buffer). A VM with another id exits at once.
pub mod virtio_hostile {
    use crate::virtio::TxStatus;

    /// `params[CASE]`: which bad chain VM0 makes.
    pub const CASE: usize = 0;
    /// Case 0: the payload descriptor's address is `mem_size + BEYOND_MEMORY_OFFSET`.
    pub const CASE_BEYOND_MEMORY: u64 = 0;
    /// Case 1: the payload descriptor's address is [`OVERFLOW_ADDR`]: addr + len
    /// ([`BAD_LEN`]) overflows u64.
    pub const CASE_ADDR_OVERFLOW: u64 = 1;
    /// Case 2: a looping chain: header descriptor → payload descriptor → header descriptor.
    pub const CASE_LOOP: u64 = 2;
    /// Case 3: the header's len is [`LONG_LEN`], more than the chain's readable bytes after
    /// the header.
    pub const CASE_LEN_BEYOND_CHAIN: u64 = 3;
    /// Case 4: dst is VM0 itself, then [`UNKNOWN_DST`].
    pub const CASE_BAD_DST: u64 = 4;
    /// Case 5: no writable status descriptor (header and payload only).
    pub const CASE_NO_STATUS: u64 = 5;
    /// Case 6: the chain is one descriptor with `VIRTQ_DESC_F_INDIRECT`, naming a table of
    /// the header, payload and status descriptors (as a driver with `VIRTIO_F_INDIRECT_DESC`
    /// makes it); the device does not offer that feature.
    pub const CASE_INDIRECT: u64 = 6;
    /// Case 7: the payload descriptor's length is `0xffffffff` (the chain's lengths add up
    /// past `u32::MAX`).
    pub const CASE_LEN_MAX: u64 = 7;
    /// Case 8: the status descriptor lies at [`STATUS_RESERVED_GPA`], on the boot info's
    /// magic.
    pub const CASE_STATUS_RESERVED: u64 = 8;
    /// Case 9: the payload descriptor lies at [`RESERVED_READ_GPA`], in the page tables.
    pub const CASE_PAYLOAD_RESERVED: u64 = 9;
    /// Case 10: VM1 rewrites its first available rx buffer's descriptor to lie at
    /// [`RX_RESERVED_GPA`] ([`RX_RESERVED_LEN`] bytes) before VM0 sends the good message.
    pub const CASE_RX_RESERVED: u64 = 10;
    /// Number of cases.
    pub const CASES: u64 = 11;

    /// The page cases 8 and 10 point a device-writable descriptor into, and check unchanged
    /// afterwards: the boot-info page, below `IMAGE_BASE` (the guest may read it, not
    /// write it).
    pub const RESERVED_GPA: u64 = crate::BOOT_INFO_GPA;
    /// Bytes at [`RESERVED_GPA`] the guest checks (the page).
    pub const RESERVED_CHECKED: u64 = 0x1000;
    /// Case 8's status descriptor: the boot info's magic (not 0, so that a status 0 written
    /// there shows).
    pub const STATUS_RESERVED_GPA: u64 = RESERVED_GPA;
    /// Case 10's rx descriptor: the boot-info page's tail (zero, so that a message written
    /// there shows).
    pub const RX_RESERVED_GPA: u64 = RESERVED_GPA + 0xf00;
    /// Where case 9 points a device-readable descriptor: the PML4.
    pub const RESERVED_READ_GPA: u64 = 0x2000;
    /// Length of case 10's rx descriptor (room for the good message).
    pub const RX_RESERVED_LEN: u32 = HEADER + GOOD_LEN;
    const HEADER: u32 = crate::virtio::HEADER_SIZE;

    /// Case 0's offset above guest memory.
    pub const BEYOND_MEMORY_OFFSET: u64 = 0x10000;
    /// Case 1's payload address.
    pub const OVERFLOW_ADDR: u64 = 0xffff_ffff_ffff_ffe0;
    const _: () = assert!(OVERFLOW_ADDR.checked_add(BAD_LEN as u64).is_none());
    /// Case 3's header len.
    pub const LONG_LEN: u32 = 4096;
    /// Case 4's second destination.
    pub const UNKNOWN_DST: u32 = 99;
    /// Seq of the bad messages.
    pub const BAD_SEQ: u64 = 100;
    /// Payload bytes of the bad chains.
    pub const BAD_LEN: u32 = 64;
    /// Seq of the good message.
    pub const GOOD_SEQ: u64 = 1;
    /// Payload bytes of the good message.
    pub const GOOD_LEN: u32 = 4096;
    /// Messages in flight per queue of both VMs' drivers.
    pub const DEPTH: u32 = 4;
    /// Buffer size of both VMs' drivers.
    pub const MAX_PAYLOAD: u32 = 4096;
    /// How long VM1 polls after the third barrier for messages that must not come.
    pub const QUIET_MS: u64 = 100;

    /// What a correct device answers to a bad chain (cases 0 to 9), or does with a bad rx
    /// buffer (case 10).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Expected {
        /// The chain is used with used length 4 and this status in its status descriptor.
        Status(TxStatus),
        /// The device sets DEVICE_NEEDS_RESET (whatever it does with the chain).
        NeedsReset,
        /// The chain is used with used length 0 (dropped: there is nowhere to put a status)
        /// and no status word written; DEVICE_NEEDS_RESET stays clear.
        Dropped,
        /// VM1's bad rx buffer is used with used length 0 and nothing written; the good
        /// message lands in its next buffer.
        RxSkipped,
    }

    /// The documented answer to case `case` (`None` for an unknown case).
    pub const fn expected(case: u64) -> Option<Expected> {
        Some(match case {
            CASE_BEYOND_MEMORY | CASE_ADDR_OVERFLOW => Expected::Status(TxStatus::BadChain),
            CASE_LOOP => Expected::NeedsReset,
            CASE_LEN_BEYOND_CHAIN => Expected::Status(TxStatus::BadLength),
            CASE_BAD_DST => Expected::Status(TxStatus::BadDestination),
            CASE_NO_STATUS | CASE_INDIRECT | CASE_STATUS_RESERVED => Expected::Dropped,
            CASE_LEN_MAX | CASE_PAYLOAD_RESERVED => Expected::Status(TxStatus::BadChain),
            CASE_RX_RESERVED => Expected::RxSkipped,
            _ => return None,
        })
    }

    /// Record: both VMs: the driver's initialisation succeeded.
    pub const INIT: &str = "init";
    /// Record: both VMs: the run has 2 VMs and a known case.
    pub const PARAMS: &str = "params";
    /// Record: VM0: the device's answer to the bad chain.
    pub const DEVICE_RESPONSE: &str = "device-response";
    /// Record: VM0, case 4: the answer to the chain to [`UNKNOWN_DST`].
    pub const DEVICE_RESPONSE_UNKNOWN_DST: &str = "device-response-unknown-dst";
    /// Record: VM0: nothing arrived in its own rx queue after the bad chain(s) (case 4 sends
    /// to VM0 itself).
    pub const NOTHING_ARRIVED_AT_SENDER: &str = "nothing-arrived-at-sender";
    /// Record: VM0: the good message afterwards got status Ok.
    pub const RECOVERED: &str = "recovered";
    /// Record: VM1: the good message arrived intact.
    pub const RECEIVED_INTACT: &str = "received-intact";
    /// Record: VM1: no other message arrived.
    pub const NOTHING_ELSE_ARRIVED: &str = "nothing-else-arrived";
    /// Record (cases 8, 10): the [`RESERVED_CHECKED`] bytes at [`RESERVED_GPA`] are what they
    /// were before.
    pub const RESERVED_UNTOUCHED: &str = "reserved-untouched";
    /// Record (case 10), VM1: its bad rx buffer came back with used length 0 before the good
    /// message.
    pub const RX_SKIPPED: &str = "rx-skipped";
}

#[cfg(test)]
mod tests {
    use super::ipc_hostile::{expected, CASES};
    use super::ipc_landing;

    #[test]
    fn hostile_cases_have_distinct_names_and_their_statuses() {
        for (i, &(name, status)) in CASES.iter().enumerate() {
            assert!(CASES[..i].iter().all(|&(n, _)| n != name), "{name} twice");
            assert_eq!(expected(name), Some(status));
        }
        assert_eq!(expected("duplicate-page"), None);
    }

    #[test]
    fn landing_records_are_distinct_and_skips_are_per_variant() {
        let mut all = [""; 19];
        all[..9].copy_from_slice(&ipc_landing::RECEIVER_RECORDS);
        all[9..].copy_from_slice(&ipc_landing::SENDER_RECORDS);
        for (i, name) in all.iter().enumerate() {
            assert!(!all[..i].contains(name), "{name} twice");
        }
        let huge = ipc_landing::VARIANT_REMAP_HUGE;
        let remap = ipc_landing::VARIANT_REMAP;
        for name in &all {
            assert!(
                !(ipc_landing::skipped(huge, name) && ipc_landing::skipped(remap, name)),
                "{name} is skipped everywhere"
            );
        }
        assert!(ipc_landing::skipped(huge, ipc_landing::LANDING_TOO_SMALL));
        assert!(ipc_landing::skipped(remap, ipc_landing::HUGE_LANDS));
        assert_eq!(ipc_landing::expected_post_refused(remap), 7);
        assert_eq!(ipc_landing::expected_post_refused(huge), 9);
    }
}

/// The `ipc_peer_end` probe (2 VMs, `params[VARIANT]` as [`ipc_landing`]'s): what a sender
/// and a receiver see around a receiver's bad posts, its blocking receives and its end
/// (`docs/remap-ipc.md`, "When a VM ends").
///
/// 1. VM1 posts [`BAD_POSTS`](ipc_peer_end::BAD_POSTS) entries in the reserved range; VM0 sends [`FLOOD_SENDS`](ipc_peer_end::FLOOD_SENDS)
///    one-page messages, each `queue_full`, and VM1's `post_refused` is exactly
///    [`BAD_POSTS`](ipc_peer_end::BAD_POSTS) (each bad entry examined once, at the first send). Then VM1 posts one good
///    page and VM0's next message lands on it.
/// 2. VM1 makes a bad request, then a good `IPC_RECV_WAIT` read (a message queued, then a
///    timeout): each read sets `STATUS` to `ok`.
/// 3. VM1 ends; VM0's sends to it get `dest_down`, at once and for good, and its page keeps
///    its bytes.
pub mod ipc_peer_end {
    /// `params[VARIANT]`: the run's transport ([`super::ipc_landing::VARIANT_REMAP`] ...).
    pub const VARIANT: usize = 0;
    /// Bad entries VM1 posts (GPA in the reserved range: `not_owned`).
    pub const BAD_POSTS: u32 = 200;
    /// Messages VM0 sends against them.
    pub const FLOOD_SENDS: u32 = 50;

    /// VM0, step 1: the sends against bad posts `queue_full`, the one after a good post `ok`.
    pub const FLOOD_STATUSES: &str = "flood-statuses";
    /// VM1, step 1: the message landed on the good entry, intact.
    pub const FLOOD_LANDED: &str = "flood-landed";
    /// VM1, step 1: `post_refused` = [`BAD_POSTS`], each bad entry's status `not_owned`.
    pub const BAD_POSTS_ONCE: &str = "bad-posts-examined-once";
    /// VM1, step 2: `STATUS` is `ok` after an `IPC_RECV_WAIT` read that returned a count.
    pub const RECV_WAIT_STATUS: &str = "recv-wait-sets-status";
    /// VM1, step 2: `STATUS` is `ok` after an `IPC_RECV_WAIT` read that timed out.
    pub const RECV_WAIT_TIMEOUT_STATUS: &str = "recv-wait-timeout-sets-status";
    /// VM0, step 3: a send to the ended VM1 gets `dest_down` (not `queue_full` for ever).
    pub const DEST_DOWN: &str = "dest-down";
    /// VM0, step 3: the refused message's page still holds its bytes.
    pub const SENDER_KEEPS_PAGES: &str = "sender-keeps-pages";
    /// VM0, step 3: the next send gets `dest_down` at once.
    pub const DEST_DOWN_STAYS: &str = "dest-down-stays";

    /// Every record, as (VM, name).
    pub const RECORDS: [(usize, &str); 8] = [
        (0, FLOOD_STATUSES),
        (1, FLOOD_LANDED),
        (1, BAD_POSTS_ONCE),
        (1, RECV_WAIT_STATUS),
        (1, RECV_WAIT_TIMEOUT_STATUS),
        (0, DEST_DOWN),
        (0, SENDER_KEEPS_PAGES),
        (0, DEST_DOWN_STAYS),
    ];
}

/// The `ipc_fuzz` probe (2 VMs, the same params for both): a seeded guest-side fuzzer. For
/// [`ROUNDS`](ipc_fuzz::ROUNDS) rounds each VM draws one random action from a splitmix64
/// generator seeded with [`SEED`](ipc_fuzz::SEED) and its VM id: VM0 places random send
/// descriptors (any `nextents`, extents in the reserved range, unaligned, past memory, of
/// 0 pages, overlapping, any `len`, `dst` and `flags`), rings random doorbells, changes its
/// batch and scribbles over its `send_head`; VM1 posts random entries (bad ones and
/// overlapping good ones in its landing area), receives, and scribbles over its `recv_tail`
/// and `post_head`; both make random refused accesses to the pageflip device. Each VM checks
/// every answer against the spec as it goes. Then both repair their rings and VM0 sends one
/// good multi-extent message, which VM1 must receive intact, its sequence number telling
/// how many messages VM0 had delivered before it (nothing lost, nothing duplicated).
pub mod ipc_fuzz {
    /// `params[VARIANT]`: the run's transport ([`super::ipc_landing::VARIANT_REMAP`] ...).
    pub const VARIANT: usize = 0;
    /// `params[SEED]`: the generator's seed (VM `v` uses `SEED ^ v`-derived streams).
    pub const SEED: usize = 1;
    /// `params[ROUNDS]`: random actions per VM.
    pub const ROUNDS: usize = 2;
    /// Random actions per VM in conform's cases.
    pub const DEFAULT_ROUNDS: u64 = 10_000;
    /// `seq` of the good message: this plus the number of VM0's messages delivered before it.
    pub const GOOD_SEQ_BASE: u64 = 1 << 63;
    /// `seq` of the one-page messages VM0 sends to retire VM1's stale post entries when the
    /// good message does not fit them (`landing_too_small`).
    pub const FILLER_SEQ: u64 = 1 << 62;
    /// Set in the `seq` of a descriptor that breaks no rule on purpose: its pages hold the
    /// payload of its `seq`. VM0 numbers its descriptors 1, 2, ... in the low bits.
    pub const CLEAN_SEQ: u64 = 1 << 61;

    /// VM0: every consumed descriptor has the status the spec's check order gives it (for a
    /// descriptor that passes checks 1-6: `ok`, `queue_full` or `landing_too_small`), and
    /// after an `ok` its pages read zero (remap variants) or still hold the payload (copy).
    pub const SEND_STATUSES: &str = "fuzz-send-statuses";
    /// VM0: every drain of a scribbled send ring consumed nothing and set `ring_error` to
    /// `bad_ring`; after the repair the ring drains again.
    pub const SEND_RING: &str = "fuzz-send-ring";
    /// Both: every random device access got its documented `STATUS` (and a refused read 0).
    pub const MMIO_STATUSES: &str = "fuzz-mmio-statuses";
    /// VM1: every retired post entry has the status the landing checks give it.
    pub const POST_STATUSES: &str = "fuzz-post-statuses";
    /// VM1: every delivered entry is from VM0 to VM1, lands only in pages VM1 posted, comes
    /// in VM0's order, and (for a [`CLEAN_SEQ`] message) holds its payload intact.
    pub const LANDING_BOUNDS: &str = "fuzz-landing-bounds";
    /// VM0: the good message, sent after the repair, is `ok`.
    pub const GOOD_SENT: &str = "fuzz-good-sent";
    /// VM1: the good message arrived, its bytes intact.
    pub const GOOD_INTACT: &str = "fuzz-good-intact";
    /// VM1: it received exactly the messages VM0 saw accepted, before the good one.
    pub const NOTHING_LOST: &str = "fuzz-nothing-lost";

    /// Every record, as (VM, name).
    pub const RECORDS: [(usize, &str); 9] = [
        (0, SEND_STATUSES),
        (0, SEND_RING),
        (0, MMIO_STATUSES),
        (0, GOOD_SENT),
        (1, MMIO_STATUSES),
        (1, POST_STATUSES),
        (1, LANDING_BOUNDS),
        (1, GOOD_INTACT),
        (1, NOTHING_LOST),
    ];
}
