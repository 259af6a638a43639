//! Bad guest images, made by patching the headers of a good ELF64 image (`hello`): what a VMM
//! must refuse before it runs anything.

use std::fmt;

use pageflip_abi::IMAGE_BASE;
use pageflip_vmm::elf::{program_headers, read_header, HeaderError};

use crate::run::images::{embedded, Image, ImageError, ImageSet};

/// The guest the bad images are made from.
pub const BAD_ELF_BASE: &str = pageflip_workloads::HELLO;

/// `e_machine` the wrong-machine image claims: `EM_AARCH64`.
pub const WRONG_MACHINE: u16 = 183;
/// `p_paddr` (and `p_vaddr`) the reserved-segment image loads its first segment at: the GDT
/// page, inside the range below [`IMAGE_BASE`] that belongs to the VMM.
pub const RESERVED_ADDR: u64 = 0x1000;
/// `p_memsz` of the huge-segment image's first segment: 1 TiB, more than any guest memory.
pub const HUGE_MEMSZ: u64 = 1 << 40;
/// Content of the not-an-ELF image.
pub const NOT_ELF_TEXT: &[u8] = b"#!/bin/sh\necho this is a shell script, not an ELF file\n";

const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const E_MACHINE: usize = 18;
const E_PHOFF: usize = 32;
const E_PHENTSIZE: usize = 54;
const P_VADDR: usize = 16;
const P_PADDR: usize = 24;
const P_MEMSZ: usize = 40;

/// Why the bad images could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BadImagesError {
    /// The base image is not embedded, or a file could not be written.
    #[error(transparent)]
    Images(#[from] ImageError),
    /// The base image could not be patched.
    #[error("cannot make the {kind} image from `{BAD_ELF_BASE}`")]
    Patch {
        /// Which bad image.
        kind: BadElf,
        /// What was wrong with the base image.
        #[source]
        source: ElfError,
    },
}

/// Writes every bad image into `images`, each made from [`BAD_ELF_BASE`].
pub fn write_all(images: &ImageSet) -> Result<(), BadImagesError> {
    let base = embedded(BAD_ELF_BASE)?;
    for kind in BadElf::ALL {
        let bytes = kind
            .generate(base)
            .map_err(|source| BadImagesError::Patch { kind, source })?;
        images.add(kind.name(), &bytes)?;
    }
    Ok(())
}

/// A way of breaking a guest image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadElf {
    /// Not an ELF file at all (a shell script).
    NotElf,
    /// A valid ELF64 for another machine (`e_machine` = AArch64).
    WrongMachine,
    /// The first `PT_LOAD` segment loads below [`IMAGE_BASE`], over the VMM's structures.
    ReservedSegment,
    /// The first `PT_LOAD` segment's `p_memsz` is 1 TiB.
    HugeSegment,
}

impl BadElf {
    /// Every kind of bad image.
    pub const ALL: [BadElf; 4] = [
        BadElf::NotElf,
        BadElf::WrongMachine,
        BadElf::ReservedSegment,
        BadElf::HugeSegment,
    ];

