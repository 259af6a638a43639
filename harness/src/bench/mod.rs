//! `bench`: the benchmark runner. [`matrix`] expands a profile or matrix file into cases;
//! [`runner`] measures the floor and every case round by round and writes the results file;
//! [`tracepoints`] counts perf tracepoints around each run; [`progress`] shows the steps; [`cli`]
//! is the command line.

pub mod cli;
pub mod matrix;
pub mod progress;
pub mod runner;
pub mod tracepoints;
