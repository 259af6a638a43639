//! The conformance cases, as data: which VMs to run (or which raw config to hand over), and
//! what to expect. [`all`] is the table; the driver runs any row the same way.

use pageflip_abi::probes::{doorbell, fault, hello, isolation};
use pageflip_abi::{EXIT_PANIC, IMAGE_BASE, MAX_PARAMS, MAX_VMS, PAGE_SIZE};
use pageflip_interface::{
    exit, ConfigError, RecordStatus, RunConfig, RunOutcome, RunResult, TransportConfig, VmConfig,
    INTERFACE_VERSION,
};

use crate::bad_elf::BadElf;
use crate::expect::{Check, Count, Expect, Needle, Phase, Scope, StatusIs};
use crate::images::{Image, ImageSet};

/// Placeholder in a raw config text; the driver replaces it with the JSON string of the
/// `hello` image's path.
pub const HELLO_PLACEHOLDER: &str = "\"@hello@\"";

/// VMM watchdog of a case that does not need another.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Measured MMIO exits of the `doorbell` guest beyond its K doorbells: the PHASE_END write
/// itself. The PHASE_BEGIN snapshot is taken after its own exit was counted, so PHASE_BEGIN's
/// exit is not in the measured phase (docs/abi.md, "Measured phase and exit counts").
pub const MEASURED_PHASE_EXTRA_EXITS: u64 = 1;

/// The vCPU counter of exits the host takes for its own interrupts while the guest runs: not
/// caused by the guest, so measured `exits` = K + [`MEASURED_PHASE_EXTRA_EXITS`] + this.
pub const HOST_EXITS_COUNTER: &str = "irq_exits";

/// One conformance case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique name (`[a-z0-9-]`), used by `--filter`.
    pub name: &'static str,
    /// One line: what the case shows.
    pub description: &'static str,
    /// What is handed to the VMM.
    pub input: Input,
    /// What the VMM must do with it.
    pub expect: Expect,
    /// If set, the case is not run and is reported as skipped for this reason.
    pub skip: Option<&'static str>,
}

/// What a case hands to the VMM.
#[derive(Clone, Debug)]
pub enum Input {
    /// A well-formed run config.
    Run(Layout),
    /// Config text as is; [`HELLO_PLACEHOLDER`] is replaced by the `hello` image's path.
    Raw(String),
}

/// The VMs of a run and its settings.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The VMs, in id order.
    pub vms: Vec<VmSpec>,
    /// The VMM's watchdog.
    pub timeout_ms: u64,
    /// Stop the other VMs when one fails.
    pub stop_on_failure: bool,
    /// The transport between the VMs.
    pub transport: TransportConfig,
    /// Pin VM i's vCPU thread to host CPU i mod the online CPUs (`VmConfig::cpu`).
    pub pin_vcpus: bool,
}

/// One VM of a [`Layout`].
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Its guest image.
    pub image: Image,
    /// Its memory in MiB.
    pub memory_mib: u64,
    /// Its params.
    pub params: Vec<u64>,
}

impl VmSpec {
    /// A VM of `memory_mib` MiB booting `image` with `params`.
    pub fn new(image: Image, memory_mib: u64, params: &[u64]) -> VmSpec {
        VmSpec {
            image,
            memory_mib,
            params: params.to_vec(),
        }
    }

    /// A VM booting the embedded guest `name`.
    pub fn guest(name: &'static str, memory_mib: u64, params: &[u64]) -> VmSpec {
        VmSpec::new(Image::Guest(name), memory_mib, params)
    }
}

impl Layout {
    /// A layout with the default watchdog that stops on failure.
    pub fn of(vms: Vec<VmSpec>) -> Layout {
        Layout {
            vms,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            stop_on_failure: true,
            transport: TransportConfig::None,
            pin_vcpus: false,
        }
    }

    /// The same layout with `transport`.
    pub fn with_transport(self, transport: TransportConfig) -> Layout {
        Layout { transport, ..self }
    }

