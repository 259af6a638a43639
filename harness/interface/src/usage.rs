//! The one-line usage error every pageflip program prints for bad command-line input.

/// Folds clap's multi-line usage error into one line: the error (with the arguments it lists,
/// such as the missing ones), the possible values or a tip, and where to look
/// (`<program> --help`).
pub fn usage_error_line(clap_message: &str, program: &str) -> String {
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
    parts.push(format!("run `{program} --help` for usage"));
    parts.join("; ")
}
