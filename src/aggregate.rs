//! Generates, from the node table, one expression per parent node and one rank per node.
//!
//! Every mean is written in the weighted form over the *present* children, so missing
//! children drop out with their weight:
//! arithmetic `Σw·x / Σw·[x present]`, power `(Σw·x^p / Σw·[x present])^(1/p)`,
//! geometric `exp(Σw·ln x / Σw·[x present])`, harmonic `Σw·[x present] / Σ(w/x)`.
//! The availability rule is evaluated in the same expression from the count of present
//! children, which is also kept (`n:<id>`) so that `write` can say why a score is missing.
//! Levels are generated bottom-up by one function, whatever the depth of the tree.

use polars::prelude::*;

use crate::plan::{Level, Mean, Node, Plan, YEAR};

/// Tolerance for the availability threshold: `min_share · n` built from floats may land a
/// hair above a whole number (e.g. 0.7·10).
const EPS: f64 = 1e-12;

/// Column with the number of present children of a parent node.
pub fn count_column(id: &str) -> String {
    format!("n:{id}")
}

/// Column with the rank of a node.
pub fn rank_column(id: &str) -> String {
    format!("rank:{id}")
}

/// Minimum number of present children for a node with `total` children.
pub fn required_children(min_share: f64, total: usize) -> usize {
    ((min_share * total as f64) - EPS).ceil().max(1.0) as usize
}

/// Adds the score and child-count columns of every level above `from`, bottom-up.
pub fn aggregate(mut lf: LazyFrame, plan: &Plan, from: Level) -> LazyFrame {
    for level in [Level::Component, Level::Dimension, Level::Index] {
        if level <= from {
            continue;
        }
        let exprs: Vec<Expr> = plan
            .nodes_at(level)
            .flat_map(|node| parent_exprs(plan, node))
            .collect();
        if !exprs.is_empty() {
            lf = lf.with_columns(exprs);
        }
    }
    lf
}

/// The score and present-children count of one parent node.
fn parent_exprs(plan: &Plan, node: &Node) -> [Expr; 2] {
    let rule = node.rule.as_ref().expect("parents have a rule");
    let children: Vec<(Expr, f64)> = node
        .children
        .iter()
        .map(|&i| (col(plan.nodes[i].id.as_str()), plan.nodes[i].weight))
        .collect();
    let present = |e: &Expr| e.clone().is_not_null().cast(DataType::Float64);
    let n = sum(children.iter().map(|(e, _)| present(e)));
    let weight_present = sum(children.iter().map(|(e, w)| present(e) * lit(*w)));
    // Zero-weight children would turn 0·ln(0) or 0·∞ into NaN: they take no part in the mean.
    let weighted = children.iter().filter(|(_, w)| *w > 0.0);
    let score = match rule.mean {
        Mean::Arithmetic => {
            sum(weighted.map(|(e, w)| (e.clone() * lit(*w)).fill_null(lit(0.0))))
                / weight_present.clone()
        }
        Mean::Power(p) => {
            (sum(weighted.map(|(e, w)| (e.clone().pow(lit(p)) * lit(*w)).fill_null(lit(0.0))))
                / weight_present.clone())
            .pow(lit(1.0 / p))
        }
        Mean::Geometric => (sum(weighted.map(|(e, w)| {
            (e.clone().log(lit(std::f64::consts::E)) * lit(*w)).fill_null(lit(0.0))
        })) / weight_present.clone())
        .exp(),
        Mean::Harmonic => {
            weight_present.clone()
                / sum(weighted.map(|(e, w)| (lit(*w) / e.clone()).fill_null(lit(0.0))))
        }
    };
    let required = required_children(rule.min_share, children.len()) as f64;
    let available = n
        .clone()
        .gt_eq(lit(required))
        .and(weight_present.gt(lit(0.0)));
    [
        when(available)
            .then(score)
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias(node.id.as_str()),
        n.cast(DataType::UInt32).alias(count_column(&node.id)),
    ]
}

fn sum(terms: impl Iterator<Item = Expr>) -> Expr {
    terms.reduce(|a, b| a + b).unwrap_or_else(|| lit(0.0))
}

/// One rank column per node: 1 = best, ties share the best rank, per year when there are years.
pub fn ranks(plan: &Plan) -> Vec<Expr> {
    plan.nodes
        .iter()
        .map(|node| {
            let r = col(node.id.as_str()).rank(
                RankOptions {
                    method: RankMethod::Min,
                    descending: true,
                },
                None,
            );
            let r = if plan.has_years() {
                r.over([col(YEAR)]).expect("a column window is valid")
            } else {
                r
            };
            r.cast(DataType::UInt32).alias(rank_column(&node.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_children_rounds_up_with_tolerance() {
        assert_eq!(required_children(0.5, 4), 2);
        assert_eq!(required_children(0.5, 3), 2);
        assert_eq!(required_children(0.7, 10), 7);
        assert_eq!(required_children(0.0, 4), 1);
        assert_eq!(required_children(1.0, 6), 6);
        assert_eq!(required_children(1.0 / 3.0 * 3.0 / 3.0, 3), 1);
    }
}
