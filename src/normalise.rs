//! Rescales transformed indicator values to 0–100 between dystopia (0) and utopia (100).
//!
//! Two phases, kept apart on purpose: [`goalposts`] needs one pass of global statistics
//! (min/max across all territories and years for `observed` goalposts), while
//! [`rescale`] is a pure per-row expression. Fixed goalposts need no global pass, so
//! territories stay independent — the seam for partitioned runs later.

use polars::prelude::*;
use serde::Serialize;

use crate::config::Direction;
use crate::diagnostic::{Location, Problem, Problems};
use crate::plan::{Goalposts, Plan};
use crate::transform;

#[derive(Debug, thiserror::Error)]
pub enum NormaliseError {
    #[error("{0}")]
    Problems(Problems),
    #[error("computing observed goalposts: {0}")]
    Polars(#[from] PolarsError),
}

/// The goalposts an indicator is rescaled with, on the transformed scale.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedGoalposts {
    pub indicator: String,
    pub kind: &'static str,
    /// In the indicator's units (for observed goalposts on a log scale: back-transformed).
    pub utopia: f64,
    pub dystopia: f64,
    /// After the indicator's transform; these enter the formula.
    pub utopia_transformed: f64,
    pub dystopia_transformed: f64,
}

/// Resolves every indicator's goalposts; observed ones from one pass over `lf`.
pub fn goalposts(lf: &LazyFrame, plan: &Plan) -> Result<Vec<ResolvedGoalposts>, NormaliseError> {
    let observed: Vec<_> = plan
        .indicators()
        .filter(|(_, s)| s.goalposts == Goalposts::Observed)
        .collect();
    let stats = if observed.is_empty() {
        None
    } else {
        let mut exprs = Vec::new();
        for (node, spec) in &observed {
            let t = transform::expr(spec, &Plan::raw_column(&node.id));
            exprs.push(t.clone().min().alias(format!("min:{}", node.id)));
            exprs.push(t.max().alias(format!("max:{}", node.id)));
        }
        Some(lf.clone().select(exprs).collect()?)
    };
    let stat = |name: String| -> Option<f64> {
        stats
            .as_ref()
            .and_then(|df| df.column(&name).ok())
            .and_then(|c| c.f64().ok().and_then(|v| v.get(0)))
    };

    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (node, spec) in plan.indicators() {
        let resolved = match spec.goalposts {
            Goalposts::Fixed { utopia, dystopia } => ResolvedGoalposts {
                indicator: node.id.clone(),
                kind: "fixed",
                utopia,
                dystopia,
                utopia_transformed: spec.transform_value(utopia),
                dystopia_transformed: spec.transform_value(dystopia),
            },
            Goalposts::Observed => {
                let (Some(lo), Some(hi)) = (
                    stat(format!("min:{}", node.id)),
                    stat(format!("max:{}", node.id)),
                ) else {
                    problems.push(Problem::new(
                        spec.declared_at.clone(),
                        format!("indicator \"{}\" has no values, so its observed goalposts are undefined", node.id),
                    ));
                    continue;
                };
                if lo == hi {
                    problems.push(
                        Problem::new(
                            spec.declared_at.clone(),
                            format!(
                                "indicator \"{}\": utopia equals dystopia (every observed value is {}), so it cannot be rescaled",
                                node.id,
                                if spec.log { lo.exp() } else { lo }
                            ),
                        )
                        .with_help("give fixed utopia/dystopia, or drop the indicator"),
                    );
                    continue;
                }
                let (ut, dt) = match spec.direction {
                    Direction::HigherIsBetter => (hi, lo),
                    Direction::LowerIsBetter => (lo, hi),
                };
                let back = |v: f64| if spec.log { v.exp() } else { v };
                ResolvedGoalposts {
                    indicator: node.id.clone(),
                    kind: "observed",
                    utopia: back(ut),
                    dystopia: back(dt),
                    utopia_transformed: ut,
                    dystopia_transformed: dt,
                }
            }
        };
        out.push(resolved);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(NormaliseError::Problems(Problems(problems)))
    }
}

/// One column per indicator, named by its id: `100·(t(x) − d)/(u − d)`, optionally clipped.
///
/// The one formula covers both directions: for lower-is-better indicators utopia < dystopia.
pub fn rescale(plan: &Plan, goalposts: &[ResolvedGoalposts]) -> Vec<Expr> {
    plan.indicators()
        .zip(goalposts)
        .map(|((node, spec), g)| {
            debug_assert_eq!(node.id, g.indicator);
            let t = transform::expr(spec, &Plan::raw_column(&node.id));
            // Divided first: at x = utopia the ratio is exactly 1, hence exactly 100
            // (100·(t − d) rounds before the division, and can land 1 ulp above 100).
            let span = g.utopia_transformed - g.dystopia_transformed;
            let mut e = (t - lit(g.dystopia_transformed)) / lit(span) * lit(100.0);
            if plan.clip {
                e = transform::clip_max(transform::clip_min(e, 0.0), 100.0);
            }
            e.alias(node.id.as_str())
        })
        .collect()
}

/// Counts of rescaled values outside [0, 100] per indicator (only possible without clipping).
pub fn out_of_range(df: &DataFrame, plan: &Plan) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (node, _) in plan.indicators() {
        let Ok(c) = df.column(&node.id).and_then(|c| c.f64().cloned()) else {
            continue;
        };
        let below = c.iter().flatten().filter(|&v| v < 0.0).count();
        let above = c.iter().flatten().filter(|&v| v > 100.0).count();
        if below + above > 0 {
            out.push((node.id.clone(), below, above));
        }
    }
    out
}

/// Where an indicator is declared, for errors found after rescaling.
pub fn declared_at(plan: &Plan, id: &str) -> Location {
    plan.indicators()
        .find(|(n, _)| n.id == id)
        .map_or(Location::Nowhere, |(_, s)| s.declared_at.clone())
}
