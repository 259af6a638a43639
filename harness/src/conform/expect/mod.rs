//! Expectations: what a case requires of the VMM, as data, and their evaluation. Evaluating
//! gives one reason per unmet expectation, each naming what was expected and what was seen;
//! no reasons means the case passed.

use std::fmt;

use pageflip_interface::{
    exit, Record, RecordStatus, RunConfig, RunOutcome, RunResult, StatsDelta, Summary, VmResult,
    VmStatus,
};

use crate::run::observed::{Observed, Planned, ResultFile};
use crate::run::vmm::VmmExit;

/// A check that the data kinds below cannot express: gets the config the VMM ran and its
/// result, and says what is wrong.
pub type CustomCheck = fn(&RunConfig, &RunResult) -> Result<(), String>;

/// What a case requires of the VMM.
#[derive(Clone, Debug)]
pub enum Expect {
    /// The VMM carries the run out (exit code 0), writes a valid result, and the result meets
    /// every check.
    Run(Vec<Check>),
    /// The VMM refuses the input: it exits with `exit_code`, writes no result, and prints an
    /// error line (`<vmm>: error: <message>`) that contains every needle.
    Reject {
        /// The VMM's exit code.
        exit_code: i32,
        /// Substrings of the error line.
        stderr: Vec<Needle>,
    },
}

/// A substring the VMM's error line must contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needle {
    /// This text.
    Text(String),
    /// The path of the guest image of this VM.
    ImagePath(usize),
}

/// One requirement on a run's result. `vm` is an index into the config's VM list.
#[derive(Clone, Debug)]
pub enum Check {
    /// How the run as a whole ended.
    Outcome(RunOutcome),
    /// How a VM ended.
    Status {
        /// The VM.
        vm: usize,
        /// Its expected status.
        is: StatusIs,
    },
    /// Every record of the VM passed, and it wrote at least `at_least` of them.
    AllRecordsPass {
        /// The VM.
        vm: usize,
        /// Least number of records.
        at_least: usize,
    },
    /// The VM wrote a record of this name with this status.
    Record {
        /// The VM.
        vm: usize,
        /// The record's name.
        name: &'static str,
        /// Its status.
        status: RecordStatus,
        /// A substring of its message.
        message_contains: Option<&'static str>,
    },
    /// The VM's console contains this text.
    Console {
        /// The VM.
        vm: usize,
        /// The text.
        contains: &'static str,
    },
    /// The VM died and the console tail of its death report contains this text.
    DeathConsoleTail {
        /// The VM.
        vm: usize,
        /// The text.
        contains: &'static str,
    },
    /// The VM died and its death report gives this register.
    DeathRegister {
        /// The VM.
        vm: usize,
        /// Register name, e.g. `rip`.
        register: &'static str,
    },
    /// The VM's `boot_us` is present.
    BootTime {
        /// The VM.
        vm: usize,
    },
    /// The VM's stats are consistent: if `available`, the run delta has the vCPU counter
    /// `exits`; no counter listed as unavailable appears in any map.
    StatsConsistent {
        /// The VM.
        vm: usize,
    },
    /// A KVM statistic has exactly this value.
    Stat {
        /// The VM.
        vm: usize,
        /// Over which interval.
        phase: Phase,
        /// Of the vCPU or of the VM fd.
        scope: Scope,
        /// Counter name, e.g. `exits`.
        counter: &'static str,
        /// The value.
        value: Count,
    },
    /// The VM's doorbell count has exactly this value.
    Doorbells {
        /// The VM.
        vm: usize,
        /// The value.
        value: Count,
    },
    /// The VMM process exits within `slack_ms` after the config's watchdog timeout.
    ExitsAfterWatchdogWithin {
        /// Allowed time after `timeout_ms`, in milliseconds.
        slack_ms: u64,
    },
    /// A check in code.
    Custom {
        /// What it checks, for its reasons.
        name: &'static str,
        /// The check.
        check: CustomCheck,
    },
}

