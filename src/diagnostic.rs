//! Problems found in a pipeline definition or its data, each with the place it was found.
//!
//! Every stage that checks something reports [`Problem`]s rather than failing on the first
//! one, so `bienvivre validate` can list everything wrong with a pipeline in one pass. A
//! problem always names where to look: a config file with line and column, or a data file
//! with row and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A place in a pipeline TOML file (1-based line and column).
    Config {
        file: PathBuf,
        line: usize,
        column: usize,
    },
    /// A data file, optionally narrowed to a data row (1-based, header excluded) and a column.
    Data {
        file: PathBuf,
        row: Option<usize>,
        /// The physical line (1-based) where the row starts, for text files: it differs
        /// from `row + 1` after quoted line breaks and skipped blank lines.
        line: Option<u32>,
        column: Option<String>,
    },
    /// Not tied to a file (e.g. the output directory).
    Nowhere,
}

impl Location {
    /// A location in `file` at byte offset `offset` of `text`.
    pub fn config_at(file: &Path, text: &str, offset: usize) -> Self {
        let (line, column) = line_column(text, offset);
        Location::Config {
            file: file.to_path_buf(),
            line,
            column,
        }
    }

    pub fn data_file(file: &Path) -> Self {
        Location::Data {
            file: file.to_path_buf(),
            row: None,
            line: None,
            column: None,
        }
    }

    /// A physical line of a text file, when no data row is meant (a header, a bad byte).
    pub fn data_line(file: &Path, line: usize) -> Self {
        Location::Data {
            file: file.to_path_buf(),
            row: None,
            line: Some(u32::try_from(line).unwrap_or(u32::MAX)),
            column: None,
        }
    }

    pub fn data_cell(
        file: &Path,
        row: Option<usize>,
        line: Option<usize>,
        column: Option<&str>,
    ) -> Self {
        Location::Data {
            file: file.to_path_buf(),
            row,
            line: line.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
            column: column.map(str::to_owned),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Config { file, line, column } => {
                write!(f, "{}:{line}:{column}", file.display())
            }
            Location::Data {
                file,
                row,
                line,
                column,
            } => {
                write!(f, "{}", file.display())?;
                match (row, line) {
                    (Some(r), Some(l)) => write!(f, ": row {r} (line {l})")?,
                    (Some(r), None) => write!(f, ": row {r}")?,
                    (None, Some(l)) => write!(f, ": line {l}")?,
                    (None, None) => {}
                }
                if let Some(c) = column {
                    write!(f, ", column \"{c}\"")?;
                }
                Ok(())
            }
            Location::Nowhere => Ok(()),
        }
    }
}

/// One thing wrong, where, and optionally how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Problem {
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::Nowhere => write!(f, "{}", self.message)?,
            _ => write!(f, "{}: {}", self.location, self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// A non-empty list of problems, displayed one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {p}")?;
        }
        Ok(())
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Line starts of a text, to turn many byte offsets into line and column without
/// rescanning the text each time (a 10,000-indicator pipeline asks tens of thousands).
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of `offset` in `text`.
    pub fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }
}

pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(name.chars().count()) / 3).max(2))
        // Ties go to the alphabetically first, so suggestions never depend on hash order.
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// "a", "b", "c" joined for messages, truncated after `max` items.
pub fn list(items: &[impl AsRef<str>], max: usize) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(max)
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    if items.len() > max {
        out.push(format!("… ({} more)", items.len() - max));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 6), (2, 1));
        // 'é' is two bytes; '=' after "bé " is the 4th character.
        assert_eq!(line_column(t, 10), (2, 4));
    }

    #[test]
    fn the_line_index_agrees_with_scanning() {
        let t = "a = 1\nbé = 2\n\nlast";
        let index = LineIndex::new(t);
        for offset in 0..=t.len() + 2 {
            assert_eq!(
                index.line_column(t, offset),
                line_column(t, offset),
                "{offset}"
            );
        }
    }

    #[test]
    fn closest_suggests_typos_only() {
        let cands = ["life_expectancy", "gdp_per_capita", "unemployment"];
        assert_eq!(closest("life_expectency", cands), Some("life_expectancy"));
        assert_eq!(closest("GDP_per_capita", cands), Some("gdp_per_capita"));
        assert_eq!(closest("zzz", cands), None);
    }

    #[test]
    fn data_location_shows_row_line_and_column() {
        let l = Location::data_cell(Path::new("d.csv"), Some(3), Some(4), Some("x"));
        assert_eq!(l.to_string(), "d.csv: row 3 (line 4), column \"x\"");
    }
}
