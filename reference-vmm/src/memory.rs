//! Guest memory: one memfd per VM, mapped shared into the VMM, so later transports can remap
//! single pages (host `mmap(MAP_FIXED)` over the mapping is seen by KVM's MMU notifier).
//! Pages are allocated when touched: RSS grows with what the guest uses, not its size.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use vm_memory::{ByteValued, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Why guest memory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// memfd_create failed.
    #[error("memfd_create failed")]
    Memfd(#[source] std::io::Error),
    /// Sizing the memfd failed.
    #[error("sizing the memfd to {0} bytes failed")]
    Size(u64, #[source] std::io::Error),
    /// Mapping it failed.
    #[error("mapping guest memory failed: {0}")]
    Map(String),
    /// Too few free 2 MiB huge pages for a hugetlbfs memfd.
    #[error(
        "this run needs {needed} free huge pages of 2 MiB (its VMs' memory and a 16 MiB pool); \
         the host has {free} free of {total} reserved: reserve them with \
         `echo {want} | sudo tee /proc/sys/vm/nr_hugepages`"
    )]
    HugePages {
        /// Huge pages the run needs.
        needed: u64,
        /// HugePages_Free.
        free: u64,
        /// HugePages_Total.
        total: u64,
        /// The reservation that would leave enough free.
        want: u64,
    },
}

/// Bytes in a 2 MiB huge page.
const HUGE_PAGE_BYTES: u64 = 2 << 20;

/// A value of `/proc/meminfo` (0 where missing).
fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A memfd of `size` bytes (a multiple of 2 MiB) backed by 2 MiB hugetlbfs pages, after
/// checking that the host has that many huge pages free (a shared hugetlbfs mapping
/// reserves them all when it is mapped).
pub fn create_huge_memfd(name: &str, size: u64) -> Result<Arc<File>, MemoryError> {
    let needed = size.div_ceil(HUGE_PAGE_BYTES);
    let (free, total) = (meminfo("HugePages_Free"), meminfo("HugePages_Total"));
    // HugePages_* count pages of the default size, 2 MiB on x86-64 (MFD_HUGE_2MB asks for
    // that size whatever the default is).
    if free < needed {
        return Err(MemoryError::HugePages {
            needed,
            free,
            total,
            want: total + needed - free.min(needed),
        });
    }
    let cname = CString::new(format!("pageflip-{name}")).unwrap_or_default();
    // SAFETY: `cname` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            cname.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_HUGETLB | libc::MFD_HUGE_2MB,
        )
    };
    if fd < 0 {
        return Err(MemoryError::Memfd(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh fd that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(needed * HUGE_PAGE_BYTES)
        .map_err(|e| MemoryError::Size(size, e))?;
    Ok(Arc::new(file))
}

/// A zero-filled memfd of a given size: the page pool of a run, of which every VM's memory is
/// one range (so a page can be remapped from one VM into another).
pub fn create_memfd(name: &str, size: u64) -> Result<Arc<File>, MemoryError> {
    let cname = CString::new(format!("pageflip-{name}")).unwrap_or_default();
    // SAFETY: `cname` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(MemoryError::Memfd(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh fd that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(size).map_err(|e| MemoryError::Size(size, e))?;
    Ok(Arc::new(file))
}

/// The memory of one VM: `[0, size)` in guest physical addresses.
#[derive(Debug)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    size: u64,
}

impl GuestRam {
    /// Creates `size` bytes of zeroed guest memory backed by a new memfd named `name`.
    pub fn new(name: &str, size: u64) -> Result<GuestRam, MemoryError> {
        GuestRam::map(create_memfd(name, size)?, 0, size)
    }

    /// Maps `[offset, offset + size)` of `memfd` as guest memory `[0, size)`.
    pub fn map(memfd: Arc<File>, offset: u64, size: u64) -> Result<GuestRam, MemoryError> {
        let mem = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            size as usize,
            Some(FileOffset::from_arc(memfd, offset)),
        )])
        .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(GuestRam { mem, size })
    }

    /// The vm-memory view (bounds-checked accesses).
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// `[start, size)` of this memory mapped a second time (the same memfd pages, shared), as
    /// a vm-memory view that has no address below `start`: a device given only this view
    /// cannot reach below `start` whatever the guest writes into its descriptors meanwhile.
    /// (Not for transports that remap this memory's pages: the view maps the memfd.)
    pub fn view_from(&self, start: u64) -> Result<GuestMemoryMmap, MemoryError> {
        use vm_memory::GuestMemoryRegion;
        let region = self
            .mem
            .find_region(GuestAddress(0))
            .ok_or_else(|| MemoryError::Map("guest memory has no region at 0".into()))?;
        let file = region
            .file_offset()
            .ok_or_else(|| MemoryError::Map("guest memory is not a memfd mapping".into()))?;
        if start >= self.size {
            return Err(MemoryError::Map(format!(
                "a view from {start:#x} of {:#x} bytes is empty",
                self.size
            )));
        }
        GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(start),
            (self.size - start) as usize,
            Some(FileOffset::from_arc(
                file.arc().clone(),
                file.start() + start,
            )),
        )])
        .map_err(|e| MemoryError::Map(e.to_string()))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host virtual address of GPA 0.
    pub fn host_base(&self) -> u64 {
        self.mem
            .get_host_address(GuestAddress(0))
            .expect("GPA 0 is in guest memory") as u64
    }

    /// Whether `[gpa, gpa + len)` lies inside guest memory.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Reads an ABI structure (or integer) from guest memory, or None if it is not all in
    /// guest memory.
    pub fn read_pod<T: ByteValued>(&self, gpa: u64) -> Option<T> {
        self.mem.read_obj(GuestAddress(gpa)).ok()
    }

    /// Writes an ABI structure (or integer) into guest memory; false if it is not all in guest
    /// memory.
    pub fn write_pod<T: ByteValued>(&self, gpa: u64, value: &T) -> bool {
        self.mem.write_obj(*value, GuestAddress(gpa)).is_ok()
    }

    /// Reads `len` bytes at `gpa`, or None if the range is not guest memory.
    pub fn read_bytes(&self, gpa: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.mem.read_slice(&mut buf, GuestAddress(gpa)).ok()?;
        Some(buf)
    }

    /// Writes bytes at `gpa`; false if the range is not guest memory.
    pub fn write_bytes(&self, gpa: u64, bytes: &[u8]) -> bool {
        self.mem.write_slice(bytes, GuestAddress(gpa)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pageflip_abi::BootInfo;

    #[test]
    fn pod_round_trip_and_bounds() {
        let ram = GuestRam::new("test", 4 << 20).unwrap();
        let mut bi = BootInfo::zeroed();
        bi.vm_id = 3;
        bi.params[15] = 0xfeed;
        assert!(ram.write_pod(0x9000, &bi));
        assert_eq!(ram.read_pod::<BootInfo>(0x9000), Some(bi));
        assert!(ram.read_pod::<BootInfo>((4 << 20) - 8).is_none());
        assert!(!ram.write_pod((4 << 20) - 8, &bi));
        assert!(
            ram.contains(0, 4 << 20) && !ram.contains(1, 4 << 20) && !ram.contains(u64::MAX, 2)
        );
    }
}
