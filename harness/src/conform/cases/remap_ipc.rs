//! The remap-IPC conformance cases (`docs/remap-ipc.md`): delivery, identification,
//! ownership transfer, immediate and deferred exit semantics, TLB flushes, hostile
//! descriptors and backpressure, each with the remap and the copy data movement where both
//! apply. `conform --mutants` runs these with the landing cases (`landing.rs`) and the other
//! transports' cases.

use pageflip_abi::probes::{ipc_hostile, ipc_security, ipc_semantics, ipc_workloads as w};
use pageflip_interface::{RecordStatus, RunConfig, RunResult, TransportConfig, TransportVmReport};

use crate::conform::cases::build::{
    audit_clean, both, custom, ipc_layout, measured, record, run, stream, stream_in,
    workload_counts, IDLE_TIMEOUT_MS,
};
use crate::conform::cases::Case;
use crate::conform::expect::Check;
use crate::run::layout::Layout;

fn semantics_params(config: &RunConfig) -> (u64, u64, u64) {
    let p = &config.vms[0].params;
    let get = |i| p.get(i).copied().unwrap_or(0);
    (
        get(ipc_semantics::TEST),
        get(ipc_semantics::N),
        get(ipc_semantics::BATCH),
    )
}

/// VM0's measured phase shows exactly one MMIO exit per exiting send (plus the PHASE end),
/// and the VMM drained its ring exactly once per batch.
pub fn semantics_exits(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    audit_clean(config, result)?;
    let (test, n, batch) = semantics_params(config);
    let want_exits = ipc_semantics::expected_mmio_exits(test, n, batch).ok_or("bad test params")?;
    let want_drains = ipc_semantics::expected_drains(test, n, batch).ok_or("bad test params")?;
    let vm0 = &result.vms[0];
    let measured = vm0
        .stats
        .measured
        .as_ref()
        .ok_or("VM0 has no measured-phase stats")?;
    let mmio = *measured
        .vcpu
        .get("mmio_exits")
        .ok_or("the host does not maintain mmio_exits (unavailable)")?;
    if mmio != want_exits {
        return Err(format!(
            "VM0 measured mmio_exits {mmio}, expected {want_exits} (test {test}, N {n}, B {batch})"
        ));
    }
    let drains = result.transport.as_ref().expect("checked").vms[0].drains;
    if drains != want_drains {
        return Err(format!(
            "VMM drained VM0's ring {drains} times, expected {want_drains}"
        ));
    }
    let guest_drains = vm0.samples.get(ipc_semantics::S_DRAINS).copied();
    if guest_drains != Some(want_drains) {
        return Err(format!(
            "VM0's header showed drains {guest_drains:?}, expected {want_drains}"
        ));
    }
    Ok(())
}

/// The refused descriptors the guest saw are the ones the VMM counted.
pub fn hostile_counts(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    audit_clean(config, result)?;
    let seen = result.vms[0]
        .samples
        .get(ipc_hostile::S_REFUSED)
        .copied()
        .ok_or("VM0 reported no refused count")?;
    let counted: u64 = result.transport.as_ref().expect("checked").vms[0]
        .refused
        .values()
        .sum();
    if seen != counted {
        return Err(format!(
            "VM0 saw {seen} refused descriptors, the VMM counted {counted}"
        ));
    }
    Ok(())
}

/// Every bad-descriptor case of [`ipc_hostile::CASES`] is recorded by VM0, and passes (the
/// VMM gave the case's status).
fn hostile_cases() -> Vec<Check> {
    ipc_hostile::CASES
        .iter()
        .map(|&(name, _)| record(0, name, RecordStatus::Pass))
        .collect()
}

