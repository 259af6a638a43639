//! `report`: the report of a pageflip benchmark results file — charts, summary.md and a
//! self-contained index.html — plus `report compare` and `report history` (`report --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(pageflip_report::cli::main(
        std::env::args_os(),
        &mut std::io::stdout(),
    ))
}