/// An expected VM status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusIs {
    /// Done with exit code 0.
    Success,
    /// Done with this exit code.
    Done(u64),
    /// Shut down (e.g. triple fault).
    Shutdown,
    /// Stopped at an access to an unowned GPA, given relative to the VM's `mem_size`.
    UnownedMmio {
        /// The GPA minus `mem_size`.
        above_mem_size: u64,
        /// A write (or a read).
        write: bool,
    },
    /// Stopped by the watchdog.
    Timeout,
    /// Stopped after another VM failed.
    Stopped,
}

/// The interval a statistic covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The measured phase the guest marked (`stats.measured`).
    Measured,
    /// The whole run (`stats.run`).
    Run,
}

/// Whose counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The vCPU's.
    Vcpu,
    /// The VM fd's.
    Vm,
}

/// An expected count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// This value.
    Exact(u64),
    /// The VM's `params[index]` plus `plus`.
    Param {
        /// Index into the VM's params.
        index: usize,
        /// Added to the param.
        plus: u64,
    },
    /// The VM's `params[index]` plus `plus` plus the value of another counter of the same
    /// interval and scope (for [`Check::Stat`] only), e.g. exits the host takes for itself.
    ParamPlusCounter {
        /// Index into the VM's params.
        index: usize,
        /// Added to the param.
        plus: u64,
        /// The counter whose value is added.
        counter: &'static str,
    },
}

/// Evaluates `expect` against what the VMM did; every unmet expectation gives one reason.
pub fn evaluate(expect: &Expect, planned: &Planned, seen: &Observed) -> Vec<String> {
    match expect {
        Expect::Run(checks) => evaluate_run(checks, planned, seen),
        Expect::Reject {
            exit_code,
            stderr: needles,
        } => evaluate_reject(*exit_code, needles, planned, seen),
    }
}

fn evaluate_run(checks: &[Check], planned: &Planned, seen: &Observed) -> Vec<String> {
    if seen.run.exit != VmmExit::Code(exit::RAN) {
        return vec![format!(
            "VMM: expected exit code {} ({}), seen {}{}",
            exit::RAN,
            meaning(exit::RAN),
            describe_exit(seen.run.exit),
            stderr_hint(&seen.stderr)
        )];
    }
    let result = match &seen.result {
        ResultFile::Parsed(result) => result,
        ResultFile::Absent => {
            return vec![
                "VMM: expected a result file after exit code 0, seen none written".to_string(),
            ]
        }
        ResultFile::Invalid(why) => return vec![format!("VMM result file: {why}")],
    };
    let Some(config) = &planned.config else {
        return vec!["case error: the case's config is not a valid run config".to_string()];
    };
    let ctx = Ctx {
        config,
        result,
        seen,
    };
    let mut reasons = ctx.shape();
    reasons.extend(checks.iter().filter_map(|check| ctx.check(check).err()));
    reasons
}

fn evaluate_reject(
    exit_code: i32,
    needles: &[Needle],
    planned: &Planned,
    seen: &Observed,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if seen.run.exit != VmmExit::Code(exit_code) {
        reasons.push(format!(
            "VMM: expected exit code {exit_code} ({}), seen {}{}",
            meaning(exit_code),
            describe_exit(seen.run.exit),
            stderr_hint(&seen.stderr)
        ));
    }
    if !matches!(seen.result, ResultFile::Absent) {
        reasons.push(
            "VMM: expected no result file for a refused input (nothing may run), seen one written"
                .to_string(),
        );
    }
    let error_lines: Vec<&str> = seen
        .stderr
        .lines()
        .filter(|line| line.contains(ERROR_MARK))
        .collect();
    let line = match error_lines.as_slice() {
        [line] => *line,
        [] => {
            reasons.push(format!(
                "stderr: expected one error line `<vmm>: error: <message>`, seen {}",
                quote_tail(&seen.stderr, 300)
            ));
            return reasons;
        }
        lines => {
            reasons.push(format!(
                "stderr: expected one error line `<vmm>: error: <message>`, seen {}: {lines:?}",
                lines.len()
            ));
            return reasons;
        }
    };
    for needle in needles {
        let text = match needle {
            Needle::Text(text) => text.clone(),
            Needle::ImagePath(vm) => match planned.image_paths.get(*vm) {
                Some(path) => path.display().to_string(),
                None => {
                    reasons.push(format!("case error: no image path for vm{vm}"));
                    continue;
                }
            },
        };
        if !line.contains(&text) {
            reasons.push(format!(
                "stderr: expected the error line to contain {text:?}, seen {line:?}"
            ));
        }
    }
    reasons
}

