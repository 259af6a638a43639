//! `index.html`: the report's blocks as one self-contained page — styles inline, every chart's
//! SVG inlined, no script and no reference to another file or the network, so it opens
//! offline and can be mailed or archived as one file.

use std::fmt::Write;

use super::document::{Block, Table};

/// The page's styles.
const STYLE: &str = "
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.fields th { background: none; border: none; padding-left: 0; font-weight: 600; }
table.fields td { border: none; }
.warning { background: #fff4e5; border-left: 5px solid #e67e22; padding: 0.6em 1em;
           margin: 1em 0; }
pre { background: #f4f4f4; padding: 0.6em 1em; overflow-x: auto; }
figure { margin: 2em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin-bottom: 0.5em; }
";

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn table(out: &mut String, t: &Table) {
    out.push_str("<table>\n<tr>");
    for h in &t.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i < t.text_columns {
                ""
            } else {
                " class=\"num\""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// An SVG file's markup for inlining: without the XML prolog.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    }
}

/// The page of `blocks` titled `title`; `read_svg` gives a chart's SVG markup.
pub fn render(
    title: &str,
    blocks: &[Block],
    read_svg: impl Fn(&std::path::Path) -> std::io::Result<String>,
) -> std::io::Result<String> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(t));
            }
            Block::Paragraph(t) => {
                let _ = writeln!(out, "<p>{}</p>", escape(t));
            }
            Block::Warning(t) => {
                let _ = writeln!(
                    out,
                    "<div class=\"warning\"><strong>Warning:</strong> {}</div>",
                    escape(t)
                );
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Fields(fields) => {
                out.push_str("<table class=\"fields\">\n");
                for (k, v) in fields {
                    let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
                }
                out.push_str("</table>\n");
            }
            Block::Code(code) => {
                let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(code));
            }
            Block::Table(t) => table(&mut out, t),
            Block::Chart {
                title,
                caption,
                files,
            } => {
                let svg = read_svg(&files.svg)?;
                let _ = writeln!(
                    out,
                    "<figure id=\"{}\">\n<figcaption><strong>{}</strong>. {}</figcaption>\n{}\n</figure>",
                    escape(&files.stem),
                    escape(title),
                    escape(caption),
                    inline_svg(&svg)
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_svg_inlined_without_prolog() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(
            inline_svg("<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>"),
            "<svg width=\"1\"></svg>"
        );
    }
}
