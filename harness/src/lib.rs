//! pageflip's conformance harness: the `conform` runner and what it is made of.
//!
//! `conform` runs a table of conformance [`cases`] against any VMM build that implements the
//! VMM-build interface (`docs/vmm-interface.md`), each case as a separate VMM process
//! ([`vmm`]), checks what the VMM did against the case's [`expect`]ations and reports the
//! verdicts in one of several [`report`] formats. A case is data; one [`driver`] runs them all,
//! so a new check is a new row in the table, not new code.
//!
//! `report` turns a benchmark [`results`] file into a [`site`]: [`charts`] (SVG and PNG),
//! `summary.md` and a self-contained `index.html`, with the remap-vs-copy [`crossover`];
//! `report history` charts metrics over many results files ([`history`]); its command line is
//! [`report_cli`].

pub mod app;
pub mod bad_elf;
pub mod cases;
pub mod charts;
pub mod cli;
pub mod compare;
pub mod crossover;
pub mod driver;
pub mod expect;
pub mod history;
pub mod images;
pub mod ipc_bench;
pub mod ipc_cases;
pub mod matrix;
pub mod mutants;
pub mod report;
pub mod report_cli;
pub mod results;
pub mod runner;
pub mod site;
pub mod stats;
pub mod tracepoints;
pub mod transport_cases;
pub mod units;
pub mod vmm;
