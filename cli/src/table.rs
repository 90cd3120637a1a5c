//! Plain-text renderings of rows: an aligned table (cells cut at a width limit) and CSV.

use std::io::{self, Write};

use serde_json::Value;

/// Widest a table cell is shown (characters); longer values end in `…`.
const MAX_CELL_CHARS: usize = 60;

/// A JSON value as a table cell: strings bare, `null` empty, everything else as JSON.
pub(crate) fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn clip(text: &str) -> String {
    let single_line = text.replace(['\n', '\r', '\t'], " ");
    if single_line.chars().count() <= MAX_CELL_CHARS {
        single_line
    } else {
        let mut clipped: String = single_line.chars().take(MAX_CELL_CHARS - 1).collect();
        clipped.push('…');
        clipped
    }
}

pub(crate) fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let header: Vec<String> = header.iter().map(|h| clip(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| clip(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (index, value) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(value.chars().count());
            }
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let mut text = String::new();
        for (index, value) in cells.iter().enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(value);
            let pad = widths
                .get(index)
                .copied()
                .unwrap_or(0)
                .saturating_sub(value.chars().count());
            if index + 1 < cells.len() {
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for row in &rows {
        line(out, row)?;
    }
    Ok(())
}

/// RFC 4180: fields with `,`, `"` or line breaks are quoted, quotes doubled.
pub(crate) fn write_csv(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let field = |value: &str| -> String {
        if value.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value.to_owned()
        }
    };
    let header: Vec<String> = header.iter().map(|h| field(h)).collect();
    writeln!(out, "{}", header.join(","))?;
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| field(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_clip() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["x".repeat(70), "22".to_owned()],
        ];
        write_table(&mut out, &["store", "units"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("store{}  units", " ".repeat(55)));
        assert!(lines[3].starts_with(&format!("{}…  22", "x".repeat(59))));
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut out = Vec::new();
        write_csv(
            &mut out,
            &["a", "b"],
            &[vec!["x,y".into(), "say \"hi\"".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn cells_render_json_values() {
        assert_eq!(cell(Some(&json!("s"))), "s");
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&json!(1.5))), "1.5");
    }
}
