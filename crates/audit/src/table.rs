//! Plain-text tables for people: no colours or box drawing, so the output is the same on
//! every terminal and pipes cleanly into tickets.

use comfy_table::{ContentArrangement, Table, presets};

/// Renders `rows` under `header`, indented by two spaces, ending with a newline.
pub(crate) fn render(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
