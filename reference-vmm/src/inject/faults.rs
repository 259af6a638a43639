//! Faults that can be injected into the reference VMM's transports (remap IPC, the virtio
//! datagram device, the shared region), one at a time, to prove that the conformance suite
//! catches a broken implementation (`conform --mutants`).
//! They are set only on the VMM's command line (`--inject-fault NAME`); no guest and no run
//! config can turn one on, and normal runs have none.

use std::fmt;
use std::str::FromStr;

use pageflip_interface::TransportConfig;

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Remap leaves the page mapped in the sender too (and says so in its table).
    SkipUnmap,
    /// Remap copies the bytes instead: the sender keeps its page, no mapping changes.
    CopyInsteadOfRemap,
    /// Every 97th delivery is reported Ok to the sender but never enqueued.
    DropEveryNth,
    /// Entries name the receiver as their source.
    SwapSourceId,
    /// The 5th delivery to each VM is held back and enqueued after the 6th.
    ReorderTwo,
    /// The first remap leaks a pool page (it leaves the free list, no one maps it).
    LeakPage,
    /// Remap updates the ownership table but leaves the host mapping in the sender: the
    /// page is mapped into both VMs while the table looks clean.
    MapBoth,
    /// A send doorbell drains only when the ring holds a full batch, ignoring FLAG_URGENT.
    IgnoreUrgent,
    /// The control structure's header page is write-protected: every guest store to it
    /// (each deferred send's head update) exits to the VMM, which emulates it and drains.
    ExitEveryDeferredSend,
    /// The virtio device ignores the negotiated VIRTIO_F_EVENT_IDX: it suppresses and
    /// re-arms notifications with the used ring's NO_NOTIFY flag, which a driver that
    /// negotiated EVENT_IDX does not read, and never updates `avail_event` (nor honours
    /// `used_event`).
    IgnoreEventIdx,
    /// Every 1000th rx chain the virtio device fills is never published in the used ring:
    /// the message is lost (the sender is told Ok).
    DropUsedUpdate,
    /// The virtio device accepts FEATURES_OK with unoffered feature bits or without
    /// VERSION_1.
    AcceptUnofferedFeatures,
    /// Each VM gets its own private region at `SHMEM_GPA` instead of the run's shared one.
    UnsharedShmem,
    /// `remap` moves every page of an extent with its own host operations, as
    /// `remap-per-page` does.
    SplitExtents,
    /// `remap-huge` copies the bytes instead of moving the huge pages.
    HugeFallbackCopy,
    /// Coalescing merges a mapping with the previous one of its VM when their GPAs are
    /// adjacent, whether or not their frames are.
    CoalesceAcrossGap,
    /// A VM that ended is never marked down: sends to it are `ok` while its posted pages
    /// last, then `queue_full` for ever (no `dest_down`).
    IgnoreDestDown,
    /// The virtio device ignores `VIRTQ_DESC_F_INDIRECT`, which it does not offer, and uses
    /// such a descriptor's buffer as a plain one.
    AcceptIndirect,
}

/// Every fault, in the order `conform --mutants` runs them.
pub const ALL_FAULTS: &[Fault] = &[
    Fault::SkipUnmap,
    Fault::CopyInsteadOfRemap,
    Fault::DropEveryNth,
    Fault::SwapSourceId,
    Fault::ReorderTwo,
    Fault::LeakPage,
    Fault::MapBoth,
    Fault::IgnoreUrgent,
    Fault::ExitEveryDeferredSend,
    Fault::IgnoreEventIdx,
    Fault::DropUsedUpdate,
    Fault::AcceptUnofferedFeatures,
    Fault::UnsharedShmem,
    Fault::SplitExtents,
    Fault::HugeFallbackCopy,
    Fault::CoalesceAcrossGap,
    Fault::IgnoreDestDown,
    Fault::AcceptIndirect,
];

impl Fault {
    /// The fault's command-line name.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::SkipUnmap => "skip-unmap",
            Fault::CopyInsteadOfRemap => "copy-instead-of-remap",
            Fault::DropEveryNth => "drop-every-nth",
            Fault::SwapSourceId => "swap-source-id",
            Fault::ReorderTwo => "reorder-two",
            Fault::LeakPage => "leak-page",
            Fault::MapBoth => "map-both",
            Fault::IgnoreUrgent => "ignore-urgent",
            Fault::ExitEveryDeferredSend => "exit-every-deferred-send",
            Fault::IgnoreEventIdx => "ignore-event-idx",
            Fault::DropUsedUpdate => "drop-used-update",
            Fault::AcceptUnofferedFeatures => "accept-unoffered-features",
            Fault::UnsharedShmem => "unshared-shmem",
            Fault::SplitExtents => "split-extents",
            Fault::HugeFallbackCopy => "huge-fallback-copy",
            Fault::CoalesceAcrossGap => "coalesce-across-gap",
            Fault::IgnoreDestDown => "ignore-dest-down",
            Fault::AcceptIndirect => "accept-indirect",
        }
    }
}

impl Fault {
    /// Whether the fault changes anything in a run with transport `t` (a mutant run on
    /// another transport behaves like the correct VMM).
    pub fn applies_to(self, t: &TransportConfig) -> bool {
        match self {
            Fault::IgnoreEventIdx
            | Fault::DropUsedUpdate
            | Fault::AcceptUnofferedFeatures
            | Fault::AcceptIndirect => {
                matches!(t, TransportConfig::Virtio { .. })
            }
            Fault::UnsharedShmem => *t == TransportConfig::Shmem,
            Fault::SplitExtents | Fault::CopyInsteadOfRemap => *t == TransportConfig::Remap,
            Fault::HugeFallbackCopy => *t == TransportConfig::RemapHuge,
            Fault::CoalesceAcrossGap => {
                matches!(t, TransportConfig::Remap | TransportConfig::RemapHuge)
            }
            _ => t.has_ipc(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        ALL_FAULTS
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ALL_FAULTS.iter().map(|f| f.name()).collect();
                format!("unknown fault {s:?}; one of: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in ALL_FAULTS {
            assert_eq!(f.name().parse::<Fault>(), Ok(*f));
        }
        assert!("nope".parse::<Fault>().unwrap_err().contains("skip-unmap"));
    }

    #[test]
    fn every_fault_applies_to_exactly_one_family() {
        use pageflip_interface::NotifyMode;
        let families: [&[TransportConfig]; 3] = [
            &[
                TransportConfig::Remap,
                TransportConfig::RemapPerPage,
                TransportConfig::RemapHuge,
                TransportConfig::Copy,
            ],
            &[TransportConfig::Virtio {
                notify: NotifyMode::Ioeventfd,
            }],
            &[TransportConfig::Shmem],
        ];
        for f in ALL_FAULTS {
            let n = families
                .iter()
                .filter(|family| family.iter().any(|t| f.applies_to(t)))
                .count();
            assert_eq!(n, 1, "{f}");
            assert!(!f.applies_to(&TransportConfig::None));
        }
        assert!(Fault::HugeFallbackCopy.applies_to(&TransportConfig::RemapHuge));
        assert!(!Fault::HugeFallbackCopy.applies_to(&TransportConfig::Remap));
        assert!(!Fault::SplitExtents.applies_to(&TransportConfig::RemapPerPage));
    }
}
