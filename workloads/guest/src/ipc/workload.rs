//! What the workloads `stream`, `pingpong` and `fanin` share: their parameters
//! ([`pageflip_abi::probes::ipc_workloads`]), memory, receive loop and samples.

use core::ptr;

use pageflip_abi::ipc::{RecvEntry, POST_RING_LEN};
use pageflip_abi::probes::ipc_records::{MEMORY_SIZE, PARAMS, TRANSPORT};
use pageflip_abi::probes::ipc_workloads::{
    BATCH, CHECK, CHECK_FULL, CHECK_LIGHT, COUNT, DEFAULT_COUNT, DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_SIZE, IDLE_TIMEOUT_MS, MAX_SIZE, MIN_SIZE, PER_MESSAGE_MAX, RECV_BLOCK, RECV_MODE,
    RECV_POLL, SIZE, S_DRAINS, S_HEADER, S_LOOP_TSC, S_PER_MESSAGE, S_RECEIVED, S_RETRIES, S_SENT,
    URGENT_EVERY, WAIT_TIMEOUT_US,
};
use pageflip_abi::PAGE_SIZE;

use super::stream::{receive, RecvMode, StreamReceiver, StreamSender};
use super::{prefault, zero_pages, Arena, Coverage, Ipc, PagePool};
use crate::results::{fail, pass_with};
use crate::tsc::Deadline;
use crate::{boot_info, sample};

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
    /// The blocking receive's timeout (0: the VMM's default).
    pub wait_timeout_us: u64,
    /// Give up after this long without progress.
    pub idle_ms: u64,
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
        let problem = if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            "size must be 64 to 65536 bytes"
        } else if batch > u64::from(pageflip_abi::ipc::SEND_RING_LEN) {
            "batch must be 0 to 64"
        } else if mode.is_none() {
            "receive mode must be 0 (poll) or 1 (block)"
        } else if coverage.is_none() {
            "check must be 0 (full) or 1 (light)"
        } else if count >= 1 << 32 {
            "count must be below 2^32"
        } else {
            ""
        };
        let (Some(mode), Some(coverage), true) = (mode, coverage, problem.is_empty()) else {
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
            wait_timeout_us: param(WAIT_TIMEOUT_US),
            idle_ms,
        };
        pass_with(
            PARAMS,
            format_args!(
                "count {} size {} batch {} recv {} urgent_every {} check {} wait_us {} idle_ms {}",
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
                p.wait_timeout_us,
                p.idle_ms
            ),
        );
        Some(p)
    }
}

/// Takes the control structure ([`Ipc::init`] with `batch` and `wait_timeout_us`), or
/// records FAIL `ipc-transport` if the run has no IPC transport.
pub fn init_ipc(batch: u32, wait_timeout_us: u64) -> Option<Ipc> {
    let ipc = Ipc::init(batch, wait_timeout_us);
    if ipc.is_none() {
        fail(
            TRANSPORT,
            "the IPC header's magic is not set: run with transport remap or copy",
        );
    }
    ipc
}

/// Records FAIL `memory-size`: `what` did not fit in free memory.
pub fn out_of_memory(what: &str, pages: u64, arena: &Arena) {
    fail(
        MEMORY_SIZE,
        format_args!(
            "{what} needs {pages} pages of free memory, {} left (of {} MiB)",
            arena.left() / PAGE_SIZE,
            boot_info().mem_size >> 20
        ),
    );
}

/// One VM of a workload: its control structure, parameters, free memory and per-message
/// samples.
pub struct Workload {
    /// The control structure.
    pub ipc: Ipc,
    /// The parameters.
    pub params: Params,
    arena: Arena,
    per_message: u64,
    per_message_len: usize,
}

impl Workload {
    /// Reads the parameters and takes the control structure; records a FAIL and returns
    /// `None` if either is missing or wrong.
    pub fn setup() -> Option<Workload> {
        let params = Params::from_boot()?;
        let ipc = init_ipc(params.batch, params.wait_timeout_us)?;
        let mut arena = Arena::new();
        let pages = (PER_MESSAGE_MAX as u64 * 8).div_ceil(PAGE_SIZE);
        let Some(per_message) = arena.alloc(pages) else {
            out_of_memory("the per-message samples", pages, &arena);
            return None;
        };
        zero_pages(per_message, pages);
        Some(Workload {
            ipc,
            params,
            arena,
            per_message,
            per_message_len: 0,
        })
    }

    /// A sender to `dst` with its buffers (zeroed, so present), or FAIL `memory-size`.
    pub fn sender(&mut self, dst: u32) -> Option<StreamSender> {
        let pages = StreamSender::buffer_pages(u64::from(self.params.size));
        let Some(base) = self.arena.alloc(pages) else {
            out_of_memory("the send buffers", pages, &self.arena);
            return None;
        };
        zero_pages(base, pages);
        Some(StreamSender::new(
            self.ipc.vm_id(),
            dst,
            self.params.size,
            base,
            self.params.coverage,
            self.params.urgent_every,
            self.params.idle_ms,
        ))
    }