    /// The run config for this layout, with image paths from `images`.
    pub fn config(&self, images: &ImageSet) -> RunConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        RunConfig {
            version: INTERFACE_VERSION,
            vms: self
                .vms
                .iter()
                .enumerate()
                .map(|(i, vm)| VmConfig {
                    name: None,
                    image: images.path(vm.image),
                    memory_mib: vm.memory_mib,
                    params: vm.params.clone(),
                    cpu: self.pin_vcpus.then_some(i % cpus),
                })
                .collect(),
            transport: self.transport.clone(),
            timeout_ms: self.timeout_ms,
            stop_on_failure: self.stop_on_failure,
        }
    }
}

impl Case {
    /// The transport of a case that runs VMs with one (what `--mutants` runs).
    pub fn transport(&self) -> Option<&TransportConfig> {
        match &self.input {
            Input::Run(l) if l.transport != TransportConfig::None => Some(&l.transport),
            _ => None,
        }
    }

    /// The images this case's VMs boot.
    pub fn images(&self) -> Vec<Image> {
        match &self.input {
            Input::Run(layout) => layout.vms.iter().map(|vm| vm.image).collect(),
            Input::Raw(text) if text.contains(HELLO_PLACEHOLDER) => vec![Image::Guest("hello")],
            Input::Raw(_) => Vec::new(),
        }
    }
}

fn case(name: &'static str, description: &'static str, input: Input, expect: Expect) -> Case {
    Case {
        name,
        description,
        input,
        expect,
        skip: None,
    }
}

pub(crate) fn run(
    name: &'static str,
    description: &'static str,
    layout: Layout,
    checks: Vec<Check>,
) -> Case {
    case(name, description, Input::Run(layout), Expect::Run(checks))
}

pub(crate) fn status(vm: usize, is: StatusIs) -> Check {
    Check::Status { vm, is }
}

pub(crate) fn record(vm: usize, name: &'static str, status: RecordStatus) -> Check {
    Check::Record {
        vm,
        name,
        status,
        message_contains: None,
    }
}

fn console(vm: usize, contains: &'static str) -> Check {
    Check::Console { vm, contains }
}

fn measured_vcpu(counter: &'static str, value: Count) -> Check {
    Check::Stat {
        vm: 0,
        phase: Phase::Measured,
        scope: Scope::Vcpu,
        counter,
        value,
    }
}

/// An unowned-MMIO read at `mem_size + 0x1000`, where the probes read.
const UNOWNED_READ: StatusIs = StatusIs::UnownedMmio {
    above_mem_size: fault::UNOWNED_OFFSET,
    write: false,
};

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

