//! Dot plot comparing a few territories: one row per node (the components, under the index
//! and dimensions), a coloured dot per territory on a 0–100 scale, and in grey the median
//! of each territory's group, so that "better than its peers" reads at a glance.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, R, Rect};
use crate::render::style::{self, CATEGORICAL, GRID, INK, MUTED, PEER};

#[derive(Debug)]
pub struct Dots {
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// One series per territory: its label and a value per row.
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// Per territory, the median of its group per row (drawn in grey).
    pub medians: Vec<Vec<Option<f64>>>,
    pub median_label: String,
}

const ROW: i32 = 26;
const LABEL: i32 = 230;

impl Dots {
    pub fn height(&self) -> i32 {
        // Title and subtitle, the legend, the rows, the scale under them.
        90 + 20 * (self.series.len() as i32 + 1) + 34 + ROW * self.rows.len() as i32 + 30
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let f = style::font(12.0);
        // Legend: one line per territory, then the medians.
        let mut y = r.y0 + 8;
        for (k, (label, _)) in self.series.iter().enumerate() {
            let colour = CATEGORICAL[k % CATEGORICAL.len()];
            c.circle(r.x0 + 8, y, 5, colour, true)?;
            c.text(label, r.x0 + 20, y, &f, &INK, HPos::Left, VPos::Center)?;
            y += 20;
        }
        c.circle(r.x0 + 8, y, 4, PEER, false)?;
        c.text(
            &self.median_label,
            r.x0 + 20,
            y,
            &f,
            &INK,
            HPos::Left,
            VPos::Center,
        )?;
        let top = y + 34;
        let (x0, x1) = (r.x0 + LABEL, r.x1 - 20);
        let x = |v: f64| x0 + ((x1 - x0) as f64 * v.clamp(0.0, 100.0) / 100.0).round() as i32;
        let bottom = top + ROW * self.rows.len() as i32;
        // Scale.
        let small = style::font(10.0);
        for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
            c.line(vec![(x(tick), top - 6), (x(tick), bottom)], GRID, 1)?;
            c.text(
                &format!("{tick:.0}"),
                x(tick),
                bottom + 12,
                &small,
                &MUTED,
                HPos::Center,
                VPos::Center,
            )?;
        }
        for (i, row) in self.rows.iter().enumerate() {
            let cy = top + ROW * i as i32 + ROW / 2;
            let label = style::fit(row, &f, LABEL - 16);
            c.text(&label, x0 - 10, cy, &f, &INK, HPos::Right, VPos::Center)?;
            c.line(vec![(x0, cy), (x1, cy)], GRID, 1)?;
            // Each territory's group median (a grey ring), tied to the territory's dot by a
            // faint line of its colour, so that several medians on a row stay readable;
            // then the territories on top.
            // Territories sit a few pixels apart within the row, so equal scores stay
            // visible.
            let n = self.series.len() as i32;
            let lane = |k: usize| cy + (2 * k as i32 - (n - 1)) * 3;
            for (k, m) in self.medians.iter().enumerate() {
                let colour = CATEGORICAL[k % CATEGORICAL.len()];
                let own = self.series[k].1.get(i).copied().flatten();
                if let Some(v) = m.get(i).copied().flatten() {
                    if let Some(t) = own {
                        c.line(vec![(x(t), lane(k)), (x(v), lane(k))], colour.mix(0.35), 2)?;
                    }
                    c.circle(x(v), lane(k), 4, PEER, false)?;
                }
            }
            for (k, (_, values)) in self.series.iter().enumerate() {
                if let Some(v) = values.get(i).copied().flatten() {
                    let colour = CATEGORICAL[k % CATEGORICAL.len()];
                    c.circle(x(v), lane(k), 5, colour, true)?;
                }
            }
        }
        Ok(())
    }
}
