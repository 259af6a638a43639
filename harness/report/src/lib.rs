//! `report`: turns a benchmark results file (`pageflip-results`, `docs/results.md`) into a
//! [`site`] — [`charts`] (SVG and PNG), `summary.md` and a self-contained `index.html`, with the
//! remap-vs-copy [`crossover`] — compares two results files ([`compare`]) and charts metrics
//! over many ([`history`]). Its command line is [`cli`]. It needs neither KVM nor perf.

pub mod charts;
pub mod cli;
pub mod compare;
pub mod crossover;
pub mod history;
pub mod site;
pub mod transports;
pub mod units;
