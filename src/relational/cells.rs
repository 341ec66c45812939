//! Which respondents go together.
//!
//! Every respondent gets small integer codes once: its stratum (territory × year), its label
//! under each subgroup variable, and its cell (stratum × every label, the finest grouping).
//! The aggregates and the bootstrap both work from these codes; codes are numbered in order
//! of first appearance, so every order derived from them is the file's.

use polars::prelude::*;
use rayon::prelude::*;

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
        let n = t.len();
        // The key columns cut at the parts' bounds, so each part reads its rows in order.
        let (t_parts, y_parts) = (cut(t), cut(y));
        let (stratum, keys, first) = first_appearance(n, |p, _| {
            t_parts[p]
                .iter()
                .zip(y_parts[p].iter())
                .map(|(t, y)| (t.unwrap_or(""), y))
        });
        let strata: Vec<(String, Option<i64>)> =
            keys.into_iter().map(|(t, y)| (t.to_owned(), y)).collect();

        let mut labels = Vec::new();
        let mut label_names = Vec::new();
        for (name, column) in subgroups {
            // Raw value → label code; values equal once trimmed share a label.
            let parts = cut(column);
            let (mut codes, values, _) = first_appearance(n, |p, _| parts[p].iter());
            let mut by_label: PlHashMap<String, u32> = PlHashMap::default();
            let mut names = Vec::new();
            let label_of: Vec<u32> = values
                .iter()
                .map(|v| {
                    let label = format!("{name}={}", v.map(str::trim).unwrap_or("missing"));
                    *by_label.entry(label.clone()).or_insert_with(|| {
                        names.push(label);
                        (names.len() - 1) as u32
                    })
                })
                .collect();
            codes
                .par_iter_mut()
                .for_each(|c| *c = label_of[*c as usize]);
            labels.push(codes);
            label_names.push(names);
        }

        // Cells: the stratum, refined by one subgroup variable at a time.
        let (mut cell, mut first) = (None, first);
        for codes in &labels {
            let coarse: &[u32] = cell.as_deref().unwrap_or(&stratum);
            let (refined, _, refined_first) = first_appearance(n, |_, rows| {
                coarse[rows.clone()]
                    .iter()
                    .zip(&codes[rows])
                    .map(|(&c, &l)| (c, l))
            });
            cell = Some(refined);
            first = refined_first;
        }
        let cell = cell.unwrap_or_else(|| stratum.clone());
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

/// Rows per part of [`first_appearance`].
fn part_size(n: usize) -> usize {
    n.div_ceil(4 * rayon::current_num_threads().max(1)).max(1)
}

/// `column` cut into the parts of [`first_appearance`] (no copy).
fn cut<T: PolarsDataType>(column: &ChunkedArray<T>) -> Vec<ChunkedArray<T>> {
    let (n, size) = (column.len(), part_size(column.len()));
    (0..n.div_ceil(size))
        .map(|p| column.slice((p * size) as i64, size))
        .collect()
}

/// Codes the keys of rows `0..n` (`keys(p, rows)` yields those of part `p`, rows
/// `rows`) by first appearance: each row's code, the distinct keys in code order, and the
/// first row of each. Parts of the rows are coded in parallel, each by its own first
/// appearances; the parts' keys are then numbered in part order, which is the order of
/// first appearance in the whole file, and every row's code is mapped to that number.
fn first_appearance<K, I>(
    n: usize,
    keys: impl Fn(usize, std::ops::Range<usize>) -> I + Sync,
) -> (Vec<u32>, Vec<K>, Vec<u32>)
where
    K: std::hash::Hash + Eq + Clone + Send,
    I: Iterator<Item = K>,
{
    let size = part_size(n);
    let mut codes = vec![0u32; n];
    let parts: Vec<(Vec<K>, Vec<u32>)> = codes
        .par_chunks_mut(size)
        .enumerate()
        .map(|(p, out)| {
            let start = p * size;
            let mut index: PlHashMap<K, u32> = PlHashMap::default();
            let (mut seen, mut first) = (Vec::new(), Vec::new());
            let rows = start..start + out.len();
            for ((row, key), code) in rows.clone().zip(keys(p, rows)).zip(out.iter_mut()) {
                *code = *index.entry(key.clone()).or_insert_with(|| {
                    seen.push(key);
                    first.push(row as u32);
                    (seen.len() - 1) as u32
                });
            }
            (seen, first)
        })
        .collect();
    let mut index: PlHashMap<K, u32> = PlHashMap::default();
    let (mut all, mut first) = (Vec::new(), Vec::new());
    let global: Vec<Vec<u32>> = parts
        .into_iter()
        .map(|(seen, firsts)| {
            seen.into_iter()
                .zip(firsts)
                .map(|(key, row)| {
                    *index.entry(key.clone()).or_insert_with(|| {
                        all.push(key);
                        first.push(row);
                        (all.len() - 1) as u32
                    })
                })
                .collect()
        })
        .collect();
    codes
        .par_chunks_mut(size)
        .zip(&global)
        .for_each(|(out, global)| out.iter_mut().for_each(|c| *c = global[*c as usize]));
    (codes, all, first)
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
