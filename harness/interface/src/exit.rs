//! Exit codes of a VMM build's `run` command (`docs/vmm-interface.md`).

/// The run was carried out and the result written, whatever the guests did.
pub const RAN: i32 = 0;
/// The VMM failed internally.
pub const INTERNAL: i32 = 1;
/// Bad input (usage, config, guest image): nothing ran and no result was written.
pub const BAD_INPUT: i32 = 2;
/// A host problem (no `/dev/kvm`, no permission): nothing ran.
pub const HOST: i32 = 3;

/// What an exit code of a VMM build means, if it is one of the above.
pub const fn meaning(code: i32) -> Option<&'static str> {
    match code {
        RAN => Some("the run was carried out"),
        INTERNAL => Some("VMM internal failure"),
        BAD_INPUT => Some("bad input, nothing ran"),
        HOST => Some("host problem, nothing ran"),
        _ => None,
    }
}