/// What marks a VMM's error line: `<vmm>: error: <message>`.
const ERROR_MARK: &str = ": error: ";

fn meaning(code: i32) -> &'static str {
    exit::meaning(code).unwrap_or("not an interface exit code")
}

fn describe_exit(exit: VmmExit) -> String {
    match exit {
        VmmExit::Code(code) => format!("exit code {code} ({})", meaning(code)),
        other => other.to_string(),
    }
}

fn stderr_hint(stderr: &str) -> String {
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!("; stderr: {}", quote_tail(line, 300)),
        None => String::new(),
    }
}

/// `text` quoted, shortened to its last `max` characters.
fn quote_tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        format!("{text:?}")
    } else {
        let tail: String = text.chars().skip(count - max).collect();
        format!("\"…{}", &format!("{tail:?}")[1..])
    }
}

/// Describes a VM status as a reason shows it.
pub fn describe_status(status: &VmStatus) -> String {
    match status {
        VmStatus::Done { exit_code } => format!("done with exit code {exit_code}"),
        VmStatus::Shutdown => "shutdown".to_string(),
        VmStatus::InternalError { suberror } => format!("internal_error (suberror {suberror})"),
        VmStatus::FailEntry { reason } => format!("fail_entry (reason {reason:#x})"),
        VmStatus::UnownedMmio { gpa, write } => {
            format!("unowned_mmio {} at {gpa:#x}", read_write(*write))
        }
        VmStatus::UnexpectedExit { exit } => format!("unexpected_exit ({exit})"),
        VmStatus::Timeout => "timeout".to_string(),
        VmStatus::Stopped => "stopped".to_string(),
        VmStatus::VmmError { message } => format!("vmm_error ({message})"),
    }
}

fn read_write(write: bool) -> &'static str {
    if write {
        "write"
    } else {
        "read"
    }
}

impl StatusIs {
    /// Whether `status` is this, for a VM with `mem_size` bytes of memory.
    pub fn matches(self, status: &VmStatus, mem_size: u64) -> bool {
        match (self, status) {
            (StatusIs::Success, VmStatus::Done { exit_code }) => *exit_code == 0,
            (StatusIs::Done(want), VmStatus::Done { exit_code }) => *exit_code == want,
            (StatusIs::Shutdown, VmStatus::Shutdown)
            | (StatusIs::Timeout, VmStatus::Timeout)
            | (StatusIs::Stopped, VmStatus::Stopped) => true,
            (
                StatusIs::UnownedMmio {
                    above_mem_size,
                    write,
                },
                VmStatus::UnownedMmio { gpa, write: w },
            ) => Some(*gpa) == mem_size.checked_add(above_mem_size) && *w == write,
            _ => false,
        }
    }

    /// Describes this status for a VM with `mem_size` bytes of memory.
    pub fn describe(self, mem_size: u64) -> String {
        match self {
            StatusIs::Success => "done with exit code 0".to_string(),
            StatusIs::Done(code) => format!("done with exit code {code}"),
            StatusIs::Shutdown => "shutdown".to_string(),
            StatusIs::UnownedMmio {
                above_mem_size,
                write,
            } => format!(
                "unowned_mmio {} at {:#x} (mem_size + {above_mem_size:#x})",
                read_write(write),
                mem_size.saturating_add(above_mem_size)
            ),
            StatusIs::Timeout => "timeout".to_string(),
            StatusIs::Stopped => "stopped".to_string(),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Measured => "measured",
            Phase::Run => "run",
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Vcpu => "vcpu",
            Scope::Vm => "vm",
        })
    }
}

