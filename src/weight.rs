//! Weights of children within their parents: as written (`explicit`), `equal`, or from
//! the data (`pca`): the loadings of the first principal component of the standardised
//! children over the complete cases, sign-aligned so that they mostly point the same way
//! as the parent, normalised to sum 1. A child loading negatively works against its
//! siblings: it is reported and weighs 0 (a negative weight has no meaning in a mean).

use polars::prelude::*;
use serde::Serialize;

use crate::diagnostic::{Location, Problem};
use crate::plan::{Level, Plan};

/// The first principal component of some variables.
#[derive(Debug, Clone, Serialize)]
pub struct Pca {
    /// Unit eigenvector of the correlation matrix, sign-aligned (Σ ≥ 0).
    pub loadings: Vec<f64>,
    /// Loadings normalised to sum 1, negative ones at 0.
    pub weights: Vec<f64>,
    /// Share of the total variance it explains (λ₁ / number of variables).
    pub variance_share: f64,
    /// Complete cases used.
    pub n: usize,
}

/// Why PCA weights cannot be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum PcaError {
    TooFewCases {
        n: usize,
        k: usize,
    },
    Constant {
        variable: usize,
    },
    /// With negative loadings kept: they sum to about 0.
    LoadingsCancel,
}

/// Pearson correlation matrix of the complete cases of `columns`, and their number.
pub fn correlations(columns: &[Vec<Option<f64>>]) -> Result<(Vec<Vec<f64>>, usize), PcaError> {
    let k = columns.len();
    let rows = columns.first().map_or(0, Vec::len);
    let complete: Vec<usize> = (0..rows)
        .filter(|&r| columns.iter().all(|c| c[r].is_some()))
        .collect();
    let n = complete.len();
    if n < 3 || n <= k {
        return Err(PcaError::TooFewCases { n, k });
    }
    let z: Vec<Vec<f64>> = columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let v: Vec<f64> = complete
                .iter()
                .map(|&r| c[r].expect("complete case"))
                .collect();
            let mean = v.iter().sum::<f64>() / n as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            if sd == 0.0 {
                return Err(PcaError::Constant { variable: j });
            }
            Ok(v.iter().map(|x| (x - mean) / sd).collect())
        })
        .collect::<Result<_, _>>()?;
    let mut r = vec![vec![0.0; k]; k];
    for a in 0..k {
        for b in a..k {
            let c = if a == b {
                1.0
            } else {
                z[a].iter().zip(&z[b]).map(|(x, y)| x * y).sum::<f64>() / (n - 1) as f64
            };
            r[a][b] = c;
            r[b][a] = c;
        }
    }
    Ok((r, n))
}

/// The first principal component of `columns` (one vector per variable, same rows).
pub fn pca(columns: &[Vec<Option<f64>>], keep_negative: bool) -> Result<Pca, PcaError> {
    let (r, n) = correlations(columns)?;
    let pca = first_component(&r, n, keep_negative);
    if pca.weights.iter().any(|w| !w.is_finite()) {
        return Err(PcaError::LoadingsCancel);
    }
    Ok(pca)
}

/// The first principal component of a correlation matrix.
///
/// Weights are the loadings normalised to sum 1: negative loadings weigh 0 and the others
/// share the whole, or, with `keep_negative` (COINr's convention), the loadings are
/// divided by their signed sum and negative ones stay negative.
pub fn first_component(r: &[Vec<f64>], n: usize, keep_negative: bool) -> Pca {
    let k = r.len();
    let (values, vectors) = jacobi(r);
    let top = (0..k)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]).then(b.cmp(&a)))
        .expect("a matrix has a row");
    let mut v: Vec<f64> = (0..k).map(|i| vectors[i][top]).collect();
    if v.iter().sum::<f64>() < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    let weights = if keep_negative {
        let total: f64 = v.iter().sum();
        // Loadings that nearly cancel would make huge weights of both signs.
        if total.abs() < 1e-9 {
            vec![f64::NAN; k]
        } else {
            v.iter().map(|&x| x / total).collect()
        }
    } else {
        let positive: f64 = v.iter().filter(|x| **x > 0.0).sum();
        v.iter()
            .map(|&x| if x > 0.0 { x / positive } else { 0.0 })
            .collect()
    };
    Pca {
        variance_share: values[top] / k as f64,
        loadings: v,
        weights,
        n,
    }
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi
/// rotations: exact to rounding for the small matrices a parent's children make.
pub fn jacobi(m: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = m.len();
    let mut a: Vec<Vec<f64>> = m.to_vec();
    let mut v: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (arp, arq) = (row[p], row[q]);
                    row[p] = c * arp - s * arq;
                    row[q] = s * arp + c * arq;
                }
                let (rp, rq) = (a[p].clone(), a[q].clone());
                for r in 0..k {
                    a[p][r] = c * rp[r] - s * rq[r];
                    a[q][r] = s * rp[r] + c * rq[r];
                }
                for row in v.iter_mut() {
                    let (vrp, vrq) = (row[p], row[q]);
                    row[p] = c * vrp - s * vrq;
                    row[q] = s * vrp + c * vrq;
                }
            }
        }
    }
    ((0..k).map(|i| a[i][i]).collect(), v)
}

