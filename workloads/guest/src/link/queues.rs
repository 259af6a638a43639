//! The remap-IPC queues (remap or copy) as a [`Link`]: this VM's [`Ipc`] and a
//! [`StreamSender`]. Every method is one call on them, so a message costs what the queues
//! themselves cost.

use pageflip_abi::ipc::{RecvEntry, POST_RING_LEN};
use pageflip_abi::probes::ipc_records::TRANSPORT_QUEUES;

use super::{Link, Notifications, OutOfMemory};
use crate::arena::{zero_pages, Arena};
use crate::check::{SendStats, StreamReceiver, Verdict};
use crate::ipc::{BufferLayout, Ipc, StreamSender};
use crate::params::Params;
use crate::params::RecvMode;
use crate::payload::Coverage;

/// The remap-IPC queues of this VM.
pub struct Queues {
    ipc: Ipc,
    sender: StreamSender,
    mode: RecvMode,
    batch: u32,
    size: u32,
    coverage: Coverage,
    urgent_every: u64,
    idle_ms: u64,
}

impl Queues {
    /// The link over `ipc` (taken with the run's batch size and blocking-receive timeout),
    /// for `params`.
    pub fn new(ipc: Ipc, params: &Params) -> Queues {
        Queues {
            ipc,
            sender: StreamSender::detached(),
            mode: params.mode,
            batch: params.batch,
            size: params.size,
            coverage: params.coverage,
            urgent_every: params.urgent_every,
            idle_ms: params.idle_ms,
        }
    }

    /// The control structure.
    pub fn ipc(&mut self) -> &mut Ipc {
        &mut self.ipc
    }
}

impl Link for Queues {
    const NAME: &'static str = TRANSPORT_QUEUES;
    const LANDING: &'static str = "every entry landed in the next posted areas";
    const LANDING_WANT: &'static str = "posted";

    type Msg = RecvEntry;

    /// The sender's buffers ([`StreamSender::layout`]), zeroed (so present).
    fn open_sender(&mut self, dst: u32, arena: &mut Arena) -> Result<(), OutOfMemory> {
        let base = zeroed_area(
            &StreamSender::layout(u64::from(self.size)),
            arena,
            "the send buffers",
        )?;
        self.sender = StreamSender::new(
            self.ipc.vm_id(),
            dst,
            self.size,
            base,
            self.coverage,
            self.urgent_every,
            self.idle_ms,
        );
        Ok(())
    }

    /// Posts the landing areas of [`BufferLayout::new`] with the post ring's
    /// [`POST_RING_LEN`] slots (zeroed): one entry of the message's pages each.
    fn open_receiver(&mut self, _senders: u32, arena: &mut Arena) -> Result<(), OutOfMemory> {
        let layout = BufferLayout::new(u64::from(self.size), u64::from(POST_RING_LEN));
        let base = zeroed_area(&layout, arena, "the landing areas")?;
        self.ipc.post_from(&mut layout.pool(base));
        Ok(())
    }

    fn prefault(&mut self) {
        self.ipc.prefault_rings();
    }

    #[inline]
    fn send(&mut self, seq: u64) -> bool {
        self.sender.send(&mut self.ipc, seq)
    }

    #[inline]
    fn pump(&mut self) {
        self.sender.pump(&mut self.ipc);
    }

    /// With a deferred batch (B > 1) and polling receivers nothing else would exit: flushes
    /// the send ring if it holds anything. (With blocking receive the next
    /// `IPC_RECV_WAIT` read drains it.)
    #[inline]
    fn push(&mut self) {
        if self.batch > 1 && self.mode == RecvMode::Poll && self.ipc.pending() != 0 {
            self.ipc.flush();
        }
    }

    fn finish(&mut self) -> bool {
        self.sender.finish(&mut self.ipc)
    }

    #[inline]
    fn recv(&mut self) -> Option<RecvEntry> {
        match self.mode {
            RecvMode::Poll => self.ipc.recv_poll(),
            RecvMode::Block => self.ipc.recv_wait(),
        }
    }

    #[inline]
    fn poll(&mut self) -> Option<RecvEntry> {
        self.ipc.recv_poll()
    }

    #[inline]
    fn blocks(&self) -> bool {
        self.mode == RecvMode::Block
    }

    /// Checks the entry against the areas this VM posted ([`Ipc::last_landing`]).
    #[inline]
    fn check(&mut self, r: &mut StreamReceiver, msg: &RecvEntry) -> Verdict {
        r.handle_entry(msg, self.ipc.last_landing())
    }

    /// [`StreamReceiver::handle`]: checks the entry and posts its landing areas again.
    #[inline]
    fn deliver(&mut self, r: &mut StreamReceiver, msg: RecvEntry) -> Verdict {
        r.handle(&mut self.ipc, &msg)
    }

    /// A [`StreamSender::forwarder`]: no buffers of its own.
    fn open_forwarder(&mut self, dst: u32, _arena: &mut Arena) -> Result<(), OutOfMemory> {
        self.sender = StreamSender::forwarder(
            self.ipc.vm_id(),
            dst,
            self.size,
            self.urgent_every,
            self.idle_ms,
        );
        Ok(())
    }

    /// Sends the entry's landing extents as the message ([`StreamSender::forward`]); they
    /// are posted again once the send completed.
    #[inline]
    fn forward(&mut self, msg: RecvEntry) -> bool {
        self.sender.forward(&mut self.ipc, msg.seq, msg.landing())
    }

    fn release(&mut self, msg: RecvEntry) {
        self.ipc.repost(&msg);
    }

    fn send_stats(&self) -> SendStats {
        self.sender.stats()
    }

    fn record_sender(&self, expected: u64) -> bool {
        self.sender.record(expected)
    }

    fn drains(&self) -> u64 {
        self.ipc.drains()
    }

    #[inline]
    fn notifications(&self) -> Notifications {
        Notifications {
            made: self.ipc.doorbells(),
            suppressed: 0,
        }
    }
}

/// The memory of `layout` from `arena`, aligned as it says and zeroed (so present); `what`
/// names it in the error.
fn zeroed_area(
    layout: &BufferLayout,
    arena: &mut Arena,
    what: &'static str,
) -> Result<u64, OutOfMemory> {
    let pages = layout.total_pages();
    let base = arena
        .alloc_aligned(pages, layout.align)
        .ok_or(OutOfMemory { what, pages })?;
    zero_pages(base, pages);
    Ok(base)
}
