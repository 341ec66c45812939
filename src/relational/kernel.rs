//! Person scores and survey-weighted sums, straight from the achievement bits.
//!
//! Why not polars expressions: each respondent feeds about 5 + 3·dimensions + 3·items
//! sums (ω·s, ω·poor·(1 − a_j), …). Evaluated as columns they are that many Float64 columns
//! per respondent (gigabytes at 10 million respondents), then reduced per group; here each
//! respondent is scored once from two words of bits and added into its cell's sums.
//!
//! The sums are compensated (Neumaier) and taken per cell in file order, whatever the
//! threads: each thread owns whole strata (every cell of a territory × year) and visits
//! their respondents in file order, so the bits of every result are the same from run to
//! run and with any number of threads. The formulas and the order of their terms are
//! those of the definitions in the module above (item order within every sum).

use polars::prelude::*;
use rayon::prelude::*;

use super::EPS;
use super::bootstrap::Stratum;
use super::cells::{Cells, Neumaier};
use super::survey::{BLOCK, Survey};
use crate::config::MissingTreatment;
use crate::plan::rci::RciPlan;

/// One respondent's scores (its dimensions' weighted achievements and answered weights
/// go to the caller's `num` and `den`, see [`Scorer::score`]).
#[derive(Debug, Clone, Copy, Default)]
struct Person {
    kept: bool,
    answered: f64,
    rci: f64,
    deprivation: f64,
    capable: bool,
    poor: bool,
}

/// The scoring rules of a plan, flattened for the inner loops.
pub(super) struct Scorer {
    dimensions: usize,
    keep_drop: bool,
    keep_at: f64,
    capable_at: f64,
    poor_at: f64,
    /// Per item, its effective weight and dimension.
    weight: Vec<f64>,
    dimension: Vec<usize>,
    /// The answered words of a respondent who answered every item, and that
    /// respondent's answered weight, in total and per dimension.
    all: Vec<u64>,
    all_share: f64,
    all_den: Vec<f64>,
}

/// The indices of the set bits of `words` (bit b of word w is index 64·w + b), ascending.
#[inline]
fn ones(words: impl IntoIterator<Item = u64>) -> impl Iterator<Item = usize> {
    words.into_iter().enumerate().flat_map(|(w, word)| {
        let mut m = word;
        std::iter::from_fn(move || {
            (m != 0).then(|| {
                let b = m.trailing_zeros() as usize;
                m &= m - 1;
                w * 64 + b
            })
        })
    })
}

/// The words of the items answered but not achieved.
#[inline]
fn missed<'a>(answered: &'a [u64], achieved: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
    answered.iter().zip(achieved).map(|(&a, &b)| a & !b)
}

impl Scorer {
    pub(super) fn new(plan: &RciPlan) -> Self {
        let n = plan.items.len();
        let mut all = vec![0u64; n.div_ceil(64).max(1)];
        for j in 0..n {
            all[j / 64] |= 1 << (j % 64);
        }
        let mut scorer = Scorer {
            weight: plan.items.iter().map(|it| it.weight).collect(),
            dimension: plan.items.iter().map(|it| it.dimension).collect(),
            all,
            all_share: 0.0,
            all_den: Vec::new(),
            dimensions: plan.dimensions.len(),
            keep_drop: plan.missing == MissingTreatment::Drop,
            keep_at: match plan.missing {
                MissingTreatment::Drop => 1.0 - EPS,
                MissingTreatment::Rescale => 1.0 - plan.max_missing_share - EPS,
            },
            capable_at: plan.k - EPS,
            poor_at: plan.k_deprivation - EPS,
        };
        // Whoever answered every item: the same sums as `score` would take.
        let mut den = vec![0.0; scorer.dimensions];
        scorer.all_share = scorer.weigh(&scorer.all, &mut den);
        scorer.all_den = den;
        scorer
    }

    /// The weight of the items set in `words`, in total and per dimension into
    /// `per_dimension`; terms added in item order.
    #[inline]
    fn weigh(&self, words: &[u64], per_dimension: &mut [f64]) -> f64 {
        per_dimension.fill(0.0);
        let mut total = 0.0;
        for j in ones(words.iter().copied()) {
            let w = self.weight[j];
            total += w;
            per_dimension[self.dimension[j]] += w;
        }
        total
    }

    /// Scores one respondent; `num` and `den` (one per dimension) receive the weighted
    /// achievements and answered weights of each dimension.
    #[inline]
    fn score(
        &self,
        answered: &[u64],
        achieved: &[u64],
        num: &mut [f64],
        den: &mut [f64],
    ) -> Person {
        // Only the items that count are visited, a set bit at a time in item order (the
        // order of every sum's terms); a respondent who answered everything takes the
        // answered sums computed once, the same additions in the same order.
        let share = if answered == self.all.as_slice() {
            den.copy_from_slice(&self.all_den);
            self.all_share
        } else {
            self.weigh(answered, den)
        };
        let s = self.weigh(achieved, num);
        let mut c = 0.0;
        for j in ones(missed(answered, achieved)) {
            c += self.weight[j];
        }
        let kept = if self.keep_drop {
            share >= self.keep_at
        } else {
            share >= self.keep_at && share > 0.0
        };
        let (rci, deprivation) = (s / share, c / share);
        Person {
            kept,
            answered: share,
            rci,
            deprivation,
            capable: kept && rci >= self.capable_at,
            poor: kept && deprivation >= self.poor_at,
        }
    }