/// Remap: every page moved out of the sender costs it one remote TLB flush request and one
/// vCPU TLB flush (KVM's MMU notifier zaps the sender's live translation), plus at most
/// [`host_allowance`] that the host itself asked for in the same phase (reclaim aging or
/// page migration also go through the MMU notifier: one extra request in 2,000 pages was
/// seen once, on a fresh CI machine); fewer than one per page is always a failure. The
/// receiver gets at most one request per page (only when its shadow/EPT tables held the
/// landing page at that moment, which the host decides: not asserted exactly). Copy: no
/// flush at all (`docs/remap-ipc.md`, "TLB flushes").
pub fn tlb_per_page(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let t = result.transport.as_ref().expect("checked");
    let pages = t.vms[0].pages_remapped;
    let remap = config.transport.remaps();
    if remap && pages == 0 {
        return Err("no page was remapped".into());
    }
    let get = |vm: usize, counter: &str| measured(result, vm, counter);
    let within = |vm: usize, counter: &str, want: u64, slack: u64| -> Result<(), String> {
        let v = get(vm, counter)?;
        if (want..=want + slack).contains(&v) {
            Ok(())
        } else if slack == 0 {
            Err(format!(
                "VM{vm}: measured {counter} {v} for {pages} pages moved, expected {want}"
            ))
        } else {
            Err(format!(
                "VM{vm}: measured {counter} {v} for {pages} pages moved, expected {want} \
                 (+ at most {slack} from the host)"
            ))
        }
    };
    if !remap {
        for vm in 0..2 {
            within(vm, "remote_tlb_flush_requests", 0, 0)?;
            within(vm, "tlb_flush", 0, 0)?;
        }
        return Ok(());
    }
    let slack = host_allowance(pages);
    within(
        0,
        "remote_tlb_flush_requests",
        TLB_SENDER_REQUESTS_PER_PAGE * pages,
        slack,
    )?;
    within(0, "tlb_flush", TLB_SENDER_FLUSHES_PER_PAGE * pages, slack)?;
    let receiver = get(1, "remote_tlb_flush_requests")?;
    if receiver == 0 || receiver > pages + slack {
        return Err(format!(
            "VM1 (receiver): measured remote_tlb_flush_requests {receiver} for {pages} pages moved, expected 1 to {pages} (+ at most {slack} from the host)"
        ));
    }
    Ok(())
}

/// TLB flushes the host may add on its own to a remap phase of `pages` pages: 1 per 500
/// pages, at least 1 (4 for the cases' 2,000). A VMM that flushes once more per message, or
/// not at all, is still far outside it.
pub fn host_allowance(pages: u64) -> u64 {
    (pages / 500).max(1)
}

/// Remote TLB flush requests on the sender's VM per page remapped out of it (kvm_pvm).
pub const TLB_SENDER_REQUESTS_PER_PAGE: u64 = 1;
/// vCPU TLB flushes of the sender per page remapped out of it (kvm_pvm).
pub const TLB_SENDER_FLUSHES_PER_PAGE: u64 = 1;

/// A measured counter of VM `vm`'s phase per message delivered.
fn per_message(result: &RunResult, vm: usize, counter: &str, messages: u64) -> Result<f64, String> {
    Ok(measured(result, vm, counter)? as f64 / messages.max(1) as f64)
}

/// Host mapping operations are exact: `remap` and `remap-huge` make 3 per one-extent
/// message (sender map, receiver map, punch) whatever its size, `remap-per-page` 3 per page,
/// copy none.
pub fn map_ops_exact(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    vm_map_ops_exact(
        &config.transport,
        &result.transport.as_ref().expect("checked").vms[0],
    )
}

/// [`map_ops_exact`] of one VM's outgoing messages (each of one extent), from its transport
/// report `t`.
pub fn vm_map_ops_exact(transport: &TransportConfig, t: &TransportVmReport) -> Result<(), String> {
    let want = match transport {
        TransportConfig::Remap | TransportConfig::RemapHuge => 3 * t.sent,
        TransportConfig::RemapPerPage => 3 * t.pages_remapped,
        _ => 0,
    };
    if t.map_ops != want {
        return Err(format!(
            "the VMM made {} host mapping operations for {} messages of {} pages in all, expected {want}",
            t.map_ops, t.sent, t.pages_remapped
        ));
    }
    Ok(())
}

