//! The receive ring with a checker: [`StreamReceiver::handle`] checks an entry and posts its
//! landing areas again, [`StreamReceiver::drain_extra`] checks what is still queued, and [`receive`]
//! waits for the next entry.

use pageflip_abi::ipc::RecvEntry;

use super::Ipc;
use crate::check::{StreamReceiver, Verdict};
use crate::params::RecvMode;
use crate::tsc::Deadline;

/// The remap/copy side of [`StreamReceiver`]: entries of this VM's receive ring.
impl StreamReceiver {
    /// Checks the entry `e` just taken from `ipc`'s receive ring and posts its landing areas
    /// again ([`Ipc::repost`]).
    #[inline]
    pub fn handle(&mut self, ipc: &mut Ipc, e: &RecvEntry) -> Verdict {
        let verdict = self.handle_entry(e, ipc.last_landing());
        ipc.repost(e);
        verdict
    }

    /// Takes every entry still queued (call it once the senders have finished) and checks
    /// it like any other: after every expected message, each one is a duplicate or out of
    /// range. Returns how many entries there were.
    pub fn drain_extra(&mut self, ipc: &mut Ipc) -> u64 {
        let mut n = 0;
        while let Some(e) = ipc.recv_poll() {
            n += 1;
            self.handle(ipc, &e);
        }
        n
    }
}

/// The next entry, waiting as `mode` says, or `None` once `deadline` has passed.
pub fn receive(ipc: &mut Ipc, mode: RecvMode, deadline: &Deadline) -> Option<RecvEntry> {
    loop {
        let e = match mode {
            RecvMode::Poll => ipc.recv_poll(),
            RecvMode::Block => ipc.recv_wait(),
        };
        if e.is_some() {
            return e;
        }
        if deadline.expired() {
            return None;
        }
        if mode == RecvMode::Poll {
            core::hint::spin_loop();
        }
    }
}
