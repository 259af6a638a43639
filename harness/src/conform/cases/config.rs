//! The bad-input cases: configs and guest images the VMM must refuse before any VM exists,
//! with exit code 2 and an error line naming what is wrong.

use pageflip_abi::MAX_VMS;
use pageflip_interface::{exit, ConfigError};

use crate::conform::bad_elf::BadElf;
use crate::conform::cases::build::case;
use crate::conform::cases::Case;
use crate::conform::expect::{Expect, Needle};
use crate::run::images::Image;
use crate::run::layout::{Input, Layout, VmSpec, DEFAULT_TIMEOUT_MS, HELLO_PLACEHOLDER};

/// A case the VMM must refuse with exit code 2 and an error line containing `needles`.
fn rejected(
    name: &'static str,
    description: &'static str,
    input: Input,
    needles: Vec<Needle>,
) -> Case {
    case(
        name,
        description,
        input,
        Expect::Reject {
            exit_code: exit::BAD_INPUT,
            stderr: needles,
        },
    )
}

fn text(t: impl Into<String>) -> Needle {
    Needle::Text(t.into())
}

/// A raw config text: the fields `head` (each followed by a comma), the default watchdog, and
/// the VM entries `vms`.
fn raw(head: &str, vms: &str) -> Input {
    Input::Raw(format!(
        "{{{head}\"timeout_ms\":{DEFAULT_TIMEOUT_MS},\"vms\":[{vms}]}}"
    ))
}

/// A `hello` VM entry of a raw config.
fn raw_vm(memory_mib: u64) -> String {
    format!("{{\"image\":{HELLO_PLACEHOLDER},\"memory_mib\":{memory_mib}}}")
}

/// The bad-input cases.
pub fn all() -> Vec<Case> {
    let mut cases = vec![
        rejected(
            "bad-config-unknown-field",
            "a config with an unknown field is refused",
            Input::Raw(format!(
                "{{\"version\":1,\"timeout_ms\":{DEFAULT_TIMEOUT_MS},\"vms\":[{{\"image\":{HELLO_PLACEHOLDER},\"memory_mib\":16,\"colour\":\"blue\"}}]}}"
            )),
            vec![text("unknown field"), text("colour")],
        ),
        rejected(
            "bad-config-version-2",
            "a config of version 2 is refused",
            raw("\"version\":2,", &raw_vm(16)),
            vec![text(ConfigError::Version { found: 2 }.to_string())],
        ),
        rejected(
            "bad-config-no-version",
            "a config without a version is refused",
            raw("", &raw_vm(16)),
            vec![text(ConfigError::NoVersion.to_string())],
        ),
        rejected(
            "bad-config-zero-vms",
            "a config with no VM is refused",
            raw("\"version\":1,", ""),
            vec![text(ConfigError::VmCount(0).to_string())],
        ),
        rejected(
            "bad-config-nine-vms",
            "a config with more VMs than MAX_VMS is refused",
            raw(
                "\"version\":1,",
                &vec![raw_vm(16); MAX_VMS + 1].join(","),
            ),
            vec![text(ConfigError::VmCount(MAX_VMS + 1).to_string())],
        ),
        rejected(
            "bad-config-memory-5",
            "a memory size that is not a multiple of 2 MiB is refused",
            raw("\"version\":1,", &raw_vm(5)),
            vec![text(ConfigError::Memory { vm: 0, mib: 5 }.to_string())],
        ),
        rejected(
            "bad-config-missing-image",
            "a guest image that does not exist is refused",
            Input::Run(Layout::of(vec![VmSpec::new(Image::Missing, 16, &[])])),
            vec![text("cannot read guest image"), Needle::ImagePath(0)],
        ),
        rejected(
            "bad-config-not-json",
            "a config that is not JSON is refused",
            Input::Raw("version = 1\n[[vms]]\nimage = \"hello.elf\"\n".to_string()),
            vec![text("not a valid run config")],
        ),
    ];
    for (kind, memory_mib, keyword, description) in [
        (
            BadElf::NotElf,
            16,
            "not an ELF file",
            "a guest image that is not an ELF file is refused",
        ),
        (
            BadElf::WrongMachine,
            16,
            "not x86-64",
            "an ELF image for another machine is refused",
        ),
        (
            BadElf::ReservedSegment,
            16,
            "reserved",
            "an ELF segment below 0x200000 (the VMM's reserved memory) is refused",
        ),
        (
            BadElf::HugeSegment,
            4,
            "beyond guest memory",
            "an ELF segment larger than guest memory is refused",
        ),
    ] {
        cases.push(rejected(
            bad_elf_name(kind),
            description,
            Input::Run(Layout::of(vec![VmSpec::new(kind.image(), memory_mib, &[])])),
            vec![Needle::ImagePath(0), text(keyword)],
        ));
    }
    cases
}

fn bad_elf_name(kind: BadElf) -> &'static str {
    match kind {
        BadElf::NotElf => "bad-elf-not-elf",
        BadElf::WrongMachine => "bad-elf-wrong-machine",
        BadElf::ReservedSegment => "bad-elf-reserved-segment",
        BadElf::HugeSegment => "bad-elf-huge-segment",
    }
}
