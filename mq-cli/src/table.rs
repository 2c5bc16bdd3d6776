//! Boxed text tables whose columns are as wide as their widest cell.
//!
//! mq.sh pads with fixed printf widths, so a long SoC or CPU name pushes its
//! row out of line; here every column is measured first.

/// A table: a header row and data rows of the same length.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have as many cells as the header. Control
    /// characters in a cell (host text: keys, reasons) are escaped, line
    /// breaks too: a row is one line.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let row: Vec<String> = cells
            .into_iter()
            .map(|c| mq_core::inert(&c.into()).into_owned())
            .collect();
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// The table as text, every line ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|col| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| width(&row[col]))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let rule: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .chain(std::iter::once("+\n".to_string()))
            .collect();
        let line = |row: &[String]| -> String {
            row.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("| {cell}{} ", " ".repeat(w - width(cell))))
                .chain(std::iter::once("|\n".to_string()))
                .collect()
        };
        let mut out = rule.clone();
        out.push_str(&line(&self.header));
        out.push_str(&rule);
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out.push_str(&rule);
        out
    }
}

/// Display width of a cell; inventory text is ASCII in practice, and counting
/// characters rather than bytes keeps any UTF-8 name aligned too.
fn width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_the_widest_cell() {
        let mut t = Table::new(["Name", "CPU"]);
        t.row(["a", "cortex-a53/a72"]);
        t.row(["longer-name", "x"]);
        assert_eq!(
            t.render(),
            "+-------------+----------------+\n\
             | Name        | CPU            |\n\
             +-------------+----------------+\n\
             | a           | cortex-a53/a72 |\n\
             | longer-name | x              |\n\
             +-------------+----------------+\n"
        );
    }
}
