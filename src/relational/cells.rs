//! Which respondents go together.
//!
//! Every respondent gets small integer codes once: its stratum (territory × year), its label
//! under each subgroup variable, and its cell (stratum × every label, the finest grouping).
//! The aggregates and the bootstrap both work from these codes; codes are numbered in order
//! of first appearance, so every order derived from them is the file's.

use polars::prelude::*;

#[derive(Debug)]
pub struct Cells {
    /// Per respondent: its stratum.
    pub stratum: Vec<u32>,
    /// Territory and year of each stratum, in order of first appearance.
    pub strata: Vec<(String, Option<i64>)>,
    /// Per subgroup variable, per respondent: its label's code.
    pub labels: Vec<Vec<u32>>,
    /// Per subgroup variable: the labels, in order of first appearance.
    pub label_names: Vec<Vec<String>>,
    /// Per respondent: its cell.
    pub cell: Vec<u32>,
    /// First respondent of each cell (whose keys are the cell's).
    pub first: Vec<u32>,
}

impl Cells {
    /// Codes from the key columns: territory ids, years (may be null) and, per subgroup
    /// variable, its name and values (text; null is labelled `missing`). Labels read
    /// `name=value`, the value trimmed.
    pub fn new(t: &StringChunked, y: &Int64Chunked, subgroups: &[(&str, &StringChunked)]) -> Cells {
        let mut index: PlHashMap<(&str, Option<i64>), u32> = PlHashMap::default();
        let mut strata = Vec::new();
        let stratum: Vec<u32> = t
            .iter()
            .zip(y.iter())
            .map(|(t, y)| {
                let t = t.unwrap_or("");
                *index.entry((t, y)).or_insert_with(|| {
                    strata.push((t.to_owned(), y));
                    (strata.len() - 1) as u32
                })
            })
            .collect();

        let mut labels = Vec::new();
        let mut label_names = Vec::new();
        for (name, column) in subgroups {
            // Raw value → label code; values equal once trimmed share a label.
            let mut by_value: PlHashMap<Option<&str>, u32> = PlHashMap::default();
            let mut by_label: PlHashMap<String, u32> = PlHashMap::default();
            let mut names = Vec::new();
            let codes: Vec<u32> = column
                .iter()
                .map(|v| {
                    *by_value.entry(v).or_insert_with(|| {
                        let label = format!("{name}={}", v.map(str::trim).unwrap_or("missing"));
                        *by_label.entry(label.clone()).or_insert_with(|| {
                            names.push(label);
                            (names.len() - 1) as u32
                        })
                    })
                })
                .collect();
            labels.push(codes);
            label_names.push(names);
        }

        // Cells: the stratum, refined by one subgroup variable at a time.
        let mut cell = stratum.clone();
        let mut first: Vec<u32> = first_rows(&cell, strata.len());
        for codes in &labels {
            let mut index: PlHashMap<(u32, u32), u32> = PlHashMap::default();
            let mut next_first = Vec::new();
            for (row, (c, l)) in cell.iter_mut().zip(codes).enumerate() {
                *c = *index.entry((*c, *l)).or_insert_with(|| {
                    next_first.push(row as u32);
                    (next_first.len() - 1) as u32
                });
            }
            first = next_first;
        }
        Cells {
            stratum,
            strata,
            labels,
            label_names,
            cell,
            first,
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.first.len()
    }
}

/// First row of each code in `codes` (codes are numbered by first appearance).
fn first_rows(codes: &[u32], n: usize) -> Vec<u32> {
    let mut first = Vec::with_capacity(n);
    for (row, &c) in codes.iter().enumerate() {
        if c as usize == first.len() {
            first.push(row as u32);
        }
    }
    first
}

/// Compensated summation (Neumaier): the rounding error of each addition is carried, so a
/// sum over millions of respondents is as exact as the data allow, whatever their number.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    #[inline]
    pub(super) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub(super) fn total(self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_small_terms() {
        let mut s = Neumaier::default();
        for x in [1e16, 1.0, -1e16, 1.0] {
            s.add(x);
        }
        assert_eq!(s.total(), 2.0);
    }

    #[test]
    fn cells_refine_strata_by_each_subgroup() {
        let t: StringChunked = ["A", "A", "B", "A", "B"].iter().map(|v| Some(*v)).collect();
        let y = Int64Chunked::full_null("y".into(), 5);
        let sex: StringChunked = [Some("f"), Some("m "), Some("f"), Some(" f"), None]
            .into_iter()
            .collect();
        let cells = Cells::new(&t, &y, &[("sex", &sex)]);
        assert_eq!(cells.stratum, [0, 0, 1, 0, 1]);
        assert_eq!(cells.label_names[0], ["sex=f", "sex=m", "sex=missing"]);
        assert_eq!(cells.labels[0], [0, 1, 0, 0, 2]);
        assert_eq!(cells.cell, [0, 1, 2, 0, 3]);
        assert_eq!(cells.first, [0, 1, 2, 4]);
    }
}
