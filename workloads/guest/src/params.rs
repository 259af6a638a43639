//! The parameters of the workloads `stream`, `pingpong` and `fanin`
//! ([`pageflip_abi::probes::ipc_workloads`]), read from the boot info and checked
//! ([`Params::from_boot`]), which every transport of [`crate::link`] is set up with.

use pageflip_abi::probes::ipc_records::PARAMS;
use pageflip_abi::probes::ipc_workloads::{
    BATCH, CHECK, CHECK_FULL, CHECK_LIGHT, COUNT, DEFAULT_COUNT, DEFAULT_DEPTH,
    DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_SIZE, DEPTH, EVENT_IDX, IDLE_TIMEOUT_MS, MAX_DEPTH, MAX_SIZE,
    MAX_SIZE_VIRTIO_SHMEM, MIN_SIZE, RECV_BLOCK, RECV_MODE, RECV_POLL, SIZE, TOUCH, TOUCH_ALL,
    TOUCH_HEADER, TOUCH_NONE, URGENT_EVERY, WAIT_TIMEOUT_US,
};
use pageflip_abi::{TRANSPORT_SHMEM, TRANSPORT_VIRTIO};

use crate::boot_info;
use crate::payload::{Coverage, Touch};
use crate::results::{fail, pass_with};

/// How a receiver waits for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvMode {
    /// Polls (remap/copy: the receive ring; no exits).
    Poll,
    /// Blocks where the transport can (remap/copy: [`pageflip_abi::mmio::IPC_RECV_WAIT`]
    /// reads).
    Block,
}

/// The parameters of a workload run (see [`pageflip_abi::probes::ipc_workloads`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Messages per sender, or rounds.
    pub count: u64,
    /// Message size in bytes.
    pub size: u32,
    /// Batch size B (0 or 1: immediate).
    pub batch: u32,
    /// How receivers wait.
    pub mode: RecvMode,
    /// Every Nth message is urgent (0: none).
    pub urgent_every: u64,
    /// How much of each payload is written and checked.
    pub coverage: Coverage,
    /// How much of each received payload is read.
    pub touch: Touch,
    /// The blocking receive's timeout (0: the VMM's default).
    pub wait_timeout_us: u64,
    /// Give up after this long without progress.
    pub idle_ms: u64,
    /// Virtio: negotiate VIRTIO_F_EVENT_IDX.
    pub event_idx: bool,
    /// Virtio: messages in flight per virtqueue.
    pub depth: u32,
}

impl Params {
    /// Reads and checks the parameters; records FAIL `params` and returns `None` if one is
    /// invalid, else records PASS `params` with their values.
    pub fn from_boot() -> Option<Params> {
        let bi = boot_info();
        let param = |i: usize| {
            if i < bi.num_params as usize {
                bi.params[i]
            } else {
                0
            }
        };
        let count = match param(COUNT) {
            0 => DEFAULT_COUNT,
            n => n,
        };
        let size = match param(SIZE) {
            0 => DEFAULT_SIZE,
            n => n,
        };
        let batch = param(BATCH);
        let mode = match param(RECV_MODE) {
            RECV_POLL => Some(RecvMode::Poll),
            RECV_BLOCK => Some(RecvMode::Block),
            _ => None,
        };
        let coverage = match param(CHECK) {
            CHECK_FULL => Some(Coverage::Full),
            CHECK_LIGHT => Some(Coverage::Light),
            _ => None,
        };
        let idle_ms = match param(IDLE_TIMEOUT_MS) {
            0 => DEFAULT_IDLE_TIMEOUT_MS,
            n => n,
        };
        let touch = match param(TOUCH) {
            TOUCH_ALL => Some(Touch::All),
            TOUCH_HEADER => Some(Touch::Header),
            TOUCH_NONE => Some(Touch::None),
            _ => None,
        };
        let event_idx = param(EVENT_IDX);
        // Virtio and shmem carry at most 64 KiB per message (for now).
        let too_large = match bi.transport {
            TRANSPORT_VIRTIO => {
                "size must be at most 65536 bytes (64 KiB) over virtio (its \
                                 buffers hold 64 KiB)"
            }
            TRANSPORT_SHMEM => {
                "size must be at most 65536 bytes (64 KiB) over shmem (its \
                                slots hold 64 KiB)"
            }
            _ => "",
        };
        let depth = match param(DEPTH) {
            0 => DEFAULT_DEPTH,
            n => n,
        };
        let problem = if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            "size must be 64 to 8388608 bytes (8 MiB)"
        } else if !too_large.is_empty() && size > MAX_SIZE_VIRTIO_SHMEM {
            too_large
        } else if batch > u64::from(pageflip_abi::ipc::SEND_RING_LEN) {
            "batch must be 0 to 64"
        } else if mode.is_none() {
            "receive mode must be 0 (poll) or 1 (block)"
        } else if coverage.is_none() {
            "check must be 0 (full) or 1 (light)"
        } else if touch.is_none() {
            "touch must be 0 (all), 1 (header) or 2 (none)"
        } else if count >= 1 << 32 {
            "count must be below 2^32"
        } else if event_idx > 1 {
            "event_idx must be 0 (negotiate) or 1 (do not)"
        } else if depth > MAX_DEPTH {
            "depth must be 0 to 85"
        } else {
            ""
        };
        let (Some(mode), Some(coverage), Some(touch), true) =
            (mode, coverage, touch, problem.is_empty())
        else {
            fail(
                PARAMS,
                format_args!(
                    "{problem}: params {:?}",
                    &bi.params[..(bi.num_params as usize).min(bi.params.len())]
                ),
            );
            return None;
        };
        let p = Params {
            count,
            size: size as u32,
            batch: batch as u32,
            mode,
            urgent_every: param(URGENT_EVERY),
            coverage,
            touch,
            wait_timeout_us: param(WAIT_TIMEOUT_US),
            idle_ms,
            event_idx: event_idx == 0,
            depth: depth as u32,
        };
        pass_with(
            PARAMS,
            format_args!(
                "count {} size {} batch {} recv {} urgent_every {} check {} touch {} wait_us {} \
                 idle_ms {} event_idx {} depth {}",
                p.count,
                p.size,
                p.batch,
                match p.mode {
                    RecvMode::Poll => "poll",
                    RecvMode::Block => "block",
                },
                p.urgent_every,
                match p.coverage {
                    Coverage::Full => "full",
                    Coverage::Light => "light",
                },
                match p.touch {
                    Touch::All => "all",
                    Touch::Header => "header",
                    Touch::None => "none",
                },
                p.wait_timeout_us,
                p.idle_ms,
                if p.event_idx { "on" } else { "off" },
                p.depth
            ),
        );
        Some(p)
    }
}
