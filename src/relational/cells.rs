//! Which respondents go together, and their survey-weighted sums per group.
//!
//! Every respondent gets small integer codes once: its stratum (territory × year), its label
//! under each subgroup variable, and its cell (stratum × every label, the finest grouping).
//! The aggregates and the bootstrap both work from these codes.
//!
//! Why the per-cell sums are not a polars group-by: each respondent contributes about
//! 5 + 3·dimensions + 3·items products (ω·s, ω·poor·(1 − a_j), …). Polars' in-memory
//! group-by materialises every product column before reducing (+6 GiB and 16 s for
//! 10 million respondents × 20 items on the rci_run benchmark), and its streaming group-by
//! adds in an order that changes from run to run, and with it the last bits of the means.
//! Here polars evaluates the products over bounded slices of rows, and they are added per
//! cell in row order with compensated (Neumaier) summation: bounded memory, and the same
//! bits on every run. Coarser groupings are sums of cells, over the small cell table.

use polars::prelude::*;

/// Rows per slice when evaluating the summands: bounds the temporary columns to
/// `SLICE × summands × 8` bytes.
const SLICE: usize = 1 << 18;

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
    cell: Vec<u32>,
    /// First respondent of each cell (whose keys are the cell's).
    first: Vec<u32>,
}

impl Cells {
    /// Codes from the key columns of `persons`: `territory`, `year` (Int64, may be null)
    /// and the subgroup label columns (text).
    pub fn new(
        persons: &DataFrame,
        territory: &str,
        year: &str,
        subgroups: &[String],
    ) -> PolarsResult<Cells> {
        let t = persons.column(territory)?.str()?;
        let y = persons.column(year)?.i64()?;
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
        for name in subgroups {
            let column = persons.column(name)?.str()?;
            let mut index: PlHashMap<&str, u32> = PlHashMap::default();
            let mut names = Vec::new();
            let codes: Vec<u32> = column
                .iter()
                .map(|v| {
                    let v = v.unwrap_or("");
                    *index.entry(v).or_insert_with(|| {
                        names.push(v.to_owned());
                        (names.len() - 1) as u32
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
        Ok(Cells {
            stratum,
            strata,
            labels,
            label_names,
            cell,
            first,
        })
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// The key columns of `persons` (`keys`) at each cell's first respondent, then, per
    /// expression of `summands` (each evaluated on `persons` to Float64, nulls skipped),
    /// its sum over the cell's respondents, named as the expression's output.
    pub fn sums(
        &self,
        persons: &DataFrame,
        keys: &[&str],
        summands: &[Expr],
    ) -> PolarsResult<DataFrame> {
        let m = summands.len();
        let mut acc = vec![Neumaier::default(); self.len() * m];
        let mut names = Vec::new();
        for offset in (0..persons.height()).step_by(SLICE) {
            let part = persons
                .slice(offset as i64, SLICE)
                .lazy()
                .select(summands)
                .collect()?;
            let cells = &self.cell[offset..offset + part.height()];
            for (j, column) in part.columns().iter().enumerate() {
                let values = column.cast(&DataType::Float64)?;
                for (c, v) in cells.iter().zip(values.f64()?.iter()) {
                    if let Some(v) = v {
                        acc[*c as usize * m + j].add(v);
                    }
                }
            }
            if names.is_empty() {
                names = part.get_column_names_owned();
            }
        }
        let first = IdxCa::from_vec(
            "first".into(),
            self.first.iter().map(|&r| r as IdxSize).collect(),
        );
        let mut columns: Vec<Column> = persons
            .select(keys.iter().copied())?
            .take(&first)?
            .into_columns();
        for (j, name) in names.into_iter().enumerate() {
            let v: Vec<f64> = (0..self.len()).map(|c| acc[c * m + j].total()).collect();
            columns.push(Column::new(name, v));
        }
        DataFrame::new(self.len(), columns)
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
struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn total(self) -> f64 {
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
        let df = df!(
            "t" => ["A", "A", "B", "A", "B"],
            "y" => [None::<i64>, None, None, None, None],
            "sex" => ["f", "m", "f", "f", "f"],
        )
        .unwrap();
        let cells = Cells::new(&df, "t", "y", &["sex".into()]).unwrap();
        assert_eq!(cells.stratum, [0, 0, 1, 0, 1]);
        assert_eq!(cells.cell, [0, 1, 2, 0, 2]);
        assert_eq!(cells.first, [0, 1, 2]);
        let sums = cells
            .sums(
                &df,
                &["t", "sex"],
                &[col("t").is_not_null().cast(DataType::Float64).alias("n")],
            )
            .unwrap();
        assert_eq!(
            sums.column("n").unwrap().f64().unwrap().to_vec(),
            [Some(2.0), Some(1.0), Some(2.0)]
        );
    }
}