    /// Number of sums per cell, in the order of [`Scorer::sum_names`].
    fn width(&self) -> usize {
        6 + 3 * self.dimensions + 3 * self.weight.len()
    }
}

/// Names of the per-cell sums, as `super::aggregate` reads them.
pub(super) fn sum_names(plan: &RciPlan) -> Vec<String> {
    let mut names: Vec<String> = ["respondents", "S:w", "S:ws", "S:wcap", "S:wpoor", "S:wcp"]
        .map(String::from)
        .to_vec();
    for dim in &plan.dimensions {
        names.push(format!("S:wd:{}", dim.id));
        names.push(format!("S:wdn:{}", dim.id));
        names.push(format!("S:wds:{}", dim.id));
    }
    for it in &plan.items {
        names.push(format!("S:whc:{}", it.id));
        names.push(format!("S:wans:{}", it.id));
        names.push(format!("S:wcg:{}", it.id));
    }
    names
}

/// The persons' score columns, as the persons table names them: `answered_weight_share`,
/// `status`, `rci`, `rci_<dimension>`, `capable`, `deprivation`, `poor` (scores null when
/// the respondent is dropped), built block by block in parallel.
pub(super) fn person_columns(plan: &RciPlan, scorer: &Scorer, survey: &Survey) -> Vec<Column> {
    let dims = scorer.dimensions;
    let blocks: Vec<Vec<Column>> = (0..survey.n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let rows = b * BLOCK..((b + 1) * BLOCK).min(survey.n);
            let (mut num, mut den) = (vec![0.0; dims], vec![0.0; dims]);
            let mut people = Vec::with_capacity(rows.len());
            // Dimension scores, and whether each is defined (NaN stands for "not" until
            // the column is built).
            let mut dim_scores: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.len()); dims];
            let mut all_defined = true;
            for i in rows {
                let (answered, achieved) = survey.bits.row(i);
                let p = scorer.score(answered, achieved, &mut num, &mut den);
                for (d, out) in dim_scores.iter_mut().enumerate() {
                    let defined = p.kept && den[d] > 0.0;
                    all_defined &= defined;
                    out.push(if defined { num[d] / den[d] } else { f64::NAN });
                }
                people.push(p);
            }
            // The usual block keeps everyone: columns without validity, from plain values.
            let all_kept = people.iter().all(|p| p.kept);
            let f = |name: &str, v: &dyn Fn(&Person) -> Option<f64>| {
                if all_kept {
                    Float64Chunked::from_vec(
                        name.into(),
                        people.iter().map(|p| v(p).unwrap_or(f64::NAN)).collect(),
                    )
                    .into_column()
                } else {
                    people
                        .iter()
                        .map(v)
                        .collect::<Float64Chunked>()
                        .with_name(name.into())
                        .into_column()
                }
            };
            let b = |name: &str, v: &dyn Fn(&Person) -> Option<bool>| {
                people
                    .iter()
                    .map(v)
                    .collect::<BooleanChunked>()
                    .with_name(name.into())
                    .into_column()
            };
            let mut columns = vec![
                f("answered_weight_share", &|p| Some(p.answered)),
                if people.iter().all(|p| p.kept) {
                    // The usual block: one value, no per-row strings.
                    StringChunked::full("status".into(), "scored", people.len()).into_column()
                } else {
                    people
                        .iter()
                        .map(|p| {
                            Some(if p.kept {
                                "scored"
                            } else {
                                "dropped: too many missing items"
                            })
                        })
                        .collect::<StringChunked>()
                        .with_name("status".into())
                        .into_column()
                },
                f("rci", &|p| p.kept.then_some(p.rci)),
            ];
            for (values, dim) in dim_scores.into_iter().zip(&plan.dimensions) {
                let name = format!("rci_{}", dim.id).into();
                let column = if all_defined {
                    Float64Chunked::from_vec(name, values)
                } else {
                    values
                        .into_iter()
                        .map(|x| (!x.is_nan()).then_some(x))
                        .collect::<Float64Chunked>()
                        .with_name(name)
                };
                columns.push(column.into_column());
            }
            columns.extend([
                b("capable", &|p| p.kept.then_some(p.capable)),
                f("deprivation", &|p| p.kept.then_some(p.deprivation)),
                b("poor", &|p| p.kept.then_some(p.poor)),
            ]);
            columns
        })
        .collect();
    // Blocks become the chunks of each column: no copy.
    let mut blocks = blocks.into_iter();
    let mut columns = blocks.next().unwrap_or_default();
    for block in blocks {
        for (c, part) in columns.iter_mut().zip(block) {
            c.append_owned(part).expect("same dtype");
        }
    }
    columns
}

