//! Analyses of a computed index: statistical coherence of the framework and each
//! territory's strengths and weaknesses against its peers.
//!
//! Coherence (`analysis/coherence.csv`), on the latest year when there are years: for
//! every parent, the Pearson and Spearman correlations between its children and of each
//! child with it, Cronbach's alpha of its children and the share of their variance the
//! first principal component explains. Flags: |r| > 0.92 between siblings (redundant),
//! r < 0 with the parent (working against it), alpha < 0.7.
//!
//! Scorecard (`analysis/scorecard.csv` and `analysis/strengths_weaknesses.csv`): a
//! territory's peers are the N territories closest to it on a covariate; a score is a
//! strength when above the peers' median by more than their median absolute deviation,
//! a weakness when below it by more.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use crate::load::sources::Covariate;
use crate::plan::{Level, Plan, ScorecardPlan, TERRITORY_ID, TERRITORY_NAME, YEAR};
use crate::stats;
use crate::weight;

pub mod uncertainty;

const REDUNDANT: f64 = 0.92;
const LOW_ALPHA: f64 = 0.7;

/// Pearson correlation over the pairs where both values are present, and their number.
pub fn pearson(x: &[Option<f64>], y: &[Option<f64>]) -> (Option<f64>, usize) {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .collect();
    (pearson_of(&pairs), pairs.len())
}

fn pearson_of(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.len() < 3 {
        return None;
    }
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Ranks 1..n, ties sharing their average rank.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman correlation: Pearson of the ranks (average ranks for ties).
pub fn spearman(x: &[Option<f64>], y: &[Option<f64>]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .collect();
    let rx = average_ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = average_ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    pearson_of(&rx.into_iter().zip(ry).collect::<Vec<_>>())
}

/// Cronbach's alpha of items (columns) over the complete cases:
/// k/(k − 1) · (1 − Σ var(item) / var(Σ items)), sample variances.
pub fn cronbach_alpha(items: &[Vec<Option<f64>>]) -> Option<f64> {
    let k = items.len();
    let rows = items.first()?.len();
    let complete: Vec<Vec<f64>> = (0..rows)
        .filter_map(|r| items.iter().map(|c| c[r]).collect::<Option<Vec<f64>>>())
        .collect();
    if k < 2 || complete.len() < 2 {
        return None;
    }
    let var = |v: &[f64]| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    };
    let item_var: f64 = (0..k)
        .map(|j| var(&complete.iter().map(|r| r[j]).collect::<Vec<_>>()))
        .sum();
    let total = var(&complete
        .iter()
        .map(|r| r.iter().sum())
        .collect::<Vec<f64>>());
    (total > 0.0).then(|| k as f64 / (k as f64 - 1.0) * (1.0 - item_var / total))
}

#[derive(Debug, Clone, Serialize)]
pub struct CoherenceSummary {
    pub year: Option<i64>,
    pub file: &'static str,
    /// Sibling pairs with |r| > 0.92.
    pub redundant: Vec<String>,
    /// Children correlating negatively with their parent.
    pub against_parent: Vec<String>,
    /// Parents whose children's alpha is below 0.7.
    pub low_alpha: Vec<String>,
}

/// The rows of the year analysed: the latest one when there are years.
fn latest_year(plan: &Plan, frame: &DataFrame) -> PolarsResult<(DataFrame, Option<i64>)> {
    if !plan.has_years() {
        return Ok((frame.clone(), None));
    }
    let year = frame.column(YEAR)?.i64()?.max();
    let rows = frame
        .clone()
        .lazy()
        .filter(col(YEAR).eq(lit(year.unwrap_or(0))))
        .collect()?;
    Ok((rows, year))
}

fn values(frame: &DataFrame, id: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(frame.column(id)?.f64()?.iter().collect())
}

