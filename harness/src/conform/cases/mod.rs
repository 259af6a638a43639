//! The conformance cases, as data: which VMs to run (or which raw config to hand over), and
//! what to expect. [`all`] is the table; the suite runs any row the same way. One file per
//! area; the helpers that build cases live in [`build`].

use pageflip_interface::TransportConfig;
use std::borrow::Cow;

use crate::conform::expect::Expect;
use crate::run::images::Image;
use crate::run::layout::Input;

pub mod build;
pub mod chain;
pub mod config;
pub mod foundation;
pub mod fuzz;
pub mod landing;
pub mod peer_end;
pub mod remap_ipc;
pub mod shmem;
pub mod virtio;

/// The vCPU counter of exits the host takes for its own interrupts while the guest runs: not
/// caused by the guest, so measured `exits` = K + [`pageflip_abi::phase::PHASE_END_EXITS`] + this.
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
    pub skip: Option<Cow<'static, str>>,
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
        self.input.images()
    }
}

/// Every conformance case, in the order they run: by area.
pub fn all() -> Vec<Case> {
    let mut cases = foundation::all();
    cases.extend(config::all());
    cases.extend(remap_ipc::all());
    cases.extend(landing::all());
    cases.extend(peer_end::all());
    cases.extend(fuzz::all());
    cases.extend(virtio::all());
    cases.extend(shmem::all());
    cases.extend(chain::all());
    cases
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use pageflip_interface::{HostInfo, Stats, Summary, VmResult, VmStatus, VmmIdentity};

    use super::foundation::{hello_samples_match_config, hostile_errors_listed};
    use super::*;
    use pageflip_abi::probes::hello;
    use pageflip_abi::{MAX_PARAMS, MAX_VMS};
    use pageflip_interface::{exit, RunConfig, RunOutcome, RunResult};

    use crate::conform::bad_elf::BadElf;
    use crate::conform::expect::{Check, Count, Needle};
    use crate::run::images::guests;
    use crate::run::images::ImageSet;
    use crate::run::layout::{Layout, VmSpec, HELLO_PLACEHOLDER};

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
            let hello =
                serde_json::to_string(&images.path(Image::Guest(pageflip_workloads::HELLO)))
                    .unwrap();
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
            .filter_map(BadElf::of_image)
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
                    guest_errors_total: 0,
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
        let config = Layout::of(vec![VmSpec::guest(pageflip_workloads::HOSTILE, 16, &[])])
            .config(&ImageSet::at(Path::new("/i")));
        let error = |status: &str| GuestError {
            register: "result".into(),
            status: status.into(),
            detail: "gpa beyond memory".into(),
        };
        let mut r = hello_result(&config, |_| vec![2]);
        r.vms[0].guest_errors = vec![error("bad_address"), error("bad_length")];
        r.vms[0].guest_errors_total = 2;
        assert_eq!(hostile_errors_listed(&config, &r), Ok(()));
        r.vms[0].guest_errors.pop();
        assert_eq!(
            hostile_errors_listed(&config, &r),
            Err("expected the first 2 of 2 refused requests listed in guest_errors, seen 1".into())
        );
        r.vms[0].guest_errors.push(error("ok"));
        assert!(hostile_errors_listed(&config, &r).unwrap_err().contains(
            "guest_errors[1] (result: gpa beyond memory): expected a status other than ok, seen ok"
        ));
        // Past the list limit: the total counts all, the list holds the first 1000.
        let many = pageflip_abi::mmio::GUEST_ERRORS_LISTED + 5;
        r.vms[0].samples = vec![many];
        r.vms[0].guest_errors = vec![error("bad_address"); 1000];
        r.vms[0].guest_errors_total = many;
        assert_eq!(hostile_errors_listed(&config, &r), Ok(()));
        r.vms[0].guest_errors_total = 1000;
        assert_eq!(
            hostile_errors_listed(&config, &r),
            Err(format!(
                "expected guest_errors_total {many} (samples[0]), seen 1000"
            ))
        );
        r.vms[0].samples.clear();
        assert!(hostile_errors_listed(&config, &r).is_err());
    }

    #[test]
    fn chain_counts_checks_every_hop_and_its_host_operations() {
        use pageflip_interface::{TransportReport, TransportVmReport};
        let count = 10;
        let config = Layout::of(
            (0..3)
                .map(|_| VmSpec::guest(pageflip_workloads::CHAIN, 80, &[count]))
                .collect(),
        )
        .with_transport(TransportConfig::Copy)
        .config(&ImageSet::at(Path::new("/i")));
        let hop = |sent, received| TransportVmReport {
            sent,
            received,
            ..TransportVmReport::default()
        };
        let mut r = hello_result(&config, |_| Vec::new());
        r.transport = Some(TransportReport {
            kind: "copy".into(),
            vms: vec![hop(count, 0), hop(count, count), hop(0, count)],
            ownership: None,
            pre_fault: None,
        });
        assert_eq!(chain::chain_counts(&config, &r), Ok(()));
        // The totals still add up, but the first hop moved one message too many.
        let t = r.transport.as_mut().unwrap();
        t.vms[0].sent += 1;
        t.vms[1].sent -= 1;
        assert!(chain::chain_counts(&config, &r)
            .unwrap_err()
            .starts_with("VM0: the VMM counts 11 sent"));
        let t = r.transport.as_mut().unwrap();
        t.vms[0].sent -= 1;
        t.vms[1].sent += 1;
        t.vms[1].map_ops = 3;
        assert!(chain::chain_counts(&config, &r)
            .unwrap_err()
            .starts_with("VM1: the VMM made 3 host mapping operations"));
    }
}
