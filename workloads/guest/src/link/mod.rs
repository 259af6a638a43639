//! Links: one VM's messaging over whichever transport the run has, for the workloads
//! `stream`, `pingpong`, `fanin` and `chain` ([`crate::workload`]).
//!
//! A [`Link`] sends numbered messages of one size to the VM's one destination (with
//! backpressure: it waits, and gives up only after the idle timeout), and receives messages,
//! which [`Link::deliver`] checks with a [`StreamReceiver`] and releases, or which
//! [`Link::forward`] sends on to the destination as they are (`chain`'s middle VMs).
//! Three transports implement it:
//!
//! - [`queues::Queues`]: the remap-IPC queues (remap or copy): this VM's [`Ipc`] and a
//!   [`StreamSender`];
//! - [`virtio::Virtio`]: the virtio datagram device, through its driver
//!   ([`crate::virtio::DgramDevice`]);
//! - [`shmem::Shmem`]: the shared-memory rings ([`pageflip_abi::shmem`]), polled, no exits.
//!
//! Workloads are generic over `L: Link` ([`crate::workload::Program`]), so each
//! transport's loops are compiled for it: choosing the transport at run time costs nothing per
//! message.
//!
//! Links sit below the workloads: they are set up from [`crate::params::Params`] and check with
//! [`crate::check`](mod@crate::check), and import nothing from [`crate::workload`].
//!
//! [`Ipc`]: crate::ipc::Ipc
//! [`StreamSender`]: crate::ipc::StreamSender

use crate::arena::Arena;
use crate::check::{SendStats, StreamReceiver, Verdict};

pub mod queues;
pub mod shmem;
pub mod virtio;

pub use queues::Queues;
pub use shmem::Shmem;
pub use virtio::Virtio;

/// Memory a link could not get from the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// What it was for.
    pub what: &'static str,
    /// Pages it needed.
    pub pages: u64,
}

/// Driver-to-device notifications: virtio QueueNotify writes, remap/copy doorbell writes
/// (SEND and FLUSH); 0 for shmem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notifications {
    /// Notifications made.
    pub made: u64,
    /// Notifications left out because the device did not ask for them.
    pub suppressed: u64,
}

impl Notifications {
    /// The notifications of `self` that `earlier` did not have yet.
    pub fn since(self, earlier: Notifications) -> Notifications {
        Notifications {
            made: self.made.wrapping_sub(earlier.made),
            suppressed: self.suppressed.wrapping_sub(earlier.suppressed),
        }
    }
}

/// One VM's messaging over one transport: a sender to one destination and a receiver from a
/// set of senders, of messages of the run's size ([`crate::params::Params`], given
/// to the transport's constructor) filled and checked with their patterns
/// ([`crate::payload::fill_payload`]).
pub trait Link {
    /// The transport's name, recorded as the message of PASS `ipc-transport`
    /// ([`pageflip_abi::probes::ipc_records::TRANSPORT`]).
    const NAME: &'static str;
    /// The PASS message of the receiver's `landing-pages` check.
    const LANDING: &'static str;
    /// What the expected GPA is called in a failed `landing-pages` check.
    const LANDING_WANT: &'static str;

    /// A received message, held until [`Link::deliver`] or [`Link::release`] gives it back.
    type Msg;

    /// Sets up sending to VM `dst` (buffers from `arena`). Called at most once, before any
    /// other method that sends.
    fn open_sender(&mut self, dst: u32, arena: &mut Arena) -> Result<(), OutOfMemory>;

    /// Sets up receiving from the VMs whose bits are set in `senders` (landing areas from
    /// `arena`). Called at most once, before any other method that receives.
    fn open_receiver(&mut self, senders: u32, arena: &mut Arena) -> Result<(), OutOfMemory>;

    /// Makes the transport's memory present before a measured phase.
    fn prefault(&mut self);

    /// Sends message `seq` to the destination: waits while the transport has no room (backpressure),
    /// then fills a buffer with the message's pattern and sends it. `false` if it gave up
    /// (nothing delivered for the idle timeout).
    fn send(&mut self, seq: u64) -> bool;

    /// Looks after the messages in flight without waiting (remap/copy: resends refused ones;
    /// virtio: reaps completed tx chains).
    fn pump(&mut self);

    /// Makes the messages sent so far reach the receiver now, where the transport would
    /// otherwise hold them back and nothing else would release them (remap/copy: flushes a
    /// deferred send when receivers poll).
    fn push(&mut self);

    /// Waits until every message started has been delivered (or failed for good). `false` if
    /// it gave up (idle timeout).
    fn finish(&mut self) -> bool;

    /// The next received message, waiting as the receive mode says where the transport can
    /// block (remap/copy: one `IPC_RECV_WAIT` read), else one poll.
    fn recv(&mut self) -> Option<Self::Msg>;

    /// The next received message if one is there now (never blocks).
    fn poll(&mut self) -> Option<Self::Msg>;

    /// Whether [`Link::recv`] blocks (else a caller waiting for messages spins between
    /// calls).
    fn blocks(&self) -> bool;

    /// Checks `msg` with `r` (its landing place too) without releasing it. Call it once per
    /// message, right after it was received.
    fn check(&mut self, r: &mut StreamReceiver, msg: &Self::Msg) -> Verdict;

    /// Checks `msg` with `r` ([`Link::check`]) and releases it.
    #[inline]
    fn deliver(&mut self, r: &mut StreamReceiver, msg: Self::Msg) -> Verdict {
        let verdict = self.check(r, &msg);
        self.release(msg);
        verdict
    }

    /// Sets up forwarding received messages to VM `dst` ([`Link::forward`]; memory, if any,
    /// from `arena`). Called at most once, instead of [`Link::open_sender`]. By default the
    /// sender's set-up.
    fn open_forwarder(&mut self, dst: u32, arena: &mut Arena) -> Result<(), OutOfMemory> {
        self.open_sender(dst, arena)
    }

    /// Sends the received `msg` on to the forwarder's destination as it is (its sequence
    /// number, length and payload; the transport sets the source to this VM), waiting while
    /// the transport has no room, and releases it once it was moved on (remap/copy: sends the
    /// landing extents themselves and posts them again once the send completed ok; virtio:
    /// a tx chain over the rx buffer's payload, the buffer recycled when the chain
    /// completes; shmem: copies the slot's payload into the next ring's slot). `false` (and
    /// `msg` released) if it gave up (idle timeout).
    fn forward(&mut self, msg: Self::Msg) -> bool;

    /// Releases `msg` unchecked (its buffer or slot can take another message).
    fn release(&mut self, msg: Self::Msg);

    /// What the sender did so far (`delivered`: see [`Link::record_sender`]).
    fn send_stats(&self) -> SendStats;

    /// Records `all-delivered`: each of the `expected` messages was delivered (remap/copy:
    /// status Ok, after retries; virtio: tx status ok; shmem: published and consumed).
    fn record_sender(&self, expected: u64) -> bool;

    /// The VMM's drains of this VM's send ring (remap/copy; else 0).
    fn drains(&self) -> u64;

    /// Notifications so far ([`Notifications`]).
    fn notifications(&self) -> Notifications;
}