/// The coherence table and its summary.
pub fn coherence(plan: &Plan, frame: &DataFrame) -> PolarsResult<(DataFrame, CoherenceSummary)> {
    let (rows, year) = latest_year(plan, frame)?;
    let mut kind: Vec<&str> = Vec::new();
    let mut level: Vec<&str> = Vec::new();
    let mut node: Vec<String> = Vec::new();
    let mut other: Vec<Option<String>> = Vec::new();
    let mut n: Vec<u32> = Vec::new();
    let mut pear: Vec<Option<f64>> = Vec::new();
    let mut spear: Vec<Option<f64>> = Vec::new();
    let mut alpha: Vec<Option<f64>> = Vec::new();
    let mut pc1: Vec<Option<f64>> = Vec::new();
    let mut flag: Vec<Option<&str>> = Vec::new();
    let mut summary = CoherenceSummary {
        year,
        file: "analysis/coherence.csv",
        redundant: Vec::new(),
        against_parent: Vec::new(),
        low_alpha: Vec::new(),
    };
    for parent in plan.nodes.iter().filter(|p| !p.children.is_empty()) {
        let children: Vec<&crate::plan::Node> =
            parent.children.iter().map(|&i| &plan.nodes[i]).collect();
        let cols: Vec<Vec<Option<f64>>> = children
            .iter()
            .map(|c| values(&rows, &c.id))
            .collect::<PolarsResult<_>>()?;
        let p = values(&rows, &parent.id)?;
        let child_level = children[0].level.as_str();
        // The parent: alpha and the first principal component of its children.
        let a = cronbach_alpha(&cols);
        let share = weight::pca(&cols, false).ok().map(|p| p.variance_share);
        let complete = (0..rows.height())
            .filter(|&r| cols.iter().all(|c| c[r].is_some()))
            .count();
        let low = a.is_some_and(|a| a < LOW_ALPHA);
        if low {
            summary.low_alpha.push(parent.id.clone());
        }
        kind.push("parent");
        level.push(parent.level.as_str());
        node.push(parent.id.clone());
        other.push(None);
        n.push(complete as u32);
        pear.push(None);
        spear.push(None);
        alpha.push(a);
        pc1.push(share);
        flag.push(low.then_some("alpha < 0.7"));
        // Each child with its parent, then each pair of siblings.
        for (c, x) in children.iter().zip(&cols) {
            let (r, count) = pearson(x, &p);
            let against = r.is_some_and(|r| r < 0.0);
            if against {
                summary
                    .against_parent
                    .push(format!("{} in {}", c.id, parent.id));
            }
            kind.push("child_parent");
            level.push(child_level);
            node.push(c.id.clone());
            other.push(Some(parent.id.clone()));
            n.push(count as u32);
            pear.push(r);
            spear.push(spearman(x, &p));
            alpha.push(None);
            pc1.push(None);
            flag.push(against.then_some("negative correlation with its parent"));
        }
        for i in 0..children.len() {
            for j in i + 1..children.len() {
                let (r, count) = pearson(&cols[i], &cols[j]);
                let redundant = r.is_some_and(|r| r.abs() > REDUNDANT);
                if redundant {
                    summary
                        .redundant
                        .push(format!("{} ~ {}", children[i].id, children[j].id));
                }
                kind.push("siblings");
                level.push(child_level);
                node.push(children[i].id.clone());
                other.push(Some(children[j].id.clone()));
                n.push(count as u32);
                pear.push(r);
                spear.push(spearman(&cols[i], &cols[j]));
                alpha.push(None);
                pc1.push(None);
                flag.push(redundant.then_some("redundant (|r| > 0.92)"));
            }
        }
    }
    let height = kind.len();
    let df = DataFrame::new(
        height,
        vec![
            Column::new("kind".into(), kind),
            Column::new("level".into(), level),
            Column::new("node_id".into(), node),
            Column::new("other".into(), other),
            Column::new("n".into(), n),
            Column::new("pearson".into(), pear),
            Column::new("spearman".into(), spear),
            Column::new("cronbach_alpha".into(), alpha),
            Column::new("pc1_share".into(), pc1),
            Column::new("flag".into(), flag),
        ],
    )?;
    Ok((df, summary))
}

/// Median, and the median absolute deviation from it (`v` not empty).
fn median_mad(v: &mut [f64]) -> (f64, f64) {
    let med = stats::median(v).expect("peers have values");
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    (
        med,
        stats::median(&mut dev).expect("as many deviations as values"),
    )
}

/// The `peers` territories closest to each territory on the covariate (itself excluded,
/// ties broken by territory id).
pub fn nearest_peers(ids: &[String], covariate: &[Option<f64>], peers: usize) -> Vec<Vec<usize>> {
    (0..ids.len())
        .map(|t| {
            let Some(x) = covariate[t] else {
                return Vec::new();
            };
            let mut others: Vec<(f64, &str, usize)> = (0..ids.len())
                .filter(|&o| o != t)
                .filter_map(|o| covariate[o].map(|y| ((y - x).abs(), ids[o].as_str(), o)))
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            others.into_iter().take(peers).map(|(_, _, o)| o).collect()
        })
        .collect()
}

