//! `summary.md`: the report's blocks as GitHub-flavoured Markdown, charts as links to their
//! SVG files beside it.

use std::fmt::Write;

use super::document::{Block, Table};

/// Text safe in Markdown prose: no raw HTML.
fn text(s: &str) -> String {
    s.replace('<', "&lt;")
}

/// Text safe in a table cell: no raw HTML, no column breaks, one line.
fn cell(s: &str) -> String {
    text(s).replace('|', "\\|").replace('\n', " ")
}

fn table(out: &mut String, t: &Table) {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    out.push_str(&row(&t.header));
    let align: Vec<String> = (0..t.header.len())
        .map(|i| {
            if i < t.text_columns {
                "---".to_string()
            } else {
                "---:".to_string()
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", align.join("|")));
    for r in &t.rows {
        out.push_str(&row(r));
    }
}

/// The Markdown of `blocks`.
pub fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "{} {}", "#".repeat(*level as usize), text(t));
            }
            Block::Paragraph(t) => out.push_str(&text(t)),
            Block::Warning(t) => {
                let _ = write!(out, "> **Warning:** {}", text(t));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", text(item));
                }
            }
            Block::Fields(fields) => {
                for (k, v) in fields {
                    let _ = writeln!(out, "- **{}**: {}", text(k), text(v));
                }
            }
            Block::Code(code) => {
                let _ = write!(out, "```sh\n{code}\n```");
            }
            Block::Table(t) => table(&mut out, t),
            Block::Chart {
                title,
                caption,
                files,
            } => {
                let _ = write!(
                    out,
                    "### {}\n\n![{}]({}.svg)\n\n{}",
                    text(title),
                    cell(title),
                    files.stem,
                    text(caption)
                );
                if files.png.is_some() {
                    let _ = write!(out, " (PNG: [{0}.png]({0}.png))", files.stem);
                }
            }
        }
        // One blank line between blocks.
        let trimmed = out.trim_end_matches('\n').len();
        out.truncate(trimmed);
        out.push_str("\n\n");
    }
    out
}
