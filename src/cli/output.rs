//! How management commands print: one JSON document for scripts (`--json`), aligned
//! tables and `key: value` lines for people. Everything here writes to stdout only.

use serde::Serialize;

/// Prints `value` as one pretty-printed JSON document followed by a newline.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows under a header, each column as wide as its widest cell; `empty` stands in
/// for a table without rows.
pub fn print_table<const N: usize>(headers: [&str; N], rows: &[[String; N]], empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    print_row(&headers.map(str::to_uppercase), &widths);
    for row in rows {
        print_row(row, &widths);
    }
}

fn print_row<const N: usize>(cells: &[String; N], widths: &[usize; N]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if i + 1 < N {
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
    }
    println!("{line}");
}

/// `yes` or `no`, for boolean cells.
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// Prints `  key: value` lines, skipping empty values, under a heading line.
pub fn print_details(heading: &str, fields: &[(&str, String)]) {
    println!("{heading}");
    for (key, value) in fields.iter().filter(|(_, v)| !v.is_empty()) {
        println!("  {key}: {value}");
    }
}
