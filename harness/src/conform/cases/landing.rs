//! The landing cases of remap IPC (`docs/remap-ipc.md`, "Landing"): the `ipc_landing` probe
//! on every queues transport. A message whose extents are gapped in the sender lands in
//! GPA-adjacent entries of the receiver (the case that catches host mappings merged by GPA
//! alone), a message spans several entries and uses the last in part, every bad posted
//! entry gets its status, and a message that does not fit consumes nothing.

use pageflip_abi::ipc::IpcStatus;
use pageflip_abi::probes::ipc_landing as spec;
use pageflip_interface::{RecordStatus, RunConfig, RunResult, TransportConfig};

use crate::conform::cases::build::{
    audit_clean, custom, ipc_layout, record, run, status, stream_in, MIB,
};
use crate::conform::cases::Case;
use crate::conform::expect::{Check, StatusIs};

/// Guest memory of the `remap-huge` case (the others have the transport cases' [`MIB`]).
const HUGE_MIB: u64 = 64;

/// The probe's variant param of a run.
fn variant(config: &RunConfig) -> u64 {
    config.vms[0]
        .params
        .get(spec::VARIANT)
        .copied()
        .unwrap_or(0)
}

/// What a record of the probe must be on `variant`.
fn wanted(variant: u64, name: &str) -> RecordStatus {
    if spec::skipped(variant, name) {
        RecordStatus::Skip
    } else {
        RecordStatus::Pass
    }
}

/// Every record either VM writes is one of the probe's and has the status it must have on
/// the run's variant (PASS, or SKIP for the steps that do not apply), and none is missing.
pub fn landing_records(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let v = variant(config);
    for (vm, names) in [
        (0, &spec::SENDER_RECORDS[..]),
        (1, &spec::RECEIVER_RECORDS[..]),
    ] {
        let records = &result
            .vms
            .get(vm)
            .ok_or_else(|| format!("no result for vm{vm}"))?
            .records;
        for r in records {
            if !names.contains(&r.name.as_str()) {
                return Err(format!(
                    "vm{vm}: unexpected record {} ({:?}: {})",
                    r.name, r.status, r.message
                ));
            }
            let want = wanted(v, &r.name);
            if r.status != want {
                return Err(format!(
                    "vm{vm}: {} is {:?}, expected {want:?}: {}",
                    r.name, r.status, r.message
                ));
            }
        }
        for name in names {
            if !records.iter().any(|r| r.name == *name) {
                return Err(format!("vm{vm}: record {name} is missing"));
            }
        }
    }
    Ok(())
}

/// The VMM's report agrees with the probe: a clean audit, exactly the refused descriptors of
/// [`spec::expected_refused`] (and VM0 saw as many), [`spec::MESSAGES`] delivered from VM0 to
/// VM1 and nothing the other way, VM1's header counted [`spec::expected_post_refused`]
/// skipped entries, and the host mapping operations fit the transport ([`map_ops_fit`]).
pub fn landing_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    audit_clean(config, result)?;
    let v = variant(config);
    let t = result.transport.as_ref().expect("checked by audit_clean");
    let (vm0, vm1) = (&t.vms[0], &t.vms[1]);
    let want: Vec<(String, u64)> = spec::expected_refused(v)
        .iter()
        .map(|&(s, n): &(IpcStatus, u64)| (s.name().to_string(), n))
        .collect();
    let got: Vec<(String, u64)> = vm0
        .refused
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| (k.clone(), n))
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    if got != want_sorted {
        return Err(format!(
            "VM0's refused descriptors by status: the VMM reports {got:?}, expected {want_sorted:?}"
        ));
    }
    let refused: u64 = want.iter().map(|(_, n)| n).sum();
    let seen = result.vms[0].samples.get(spec::S_REFUSED).copied();
    if seen != Some(refused) {
        return Err(format!(
            "VM0 saw {seen:?} refused descriptors, the VMM reports {refused}"
        ));
    }
    let m = spec::MESSAGES;
    if (vm0.sent, vm1.received, vm1.sent, vm0.received) != (m, m, 0, 0) {
        return Err(format!(
            "the VMM counts VM0 sent {} and VM1 received {} (expected {m} each), VM1 sent {} \
             and VM0 received {} (expected 0)",
            vm0.sent, vm1.received, vm1.sent, vm0.received
        ));
    }
    let post_refused = result.vms[1].samples.get(spec::S_POST_REFUSED).copied();
    let want_posts = spec::expected_post_refused(v);
    if post_refused != Some(want_posts) {
        return Err(format!(
            "VM1's header counts {post_refused:?} skipped posted entries, expected {want_posts}"
        ));
    }
    map_ops_fit(&config.transport, vm0.map_ops, vm0.pages_remapped)
}