/// A run's config, result and process facts, for evaluating checks.
struct Ctx<'a> {
    config: &'a RunConfig,
    result: &'a RunResult,
    seen: &'a Observed,
}

impl Ctx<'_> {
    /// What every result must satisfy: one VM entry per configured VM, in order, with its
    /// id and name, and a summary that counts its records.
    fn shape(&self) -> Vec<String> {
        let (want, have) = (self.config.vms.len(), self.result.vms.len());
        if want != have {
            return vec![format!(
                "result: expected {want} VM entries (one per configured VM), seen {have}"
            )];
        }
        let mut reasons = Vec::new();
        for (i, vm) in self.result.vms.iter().enumerate() {
            let name = self.config.vm_name(i);
            if usize::try_from(vm.id).ok() != Some(i) || vm.name != name {
                reasons.push(format!(
                    "result: expected vms[{i}] to be id {i} named {name:?}, seen id {} named {:?}",
                    vm.id, vm.name
                ));
            }
            let counted = Summary::of(&vm.records);
            if vm.summary != counted {
                reasons.push(format!(
                    "vm{i} summary: expected the counts of its records {counted:?}, seen {:?}",
                    vm.summary
                ));
            }
        }
        reasons
    }

    fn vm(&self, vm: usize) -> Result<&VmResult, String> {
        self.result
            .vms
            .get(vm)
            .ok_or_else(|| format!("vm{vm}: expected in the result, seen no such VM"))
    }

    fn mem_size(&self, vm: usize) -> u64 {
        self.config
            .vms
            .get(vm)
            .map_or(0, |v| v.memory_mib.saturating_mul(1 << 20))
    }

    /// The value `count` stands for in VM `vm`, and how it was made. `stats` is where a
    /// [`Count::ParamPlusCounter`] finds its counter (None outside [`Check::Stat`]).
    fn count(
        &self,
        vm: usize,
        count: Count,
        stats: Option<(&VmResult, Phase, Scope)>,
    ) -> Result<(u64, String), String> {
        let (index, plus, counter) = match count {
            Count::Exact(n) => return Ok((n, n.to_string())),
            Count::Param { index, plus } => (index, plus, None),
            Count::ParamPlusCounter {
                index,
                plus,
                counter,
            } => (index, plus, Some(counter)),
        };
        let param = *self
            .config
            .vms
            .get(vm)
            .and_then(|v| v.params.get(index))
            .ok_or_else(|| format!("case error: vm{vm} has no params[{index}]"))?;
        let overflow = || format!("case error: vm{vm} expected count overflows");
        let value = param.checked_add(plus).ok_or_else(overflow)?;
        let Some(counter) = counter else {
            return Ok((value, format!("{value} (params[{index}] + {plus})")));
        };
        let (v, phase, scope) =
            stats.ok_or_else(|| format!("case error: {counter} can only be added to a stat"))?;
        let extra = stat(v, phase, scope, counter).map_err(|why| {
            format!(
                "vm{vm} stats.{phase}.{scope}.{counter}: needed for the expected value, but {why}"
            )
        })?;
        let value = value.checked_add(extra).ok_or_else(overflow)?;
        Ok((
            value,
            format!("{value} (params[{index}] + {plus} + {counter} {extra})"),
        ))
    }

    fn check(&self, check: &Check) -> Result<(), String> {
        match *check {
            Check::Outcome(want) => {
                if self.result.outcome == want {
                    Ok(())
                } else {
                    Err(format!(
                        "outcome: expected {}, seen {}",
                        outcome_name(want),
                        outcome_name(self.result.outcome)
                    ))
                }
            }
            Check::Status { vm, is } => {
                let v = self.vm(vm)?;
                let mem_size = self.mem_size(vm);
                if is.matches(&v.status, mem_size) {
                    return Ok(());
                }
                let death = v
                    .death
                    .as_ref()
                    .map(|d| format!(" ({})", d.message))
                    .unwrap_or_default();
                Err(format!(
                    "vm{vm} status: expected {}, seen {}{death}",
                    is.describe(mem_size),
                    describe_status(&v.status)
                ))
            }
            Check::AllRecordsPass { vm, at_least } => {
                let v = self.vm(vm)?;
                let failed: Vec<String> = v
                    .records
                    .iter()
                    .filter(|r| r.status != RecordStatus::Pass)
                    .map(describe_record)
                    .collect();
                if !failed.is_empty() {
                    return Err(format!(
                        "vm{vm} records: expected all to pass, seen {} of {} not passing: {}",
                        failed.len(),
                        v.records.len(),
                        failed.join("; ")
                    ));
                }
                if v.records.len() < at_least {
                    return Err(format!(
                        "vm{vm} records: expected at least {at_least}, seen {}",
                        v.records.len()
                    ));
                }
                Ok(())
            }
            Check::Record {
                vm,
                name,
                status,
                message_contains,
            } => {
                let v = self.vm(vm)?;
                let Some(record) = v.records.iter().find(|r| r.name == name) else {
                    let names: Vec<&str> = v.records.iter().map(|r| r.name.as_str()).collect();
                    return Err(format!(
                        "vm{vm} record {name:?}: expected {}, seen no such record (records: {names:?})",
                        status_name(status)
                    ));
                };
                if record.status != status {
                    return Err(format!(
                        "vm{vm} record {name:?}: expected {}, seen {}",
                        status_name(status),
                        describe_record(record)
                    ));
                }
                match message_contains {
                    Some(text) if !record.message.contains(text) => Err(format!(
                        "vm{vm} record {name:?}: expected its message to contain {text:?}, seen {:?}",
                        record.message
                    )),
                    _ => Ok(()),
                }
            }
            Check::Console { vm, contains } => {
                let v = self.vm(vm)?;
                if v.console.contains(contains) {
                    Ok(())
                } else {
                    Err(format!(
                        "vm{vm} console: expected it to contain {contains:?}, seen {}",
                        quote_tail(&v.console, 300)
                    ))
                }
            }
            Check::DeathConsoleTail { vm, contains } => {
                let v = self.vm(vm)?;
                let Some(death) = &v.death else {
                    return Err(format!(
                        "vm{vm} death report: expected one whose console tail contains {contains:?}, seen none (status {})",
                        describe_status(&v.status)
                    ));
                };
                if death.console_tail.join("\n").contains(contains) {
                    Ok(())
                } else {
                    Err(format!(
                        "vm{vm} death report: expected its console tail to contain {contains:?}, seen {:?}",
                        death.console_tail
                    ))
                }
            }
            Check::DeathRegister { vm, register } => {
                let v = self.vm(vm)?;
                let Some(death) = &v.death else {
                    return Err(format!(
                        "vm{vm} death report: expected one with register {register}, seen none (status {})",
                        describe_status(&v.status)
                    ));
                };
                if death.registers.contains_key(register) {
                    Ok(())
                } else {
                    let names: Vec<&String> = death.registers.keys().collect();
                    Err(format!(
                        "vm{vm} death report: expected register {register}, seen registers {names:?}"
                    ))
                }
            }
            Check::BootTime { vm } => match self.vm(vm)?.boot_us {
                Some(_) => Ok(()),
                None => Err(format!("vm{vm} boot_us: expected a value, seen null")),
            },
            Check::StatsConsistent { vm } => stats_consistent(vm, self.vm(vm)?),
            Check::Stat {
                vm,
                phase,
                scope,
                counter,
                value,
            } => {
                let v = self.vm(vm)?;
                let (want, want_text) = self.count(vm, value, Some((v, phase, scope)))?;
                let what = format!("vm{vm} stats.{phase}.{scope}.{counter}");
                let seen = stat(v, phase, scope, counter)
                    .map_err(|why| format!("{what}: expected {want_text}, but {why}"))?;
                if seen == want {
                    Ok(())
                } else {
                    Err(format!("{what}: expected {want_text}, seen {seen}"))
                }
            }
            Check::Doorbells { vm, value } => {
                let v = self.vm(vm)?;
                let (want, want_text) = self.count(vm, value, None)?;
                if v.doorbells == want {
                    Ok(())
                } else {
                    Err(format!(
                        "vm{vm} doorbells: expected {want_text}, seen {}",
                        v.doorbells
                    ))
                }
            }
            Check::ExitsAfterWatchdogWithin { slack_ms } => {
                let limit = self.config.timeout_ms.saturating_add(slack_ms);
                let seen = self.seen.run.elapsed.as_millis();
                if seen <= u128::from(limit) {
                    Ok(())
                } else {
                    Err(format!(
                        "VMM process: expected to exit within {slack_ms} ms after the {} ms watchdog (by {limit} ms), seen it exit after {seen} ms",
                        self.config.timeout_ms
                    ))
                }
            }
            Check::Custom { name, check } => {
                check(self.config, self.result).map_err(|why| format!("{name}: {why}"))
            }
        }
    }
}