/// Remote TLB flush requests per message are bounded whatever the message's size: at most
/// [`FLUSHES_PER_MESSAGE`] per VM per message (+ [`host_allowance`]), for `remap` and
/// `remap-huge` (asserted from KVM's stats).
pub fn flushes_bounded(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    map_ops_exact(config, result)?;
    let t = &result.transport.as_ref().expect("checked").vms[0];
    for vm in 0..2 {
        let got = measured(result, vm, "remote_tlb_flush_requests")?;
        let bound = FLUSHES_PER_MESSAGE * t.sent + host_allowance(t.pages_remapped);
        if got > bound {
            return Err(format!(
                "VM{vm}: measured remote_tlb_flush_requests {got} for {} messages of {} pages, expected at most {bound}",
                t.sent,
                t.pages_remapped / t.sent.max(1)
            ));
        }
    }
    Ok(())
}

/// `remap-per-page`: every page moved out of the sender costs it one remote TLB flush request
/// (+ [`host_allowance`]), however many pages a message has. KVM asks for one only when the
/// sender's tables held the page at that moment, which the host decides for multi-page
/// messages (15 of 3,200 pages were missed once here), so at least 90% is required: far
/// above what one flush per message of 16 pages would give (6%).
pub fn flush_per_page(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    map_ops_exact(config, result)?;
    let pages = result.transport.as_ref().expect("checked").vms[0].pages_remapped;
    let got = measured(result, 0, "remote_tlb_flush_requests")?;
    let slack = host_allowance(pages);
    if !(pages * 9 / 10..=pages + slack).contains(&got) {
        return Err(format!(
            "VM0: measured remote_tlb_flush_requests {got} for {pages} pages moved, expected one per page: {} to {pages} (+ at most {slack} from the host)",
            pages * 9 / 10
        ));
    }
    Ok(())
}

/// Most remote TLB flush requests per VM per message of `remap` and `remap-huge`.
pub const FLUSHES_PER_MESSAGE: u64 = 2;

/// `remap-huge`: the receiver, touching every byte, takes at most one fault per 2 MiB
/// (`pf_taken` less the MMIO exits kvm_pvm also counts there), plus [`host_allowance`].
pub fn huge_faults(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    flushes_bounded(config, result)?;
    let t = &result.transport.as_ref().expect("checked").vms[0];
    let huge = t.pages_remapped / u64::from(pageflip_abi::ipc::HUGE_PAGES);
    let faults =
        measured(result, 1, "pf_taken")?.saturating_sub(measured(result, 1, "mmio_exits")?);
    let bound = huge + host_allowance(t.pages_remapped);
    if faults > bound {
        return Err(format!(
            "VM1 (receiver) took {faults} faults for {huge} huge pages received ({:.1} per 2 MiB), expected at most {bound}",
            faults as f64 / huge.max(1) as f64
        ));
    }
    Ok(())
}

/// Coalescing: a deferred stream of one-page messages from a contiguous buffer moves each
/// drain's adjacent pages with a few operations, fewer than one per message (without it,
/// three per message), and costs the sender fewer than one flush request per message.
pub fn coalesced(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let t = &result.transport.as_ref().expect("checked").vms[0];
    if t.map_ops >= t.sent {
        return Err(format!(
            "{} host mapping operations for {} one-page messages in {} drains: nothing coalesced",
            t.map_ops, t.sent, t.drains
        ));
    }
    let flushes = per_message(result, 0, "remote_tlb_flush_requests", t.sent)?;
    if flushes >= 1.0 {
        return Err(format!(
            "VM0: {flushes:.2} remote TLB flush requests per message, expected fewer than 1 (coalesced)"
        ));
    }
    Ok(())
}

