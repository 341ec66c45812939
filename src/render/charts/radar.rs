//! Radar chart: a territory's component scores (0–100) against the median of its peers.
//! Axis labels are wrapped to two lines and anchored away from the centre, so they do
//! not run into the plot or each other.

use std::f64::consts::PI;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, R, Rect};
use crate::render::style::{self, ACCENT, GRID, INK, MUTED, PEER};

#[derive(Debug)]
pub struct Radar {
    pub axes: Vec<String>,
    pub territory: Vec<Option<f64>>,
    pub peers: Vec<Option<f64>>,
    pub territory_label: String,
    pub peer_label: String,
}

impl Radar {
    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let f = style::font(12.0);
        // Legend.
        c.line(vec![(r.x0, r.y0 + 8), (r.x0 + 24, r.y0 + 8)], ACCENT, 3)?;
        c.text(
            &self.territory_label,
            r.x0 + 32,
            r.y0 + 8,
            &f,
            &INK,
            HPos::Left,
            VPos::Center,
        )?;
        c.line(vec![(r.x0, r.y0 + 28), (r.x0 + 24, r.y0 + 28)], PEER, 2)?;
        c.text(
            &self.peer_label,
            r.x0 + 32,
            r.y0 + 28,
            &f,
            &INK,
            HPos::Left,
            VPos::Center,
        )?;

        let cx = (r.x0 + r.x1) / 2;
        let cy = (r.y0 + 40 + r.y1) / 2 + 10;
        let radius = (((r.y1 - r.y0 - 40) / 2) - 70).min((r.x1 - r.x0) / 2 - 220) as f64;
        let n = self.axes.len();
        let angle = |i: usize| -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
        let at = |i: usize, v: f64| {
            let a = angle(i);
            let d = radius * v.clamp(0.0, 100.0) / 100.0;
            (
                (cx as f64 + d * a.cos()).round() as i32,
                (cy as f64 + d * a.sin()).round() as i32,
            )
        };
        // Rings and spokes.
        let small = style::font(10.0);
        for ring in [25.0, 50.0, 75.0, 100.0] {
            let mut pts: Vec<(i32, i32)> = (0..n).map(|i| at(i, ring)).collect();
            pts.push(pts[0]);
            c.line(pts, GRID, 1)?;
            let (x, y) = at(0, ring);
            c.text(
                &format!("{ring:.0}"),
                x + 4,
                y,
                &small,
                &MUTED,
                HPos::Left,
                VPos::Center,
            )?;
        }
        for i in 0..n {
            c.line(vec![(cx, cy), at(i, 100.0)], GRID, 1)?;
        }
        // Peers, then the territory on top.
        for (values, colour, fill, width) in [
            (&self.peers, PEER, None, 2),
            (&self.territory, ACCENT, Some(ACCENT.mix(0.18)), 3),
        ] {
            let pts: Vec<(i32, i32)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| at(i, v)))
                .collect();
            if pts.len() >= 3
                && let Some(fill) = fill
            {
                c.polygon(pts.clone(), fill)?;
            }
            if pts.len() >= 2 {
                let mut closed = pts.clone();
                closed.push(pts[0]);
                c.line(closed, colour, width)?;
            }
            for p in &pts {
                c.circle(p.0, p.1, 3, colour, true)?;
            }
        }
        // Axis labels with the territory's score.
        let bold = style::bold(12.0);
        for i in 0..n {
            let a = angle(i);
            let (ca, sa) = (a.cos(), a.sin());
            let x = cx + ((radius + 14.0) * ca).round() as i32;
            let y = cy + ((radius + 14.0) * sa).round() as i32;
            let h = if ca > 0.3 {
                HPos::Left
            } else if ca < -0.3 {
                HPos::Right
            } else {
                HPos::Center
            };
            let mut lines = style::wrap(&self.axes[i], &f, 190, 2);
            let value = match self.territory[i] {
                Some(v) => style::score(v),
                None => "no score".into(),
            };
            lines.push(value);
            let height = 15 * lines.len() as i32;
            // Labels above the centre grow upwards, below grow downwards.
            let top = if sa < -0.3 {
                y - height
            } else if sa > 0.3 {
                y
            } else {
                y - height / 2
            };
            for (k, line) in lines.iter().enumerate() {
                let last = k + 1 == lines.len();
                let (font, colour) = if last { (&bold, &ACCENT) } else { (&f, &INK) };
                c.text(
                    line,
                    x,
                    top + 15 * k as i32 + 7,
                    font,
                    colour,
                    h,
                    VPos::Center,
                )?;
            }
        }
        Ok(())
    }
}