/// What the aggregates and the bootstrap need from the respondents.
pub(super) struct Sums {
    /// Per cell, its sums in the order of [`sum_names`].
    pub cells: Vec<Vec<f64>>,
    /// Per stratum, its scored respondents (only with a bootstrap).
    pub strata: Vec<Stratum>,
    pub scored: usize,
}

/// What one thread sums: its cells' accumulators, its strata (by index), its scored count.
type Part = (Vec<Neumaier>, Vec<(usize, Stratum)>, usize);

/// Sums every respondent into its cell; with `bootstrap`, also lays out each stratum's
/// scored respondents for resampling.
pub(super) fn sums(scorer: &Scorer, survey: &Survey, cells: &Cells, bootstrap: bool) -> Sums {
    let parts = rayon::current_num_threads().max(1);
    let n_strata = cells.strata.len();
    let width = scorer.width();
    // Each cell's stratum, and its index among the cells of its part.
    let cell_stratum: Vec<u32> = cells
        .first
        .iter()
        .map(|&r| cells.stratum[r as usize])
        .collect();
    // Respondents per stratum: each stratum's buffers are sized once.
    let mut sizes = vec![0u32; n_strata];
    if bootstrap {
        for &s in &cells.stratum {
            sizes[s as usize] += 1;
        }
    }
    let mut local = vec![0u32; cells.len()];
    let mut counts = vec![0u32; parts];
    for (c, s) in cell_stratum.iter().enumerate() {
        let p = *s as usize % parts;
        local[c] = counts[p];
        counts[p] += 1;
    }
    let results: Vec<Part> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![Neumaier::default(); counts[part] as usize * width];
            let mut strata: Vec<Option<Stratum>> = (0..n_strata)
                .map(|s| {
                    (bootstrap && s % parts == part)
                        .then(|| Stratum::with_capacity(cells, sizes[s] as usize))
                })
                .collect();
            let mut scored = 0;
            let dims = scorer.dimensions;
            let (mut num, mut den) = (vec![0.0; dims], vec![0.0; dims]);
            for i in 0..survey.n {
                let stratum = cells.stratum[i] as usize;
                if stratum % parts != part {
                    continue;
                }
                let (answered, achieved) = survey.bits.row(i);
                let p = scorer.score(answered, achieved, &mut num, &mut den);
                if !p.kept {
                    // Weight 0: every term is 0 or null, and adding 0 changes no sum.
                    continue;
                }
                scored += 1;
                let w = survey.weight[i];
                let poor = if p.poor { 1.0 } else { 0.0 };
                let at = local[cells.cell[i] as usize] as usize * width;
                let a = &mut acc[at..at + width];
                a[0].add(1.0);
                a[1].add(w);
                a[2].add(w * p.rci);
                a[3].add(w * if p.capable { 1.0 } else { 0.0 });
                a[4].add(w * poor);
                a[5].add(w * p.deprivation * poor);
                for d in 0..dims {
                    let k = 6 + 3 * d;
                    if den[d] > 0.0 {
                        a[k].add(w * (num[d] / den[d]));
                        a[k + 1].add(w);
                    }
                    a[k + 2].add(w * (num[d] / p.answered));
                }
                let base = 6 + 3 * dims;
                // Set bits only, in item order: each item's sums get the same terms in
                // the same order as testing every item would give them, without a
                // branch on whether each item was achieved.
                for j in ones(answered.iter().copied()) {
                    a[base + 3 * j + 1].add(w);
                }
                if p.poor {
                    // Poor and deprived in j: ω·poor·(1 − a_j) = ω.
                    for j in ones(missed(answered, achieved)) {
                        let k = base + 3 * j;
                        a[k].add(w);
                        a[k + 2].add(w * scorer.weight[j] / p.answered);
                    }
                }
                if let Some(st) = &mut strata[stratum] {
                    st.push(
                        [w, w * p.rci, w * p.deprivation * poor],
                        cells.labels.iter().map(|l| l[i]),
                    );
                }
            }
            let strata = strata
                .into_iter()
                .enumerate()
                .filter_map(|(s, st)| st.map(|st| (s, st)))
                .collect();
            (acc, strata, scored)
        })
        .collect();

    let mut out_cells = vec![Vec::new(); cells.len()];
    let mut out_strata: Vec<Option<Stratum>> = (0..n_strata).map(|_| None).collect();
    let mut scored = 0;
    let mut results: Vec<_> = results.into_iter().map(Some).collect();
    for (c, s) in cell_stratum.iter().enumerate() {
        let part = *s as usize % parts;
        let (acc, _, _) = results[part].as_ref().expect("each part once");
        let at = local[c] as usize * width;
        out_cells[c] = acc[at..at + width].iter().map(|x| x.total()).collect();
    }
    for r in results.iter_mut() {
        let (_, strata, n) = r.take().expect("each part once");
        scored += n;
        for (s, st) in strata {
            out_strata[s] = Some(st);
        }
    }
    Sums {
        cells: out_cells,
        strata: if bootstrap {
            out_strata
                .into_iter()
                .map(|s| s.unwrap_or_else(|| Stratum::new(cells)))
                .collect()
        } else {
            Vec::new()
        },
        scored,
    }
}
