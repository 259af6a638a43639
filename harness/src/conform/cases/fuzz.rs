//! The guest-side fuzzer's cases: the `ipc_fuzz` probe, seeded, on the remap and copy
//! transports. Each VM throws random descriptors, posts, ring indices and device accesses at
//! the VMM and checks every answer against the spec; then a good message must still arrive
//! intact, with nothing lost, and the ownership audit must be clean.

use std::sync::OnceLock;

use pageflip_abi::probes::ipc_fuzz as spec;
use pageflip_abi::probes::ipc_landing::{VARIANT_COPY, VARIANT_REMAP, VARIANT_REMAP_PER_PAGE};
use pageflip_interface::{RecordStatus, RunConfig, RunResult, TransportConfig, VmStatus};

use crate::conform::cases::build::{audit_clean, custom, ipc_layout, record, run, stream_in, MIB};
use crate::conform::cases::Case;

/// The seed of this process's fuzz cases, fixed at the first use.
static SEED: OnceLock<u64> = OnceLock::new();

/// Fixes the fuzz cases' seed: `seed` (`--fuzz-seed` or `PAGEFLIP_FUZZ_SEED`), else one
/// from the clock. Only the first call counts.
pub fn set_seed(seed: Option<u64>) {
    let _ = SEED.set(seed.unwrap_or_else(clock_seed));
}

/// The fuzz cases' seed ([`set_seed`], or the clock's if it was not called).
pub fn seed() -> u64 {
    *SEED.get_or_init(clock_seed)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The command that replays a fuzz case with `seed`.
fn replay(seed: u64) -> String {
    format!("cargo run --release --bin conform -- --filter fuzz-guest --fuzz-seed {seed}")
}

/// Names the seed (and the replay command) whenever anything else of the case failed: a
/// VM that did not succeed or a record that did not pass.
pub fn fuzz_verdict(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    let seed = config.vms.first().map_or(0, |v| v.params[spec::SEED]);
    let mut wrong = Vec::new();
    for (i, vm) in result.vms.iter().enumerate() {
        if vm.status != (VmStatus::Done { exit_code: 0 }) {
            wrong.push(format!("vm{i} ended {:?}", vm.status));
        }
        for r in vm.records.iter().filter(|r| r.status != RecordStatus::Pass) {
            wrong.push(format!("vm{i} {} {:?}: {}", r.name, r.status, r.message));
        }
    }
    if let Err(e) = audit_clean(config, result) {
        wrong.push(e);
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "seed {seed} (replay: {}): {}",
            replay(seed),
            wrong.join("; ")
        ))
    }
}

/// The fuzz cases: remap, remap-per-page and copy, all with this process's [`seed`].
pub fn all() -> Vec<Case> {
    let seed = seed();
    [
        ("fuzz-guest-remap", TransportConfig::Remap, VARIANT_REMAP),
        (
            "fuzz-guest-remap-per-page",
            TransportConfig::RemapPerPage,
            VARIANT_REMAP_PER_PAGE,
        ),
        ("fuzz-guest-copy", TransportConfig::Copy, VARIANT_COPY),
    ]
    .into_iter()
    .map(|(name, transport, v)| {
        let mut params = vec![0; 3];
        params[spec::VARIANT] = v;
        params[spec::SEED] = seed;
        params[spec::ROUNDS] = spec::DEFAULT_ROUNDS;
        let mut checks = vec![custom("fuzz verdict (names the seed)", fuzz_verdict)];
        checks.extend(
            spec::RECORDS
                .iter()
                .map(|&(vm, n)| record(vm, n, RecordStatus::Pass)),
        );
        run(
            name,
            "a seeded guest throws random descriptors, posts, ring indices and device accesses, each answer checked against the spec; then a good message arrives intact, nothing lost, the audit clean",
            ipc_layout(
                &transport,
                stream_in(&params, 2, pageflip_workloads::IPC_FUZZ, MIB),
            ),
            checks,
        )
    })
    .collect()
}
