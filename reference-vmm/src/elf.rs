//! Guest ELF images: checked before any VM starts, then loaded at their link addresses with
//! linux-loader's ELF loader.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use linux_loader::elf::{Elf64_Ehdr, Elf64_Phdr};
use linux_loader::loader::{elf::Elf, KernelLoader};
use pageflip_abi::{IMAGE_BASE, PAGE_SIZE};
use std::mem::size_of;
use vm_memory::ByteValued;
use vm_memory::GuestAddress;

use crate::memory::GuestRam;

const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;

/// Why a guest image was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read guest image {path}: {source}")]
    Read {
        /// The image path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a usable ELF image.
    #[error("guest image {path}: {reason}")]
    Invalid {
        /// The image path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// linux-loader failed to load a checked image.
    #[error("guest image {path}: loading failed: {reason}")]
    Load {
        /// The image path.
        path: PathBuf,
        /// linux-loader's error.
        reason: String,
    },
}

/// A guest image that passed the checks for a VM of a given memory size.
#[derive(Debug)]
pub struct GuestImage {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Entry point (a GPA, the identity map makes it the RIP too).
    pub entry: u64,
    /// First page-aligned GPA above every loaded segment.
    pub end: u64,
}

impl GuestImage {
    /// Reads and checks the image at `path` for a VM with `mem_size` bytes of memory.
    pub fn open(path: &Path, mem_size: u64) -> Result<GuestImage, ImageError> {
        let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
            path: path.into(),
            source,
        })?;
        let invalid = |reason: String| ImageError::Invalid {
            path: path.into(),
            reason,
        };
        let (entry, end) = check(&bytes, mem_size).map_err(invalid)?;
        Ok(GuestImage {
            path: path.into(),
            bytes,
            entry,
            end,
        })
    }

    /// Loads the image's segments into guest memory.
    pub fn load(&self, ram: &GuestRam) -> Result<(), ImageError> {
        Elf::load(
            ram.mem(),
            None,
            &mut Cursor::new(&self.bytes),
            Some(GuestAddress(IMAGE_BASE)),
        )
        .map(|_| ())
        .map_err(|e| ImageError::Load {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }
}

/// Why an image's ELF headers could not be read ([`read_header`], [`program_headers`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Shorter than an ELF header, or no ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// An ELF file, but not ELFCLASS64 little-endian.
    #[error("not a 64-bit little-endian ELF (ELFCLASS64, ELFDATA2LSB)")]
    NotElf64,
    /// `e_phentsize` is not the size of an `Elf64_Phdr`.
    #[error("program header size {0}, expected 56")]
    ProgramHeaderSize(u16),
    /// The program header table does not lie inside the file.
    #[error("program headers lie outside the file")]
    TableOutside,
}

/// The ELF64 header of an image, as linux-loader's `Elf64_Ehdr`, after checking the magic,
/// the class and the byte order: the project's one ELF header reader (the VMM's image
/// checks, conform's bad images and the embedded images' tests use it).
pub fn read_header(b: &[u8]) -> Result<Elf64_Ehdr, HeaderError> {
    if b.len() < size_of::<Elf64_Ehdr>() || b[..4] != *b"\x7fELF" {
        return Err(HeaderError::NotElf);
    }
    if b[4] != 2 || b[5] != 1 {
        return Err(HeaderError::NotElf64);
    }
    let mut header = Elf64_Ehdr::default();
    header
        .as_mut_slice()
        .copy_from_slice(&b[..size_of::<Elf64_Ehdr>()]);
    Ok(header)
}

/// Every program header of the image `b` whose header is `header`, with its byte offset in
/// the file, after checking the entry size and that the table lies inside the file.
pub fn program_headers(
    b: &[u8],
    header: &Elf64_Ehdr,
) -> Result<Vec<(usize, Elf64_Phdr)>, HeaderError> {
    let entsize = size_of::<Elf64_Phdr>();
    if usize::from(header.e_phentsize) != entsize {
        return Err(HeaderError::ProgramHeaderSize(header.e_phentsize));
    }
    let phoff = header.e_phoff;
    let table_end = phoff
        .checked_add(u64::from(header.e_phnum) * entsize as u64)
        .filter(|&e| e <= b.len() as u64)
        .ok_or(HeaderError::TableOutside)?;
    Ok(b[phoff as usize..table_end as usize]
        .chunks_exact(entsize)
        .enumerate()
        .map(|(i, bytes)| {
            let mut ph = Elf64_Phdr::default();
            ph.as_mut_slice().copy_from_slice(bytes);
            (phoff as usize + i * entsize, ph)
        })
        .collect())
}

