//! Run-wide control shared by the vCPU threads: stop requests (watchdog, stop-on-failure)
//! and the barrier of the BARRIER register.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Why a vCPU thread is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The watchdog fired.
    Timeout,
    /// Another VM failed and the run stops on failure.
    PeerFailed,
}

/// A per-VM stop request, set by the run's main thread, read by the vCPU thread.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicU8);

impl StopFlag {
    /// Asks the VM to stop (the first reason wins).
    pub fn request(&self, reason: StopReason) {
        let v = match reason {
            StopReason::Timeout => 1,
            StopReason::PeerFailed => 2,
        };
        let _ = self
            .0
            .compare_exchange(0, v, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The pending stop request, if any.
    pub fn get(&self) -> Option<StopReason> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(StopReason::Timeout),
            2 => Some(StopReason::PeerFailed),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct BarrierState {
    participants: usize,
    arrived: usize,
    generation: u64,
}

/// A barrier over the VMs still running: VMs that end leave it, so it never waits for them.
#[derive(Debug)]
pub struct RunBarrier {
    state: Mutex<BarrierState>,
    cv: Condvar,
}

impl RunBarrier {
    /// A barrier for `participants` VMs.
    pub fn new(participants: usize) -> RunBarrier {
        RunBarrier {
            state: Mutex::new(BarrierState {
                participants,
                arrived: 0,
                generation: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn release_if_complete(&self, s: &mut BarrierState) {
        if s.arrived > 0 && s.arrived >= s.participants {
            s.arrived = 0;
            s.generation += 1;
            self.cv.notify_all();
        }
    }

    /// Waits until every participant has arrived; returns false if `stop` fired first.
    pub fn wait(&self, stop: &StopFlag) -> bool {
        let mut s = self.state.lock().expect("barrier lock");
        let generation = s.generation;
        s.arrived += 1;
        self.release_if_complete(&mut s);
        while s.generation == generation {
            if stop.get().is_some() {
                s.arrived -= 1;
                return false;
            }
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(20))
                .expect("barrier lock")
                .0;
        }
        true
    }

    /// A participant ends: it no longer counts.
    pub fn leave(&self) {
        let mut s = self.state.lock().expect("barrier lock");
        s.participants = s.participants.saturating_sub(1);
        self.release_if_complete(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn barrier_releases_all_and_ignores_leavers() {
        let b = Arc::new(RunBarrier::new(3));
        let stop = Arc::new(StopFlag::default());
        let t: Vec<_> = (0..2)
            .map(|_| {
                let (b, stop) = (b.clone(), stop.clone());
                std::thread::spawn(move || b.wait(&stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        b.leave(); // the third VM ends instead of arriving
        for h in t {
            assert!(h.join().unwrap());
        }
    }

    #[test]
    fn barrier_wait_gives_up_on_stop() {
        let b = RunBarrier::new(2);
        let stop = StopFlag::default();
        stop.request(StopReason::Timeout);
        stop.request(StopReason::PeerFailed);
        assert_eq!(stop.get(), Some(StopReason::Timeout), "first reason wins");
        assert!(!b.wait(&stop));
    }
}
