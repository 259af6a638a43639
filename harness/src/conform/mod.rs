//! `conform`: the conformance suite. [`cases`] holds the cases as data, one file per area;
//! [`suite`] runs them through the rig and judges them by their [`expect`]ations; [`formats`]
//! reports the verdicts (human, TAP13, JUnit, JSON); [`mutants`] proves the cases can fail;
//! [`bad_elf`] makes the malformed guest images; [`app`] and [`cli`] are the command line.

pub mod app;
pub mod bad_elf;
pub mod cases;
pub mod cli;
pub mod expect;
pub mod formats;
pub mod mutants;
pub mod suite;
