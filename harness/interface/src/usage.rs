//! The one-line usage error every pageflip program prints for bad command-line input.

/// Folds clap's multi-line usage error into one line: the error (with the arguments it lists,
/// such as the missing ones), the possible values or a tip, and where to look
/// (`<program> --help`).
///
/// Two cases clap renders otherwise are folded too: a missing subcommand (clap prints the whole
/// help) becomes `a subcommand is required: one of run, transports`, and an error of a
/// subcommand points to that subcommand's help (`report compare --help`), read from clap's
/// `Usage:` line.
pub fn usage_error_line(clap_message: &str, program: &str) -> String {
    let help = format!(
        "run `{} --help` for usage",
        command_path(clap_message, program)
    );
    if let Some(commands) = listed_commands(clap_message) {
        return format!(
            "a subcommand is required: one of {}; {help}",
            commands.join(", ")
        );
    }
    let mut parts: Vec<String> = Vec::new();
    // Whether the error's first line ends with ':' and the lines after it list arguments.
    let mut listing = false;
    for line in clap_message.lines().map(str::trim) {
        if parts.is_empty() && !line.is_empty() {
            let first = line.strip_prefix("error: ").unwrap_or(line);
            listing = first.ends_with(':');
            parts.push(first.to_string());
        } else if listing {
            // The listed arguments end at the first empty line.
            listing = !line.is_empty();
            if listing {
                let first = &mut parts[0];
                first.push_str(if first.ends_with(':') { " " } else { ", " });
                first.push_str(line);
            }
        } else if line.starts_with("[possible values:") || line.starts_with("tip:") {
            parts.push(line.to_string());
        }
    }
    parts.push(help);
    parts.join("; ")
}

/// The command the error is about: `program`, or `program sub` from clap's `Usage:` line.
fn command_path(clap_message: &str, program: &str) -> String {
    let usage = clap_message
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Usage: "));
    let words: Vec<&str> = usage
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| !w.starts_with(['<', '[', '-']))
                .collect()
        })
        .unwrap_or_default();
    match words.split_first() {
        Some((first, rest)) if *first == program && !rest.is_empty() => words.join(" "),
        _ => program.to_string(),
    }
}

/// The subcommands of a help text that clap printed for a missing subcommand (its
/// `Commands:` section, without `help`), or `None` if the message is no such help.
fn listed_commands(clap_message: &str) -> Option<Vec<String>> {
    let mut lines = clap_message.lines();
    lines.find(|l| l.trim() == "Commands:")?;
    let names: Vec<String> = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&n| n != "help")
        .map(str::to_string)
        .collect();
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_subcommand_names_the_subcommands() {
        let help = "pageflip's benchmark runner\n\nUsage: bench <COMMAND>\n\nCommands:\n  run         Runs a matrix\n  transports  Remap vs copy\n  help        Print this message\n\nOptions:\n  -h, --help  Print help\n";
        assert_eq!(
            usage_error_line(help, "bench"),
            "a subcommand is required: one of run, transports; run `bench --help` for usage"
        );
    }

    #[test]
    fn a_subcommands_error_points_to_its_help() {
        let e = "error: the following required arguments were not provided:\n  <B.json>\n\nUsage: report compare <A.json> <B.json>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error_line(e, "report"),
            "the following required arguments were not provided: <B.json>; run `report compare --help` for usage"
        );
        let top =
            "error: unexpected argument '--x' found\n\nUsage: report [OPTIONS] <RESULTS.json>\n";
        assert_eq!(
            usage_error_line(top, "report"),
            "unexpected argument '--x' found; run `report --help` for usage"
        );
    }
}