/// Every conformance case, in the order they run.
pub fn all() -> Vec<Case> {
    let mut cases = vec![
        run(
            "boot-hello",
            "one VM boots `hello`: records, console, boot time and stats are reported",
            Layout::of(vec![VmSpec::guest("hello", 64, &[])]),
            vec![
                Check::Outcome(RunOutcome::Completed),
                status(0, StatusIs::Success),
                Check::AllRecordsPass { vm: 0, at_least: 2 },
                record(0, "boot-info", RecordStatus::Pass),
                record(0, "console", RecordStatus::Pass),
                console(0, "hello from VM 0 of 1"),
                Check::BootTime { vm: 0 },
                Check::StatsConsistent { vm: 0 },
            ],
        ),
        run(
            "boot-info",
            "three VMs get the boot info their config asks for (ids, peers, memory, params, TSC)",
            Layout::of(vec![
                VmSpec::guest("hello", 16, &[1, 2, 3]),
                VmSpec::guest("hello", 32, &[]),
                VmSpec::guest("hello", 64, &sixteen_params()),
            ]),
            (0..3)
                .flat_map(|vm| {
                    [
                        status(vm, StatusIs::Success),
                        Check::AllRecordsPass { vm, at_least: 2 },
                        Check::StatsConsistent { vm },
                    ]
                })
                .chain([Check::Custom {
                    name: "hello samples",
                    check: hello_samples_match_config,
                }])
                .collect(),
        ),
        run(
            "guest-panic",
            "a guest panic is caught by the guest runtime: exit code EXIT_PANIC and a FAIL record",
            Layout::of(vec![VmSpec::guest("panic", 16, &[])]),
            vec![
                status(0, StatusIs::Done(EXIT_PANIC)),
                Check::Record {
                    vm: 0,
                    name: "panic",
                    status: RecordStatus::Fail,
                    message_contains: Some("deliberate panic 42"),
                },
                console(0, "deliberate panic 42"),
            ],
        ),
        run(
            "isolation",
            "two VMs cannot see each other's memory; a read beyond memory stops only that VM",
            Layout {
                stop_on_failure: false,
                ..Layout::of(vec![
                    VmSpec::guest("isolation", 16, &[isolation::PROBE_BEYOND]),
                    VmSpec::guest("isolation", 16, &[0]),
                ])
            },
            vec![
                Check::Outcome(RunOutcome::Completed),
                record(0, "no-peer-secret", RecordStatus::Pass),
                record(0, "own-memory-intact", RecordStatus::Pass),
                record(1, "no-peer-secret", RecordStatus::Pass),
                record(1, "own-memory-intact", RecordStatus::Pass),
                status(0, UNOWNED_READ),
                Check::DeathConsoleTail {
                    vm: 0,
                    contains: "reading beyond memory",
                },
                status(1, StatusIs::Success),
            ],
        ),
        fault_case(
            "fault-null-write",
            "a write to the unmapped null page shuts the VM down with a death report",
            fault::NULL_WRITE,
        ),
        fault_case(
            "fault-invalid-opcode",
            "an invalid opcode (ud2) shuts the VM down with a death report",
            fault::INVALID_OPCODE,
        ),
        run(
            "fault-unowned-mmio",
            "a read of a GPA no device owns (mem_size + 0x1000) stops the VM",
            Layout::of(vec![VmSpec::guest("fault", 16, &[fault::UNOWNED_READ])]),
            vec![
                status(0, UNOWNED_READ),
                record(0, "before-fault", RecordStatus::Pass),
            ],
        ),
        run(
            "watchdog",
            "the watchdog stops a spinning guest and the VMM exits soon after",
            Layout {
                timeout_ms: 1000,
                ..Layout::of(vec![VmSpec::guest("spin", 16, &[])])
            },
            vec![
                Check::Outcome(RunOutcome::Timeout),
                status(0, StatusIs::Timeout),
                console(0, "spinning forever"),
                Check::ExitsAfterWatchdogWithin { slack_ms: 3000 },
            ],
        ),
        run(
            "stop-on-failure",
            "with stop_on_failure, one VM's death stops the others at once",
            Layout {
                timeout_ms: 30_000,
                ..Layout::of(vec![
                    VmSpec::guest("fault", 16, &[fault::NULL_WRITE]),
                    VmSpec::guest("spin", 16, &[]),
                ])
            },
            vec![
                Check::Outcome(RunOutcome::Completed),
                status(0, StatusIs::Shutdown),
                status(1, StatusIs::Stopped),
            ],
        ),
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
            Input::Run(Layout::of(vec![VmSpec::new(
                Image::BadElf(kind),
                memory_mib,
                &[],
            )])),
            vec![Needle::ImagePath(0), text(keyword)],
        ));
    }
    for (k, name) in EXIT_FIDELITY {
        cases.push(run(
            name,
            "K doorbell writes in the measured phase cost exactly K + 1 MMIO exits and no other guest exit",
            Layout::of(vec![VmSpec::guest("doorbell", 16, &[k])]),
            exit_fidelity_checks(),
        ));
    }
    cases.push(run(
        "hostile-requests",
        "malformed device requests are refused, listed as guest errors, and the guest runs on",
        Layout::of(vec![VmSpec::guest("hostile", 16, &[])]),
        vec![
            status(0, StatusIs::Success),
            Check::AllRecordsPass {
                vm: 0,
                at_least: 19,
            },
            Check::Custom {
                name: "guest errors",
                check: hostile_errors_listed,
            },
        ],
    ));
    cases.extend(crate::ipc_cases::all());
    cases.extend(crate::transport_cases::all());
    cases
}

