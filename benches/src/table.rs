//! The small tables of the W9 to W12 reports, as aligned text for
//! the terminal and as Markdown for `report.md`: one layout, so the
//! workloads' tables read alike.

/// `title`, then `header` and `rows` as aligned columns (the first padded
/// on the right, the others on the left, so numbers line up), each line
/// indented by two spaces.
pub(crate) fn aligned(title: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
                if i == 0 {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = format!("{title}\n  {}\n", line(&header));
    for row in rows {
        out.push_str(&format!("  {}\n", line(row)));
    }
    out
}

/// `title` as a `###` heading, then `header` and `rows` as a Markdown
/// table (every column but the first right-aligned), then a blank line.
pub(crate) fn markdown(title: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let rule: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    let mut out = format!(
        "### {title}\n\n| {} |\n|{}|\n",
        header.join(" | "),
        rule.join("|")
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_markdown_has_a_rule_per_column() {
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["longer".to_owned(), "1,000".to_owned()],
        ];
        let text = aligned("T", &["name", "n"], &rows);
        assert_eq!(
            text,
            "T\n  name        n\n  a           1\n  longer  1,000\n"
        );
        let md = markdown("T", &["name", "n"], &rows);
        assert_eq!(
            md,
            "### T\n\n| name | n |\n|---|---:|\n| a | 1 |\n| longer | 1,000 |\n\n"
        );
    }
}
