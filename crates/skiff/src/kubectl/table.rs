//! Aligned columns, as kubectl's tab writer prints them: each column is as
//! wide as its widest cell plus three spaces (at least six), and the last
//! column of a row is not padded.

/// A table of text cells: a header row and data rows of the same length.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// The column names, upper-case as kubectl prints them.
    pub headers: Vec<String>,
    /// One row per object.
    pub rows: Vec<Vec<String>>,
}

/// The space after a column's widest cell (kubectl's tab writer padding).
const PADDING: usize = 3;
/// The narrowest a padded column gets (kubectl's tab writer minimum width).
const MIN_WIDTH: usize = 6;

impl Table {
    /// The padded width of each column over the header and every row.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        widths
            .into_iter()
            .map(|w| (w + PADDING).max(MIN_WIDTH))
            .collect()
    }

    /// The whole table, header first (no header when `no_headers`), one line per row.
    pub fn render(&self, no_headers: bool) -> String {
        let widths = self.widths();
        let mut out = String::new();
        if !no_headers {
            out.push_str(&render_row(&self.headers, &widths));
        }
        for row in &self.rows {
            out.push_str(&render_row(row, &widths));
        }
        out
    }
}

/// One line of cells padded to `widths`, ending in a newline; cells past the
/// known widths are padded to their own length.
pub(crate) fn render_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let width = widths
                .get(i)
                .copied()
                .unwrap_or(cell.chars().count() + PADDING);
            line.push_str(cell);
            let used = cell.chars().count();
            line.extend(std::iter::repeat_n(' ', width.saturating_sub(used).max(1)));
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_are_padded_three_past_the_widest_cell_and_the_last_is_not() {
        let table = Table {
            headers: strings(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
            rows: vec![
                strings(&["web", "1/1", "Running", "0", "5s"]),
                strings(&["a-longer-name", "0/1", "Pending", "12", "3m20s"]),
            ],
        };
        assert_eq!(
            table.render(false),
            "NAME            READY   STATUS    RESTARTS   AGE\n\
             web             1/1     Running   0          5s\n\
             a-longer-name   0/1     Pending   12         3m20s\n"
        );
        assert_eq!(
            table.render(true),
            "web             1/1     Running   0          5s\n\
             a-longer-name   0/1     Pending   12         3m20s\n"
        );
    }

    #[test]
    fn narrow_columns_keep_the_minimum_width() {
        let table = Table {
            headers: strings(&["IP", "X"]),
            rows: vec![strings(&["1", "2"])],
        };
        assert_eq!(table.render(false), "IP    X\n1     2\n");
    }
}