/// The doorbell counts K of the exit-fidelity cases, with their case names.
const EXIT_FIDELITY: [(u64, &str); 5] = [
    (0, "exit-fidelity-k0"),
    (1, "exit-fidelity-k1"),
    (10, "exit-fidelity-k10"),
    (100, "exit-fidelity-k100"),
    (1000, "exit-fidelity-k1000"),
];

/// The expectations of the exit-fidelity cases: the one place they are kept.
fn exit_fidelity_checks() -> Vec<Check> {
    let k_plus = |plus| Count::Param { index: 0, plus };
    vec![
        status(0, StatusIs::Success),
        Check::AllRecordsPass { vm: 0, at_least: 1 },
        measured_vcpu("mmio_exits", k_plus(MEASURED_PHASE_EXTRA_EXITS)),
        measured_vcpu(
            "exits",
            Count::ParamPlusCounter {
                index: 0,
                plus: MEASURED_PHASE_EXTRA_EXITS,
                counter: HOST_EXITS_COUNTER,
            },
        ),
        Check::Doorbells {
            vm: 0,
            value: k_plus(doorbell::WARMUP),
        },
    ]
}

fn bad_elf_name(kind: BadElf) -> &'static str {
    match kind {
        BadElf::NotElf => "bad-elf-not-elf",
        BadElf::WrongMachine => "bad-elf-wrong-machine",
        BadElf::ReservedSegment => "bad-elf-reserved-segment",
        BadElf::HugeSegment => "bad-elf-huge-segment",
    }
}

fn fault_case(name: &'static str, description: &'static str, param: u64) -> Case {
    run(
        name,
        description,
        Layout::of(vec![VmSpec::guest("fault", 16, &[param])]),
        vec![
            status(0, StatusIs::Shutdown),
            Check::DeathRegister {
                vm: 0,
                register: "rip",
            },
            Check::DeathConsoleTail {
                vm: 0,
                contains: "about to fault",
            },
            record(0, "before-fault", RecordStatus::Pass),
        ],
    )
}

/// Sixteen distinct params using all 64 bits.
fn sixteen_params() -> Vec<u64> {
    (0..MAX_PARAMS as u64)
        .map(|i| 0xa5a5_0000_0000_0000 | (i << 32) | (i + 1))
        .collect()
}