    /// A receiver of `count` messages from each VM in `senders` (a bit mask), with
    /// [`POST_RING_LEN`] landing pages posted, or FAIL `memory-size`.
    pub fn receiver(&mut self, senders: u32) -> Option<StreamReceiver> {
        let bitmap = StreamReceiver::bitmap_pages(self.params.count);
        let pool_pages = u64::from(POST_RING_LEN);
        let (Some(bitmap_base), Some(pool_base)) =
            (self.arena.alloc(bitmap), self.arena.alloc(pool_pages))
        else {
            out_of_memory(
                "the receiver's bitmap and landing pages",
                bitmap + pool_pages,
                &self.arena,
            );
            return None;
        };
        zero_pages(pool_base, pool_pages);
        let mut pool = PagePool::new(pool_base, pool_pages);
        self.ipc.post_from(&mut pool);
        Some(StreamReceiver::new(
            senders,
            self.params.count,
            self.params.size,
            self.params.coverage,
            bitmap_base,
        ))
    }

    /// Touches the image, the rings and 64 KiB of stack before the measured phase.
    pub fn prefault(&mut self) {
        prefault(64 * 1024);
        self.ipc.prefault_rings();
    }

    /// The next entry, waiting as the receive mode says, or `None` after `deadline`.
    pub fn receive(&mut self, deadline: &Deadline) -> Option<RecvEntry> {
        receive(&mut self.ipc, self.params.mode, deadline)
    }

    /// A deadline `idle_ms` from now.
    pub fn idle_deadline(&self) -> Deadline {
        Deadline::after_ms(self.params.idle_ms)
    }

    /// Keeps `value` as the next per-message sample (the first [`PER_MESSAGE_MAX`] only).
    #[inline]
    pub fn per_message(&mut self, value: u64) {
        if self.per_message_len < PER_MESSAGE_MAX {
            let p = (self.per_message + 8 * self.per_message_len as u64) as *mut u64;
            // SAFETY: the per-message area is PER_MESSAGE_MAX words of free memory set
            // aside for it (`setup`), and the index is below PER_MESSAGE_MAX.
            unsafe { ptr::write_volatile(p, value) };
            self.per_message_len += 1;
        }
    }

    /// The sending side of `stream` and `fanin`: meets the receivers at the start barrier,
    /// sends messages 0..count in its measured phase (waiting out backpressure, flushing at
    /// the end), meets them again, and records and reports.
    pub fn send_all(&mut self, s: &mut StreamSender) {
        let count = self.params.count;
        crate::barrier();
        crate::phase_begin();
        let t0 = crate::rdtsc();
        for seq in 0..count {
            if !s.send(&mut self.ipc, seq) {
                break;
            }
        }
        s.finish(&mut self.ipc);
        let t = crate::rdtsc().wrapping_sub(t0);
        crate::phase_end();
        crate::barrier();
        let st = s.stats();
        s.record(count);
        self.report(t, st.delivered, 0, st.retries);
    }

    /// The receiving side of `stream` and `fanin`: begins the measured phase (before the
    /// start barrier, so that every delivery into this VM and its TLB flushes fall inside
    /// it), meets the senders at the barrier, receives until `r` has every expected message
    /// (or the idle timeout), ends the phase, meets them again, checks that nothing more
    /// arrives, and records and reports. `name` prefixes console lines.
    pub fn receive_all(&mut self, r: &mut StreamReceiver, name: &str) {
        crate::phase_begin();
        crate::barrier();
        let t0 = crate::rdtsc();
        let mut prev = t0;
        let mut deadline = self.idle_deadline();
        while !r.complete() {
            let Some(e) = self.receive(&deadline) else {
                break;
            };
            let now = crate::rdtsc();
            self.per_message(now.wrapping_sub(prev));
            prev = now;
            r.handle(&mut self.ipc, &e);
            deadline = self.idle_deadline();
        }
        let t = crate::rdtsc().wrapping_sub(t0);
        crate::phase_end();
        let received = r.received();
        crate::barrier();
        let extra = r.drain_extra(&mut self.ipc);
        if extra != 0 {
            crate::println!("{name}: {extra} entries arrived after the last expected message");
        }
        r.record();
        self.report(t, 0, received, 0);
    }

    /// Reports the samples: the header ([`S_HEADER`] values) and the per-message samples.
    pub fn report(&self, loop_tsc: u64, sent: u64, received: u64, retries: u64) {
        let mut header = [0u64; S_HEADER];
        header[S_LOOP_TSC] = loop_tsc;
        header[S_SENT] = sent;
        header[S_RECEIVED] = received;
        header[S_RETRIES] = retries;
        header[S_DRAINS] = self.ipc.drains();
        header[S_PER_MESSAGE] = self.per_message_len as u64;
        for v in header {
            sample(v);
        }
        for i in 0..self.per_message_len {
            let p = (self.per_message + 8 * i as u64) as *const u64;
            // SAFETY: as in `per_message`: a word of the per-message area that was written.
            sample(unsafe { ptr::read_volatile(p) });
        }
    }
}
