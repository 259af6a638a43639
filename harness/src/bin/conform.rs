//! `conform`: runs pageflip's conformance cases against a VMM build (`conform --help`; the
//! command line is `pageflip_harness::conform::cli`, what it does `conform::app`).

fn main() -> std::process::ExitCode {
    pageflip_harness::conform::app::main()
}
