//! Transforms applied to raw indicator values before rescaling: capping, then the natural log.
//!
//! The same transform applies to fixed goalposts (see [`IndicatorSpec::transform_value`]), so
//! analysts state goalposts in the indicator's own units. Domain errors (log of a value that
//! is not positive) are caught cell by cell at ingest, where the row is still known.

use polars::prelude::*;

use crate::plan::IndicatorSpec;

/// Why a raw value cannot be transformed, if it cannot.
pub fn domain_error(spec: &IndicatorSpec, x: f64) -> Option<String> {
    if spec.log {
        let capped = spec.transform_value(x);
        if !capped.is_finite() {
            let after_cap = if spec.cap_min.is_some() || spec.cap_max.is_some() {
                " after capping"
            } else {
                ""
            };
            return Some(format!(
                "value {x} cannot be log-transformed{after_cap} (log needs a positive value)"
            ));
        }
    }
    None
}

/// The expression turning a raw value column into its transformed value.
pub fn expr(spec: &IndicatorSpec, column: &str) -> Expr {
    let mut e = col(column);
    if let Some(m) = spec.cap_max {
        e = clip_max(e, m);
    }
    if let Some(m) = spec.cap_min {
        e = clip_min(e, m);
    }
    if spec.log {
        e = e.log(lit(std::f64::consts::E));
    }
    e
}

/// `min(e, m)`, nulls kept (polars' own clip needs a feature we otherwise do not use).
pub fn clip_max(e: Expr, m: f64) -> Expr {
    when(e.clone().gt(lit(m))).then(lit(m)).otherwise(e)
}

/// `max(e, m)`, nulls kept.
pub fn clip_min(e: Expr, m: f64) -> Expr {
    when(e.clone().lt(lit(m))).then(lit(m)).otherwise(e)
}