    /// The name of this kind's image in an [`ImageSet`] (`Image::Generated`).
    pub const fn name(self) -> &'static str {
        match self {
            BadElf::NotElf => "bad-not-elf",
            BadElf::WrongMachine => "bad-wrong-machine",
            BadElf::ReservedSegment => "bad-reserved-segment",
            BadElf::HugeSegment => "bad-huge-segment",
        }
    }

    /// The image of this kind in an [`ImageSet`] that [`write_all`] filled.
    pub const fn image(self) -> Image {
        Image::Generated(self.name())
    }

    /// The kind whose [`BadElf::image`] `image` is, if any.
    pub fn of_image(image: Image) -> Option<BadElf> {
        BadElf::ALL.into_iter().find(|k| k.image() == image)
    }

    /// A short name for file names.
    pub const fn slug(self) -> &'static str {
        match self {
            BadElf::NotElf => "not-elf",
            BadElf::WrongMachine => "wrong-machine",
            BadElf::ReservedSegment => "reserved-segment",
            BadElf::HugeSegment => "huge-segment",
        }
    }

    /// Makes the bad image from the bytes of a good x86-64 ELF64 image.
    pub fn generate(self, good: &[u8]) -> Result<Vec<u8>, ElfError> {
        if self == BadElf::NotElf {
            return Ok(NOT_ELF_TEXT.to_vec());
        }
        let mut bytes = good.to_vec();
        let em = machine(&bytes)?;
        if em != EM_X86_64 {
            return Err(ElfError::Machine(em));
        }
        match self {
            BadElf::NotElf => unreachable!("handled above"),
            BadElf::WrongMachine => write(&mut bytes, E_MACHINE, &WRONG_MACHINE.to_le_bytes())?,
            BadElf::ReservedSegment => {
                let phdr = first_load(&bytes)?.phdr_offset;
                write(&mut bytes, phdr + P_PADDR, &RESERVED_ADDR.to_le_bytes())?;
                write(&mut bytes, phdr + P_VADDR, &RESERVED_ADDR.to_le_bytes())?;
            }
            BadElf::HugeSegment => {
                let phdr = first_load(&bytes)?.phdr_offset;
                write(&mut bytes, phdr + P_MEMSZ, &HUGE_MEMSZ.to_le_bytes())?;
            }
        }
        Ok(bytes)
    }
}

impl fmt::Display for BadElf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// Why an image could not be patched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// The image does not start with the ELF64 little-endian magic.
    #[error("not an ELF64 little-endian image")]
    NotElf64,
    /// A header field points outside the image.
    #[error("truncated: a header at byte {0} lies beyond the end of the image")]
    Truncated(usize),
    /// The image is for another machine.
    #[error("e_machine is {0}, not x86-64 (62)")]
    Machine(u16),
    /// No `PT_LOAD` program header.
    #[error("the image has no PT_LOAD segment")]
    NoLoadSegment,
}

/// The first `PT_LOAD` program header of an ELF64 image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// File offset of its program header.
    pub phdr_offset: usize,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// The `e_machine` of an ELF64 image.
pub fn machine(bytes: &[u8]) -> Result<u16, ElfError> {
    Ok(read_header(bytes).map_err(header_error)?.e_machine)
}

/// The first `PT_LOAD` segment of an ELF64 image.
pub fn first_load(bytes: &[u8]) -> Result<LoadSegment, ElfError> {
    let header = read_header(bytes).map_err(header_error)?;
    let programs = program_headers(bytes, &header).map_err(header_error)?;
    programs
        .iter()
        .find(|(_, ph)| ph.p_type == PT_LOAD)
        .map(|(at, ph)| LoadSegment {
            phdr_offset: *at,
            vaddr: ph.p_vaddr,
            paddr: ph.p_paddr,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
        })
        .ok_or(ElfError::NoLoadSegment)
}

/// What the VMM's ELF header reader said, as a patching error.
fn header_error(e: HeaderError) -> ElfError {
    match e {
        HeaderError::NotElf | HeaderError::NotElf64 => ElfError::NotElf64,
        HeaderError::ProgramHeaderSize(_) => ElfError::Truncated(E_PHENTSIZE),
        HeaderError::TableOutside => ElfError::Truncated(E_PHOFF),
    }
}

/// True if the segment lies at or above [`IMAGE_BASE`], where guest images belong.
pub fn outside_reserved(segment: &LoadSegment) -> bool {
    segment.paddr >= IMAGE_BASE && segment.vaddr >= IMAGE_BASE
}