/// Host mapping operations of VM0's `pages` remapped pages: `remap` and `remap-huge` move
/// contiguous runs, each with one operation (the probe's messages are runs of hundreds of
/// pages, so fewer operations than pages); `remap-per-page` makes exactly 3 per page; copy
/// none.
pub fn map_ops_fit(transport: &TransportConfig, ops: u64, pages: u64) -> Result<(), String> {
    let fits = match transport {
        TransportConfig::Remap | TransportConfig::RemapHuge => pages > 0 && ops < pages,
        TransportConfig::RemapPerPage => pages > 0 && ops == 3 * pages,
        _ => ops == 0,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{ops} host mapping operations for {pages} pages remapped on {}: remap and \
             remap-huge move runs with one operation each, remap-per-page 3 per page, copy none",
            transport.name()
        ))
    }
}

/// The landing cases: one per queues transport.
pub fn all() -> Vec<Case> {
    [
        (
            "ipc-landing-remap",
            "remap: gapped extents land in adjacent entries intact, messages span entries, bad entries get their statuses",
            TransportConfig::Remap,
            spec::VARIANT_REMAP,
            MIB,
        ),
        (
            "ipc-landing-remap-per-page",
            "remap-per-page: gapped extents land in adjacent entries intact, messages span entries, bad entries get their statuses",
            TransportConfig::RemapPerPage,
            spec::VARIANT_REMAP_PER_PAGE,
            MIB,
        ),
        (
            "ipc-landing-copy",
            "copy: gapped extents land in adjacent entries intact, messages span entries, bad entries get their statuses",
            TransportConfig::Copy,
            spec::VARIANT_COPY,
            MIB,
        ),
        (
            "ipc-landing-remap-huge",
            "remap-huge: the landing rules in whole huge pages; 4 KiB messages and entries get not_huge",
            TransportConfig::RemapHuge,
            spec::VARIANT_REMAP_HUGE,
            HUGE_MIB,
        ),
    ]
    .into_iter()
    .map(|(name, description, transport, v, mib)| {
        let mut checks: Vec<Check> = (0..2).map(|vm| status(vm, StatusIs::Success)).collect();
        for (vm, names) in [
            (0, &spec::SENDER_RECORDS[..]),
            (1, &spec::RECEIVER_RECORDS[..]),
        ] {
            checks.extend(names.iter().map(|&n| record(vm, n, wanted(v, n))));
        }
        checks.push(custom("records pass or skip as the variant says", landing_records));
        checks.push(custom("refused counts", landing_counts));
        run(
            name,
            description,
            ipc_layout(
                &transport,
                stream_in(&[v], 2, pageflip_workloads::IPC_LANDING, mib),
            ),
            checks,
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_case_per_queues_transport_with_its_variant() {
        let cases = all();
        assert_eq!(cases.len(), 4);
        let huge: Vec<_> = cases
            .iter()
            .filter(|c| c.transport() == Some(&TransportConfig::RemapHuge))
            .collect();
        assert_eq!(huge.len(), 1);
        assert!(huge[0].input.huge_pages() > 0);
        for c in &cases {
            assert!(c.name.starts_with("ipc-landing-"), "{}", c.name);
        }
        assert_eq!(
            wanted(spec::VARIANT_COPY, spec::HUGE_LANDS),
            RecordStatus::Skip
        );
        assert_eq!(
            wanted(spec::VARIANT_REMAP_HUGE, spec::HUGE_LANDS),
            RecordStatus::Pass
        );
    }

    #[test]
    fn map_ops_tell_runs_from_pages() {
        let remap = TransportConfig::Remap;
        assert!(map_ops_fit(&remap, 39, 2068).is_ok());
        assert!(
            map_ops_fit(&remap, 3 * 2068, 2068).is_err(),
            "split per page"
        );
        assert!(map_ops_fit(&remap, 0, 0).is_err(), "nothing remapped");
        let per_page = TransportConfig::RemapPerPage;
        assert!(map_ops_fit(&per_page, 6204, 2068).is_ok());
        assert!(map_ops_fit(&per_page, 39, 2068).is_err());
        assert!(map_ops_fit(&TransportConfig::Copy, 0, 0).is_ok());
        assert!(map_ops_fit(&TransportConfig::Copy, 3, 0).is_err());
    }
}
