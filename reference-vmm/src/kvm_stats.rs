//! KVM binary statistics (`KVM_GET_STATS_FD`) of a VM or a vCPU: the primary source of exit,
//! fault and TLB-flush counts.
//!
//! The stats file starts with a header (`struct kvm_stats_header`), then an array of
//! descriptors (`struct kvm_stats_desc` followed by a name of `name_size` bytes), then the
//! data: `u64` values at each descriptor's offset from `data_offset`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;

use kvm_bindings::{
    KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_TYPE_INSTANT, KVM_STATS_TYPE_MASK, KVM_STATS_TYPE_PEAK,
};
use vmm_sys_util::ioctl::ioctl;

/// The ioctl number, which kvm-ioctls does not wrap.
mod nr {
    #![allow(missing_docs)]
    use vmm_sys_util::ioctl_io_nr;
    const KVMIO: u32 = 0xAE;
    ioctl_io_nr!(KVM_GET_STATS_FD, KVMIO, 0xce);
}
use nr::KVM_GET_STATS_FD;

/// vCPU counters a report is expected to have. Those the host does not expose are listed as
/// unavailable, never reported as 0.
pub const WELL_KNOWN_VCPU: &[&str] = &[
    "exits",
    "mmio_exits",
    "io_exits",
    "irq_exits",
    "signal_exits",
    "halt_exits",
    "hypercalls",
    "insn_emulation",
    "pf_taken",
    "pf_fixed",
    "tlb_flush",
    "invlpg",
];

/// VM counters a report is expected to have.
pub const WELL_KNOWN_VM: &[&str] = &["remote_tlb_flush", "remote_tlb_flush_requests", "pages_4k"];