/// Checks an ELF image; returns (entry, page-aligned end of the loaded segments).
fn check(b: &[u8], mem_size: u64) -> Result<(u64, u64), String> {
    let h = read_header(b).map_err(|e| e.to_string())?;
    let (e_type, machine) = (h.e_type, h.e_machine);
    if machine != EM_X86_64 {
        return Err(format!("built for ELF machine {machine}, not x86-64 (62)"));
    }
    if e_type != ET_EXEC {
        return Err(format!(
            "ELF type {e_type} is not a static executable (ET_EXEC); link with -static and a linker script"
        ));
    }
    let entry = h.e_entry;
    let programs = program_headers(b, &h).map_err(|e| e.to_string())?;
    let mut end = 0u64;
    let mut entry_loaded = false;
    for (i, (_, ph)) in programs.iter().enumerate() {
        if ph.p_type != PT_LOAD {
            continue;
        }
        let (offset, paddr, filesz, memsz) = (ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz);
        if filesz > memsz {
            return Err(format!(
                "segment {i}: file size {filesz:#x} exceeds memory size {memsz:#x}"
            ));
        }
        if offset
            .checked_add(filesz)
            .is_none_or(|e| e > b.len() as u64)
        {
            return Err(format!("segment {i}: data lies outside the file"));
        }
        let seg_end = paddr
            .checked_add(memsz)
            .ok_or(format!("segment {i}: address overflows"))?;
        if paddr < IMAGE_BASE {
            return Err(format!(
                "segment {i} at {paddr:#x}..{seg_end:#x} overlaps the VMM's reserved range below {IMAGE_BASE:#x}"
            ));
        }
        if seg_end > mem_size {
            return Err(format!(
                "segment {i} at {paddr:#x}..{seg_end:#x} ends beyond guest memory ({} MiB)",
                mem_size >> 20
            ));
        }
        entry_loaded |= (paddr..seg_end).contains(&entry);
        end = end.max(seg_end);
    }
    if end == 0 {
        return Err("no loadable (PT_LOAD) segment".into());
    }
    if !entry_loaded {
        return Err(format!(
            "entry point {entry:#x} is not inside a loadable segment"
        ));
    }
    Ok((entry, end.div_ceil(PAGE_SIZE) * PAGE_SIZE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 x86-64 executable with one PT_LOAD segment.
    fn elf(paddr: u64, memsz: u64) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 + 16];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[24..32].copy_from_slice(&paddr.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = &mut b[64..120];
        ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        ph[8..16].copy_from_slice(&120u64.to_le_bytes());
        ph[16..24].copy_from_slice(&paddr.to_le_bytes());
        ph[24..32].copy_from_slice(&paddr.to_le_bytes());
        ph[32..40].copy_from_slice(&16u64.to_le_bytes());
        ph[40..48].copy_from_slice(&memsz.to_le_bytes());
        b
    }

    #[test]
    fn accepts_a_good_image() {
        assert_eq!(
            check(&elf(0x20_0000, 0x1800), 4 << 20),
            Ok((0x20_0000, 0x20_2000))
        );
    }

    #[test]
    fn rejects_bad_images_with_reasons() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"#!/bin/sh\necho hi\n".to_vec(), "not an ELF"),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[18] = 183;
                    e
                },
                "not x86-64",
            ),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[4] = 1;
                    e
                },
                "64-bit",
            ),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[16] = 3;
                    e
                },
                "ET_EXEC",
            ),
            (elf(0x1000, 16), "reserved"),
            (elf(0x20_0000, 64 << 20), "beyond guest memory"),
            (elf(0x20_0000, u64::MAX), "overflows"),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[24..32].copy_from_slice(&0x30_0000u64.to_le_bytes());
                    e
                },
                "entry point",
            ),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[56] = 200;
                    e
                },
                "outside the file",
            ),
            (
                {
                    let mut e = elf(0x20_0000, 16);
                    e[64 + 32] = 0xff;
                    e
                },
                "exceeds",
            ),
        ];
        for (bytes, want) in cases {
            let err = check(&bytes, 4 << 20).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn loads_segment_bytes() {
        let mut b = elf(0x20_0000, 0x20);
        b[120..136].copy_from_slice(b"0123456789abcdef");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.elf");
        std::fs::write(&p, &b).unwrap();
        let img = GuestImage::open(&p, 4 << 20).unwrap();
        let ram = GuestRam::new("t", 4 << 20).unwrap();
        img.load(&ram).unwrap();
        assert_eq!(ram.read_bytes(0x20_0000, 16).unwrap(), b"0123456789abcdef");
        let missing = GuestImage::open(&dir.path().join("nope"), 4 << 20).unwrap_err();
        assert!(missing.to_string().contains("cannot read guest image"));
    }
}
