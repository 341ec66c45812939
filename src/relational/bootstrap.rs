//! Percentile bootstrap intervals for the mean RCI and M0 of every group.
//!
//! Stratified by territory (× year): each replicate resamples the respondents of every
//! territory with replacement, as the survey sampled them. The subgroups of a territory
//! and the whole sample take their replicates from the same draws (domain and stratified
//! estimates), so one pass of n draws per replicate serves every grouping. Each territory
//! has its own generator, seeded from the pipeline's seed and the territory's key, so the
//! intervals do not depend on thread scheduling, and a territory's interval does not
//! change when other territories are added to the survey.

use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;

use super::SUBGROUP;
use super::cells::Cells;
use crate::plan::rci::RciPlan;
use crate::plan::{TERRITORY_ID, YEAR};
use crate::stats::Rng;
use crate::stats::{fnv1a, quantile};

/// Group key of a table row: territory (None: the whole sample), year, subgroup label.
type Key = (Option<String>, Option<i64>, Option<String>);

/// Per replicate: Σω, Σω·s, Σω·c·poor.
type Replicates = Vec<[f64; 3]>;

/// The scored respondents of one territory (× year), in file order, together so
/// resampling stays in cache.
pub(super) struct Stratum {
    /// ω, ω·s, ω·c·poor per respondent.
    values: Vec<[f64; 3]>,
    /// Per subgroup variable, each respondent's label as an index into `codes`.
    labels: Vec<Vec<u32>>,
    /// Per subgroup variable, the global label codes present in this stratum.
    codes: Vec<Vec<u32>>,
    /// Per subgroup variable: global label code → index into `codes`.
    index: Vec<HashMap<u32, u32>>,
}

impl Stratum {
    pub(super) fn new(cells: &Cells) -> Self {
        Self::with_capacity(cells, 0)
    }

    /// An empty stratum with room for `n` respondents.
    pub(super) fn with_capacity(cells: &Cells, n: usize) -> Self {
        let k = cells.labels.len();
        Stratum {
            values: Vec::with_capacity(n),
            labels: vec![Vec::with_capacity(n); k],
            codes: vec![Vec::new(); k],
            index: vec![HashMap::new(); k],
        }
    }

    /// Adds a scored respondent: its values and its global label code per variable.
    pub(super) fn push(&mut self, values: [f64; 3], labels: impl Iterator<Item = u32>) {
        self.values.push(values);
        for (k, code) in labels.enumerate() {
            let codes = &mut self.codes[k];
            let l = *self.index[k].entry(code).or_insert_with(|| {
                codes.push(code);
                (codes.len() - 1) as u32
            });
            self.labels[k].push(l);
        }
    }
}

/// Adds `mean_ci_low/high` and `M0_ci_low/high` to `table` (null with no replicates).
pub(super) fn intervals(
    plan: &RciPlan,
    strata: &[Stratum],
    cells: &Cells,
    table: &mut DataFrame,
) -> PolarsResult<()> {
    let n = table.height();
    let (mut lo_m, mut hi_m, mut lo_0, mut hi_0) =
        (vec![None; n], vec![None; n], vec![None; n], vec![None; n]);
    if plan.bootstrap > 0 {
        let groups = replicate_sums(plan, strata, cells);
        let t = table.column(TERRITORY_ID)?.str()?.clone();
        let y = table.column(YEAR)?.i64()?.clone();
        let g = table.column(SUBGROUP)?.str()?.clone();
        let alpha = 1.0 - plan.confidence;
        for i in 0..n {
            let key = (
                t.get(i).map(str::to_owned),
                y.get(i),
                g.get(i).map(str::to_owned),
            );
            let Some(reps) = groups.get(&key) else {
                continue;
            };
            let (mut means, mut m0s): (Vec<f64>, Vec<f64>) = reps
                .iter()
                .filter(|r| r[0] > 0.0)
                .map(|r| (r[1] / r[0], r[2] / r[0]))
                .unzip();
            if means.is_empty() {
                continue;
            }
            let (a, b) = percentile_interval(&mut means, alpha);
            let (c, d) = percentile_interval(&mut m0s, alpha);
            (lo_m[i], hi_m[i], lo_0[i], hi_0[i]) = (Some(a), Some(b), Some(c), Some(d));
        }
    }
    for (name, v) in [
        ("mean_ci_low", lo_m),
        ("mean_ci_high", hi_m),
        ("M0_ci_low", lo_0),
        ("M0_ci_high", hi_0),
    ] {
        table.with_column(Column::new(name.into(), v))?;
    }
    Ok(())
}