/// The samples of every `hello` VM equal its boot info as the config asked for it
/// (layout `pageflip_abi::probes::hello`).
pub fn hello_samples_match_config(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let mut problems = Vec::new();
    let n = config.vms.len();
    for (i, (vm_config, vm)) in config.vms.iter().zip(&result.vms).enumerate() {
        let s = &vm.samples;
        if s.len() != hello::COUNT {
            problems.push(format!(
                "vm{i}: expected {} samples, seen {}",
                hello::COUNT,
                s.len()
            ));
            continue;
        }
        let mut expected = vec![0u64; hello::COUNT];
        expected[hello::VM_ID] = i as u64;
        expected[hello::NUM_VMS] = n as u64;
        expected[hello::MEM_SIZE] = vm_config.memory_mib << 20;
        expected[hello::NUM_PEERS] = n as u64 - 1;
        let peers = (0..n as u64).filter(|&p| p != i as u64);
        for (slot, peer) in expected[hello::PEER_IDS..hello::PEER_IDS + MAX_VMS]
            .iter_mut()
            .zip(peers.map(Some).chain(std::iter::repeat(None)))
        {
            *slot = peer.unwrap_or(u64::MAX);
        }
        expected[hello::NUM_PARAMS] = vm_config.params.len() as u64;
        for (slot, param) in expected[hello::PARAMS..].iter_mut().zip(&vm_config.params) {
            *slot = *param;
        }
        expected[hello::TSC_KHZ] = result.host.tsc_khz.unwrap_or(0);
        for (index, (want, seen)) in expected.iter().zip(s).enumerate() {
            if index != hello::FREE_START && want != seen {
                problems.push(format!(
                    "vm{i}: expected {} = {want:#x}, seen {seen:#x}",
                    hello_sample_name(index)
                ));
            }
        }
        let free = s[hello::FREE_START];
        if free % PAGE_SIZE != 0 || free < IMAGE_BASE || free >= expected[hello::MEM_SIZE] {
            problems.push(format!(
                "vm{i}: expected free_start page-aligned in [{IMAGE_BASE:#x}, mem_size), seen {free:#x}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn hello_sample_name(index: usize) -> String {
    match index {
        hello::VM_ID => "vm_id".to_string(),
        hello::NUM_VMS => "num_vms".to_string(),
        hello::MEM_SIZE => "mem_size".to_string(),
        hello::NUM_PEERS => "num_peers".to_string(),
        hello::NUM_PARAMS => "num_params".to_string(),
        hello::TSC_KHZ => "tsc_khz".to_string(),
        hello::FREE_START => "free_start".to_string(),
        i if (hello::PEER_IDS..hello::PEER_IDS + MAX_VMS).contains(&i) => {
            format!("peer_ids[{}]", i - hello::PEER_IDS)
        }
        i => format!("params[{}]", i - hello::PARAMS),
    }
}

/// The `hostile` guest's refused requests are all listed: as many guest errors as the
/// guest counted (`samples[0]`), none with status `ok`.
pub fn hostile_errors_listed(_config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let vm = result.vms.first().ok_or("expected vm0, seen no VM")?;
    let counted = *vm
        .samples
        .first()
        .ok_or("expected samples[0] = the guest's count of refused requests, seen no samples")?;
    let mut problems = Vec::new();
    if vm.guest_errors.len() as u64 != counted {
        problems.push(format!(
            "expected {counted} guest errors (samples[0]), seen {}",
            vm.guest_errors.len()
        ));
    }
    for (i, e) in vm.guest_errors.iter().enumerate() {
        if e.status == pageflip_abi::mmio::Status::Ok.name() {
            problems.push(format!(
                "guest_errors[{i}] ({}: {}): expected a status other than ok, seen ok",
                e.register, e.detail
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use pageflip_interface::{HostInfo, Stats, Summary, VmResult, VmStatus, VmmIdentity};

    use super::*;
    use crate::images::guests;

    fn vm_count(case: &Case) -> Option<usize> {
        match &case.input {
            Input::Run(layout) => Some(layout.vms.len()),
            Input::Raw(_) => None,
        }
    }

    #[test]
    fn names_are_unique_and_plain_descriptions_one_line() {
        let cases = all();
        let mut seen = HashSet::new();
        for c in &cases {
            assert!(seen.insert(c.name), "duplicate case {}", c.name);
            assert!(
                !c.name.is_empty()
                    && c.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                c.name
            );
            assert!(!c.description.is_empty() && !c.description.contains('\n'));
        }
        assert!(cases.len() >= 27, "{}", cases.len());
    }

    #[test]
    fn every_referenced_image_is_embedded() {
        for c in all() {
            for image in c.images() {
                if let Image::Guest(name) = image {
                    assert!(
                        guests().any(|g| g == name),
                        "{}: {name} is not embedded",
                        c.name
                    );
                    assert!(
                        pageflip_workloads::image(name).is_some(),
                        "{}: {name} is not embedded",
                        c.name
                    );
                }
            }
        }
        for name in guests() {
            assert!(pageflip_workloads::image(name).is_some(), "{name}");
        }
    }

    #[test]
    fn configs_are_valid_and_checks_point_at_their_vms() {
        let images = ImageSet::at(Path::new("/images"));
        for c in all() {
            if let Input::Run(layout) = &c.input {
                let config = layout.config(&images);
                let text = serde_json::to_string(&config).unwrap();
                assert_eq!(RunConfig::from_json(&text).unwrap(), config, "{}", c.name);
            }
            let Expect::Run(checks) = &c.expect else {
                continue;
            };
            let Input::Run(layout) = &c.input else {
                panic!("{}: a run case needs a layout", c.name);
            };
            let n = vm_count(&c).unwrap();
            for check in checks {
                let (vm, count) = match *check {
                    Check::Status { vm, .. }
                    | Check::AllRecordsPass { vm, .. }
                    | Check::Record { vm, .. }
                    | Check::Console { vm, .. }
                    | Check::DeathConsoleTail { vm, .. }
                    | Check::DeathRegister { vm, .. }
                    | Check::BootTime { vm }
                    | Check::StatsConsistent { vm } => (vm, None),
                    Check::Stat { vm, value, .. } | Check::Doorbells { vm, value } => {
                        (vm, Some(value))
                    }
                    Check::Outcome(_)
                    | Check::ExitsAfterWatchdogWithin { .. }
                    | Check::Custom { .. } => continue,
                };
                assert!(vm < n, "{}: {check:?} points at vm{vm} of {n}", c.name);
                if let Some(Count::Param { index, .. } | Count::ParamPlusCounter { index, .. }) =
                    count
                {
                    assert!(index < layout.vms[vm].params.len(), "{}: {check:?}", c.name);
                }
            }
        }
    }

    #[test]
    fn raw_bad_configs_are_refused_by_the_interface_crate_with_the_expected_text() {
        let images = ImageSet::at(Path::new("/images"));
        let mut raw_cases = 0;
        for c in all() {
            let Input::Raw(text) = &c.input else { continue };
            let Expect::Reject { exit_code, stderr } = &c.expect else {
                panic!("{}: raw configs are for rejections", c.name);
            };
            raw_cases += 1;
            assert_eq!(*exit_code, exit::BAD_INPUT);
            let hello = serde_json::to_string(&images.path(Image::Guest("hello"))).unwrap();
            let text = text.replace(HELLO_PLACEHOLDER, &hello);
            let err = RunConfig::from_json(&text).unwrap_err().to_string();
            for needle in stderr {
                let Needle::Text(needle) = needle else {
                    panic!("{}", c.name)
                };
                assert!(
                    err.contains(needle.as_str()),
                    "{}: {err:?} lacks {needle:?}",
                    c.name
                );
            }
        }
        assert_eq!(raw_cases, 7);
    }

    #[test]
    fn bad_elf_cases_cover_every_bad_image() {
        let covered: HashSet<BadElf> = all()
            .iter()
            .flat_map(|c| c.images())
            .filter_map(|i| match i {
                Image::BadElf(kind) => Some(kind),
                _ => None,
            })
            .collect();
        assert_eq!(covered.len(), BadElf::ALL.len());
    }

    fn hello_result(config: &RunConfig, samples: impl Fn(usize) -> Vec<u64>) -> RunResult {
        RunResult {
            version: 1,
            vmm: VmmIdentity {
                name: "v".into(),
                version: "1".into(),
            },
            host: HostInfo {
                kvm_flavour: "kvm_pvm".into(),
                kernel: "k".into(),
                cpu_model: "c".into(),
                tsc_khz: Some(1_996_000),
            },
            outcome: RunOutcome::Completed,
            wall_us: 1,
            vms: (0..config.vms.len())
                .map(|i| VmResult {
                    id: i as u32,
                    name: format!("vm{i}"),
                    status: VmStatus::Done { exit_code: 0 },
                    death: None,
                    console: String::new(),
                    records: Vec::new(),
                    summary: Summary::default(),
                    samples: samples(i),
                    doorbells: 0,
                    guest_errors: Vec::new(),
                    boot_us: None,
                    first_record_us: None,
                    stats: Stats::default(),
                })
                .collect(),
            transport: None,
        }
    }

    /// What a correct `hello` guest of the boot-info case reports.
    fn boot_info_samples(config: &RunConfig, i: usize) -> Vec<u64> {
        let vm = &config.vms[i];
        let mut s = vec![i as u64, 3, vm.memory_mib << 20, 2];
        let peers: Vec<u64> = (0..3).filter(|&p| p != i as u64).collect();
        s.extend(
            peers
                .iter()
                .copied()
                .chain(std::iter::repeat(u64::MAX))
                .take(MAX_VMS),
        );
        s.push(vm.params.len() as u64);
        s.extend(
            vm.params
                .iter()
                .copied()
                .chain(std::iter::repeat(0))
                .take(MAX_PARAMS),
        );
        s.push(1_996_000);
        s.push(0x20_3000);
        assert_eq!(s.len(), hello::COUNT);
        s
    }

    #[test]
    fn hello_samples_check_accepts_the_truth_and_names_each_lie() {
        let case = all().into_iter().find(|c| c.name == "boot-info").unwrap();
        let Input::Run(layout) = &case.input else {
            panic!()
        };
        let config = layout.config(&ImageSet::at(Path::new("/i")));
        let good = hello_result(&config, |i| boot_info_samples(&config, i));
        assert_eq!(hello_samples_match_config(&config, &good), Ok(()));

        for (index, value, needle) in [
            (hello::VM_ID, 5, "vm1: expected vm_id = 0x1, seen 0x5"),
            (
                hello::PEER_IDS + 1,
                1,
                "vm1: expected peer_ids[1] = 0x2, seen 0x1",
            ),
            (
                hello::PEER_IDS + 2,
                0,
                "expected peer_ids[2] = 0xffffffffffffffff, seen 0x0",
            ),
            (hello::PARAMS, 9, "vm1: expected params[0] = 0x0, seen 0x9"),
            (hello::TSC_KHZ, 0, "expected tsc_khz = 0x1e74e0, seen 0x0"),
            (hello::MEM_SIZE, 0, "expected mem_size = 0x2000000"),
            (
                hello::FREE_START,
                0x20_3001,
                "expected free_start page-aligned",
            ),
            (hello::FREE_START, 0x1000, "seen 0x1000"),
        ] {
            let mut bad = good.clone();
            bad.vms[1].samples[index] = value;
            let err = hello_samples_match_config(&config, &bad).unwrap_err();
            assert!(err.contains(needle), "{err}\nlacks {needle}");
        }
        let mut short = good.clone();
        short.vms[2].samples.pop();
        assert!(hello_samples_match_config(&config, &short)
            .unwrap_err()
            .contains("vm2: expected 31 samples, seen 30"));
        let mut no_tsc = good;
        no_tsc.host.tsc_khz = None;
        assert!(hello_samples_match_config(&config, &no_tsc)
            .unwrap_err()
            .contains("expected tsc_khz = 0x0, seen 0x1e74e0"));
    }

    #[test]
    fn hostile_check_counts_errors_and_refuses_ok_ones() {
        use pageflip_interface::GuestError;
        let config = Layout::of(vec![VmSpec::guest("hostile", 16, &[])])
            .config(&ImageSet::at(Path::new("/i")));
        let error = |status: &str| GuestError {
            register: "result".into(),
            status: status.into(),
            detail: "gpa beyond memory".into(),
        };
        let mut r = hello_result(&config, |_| vec![2]);
        r.vms[0].guest_errors = vec![error("bad_address"), error("bad_length")];
        assert_eq!(hostile_errors_listed(&config, &r), Ok(()));
        r.vms[0].guest_errors.pop();
        assert_eq!(
            hostile_errors_listed(&config, &r),
            Err("expected 2 guest errors (samples[0]), seen 1".into())
        );
        r.vms[0].guest_errors.push(error("ok"));
        assert!(hostile_errors_listed(&config, &r).unwrap_err().contains(
            "guest_errors[1] (result: gpa beyond memory): expected a status other than ok, seen ok"
        ));
        r.vms[0].samples.clear();
        assert!(hostile_errors_listed(&config, &r).is_err());
    }
}