/// Why the stats of a VM or vCPU could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// `KVM_GET_STATS_FD` failed (the host may lack `KVM_CAP_BINARY_STATS_FD`).
    #[error("KVM_GET_STATS_FD failed")]
    Open(#[source] std::io::Error),
    /// Reading the stats file failed.
    #[error("reading the KVM stats file failed")]
    Read(#[source] std::io::Error),
    /// The header or a descriptor is inconsistent.
    #[error("malformed KVM stats file: {0}")]
    Malformed(&'static str),
}

/// How a counter changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Only grows: report the increase over an interval.
    Cumulative,
    /// A current value (instant or peak): report the value at the end of an interval.
    Level,
}

#[derive(Clone, Debug)]
struct Desc {
    name: String,
    offset: u64,
    kind: Kind,
}

/// An open stats file with its scalar counters.
#[derive(Debug)]
pub struct StatsFd {
    file: File,
    descs: Vec<Desc>,
    data_offset: u64,
}

/// The values of every scalar counter at one moment, in descriptor order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot(Vec<u64>);

fn u32_at(buf: &[u8], at: usize) -> Result<u32, StatsError> {
    buf.get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or(StatsError::Malformed("truncated descriptor"))
}

impl StatsFd {
    /// Opens the stats of a VM fd or vCPU fd.
    pub fn open(fd: &impl AsRawFd) -> Result<StatsFd, StatsError> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd or -1; `fd` is a
        // valid KVM VM or vCPU fd for the duration of the call.
        let ret = unsafe { ioctl(fd, KVM_GET_STATS_FD()) };
        if ret < 0 {
            return Err(StatsError::Open(std::io::Error::last_os_error()));
        }
        // SAFETY: `ret` is a fresh fd that nothing else owns.
        let file = unsafe { File::from_raw_fd(ret) };
        Self::parse(file)
    }

    fn parse(file: File) -> Result<StatsFd, StatsError> {
        let mut header = [0u8; 24];
        file.read_exact_at(&mut header, 0)
            .map_err(StatsError::Read)?;
        let name_size = u32_at(&header, 4)? as usize;
        let num_desc = u32_at(&header, 8)? as usize;
        let desc_offset = u64::from(u32_at(&header, 16)?);
        let data_offset = u64::from(u32_at(&header, 20)?);
        if name_size == 0 || name_size > 4096 || num_desc > 65536 {
            return Err(StatsError::Malformed("implausible header"));
        }
        let desc_len = 16 + name_size;
        let mut raw = vec![0u8; desc_len * num_desc];
        file.read_exact_at(&mut raw, desc_offset)
            .map_err(StatsError::Read)?;
        let mut descs = Vec::with_capacity(num_desc);
        for d in raw.chunks_exact(desc_len) {
            let flags = u32_at(d, 0)?;
            let size = u16::from_le_bytes([d[6], d[7]]);
            let offset = u64::from(u32_at(d, 8)?);
            let name_bytes = &d[16..];
            let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_size);
            let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
            let kind = match flags & KVM_STATS_TYPE_MASK {
                KVM_STATS_TYPE_CUMULATIVE => Kind::Cumulative,
                KVM_STATS_TYPE_INSTANT | KVM_STATS_TYPE_PEAK => Kind::Level,
                _ => continue, // histograms are not scalar counters
            };
            if size != 1 {
                continue;
            }
            descs.push(Desc { name, offset, kind });
        }
        Ok(StatsFd {
            file,
            descs,
            data_offset,
        })
    }

    /// Whether the host exposes a counter of this name.
    pub fn has(&self, name: &str) -> bool {
        self.descs.iter().any(|d| d.name == name)
    }

    /// Names of the exposed scalar counters.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.descs.iter().map(|d| d.name.as_str())
    }

    /// Reads every scalar counter now.
    pub fn snapshot(&self) -> Result<Snapshot, StatsError> {
        // One read of the whole data block keeps the values as close to one moment as the
        // kernel allows.
        let end = self.descs.iter().map(|d| d.offset + 8).max().unwrap_or(0);
        let mut data = vec![0u8; end as usize];
        self.file
            .read_exact_at(&mut data, self.data_offset)
            .map_err(StatsError::Read)?;
        let values = self
            .descs
            .iter()
            .map(|d| {
                let at = d.offset as usize;
                u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
            })
            .collect();
        Ok(Snapshot(values))
    }

    /// The change of every counter from `before` to `after`.
    pub fn delta(&self, before: &Snapshot, after: &Snapshot) -> BTreeMap<String, u64> {
        self.descs
            .iter()
            .zip(before.0.iter().zip(&after.0))
            .map(|(d, (b, a))| {
                let v = match d.kind {
                    Kind::Cumulative => a.saturating_sub(*b),
                    Kind::Level => *a,
                };
                (d.name.clone(), v)
            })
            .collect()
    }

    /// The well-known counters in `wanted` that this host does not expose.
    pub fn missing<'a>(&self, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted.iter().copied().filter(|n| !self.has(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Builds a stats file the way the kernel lays it out.
    fn fake_stats(counters: &[(&str, u32, u64)]) -> File {
        let name_size = 48usize;
        let desc_offset = 24u32;
        let desc_len = 16 + name_size;
        let data_offset = desc_offset + (desc_len * counters.len()) as u32;
        let mut buf = Vec::new();
        for v in [
            0u32,
            name_size as u32,
            counters.len() as u32,
            24,
            desc_offset,
            data_offset,
        ] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        for (i, (name, flags, _)) in counters.iter().enumerate() {
            buf.extend_from_slice(&flags.to_le_bytes());
            buf.extend_from_slice(&0i16.to_le_bytes());
            buf.extend_from_slice(&1u16.to_le_bytes());
            buf.extend_from_slice(&((i * 8) as u32).to_le_bytes());
            buf.extend_from_slice(&0u32.to_le_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize(name_size, 0);
            buf.extend_from_slice(&n);
        }
        for (_, _, v) in counters {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&buf).unwrap();
        f
    }

    #[test]
    fn parses_descriptors_and_values() {
        let f = fake_stats(&[
            ("exits", KVM_STATS_TYPE_CUMULATIVE, 7),
            ("pages_4k", KVM_STATS_TYPE_INSTANT, 3),
        ]);
        let s = StatsFd::parse(f).unwrap();
        assert!(s.has("exits") && s.has("pages_4k") && !s.has("tlb_flush"));
        assert_eq!(s.snapshot().unwrap(), Snapshot(vec![7, 3]));
        assert_eq!(s.missing(&["exits", "tlb_flush"]), vec!["tlb_flush"]);
    }

    #[test]
    fn delta_subtracts_cumulative_and_keeps_levels() {
        let f = fake_stats(&[
            ("exits", KVM_STATS_TYPE_CUMULATIVE, 0),
            ("pages_4k", KVM_STATS_TYPE_INSTANT, 0),
        ]);
        let s = StatsFd::parse(f).unwrap();
        let d = s.delta(&Snapshot(vec![10, 5]), &Snapshot(vec![15, 2]));
        assert_eq!(d["exits"], 5);
        assert_eq!(d["pages_4k"], 2);
    }
}