fn write(bytes: &mut [u8], at: usize, value: &[u8]) -> Result<(), ElfError> {
    at.checked_add(value.len())
        .and_then(|end| bytes.get_mut(at..end))
        .ok_or(ElfError::Truncated(at))?
        .copy_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const E_PHNUM: usize = 56;
    const P_FILESZ: usize = 32;
    const PHDR_SIZE: usize = 56;

    /// A minimal ELF64 x86-64 image with one PT_LOAD at 0x200000 (headers only).
    fn tiny_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64 + PHDR_SIZE];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[E_MACHINE..E_MACHINE + 2].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[E_PHOFF..E_PHOFF + 8].copy_from_slice(&64u64.to_le_bytes());
        b[E_PHENTSIZE..E_PHENTSIZE + 2].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        b[E_PHNUM..E_PHNUM + 2].copy_from_slice(&1u16.to_le_bytes());
        let p = 64;
        b[p..p + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        for (off, v) in [
            (P_VADDR, IMAGE_BASE),
            (P_PADDR, IMAGE_BASE),
            (P_FILESZ, 0x100),
            (P_MEMSZ, 0x2000),
        ] {
            b[p + off..p + off + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn check_generators(good: &[u8]) {
        let seg = first_load(good).unwrap();
        assert!(outside_reserved(&seg), "{seg:?}");
        assert!(seg.memsz < HUGE_MEMSZ);

        let not_elf = BadElf::NotElf.generate(good).unwrap();
        assert_eq!(first_load(&not_elf), Err(ElfError::NotElf64));

        let arm = BadElf::WrongMachine.generate(good).unwrap();
        assert_eq!(machine(&arm), Ok(WRONG_MACHINE));
        assert_eq!(first_load(&arm).unwrap(), seg, "only e_machine changes");

        let low = BadElf::ReservedSegment.generate(good).unwrap();
        let low_seg = first_load(&low).unwrap();
        assert_eq!(machine(&low), Ok(EM_X86_64));
        assert_eq!(
            (low_seg.paddr, low_seg.vaddr),
            (RESERVED_ADDR, RESERVED_ADDR)
        );
        assert!(low_seg.paddr < IMAGE_BASE && !outside_reserved(&low_seg));
        assert_eq!((low_seg.filesz, low_seg.memsz), (seg.filesz, seg.memsz));

        let huge = BadElf::HugeSegment.generate(good).unwrap();
        let huge_seg = first_load(&huge).unwrap();
        assert_eq!(huge_seg.memsz, HUGE_MEMSZ);
        assert_eq!((huge_seg.paddr, huge_seg.filesz), (seg.paddr, seg.filesz));
        assert!(huge_seg.memsz > pageflip_abi::MAX_MEM_SIZE);

        for bad in BadElf::ALL {
            let bytes = bad.generate(good).unwrap();
            assert_eq!(
                bytes.len(),
                if bad == BadElf::NotElf {
                    NOT_ELF_TEXT.len()
                } else {
                    good.len()
                }
            );
        }
    }

    #[test]
    fn generators_patch_what_they_claim_on_a_hand_made_elf() {
        check_generators(&tiny_elf());
    }

    #[test]
    fn generators_patch_what_they_claim_on_the_hello_guest() {
        let hello = pageflip_workloads::image(pageflip_workloads::HELLO)
            .expect("the hello guest is embedded");
        assert_eq!(machine(hello), Ok(EM_X86_64));
        check_generators(hello);
    }

    #[test]
    fn write_all_writes_every_bad_image() {
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet::write(dir.path()).unwrap();
        write_all(&set).unwrap();
        for kind in BadElf::ALL {
            assert!(set.path(kind.image()).is_file(), "{kind}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_patch() {
        assert_eq!(
            BadElf::WrongMachine.generate(b"short"),
            Err(ElfError::NotElf64)
        );
        let mut no_load = tiny_elf();
        no_load[64..68].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(
            BadElf::HugeSegment.generate(&no_load),
            Err(ElfError::NoLoadSegment)
        );
        let mut cut = tiny_elf();
        cut.truncate(80);
        assert!(matches!(first_load(&cut), Err(ElfError::Truncated(_))));
    }
}
