//! `bench`: pageflip's benchmark runner (`bench --help`; the command line is
//! `pageflip_harness::bench::cli`).

fn main() -> std::process::ExitCode {
    pageflip_harness::bench::cli::main()
}