/// Replicate sums of every group: territories, territory × label, whole sample (× label).
fn replicate_sums(plan: &RciPlan, strata: &[Stratum], cells: &Cells) -> HashMap<Key, Replicates> {
    let b = plan.bootstrap;
    let per_stratum: Vec<(Replicates, Vec<Vec<Replicates>>)> = strata
        .par_iter()
        .zip(&cells.strata)
        .map(|(st, (territory, year))| {
            let len = st.values.len();
            let mut total = vec![[0.0; 3]; b];
            let mut by_label: Vec<Vec<Replicates>> = st
                .codes
                .iter()
                .map(|c| vec![vec![[0.0; 3]; b]; c.len()])
                .collect();
            if len == 0 {
                return (total, by_label);
            }
            // Replicate r takes draws r·len .. (r+1)·len of the territory's stream; the
            // generator is a counter, so LANES replicates run side by side from skipped
            // generators (independent chains of additions for the CPU to overlap) with
            // the same draws, in the same order, as one after the other.
            let rng = Rng::new(plan.seed ^ fnv1a(&format!("{territory}\u{1f}{year:?}")));
            let mut r = 0;
            while r < b {
                let lanes = (b - r).min(LANES);
                let sums = if lanes == LANES {
                    resample::<LANES>(st, &rng, r)
                } else {
                    let mut sums = Vec::with_capacity(lanes);
                    for lane in r..r + lanes {
                        sums.extend(resample::<1>(st, &rng, lane));
                    }
                    sums
                };
                for (lane, (t, labels)) in sums.into_iter().enumerate() {
                    total[r + lane] = t;
                    for (reps, s) in by_label.iter_mut().zip(labels) {
                        for (rep, v) in reps.iter_mut().zip(s) {
                            rep[r + lane] = v;
                        }
                    }
                }
                r += lanes;
            }
            (total, by_label)
        })
        .collect();

    let mut groups: HashMap<Key, Replicates> = HashMap::new();
    for ((st, (total, by_label)), (territory, year)) in
        strata.iter().zip(per_stratum).zip(&cells.strata)
    {
        if st.values.is_empty() {
            continue;
        }
        merge(
            groups
                .entry((None, *year, None))
                .or_insert_with(|| vec![[0.0; 3]; b]),
            &total,
        );
        groups.insert((Some(territory.clone()), *year, None), total);
        for (k, reps) in by_label.into_iter().enumerate() {
            for (local, rep) in reps.into_iter().enumerate() {
                let label = Some(cells.label_names[k][st.codes[k][local] as usize].clone());
                merge(
                    groups
                        .entry((None, *year, label.clone()))
                        .or_insert_with(|| vec![[0.0; 3]; b]),
                    &rep,
                );
                groups.insert((Some(territory.clone()), *year, label), rep);
            }
        }
    }
    groups
}

/// Replicates resampled side by side.
const LANES: usize = 4;

/// One replicate's sums: the total, and per subgroup variable the sum of each label.
type ReplicateSums = ([f64; 3], Vec<Vec<[f64; 3]>>);

/// Replicates `first .. first + N` of a stratum, drawn from the stratum's generator
/// `rng` (replicate r from draw r·n on). Sums stay local to the loop so the totals live
/// in registers rather than going through memory at every draw; the usual numbers of
/// subgroup variables (none, one, two) get loops of their own, unrolled.
fn resample<const N: usize>(st: &Stratum, rng: &Rng, first: usize) -> Vec<ReplicateSums> {
    match st.labels.len() {
        0 => resample_k::<N, 0>(st, rng, first),
        1 => resample_k::<N, 1>(st, rng, first),
        2 => resample_k::<N, 2>(st, rng, first),
        _ => resample_any::<N>(st, rng, first),
    }
}

/// [`resample`] with `K` subgroup variables.
fn resample_k<const N: usize, const K: usize>(
    st: &Stratum,
    rng: &Rng,
    first: usize,
) -> Vec<ReplicateSums> {
    let len = st.values.len();
    let mut rngs: [Rng; N] = std::array::from_fn(|lane| rng.skipped(((first + lane) * len) as u64));
    let codes: [&[u32]; K] = std::array::from_fn(|k| &st.labels[k][..len]);
    let mut totals = [[0.0; 3]; N];
    let mut labels: [[Vec<[f64; 3]>; K]; N] =
        std::array::from_fn(|_| std::array::from_fn(|k| vec![[0.0; 3]; st.codes[k].len()]));
    for _ in 0..len {
        for lane in 0..N {
            // Uniform in 0..len without modulo bias (Lemire).
            let j = ((rngs[lane].next_u64() as u128 * len as u128) >> 64) as usize;
            let v = st.values[j];
            add(&mut totals[lane], v);
            for k in 0..K {
                add(&mut labels[lane][k][codes[k][j] as usize], v);
            }
        }
    }
    totals
        .into_iter()
        .zip(labels)
        .map(|(t, l)| (t, l.into_iter().collect()))
        .collect()
}

/// [`resample`] with any number of subgroup variables.
fn resample_any<const N: usize>(st: &Stratum, rng: &Rng, first: usize) -> Vec<ReplicateSums> {
    let len = st.values.len();
    let mut rngs: [Rng; N] = std::array::from_fn(|lane| rng.skipped(((first + lane) * len) as u64));
    let mut totals = [[0.0; 3]; N];
    let mut labels: [Vec<Vec<[f64; 3]>>; N] =
        std::array::from_fn(|_| st.codes.iter().map(|c| vec![[0.0; 3]; c.len()]).collect());
    for _ in 0..len {
        for lane in 0..N {
            // Uniform in 0..len without modulo bias (Lemire).
            let j = ((rngs[lane].next_u64() as u128 * len as u128) >> 64) as usize;
            let v = st.values[j];
            add(&mut totals[lane], v);
            for (sums, codes) in labels[lane].iter_mut().zip(&st.labels) {
                add(&mut sums[codes[j] as usize], v);
            }
        }
    }
    totals.into_iter().zip(labels).collect()
}

fn add(acc: &mut [f64; 3], v: [f64; 3]) {
    acc[0] += v[0];
    acc[1] += v[1];
    acc[2] += v[2];
}

fn merge(acc: &mut Replicates, other: &Replicates) {
    for (a, o) in acc.iter_mut().zip(other) {
        add(a, *o);
    }
}

/// Quantiles α/2 and 1 − α/2 with linear interpolation between order statistics.
fn percentile_interval(v: &mut [f64], alpha: f64) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (quantile(v, alpha / 2.0), quantile(v, 1.0 - alpha / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interval_interpolates() {
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(percentile_interval(&mut v, 0.05), (2.5, 97.5));
    }
}