/// Pre-faulting: the landing extents were pre-faulted and the receiver, touching every byte
/// of 4 KiB-page remaps, took at most one fault per message (without it: one per page).
pub fn pre_faulted(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let t = result.transport.as_ref().expect("checked");
    if t.pre_fault.as_deref() != Some("on") {
        return Err(format!(
            "transport.pre_fault is {:?}, expected \"on\"",
            t.pre_fault
        ));
    }
    let (pages, done) = (t.vms[0].pages_remapped, t.vms[1].pre_faulted_pages);
    if done * 10 < pages * 9 {
        return Err(format!(
            "{done} of {pages} landing pages were pre-faulted, expected at least 90%"
        ));
    }
    let faults =
        measured(result, 1, "pf_taken")?.saturating_sub(measured(result, 1, "mmio_exits")?);
    if faults > t.vms[0].sent + host_allowance(pages) {
        return Err(format!(
            "VM1 (receiver) took {faults} faults for {} pre-faulted messages of {} pages",
            t.vms[0].sent,
            pages / t.vms[0].sent.max(1)
        ));
    }
    Ok(())
}

/// Where the host lacks `KVM_PRE_FAULT_MEMORY`, a run that asks for it says "unavailable"
/// and delivers everything without.
pub fn pre_fault_unavailable(config: &RunConfig, result: &RunResult) -> Result<(), String> {
    workload_counts(config, result)?;
    let t = result.transport.as_ref().expect("checked");
    match t.pre_fault.as_deref() {
        Some(s) if s.starts_with("unavailable") => Ok(()),
        other => Err(format!(
            "transport.pre_fault is {other:?}, expected \"unavailable: ...\""
        )),
    }
}

/// Params of a workload: count, size, batch, receive mode, urgent-every, check.
fn wl(count: u64, size: u64, batch: u64, recv: u64, check: u64) -> Vec<u64> {
    let mut p = vec![0; 8];
    p[w::COUNT] = count;
    p[w::SIZE] = size;
    p[w::BATCH] = batch;
    p[w::RECV_MODE] = recv;
    p[w::CHECK] = check;
    p[w::IDLE_TIMEOUT_MS] = IDLE_TIMEOUT_MS;
    p
}

/// The remap-IPC cases.
pub fn all() -> Vec<Case> {
    let remap = TransportConfig::Remap;
    let per_page = TransportConfig::RemapPerPage;
    let copy = TransportConfig::Copy;
    let mut cases = Vec::new();
    for (t, delivery, multipage, fanin, security, forward, hostile, tlb, mode) in [
        (
            &remap,
            "ipc-delivery-remap",
            "ipc-multipage-remap",
            "ipc-fanin-remap",
            "ipc-security-remap",
            "ipc-forward-remap",
            "ipc-hostile-remap",
            "ipc-tlb-remap",
            ipc_security::MODE_REMAP,
        ),
        (
            &per_page,
            "ipc-delivery-remap-per-page",
            "ipc-multipage-remap-per-page",
            "ipc-fanin-remap-per-page",
            "ipc-security-remap-per-page",
            "ipc-forward-remap-per-page",
            "ipc-hostile-remap-per-page",
            "ipc-tlb-remap-per-page",
            ipc_security::MODE_REMAP,
        ),
        (
            &copy,
            "ipc-delivery-copy",
            "ipc-multipage-copy",
            "ipc-fanin-copy",
            "ipc-security-copy",
            "ipc-forward-copy",
            "ipc-hostile-copy",
            "ipc-tlb-copy",
            ipc_security::MODE_COPY,
        ),
    ] {
        cases.push(run(
            delivery,
            "100,000 deferred messages (B = 32; remap-per-page 20,000, its per-page cost): every byte intact, FIFO, gap-free, no duplicates, nothing lost",
            ipc_layout(t, stream(&wl(if *t == per_page { 20_000 } else { 100_000 }, 64, 32, w::RECV_POLL, w::CHECK_FULL), 2, pageflip_workloads::STREAM)),
            [both(2), vec![custom("transport counts", workload_counts)]].concat(),
        ));
        cases.push(run(
            multipage,
            "immediate 16-page (64 KiB) messages with a blocking receiver arrive whole",
            ipc_layout(
                t,
                stream(
                    &wl(500, 64 * 1024, 1, w::RECV_BLOCK, w::CHECK_FULL),
                    2,
                    pageflip_workloads::STREAM,
                ),
            ),
            [both(2), vec![custom("transport counts", workload_counts)]].concat(),
        ));
        cases.push(run(
            fanin,
            "three senders, one receiver: every entry names the right source and destination",
            ipc_layout(
                t,
                stream(
                    &wl(2000, 4096, 8, w::RECV_POLL, w::CHECK_FULL),
                    4,
                    pageflip_workloads::FANIN,
                ),
            ),
            [both(4), vec![custom("transport counts", workload_counts)]].concat(),
        ));
        cases.push(run(
            security,
            "after a send the sender cannot see what the receiver writes into the page",
            ipc_layout(t, stream(&[mode], 2, pageflip_workloads::IPC_SECURITY)),
            [both(2), vec![custom("ownership audit", audit_clean)]].concat(),
        ));
        cases.push(run(
            forward,
            "a received page forwarded to a third VM arrives intact with the forwarder's id",
            ipc_layout(
                t,
                stream(&[mode, 3 * 4096], 3, pageflip_workloads::IPC_FORWARD),
            ),
            [both(3), vec![custom("ownership audit", audit_clean)]].concat(),
        ));
        cases.push(run(
            hostile,
            "every bad descriptor gets its status, backpressure stalls and loses nothing, the audit stays clean",
            ipc_layout(t, stream(&[], 2, pageflip_workloads::IPC_HOSTILE)),
            [
                both(2),
                hostile_cases(),
                vec![custom("refused counts", hostile_counts)],
            ]
            .concat(),
        ));
        cases.push(run(
            tlb,
            "remap: KVM flushes both VMs' TLBs once per page moved; copy: never",
            ipc_layout(
                t,
                stream(
                    &wl(2000, 4096, 1, w::RECV_POLL, w::CHECK_LIGHT),
                    2,
                    pageflip_workloads::STREAM,
                ),
            ),
            [both(2), vec![custom("TLB flushes per page", tlb_per_page)]].concat(),
        ));
    }
    cases.extend(at_scale());
    for (names, test, n, batch, description) in SEMANTICS {
        for (t, name) in [(&remap, names[0]), (&copy, names[1])] {
            cases.push(run(
                name,
                description,
                ipc_layout(
                    t,
                    stream(&[test, n, batch], 2, pageflip_workloads::IPC_SEMANTICS),
                ),
                [both(2), vec![custom("exits and drains", semantics_exits)]].concat(),
            ));
        }
    }
    cases
}

