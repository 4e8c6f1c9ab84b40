//! Plain aligned text tables: columns padded to their widest cell, no
//! borders, so that `grep` and `awk` work on them too.

use std::fmt;

/// Rows under a header.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// One cell: on one line, whatever the text holds.
fn flat(text: &str) -> String {
    text.replace(['\n', '\r', '\t'], " ")
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| flat(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&rows) {
            let last = row.len().saturating_sub(1);
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                line.push_str(cell);
                if i < last {
                    line.extend(std::iter::repeat_n(' ', w - width(cell) + 2));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Name and value pairs, one a line, values aligned: one record.
pub fn record(fields: &[(&str, String)]) -> String {
    let w = fields
        .iter()
        .map(|(name, _)| width(name))
        .max()
        .unwrap_or(0);
    fields
        .iter()
        .map(|(name, value)| format!("{name:<w$}  {}\n", flat(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_not_padded_at_the_end() {
        let mut t = Table::new(vec!["ID", "STATUS", "NOTE"]);
        t.row(vec!["1".into(), "Cancelled".into(), "".into()]);
        t.row(vec!["22".into(), "Active".into(), "two\nlines".into()]);
        assert_eq!(
            t.to_string(),
            "ID  STATUS     NOTE\n1   Cancelled\n22  Active     two lines\n"
        );
    }

    #[test]
    fn a_record_aligns_its_values() {
        let text = record(&[("ID", "1".into()), ("Status", "Active".into())]);
        assert_eq!(text, "ID      1\nStatus  Active\n");
    }
}