/// The scorecard (long) and the per-territory list of strengths and weaknesses; also the
/// territories without a covariate value.
pub fn scorecard(
    plan: &Plan,
    sc: &ScorecardPlan,
    frame: &DataFrame,
    covariate: &Covariate,
) -> PolarsResult<(DataFrame, DataFrame, Vec<String>)> {
    let (rows, year) = latest_year(plan, frame)?;
    let ids: Vec<String> = rows
        .column(TERRITORY_ID)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_owned())
        .collect();
    let names: Vec<String> = rows
        .column(TERRITORY_NAME)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .zip(&ids)
        .map(|(n, id)| n.unwrap_or(id).to_owned())
        .collect();
    let by_year = covariate.keys().any(|(_, y)| y.is_some());
    let cov: Vec<Option<f64>> = ids
        .iter()
        .map(|id| {
            covariate
                .get(&(id.clone(), if by_year { year } else { None }))
                .copied()
        })
        .collect();
    let without: Vec<String> = ids
        .iter()
        .zip(&cov)
        .filter(|(_, c)| c.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let peers = nearest_peers(&ids, &cov, sc.peers);
    let nodes: Vec<&crate::plan::Node> = [
        Level::Index,
        Level::Dimension,
        Level::Component,
        Level::Indicator,
    ]
    .into_iter()
    .filter(|l| sc.levels.contains(l))
    .flat_map(|l| plan.nodes_at(l))
    .collect();
    let columns: HashMap<&str, Vec<Option<f64>>> = nodes
        .iter()
        .map(|n| Ok((n.id.as_str(), values(&rows, &n.id)?)))
        .collect::<PolarsResult<_>>()?;

    let (mut t_id, mut lvl, mut node_id, mut value, mut med, mut mad, mut verdict, mut npeers) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut s_id, mut s_name, mut s_peers, mut s_strengths, mut s_weaknesses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in 0..ids.len() {
        if peers[t].is_empty() {
            continue;
        }
        let (mut strengths, mut weaknesses) = (Vec::new(), Vec::new());
        for n in &nodes {
            let v = &columns[n.id.as_str()];
            let mut pv: Vec<f64> = peers[t].iter().filter_map(|&p| v[p]).collect();
            let Some(x) = v[t] else { continue };
            if pv.is_empty() {
                continue;
            }
            let count = pv.len() as u32;
            let (m, d) = median_mad(&mut pv);
            let judged = if x > m + d {
                strengths.push(n.name.clone());
                "strength"
            } else if x < m - d {
                weaknesses.push(n.name.clone());
                "weakness"
            } else {
                "neutral"
            };
            t_id.push(ids[t].clone());
            lvl.push(n.level.as_str());
            node_id.push(n.id.clone());
            value.push(x);
            med.push(m);
            mad.push(d);
            verdict.push(judged);
            npeers.push(count);
        }
        s_id.push(ids[t].clone());
        s_name.push(names[t].clone());
        s_peers.push(
            peers[t]
                .iter()
                .map(|&p| ids[p].as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
        s_strengths.push(strengths.join("; "));
        s_weaknesses.push(weaknesses.join("; "));
    }
    let long = DataFrame::new(
        t_id.len(),
        vec![
            Column::new(TERRITORY_ID.into(), t_id),
            Column::new("level".into(), lvl),
            Column::new("node_id".into(), node_id),
            Column::new("value".into(), value),
            Column::new("peer_median".into(), med),
            Column::new("peer_mad".into(), mad),
            Column::new("verdict".into(), verdict),
            Column::new("peers".into(), npeers),
        ],
    )?;
    let summary = DataFrame::new(
        s_id.len(),
        vec![
            Column::new(TERRITORY_ID.into(), s_id),
            Column::new(TERRITORY_NAME.into(), s_name),
            Column::new("peers".into(), s_peers),
            Column::new("strengths".into(), s_strengths),
            Column::new("weaknesses".into(), s_weaknesses),
        ],
    )?;
    Ok((long, summary, without))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|x| Some(*x)).collect()
    }

    #[test]
    fn cronbach_alpha_by_hand() {
        // 3 items, 5 respondents. Item variances 2.5, 2.5 and 0 (sum 5); the totals
        // 6, 6, 9, 12, 12 have mean 9 and variance 36/4 = 9.
        // alpha = 3/2 · (1 − 5/9) = 2/3.
        let items = vec![
            some(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            some(&[2.0, 1.0, 3.0, 5.0, 4.0]),
            some(&[3.0, 3.0, 3.0, 3.0, 3.0]),
        ];
        let a = cronbach_alpha(&items).unwrap();
        assert!((a - 2.0 / 3.0).abs() < 1e-12, "{a}");
        // Perfectly parallel items: alpha = 1.
        let parallel = vec![some(&[1.0, 2.0, 4.0]), some(&[2.0, 3.0, 5.0])];
        assert!((cronbach_alpha(&parallel).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn correlations() {
        let x = some(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let y = some(&[2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!((pearson(&x, &y).0.unwrap() - 1.0).abs() < 1e-12);
        // Monotone but not linear: Spearman 1, Pearson below 1.
        let z = some(&[1.0, 4.0, 9.0, 16.0, 100.0]);
        assert!((spearman(&x, &z).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&x, &z).0.unwrap() < 0.95);
        // Ties share their average rank.
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn peers_are_the_nearest_on_the_covariate() {
        let ids: Vec<String> = ["A", "B", "C", "D", "E", "F"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cov = some(&[10.0, 11.0, 13.0, 20.0, 21.0, 40.0]);
        let p = nearest_peers(&ids, &cov, 2);
        assert_eq!(p[0], [1, 2]); // A: B (1), C (3)
        assert_eq!(p[3], [4, 2]); // D: E (1), C (7)
        assert_eq!(p[5], [4, 3]); // F: E (19), D (20)
    }
}
