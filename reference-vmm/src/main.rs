//! `pageflip-vmm`: the reference VMM's binary.
fn main() -> std::process::ExitCode {
    pageflip_vmm::cli::run_cli(std::env::args_os())
}