/// The value of a KVM counter, or why there is none: a counter that is absent is
/// unavailable on this host, never 0.
fn stat(vm: &VmResult, phase: Phase, scope: Scope, counter: &str) -> Result<u64, String> {
    let stats = &vm.stats;
    if !stats.available {
        return Err(
            "KVM binary stats are unavailable on this host (stats.available = false)".to_string(),
        );
    }
    if stats.unavailable.iter().any(|c| c == counter) {
        return Err(format!(
            "counter {counter} is unavailable on this host (listed in stats.unavailable)"
        ));
    }
    let delta = match phase {
        Phase::Measured => stats.measured.as_ref(),
        Phase::Run => stats.run.as_ref(),
    }
    .ok_or_else(|| match phase {
        Phase::Measured => "the result has no measured phase (stats.measured is null)".to_string(),
        Phase::Run => "the result has no run stats (stats.run is null)".to_string(),
    })?;
    let map = match scope {
        Scope::Vcpu => &delta.vcpu,
        Scope::Vm => &delta.vm,
    };
    map.get(counter).copied().ok_or_else(|| {
        format!("counter {counter} is missing from stats.{phase}.{scope}: unavailable on this host")
    })
}

fn stats_consistent(i: usize, vm: &VmResult) -> Result<(), String> {
    let stats = &vm.stats;
    let mut problems = Vec::new();
    if stats.available {
        match stats.run.as_ref().map(|run| run.vcpu.contains_key("exits")) {
            Some(true) => {}
            Some(false) => problems.push(
                "expected stats.run.vcpu to have exits (stats are available), seen it without"
                    .to_string(),
            ),
            None => {
                problems.push("expected stats.run (stats are available), seen null".to_string())
            }
        }
    }
    let deltas: [(&str, Option<&StatsDelta>); 2] = [
        ("measured", stats.measured.as_ref()),
        ("run", stats.run.as_ref()),
    ];
    for name in &stats.unavailable {
        for (phase, delta) in deltas.iter().filter_map(|(p, d)| d.map(|d| (p, d))) {
            for (scope, map) in [("vcpu", &delta.vcpu), ("vm", &delta.vm)] {
                if map.contains_key(name) {
                    problems.push(format!(
                        "expected {name} (listed in stats.unavailable) absent, seen it in stats.{phase}.{scope}"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("vm{i} stats: {}", problems.join("; ")))
    }
}

fn describe_record(record: &Record) -> String {
    if record.message.is_empty() {
        format!("{} {}", record.name, status_name(record.status))
    } else {
        format!(
            "{} {} ({})",
            record.name,
            status_name(record.status),
            record.message
        )
    }
}

fn status_name(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Pass => "pass",
        RecordStatus::Fail => "fail",
        RecordStatus::Skip => "skip",
    }
}

fn outcome_name(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Completed => "completed",
        RunOutcome::Timeout => "timeout",
    }
}

#[cfg(test)]
mod tests;