/// Guest memory of the cases with 2 MiB messages.
const SCALE_MIB: u64 = 64;

/// The cases of remap at scale: exact host mapping operations whatever the message size,
/// bounded flushes, coalescing, and whole huge pages.
fn at_scale() -> Vec<Case> {
    let two_mib = 2 << 20;
    let offers_pre_fault = pageflip_vmm::ipc::prefault::host_offers();
    let light = |count, size, batch| wl(count, size, batch, w::RECV_POLL, w::CHECK_LIGHT);
    let full = |count, size| wl(count, size, 1, w::RECV_POLL, w::CHECK_FULL);
    let on = |t: TransportConfig, params: Vec<u64>| {
        ipc_layout(
            &t,
            stream_in(&params, 2, pageflip_workloads::STREAM, SCALE_MIB),
        )
    };
    let checks = |check: fn(&RunConfig, &RunResult) -> Result<(), String>, what: &'static str| {
        [both(2), vec![custom(what, check)]].concat()
    };
    vec![
        run(
            "ipc-map-ops-remap-4k",
            "remap: a one-page message costs exactly 3 host mapping operations",
            on(TransportConfig::Remap, light(500, 4096, 1)),
            checks(map_ops_exact, "host mapping operations"),
        ),
        run(
            "ipc-map-ops-remap-2m",
            "remap: a one-extent 512-page message costs the same 3 operations and at most 2 flush requests per VM",
            on(TransportConfig::Remap, light(100, two_mib, 1)),
            checks(flushes_bounded, "operations and flushes per message"),
        ),
        run(
            "ipc-map-ops-remap-per-page-64k",
            "remap-per-page: 3 host operations and one sender flush request per page",
            on(TransportConfig::RemapPerPage, light(200, 64 * 1024, 1)),
            checks(flush_per_page, "operations and flushes per page"),
        ),
        run(
            "ipc-coalesce-remap",
            "remap: a deferred B = 32 stream of one-page messages coalesces each drain's moves",
            on(TransportConfig::Remap, light(4000, 4096, 32)),
            checks(coalesced, "coalescing"),
        ),
        Case {
            skip: (!offers_pre_fault).then_some(
                "the host lacks KVM_CAP_PRE_FAULT_MEMORY (capability 236: kvm_pvm, kernels before 6.10)"
                    .into(),
            ),
            ..run(
                "ipc-pre-fault-remap",
                "remap with pre_fault: landing extents are pre-faulted and the receiver takes at most one fault per message",
                Layout {
                    pre_fault: true,
                    ..on(TransportConfig::Remap, full(50, two_mib))
                },
                checks(pre_faulted, "pre-faulting"),
            )
        },
        Case {
            skip: offers_pre_fault.then_some("the host offers KVM_CAP_PRE_FAULT_MEMORY".into()),
            ..run(
                "ipc-pre-fault-unavailable",
                "remap with pre_fault on a host without KVM_PRE_FAULT_MEMORY: reported unavailable, everything delivered",
                Layout {
                    pre_fault: true,
                    ..on(TransportConfig::Remap, light(50, 4096, 1))
                },
                checks(pre_fault_unavailable, "pre-fault unavailable"),
            )
        },
        run(
            "ipc-delivery-remap-huge",
            "remap-huge: deferred 2 MiB messages (B = 4): every byte intact, FIFO, gap-free, nothing lost",
            on(TransportConfig::RemapHuge, wl(200, two_mib, 4, w::RECV_POLL, w::CHECK_FULL)),
            [both(2), vec![custom("transport counts", workload_counts)]].concat(),
        ),
        run(
            "ipc-fanin-remap-huge",
            "remap-huge: three senders of 2 MiB messages, one receiver: right ids, audit clean",
            ipc_layout(
                &TransportConfig::RemapHuge,
                stream_in(&light(40, two_mib, 1), 4, pageflip_workloads::FANIN, SCALE_MIB),
            ),
            [both(4), vec![custom("transport counts", workload_counts)]].concat(),
        ),
        run(
            "ipc-forward-remap-huge",
            "remap-huge: a received 2 MiB message forwarded to a third VM arrives intact with the forwarder's id",
            ipc_layout(
                &TransportConfig::RemapHuge,
                stream_in(&[ipc_security::MODE_REMAP, two_mib], 3, pageflip_workloads::IPC_FORWARD, SCALE_MIB),
            ),
            [both(3), vec![custom("ownership audit", audit_clean)]].concat(),
        ),
        run(
            "ipc-huge-remap-huge",
            "remap-huge: 2 MiB messages arrive intact in 3 host operations, bounded flushes, at most one receiver fault per 2 MiB",
            on(TransportConfig::RemapHuge, full(100, two_mib)),
            checks(huge_faults, "huge pages"),
        ),
    ]
}

/// The exit-semantics cases: names (remap, copy), test, N, B, description.
const SEMANTICS: [([&str; 2], u64, u64, u64, &str); 4] = [
    (
        ["ipc-immediate-remap", "ipc-immediate-copy"],
        ipc_semantics::TEST_IMMEDIATE,
        100,
        1,
        "an immediate send costs exactly one exit and is complete when its doorbell returns",
    ),
    (
        ["ipc-deferred-remap", "ipc-deferred-copy"],
        ipc_semantics::TEST_DEFERRED,
        256,
        32,
        "deferred sends: no exit until B are queued, then one exit and one drain per batch",
    ),
    (
        ["ipc-urgent-remap", "ipc-urgent-copy"],
        ipc_semantics::TEST_URGENT,
        0,
        0,
        "an urgent descriptor in a deferred stream drains the ring at once",
    ),
    (
        ["ipc-unrelated-exit-remap", "ipc-unrelated-exit-copy"],
        ipc_semantics::TEST_UNRELATED_EXIT,
        0,
        0,
        "any other exit of the sender drains its deferred descriptors",
    ),
];
