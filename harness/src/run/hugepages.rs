//! Huge pages for `remap-huge` runs: a [`Reservation`] raises `/proc/sys/vm/nr_hugepages`
//! so that enough 2 MiB pages are free, and puts the old value back when dropped. Raising it
//! needs root; without root nothing changes and the VMM's own error says what to run.

use std::fs;

/// The kernel's huge-page pool size.
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Huge pages of 2 MiB that a run of VMs with `memory_mib` MiB each needs: their memory and
/// the reference VMM's 16 MiB pool (`docs/remap-ipc.md`, "remap-huge").
pub fn pages_for_run(memory_mib: &[u64]) -> u64 {
    memory_mib.iter().map(|m| m.div_ceil(2)).sum::<u64>() + 8
}

/// A value of `/proc/meminfo`, if present.
fn meminfo(key: &str) -> Option<u64> {
    let m = fs::read_to_string("/proc/meminfo").ok()?;
    let v = m
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    v.split_whitespace().next()?.parse().ok()
}

/// A raised huge-page pool, restored on drop.
#[derive(Debug)]
pub struct Reservation {
    old: Option<u64>,
}

/// Why huge pages could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The pool could not be raised: not root, or the kernel found too little memory.
    #[error(
        "{pages} free huge pages of 2 MiB are needed and {free} are free; raising {NR_HUGEPAGES} failed ({why}): run `echo {want} | sudo tee {NR_HUGEPAGES}` and try again"
    )]
    Failed {
        /// Pages needed free.
        pages: u64,
        /// Pages free.
        free: u64,
        /// The value to write.
        want: u64,
        /// What went wrong.
        why: String,
    },
}

impl Reservation {
    /// Makes at least `pages` huge pages free, raising the pool if needed (root only).
    pub fn at_least(pages: u64) -> Result<Reservation, ReserveError> {
        let free = meminfo("HugePages_Free").unwrap_or(0);
        if free >= pages {
            return Ok(Reservation { old: None });
        }
        let total = meminfo("HugePages_Total").unwrap_or(0);
        let want = total + (pages - free);
        let fail = |why: String| ReserveError::Failed {
            pages,
            free,
            want,
            why,
        };
        fs::write(NR_HUGEPAGES, want.to_string()).map_err(|e| fail(e.to_string()))?;
        let reservation = Reservation { old: Some(total) };
        let now = meminfo("HugePages_Free").unwrap_or(0);
        if now < pages {
            // dropping `reservation` puts the old value back
            return Err(fail(format!("the kernel found memory for only {now}")));
        }
        eprintln!("reserved huge pages: {NR_HUGEPAGES} {total} -> {want} (restored when done)");
        Ok(reservation)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            if let Err(e) = fs::write(NR_HUGEPAGES, old.to_string()) {
                eprintln!("warning: could not restore {NR_HUGEPAGES} to {old}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_needs_its_memory_and_the_pool() {
        assert_eq!(pages_for_run(&[64, 64]), 64 + 8);
        assert_eq!(pages_for_run(&[4]), 2 + 8);
    }

    #[test]
    fn nothing_changes_when_enough_are_free() {
        // Zero pages are always free enough: the pool is left alone.
        let r = Reservation::at_least(0).unwrap();
        assert!(r.old.is_none());
    }
}