/// PCA weights of one parent's children, as used.
#[derive(Debug, Clone, Serialize)]
pub struct PcaWeights {
    pub parent: String,
    pub children: Vec<String>,
    pub loadings: Vec<f64>,
    pub weights: Vec<f64>,
    pub variance_share: f64,
    pub complete_cases: usize,
}

/// PCA weights for the children of every parent at `level`, from their columns in
/// `frame`: written into `plan`'s node weights and reported. The outer error is polars'
/// (a column missing or mistyped); the inner one lists the parents whose weights cannot
/// be computed.
pub fn pca_level(
    plan: &mut Plan,
    frame: &DataFrame,
    level: Level,
) -> PolarsResult<Result<Vec<PcaWeights>, Vec<Problem>>> {
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    let parents: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| plan.nodes[i].level == level)
        .collect();
    for p in parents {
        let children = plan.nodes[p].children.clone();
        let columns: Vec<Vec<Option<f64>>> = children
            .iter()
            .map(|&c| Ok(frame.column(&plan.nodes[c].id)?.f64()?.iter().collect()))
            .collect::<PolarsResult<_>>()?;
        let parent = plan.nodes[p].id.clone();
        match pca(&columns, plan.keep_negative_loadings) {
            Ok(pca) => {
                for (&c, &w) in children.iter().zip(&pca.weights) {
                    plan.nodes[c].weight = w;
                }
                reports.push(PcaWeights {
                    parent,
                    children: children.iter().map(|&c| plan.nodes[c].id.clone()).collect(),
                    loadings: pca.loadings,
                    weights: pca.weights,
                    variance_share: pca.variance_share,
                    complete_cases: pca.n,
                });
            }
            Err(e) => problems.push(Problem::new(
                Location::Nowhere,
                match e {
                    PcaError::TooFewCases { n, k } => format!(
                        "PCA weights of \"{parent}\": {n} territories have all its {k} children, too few for a principal component"
                    ),
                    PcaError::LoadingsCancel => format!(
                        "PCA weights of \"{parent}\": the loadings sum to about 0, so weights keeping their signs are undefined"
                    ),
                    PcaError::Constant { variable } => format!(
                        "PCA weights of \"{parent}\": \"{}\" does not vary over the complete cases",
                        plan.nodes[children[variable]].id
                    ),
                },
            )),
        }
    }
    Ok(if problems.is_empty() {
        Ok(reports)
    } else {
        Err(problems)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn equicorrelated_variables_weigh_the_same() {
        // R = [[1, r, r], [r, 1, r], [r, r, 1]]: λ₁ = 1 + 2r along (1, 1, 1)/√3.
        let r = 0.6;
        let m = vec![vec![1.0, r, r], vec![r, 1.0, r], vec![r, r, 1.0]];
        let p = first_component(&m, 10, false);
        close(&p.weights, &[1.0 / 3.0; 3]);
        close(&p.loadings, &[1.0 / 3f64.sqrt(); 3]);
        assert!((p.variance_share - (1.0 + 2.0 * r) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn an_uncorrelated_variable_gets_no_weight() {
        // R = [[1, .5, 0], [.5, 1, 0], [0, 0, 1]]: λ₁ = 1.5 along (1, 1, 0)/√2.
        let m = vec![
            vec![1.0, 0.5, 0.0],
            vec![0.5, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let p = first_component(&m, 10, false);
        close(&p.weights, &[0.5, 0.5, 0.0]);
        assert!((p.variance_share - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_variable_against_the_others_is_reported_by_its_sign() {
        // x3 = −(x1 + x2): it loads against them.
        let x1 = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0];
        let x2 = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0];
        let cols: Vec<Vec<Option<f64>>> = vec![
            x1.iter().map(|v| Some(*v)).collect(),
            x2.iter().map(|v| Some(*v)).collect(),
            x1.iter().zip(&x2).map(|(a, b)| Some(-(a + b))).collect(),
        ];
        let p = pca(&cols, false).unwrap();
        assert!(
            p.loadings[0] > 0.0 && p.loadings[1] > 0.0 && p.loadings[2] < 0.0,
            "{:?}",
            p.loadings
        );
        assert_eq!(p.weights[2], 0.0);
        assert!((p.weights[0] + p.weights[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn negative_loadings_weigh_zero_or_keep_their_sign() {
        // R = [[1, r, −r], [r, 1, −r], [−r, −r, 1]]: λ₁ = 1 + 2r along (1, 1, −1)/√3.
        let r = 0.5;
        let m = vec![vec![1.0, r, -r], vec![r, 1.0, -r], vec![-r, -r, 1.0]];
        let zero = first_component(&m, 10, false);
        close(
            &zero.loadings,
            &[1.0 / 3f64.sqrt(), 1.0 / 3f64.sqrt(), -1.0 / 3f64.sqrt()],
        );
        close(&zero.weights, &[0.5, 0.5, 0.0]);
        // COINr's convention: loadings over their signed sum, 1/√3.
        let keep = first_component(&m, 10, true);
        close(&keep.weights, &[1.0, 1.0, -1.0]);
    }

    #[test]
    fn too_few_complete_cases() {
        let cols = vec![
            vec![Some(1.0), None, Some(3.0)],
            vec![Some(1.0), Some(2.0), Some(2.0)],
        ];
        assert_eq!(
            pca(&cols, false).unwrap_err(),
            PcaError::TooFewCases { n: 2, k: 2 }
        );
    }
}
