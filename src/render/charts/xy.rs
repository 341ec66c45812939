//! Charts on two numeric axes: the index against a covariate (scatter with a fitted
//! curve and labels for the notable territories) and scores over the years (trend).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, Placer, R, Rect, Scale};
use crate::render::style::{self, ACCENT, GRID, INK, MUTED};

/// Left and bottom axes with grid lines and titles.
#[allow(clippy::too_many_arguments)]
fn axes<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    plot: Rect,
    xs: &Scale,
    ys: &Scale,
    x_ticks: &[f64],
    x_label: &dyn Fn(f64) -> String,
    x_title: &str,
    y_title: &str,
) -> R<DB> {
    let f = style::font(11.0);
    let y_ticks = ys.ticks(6);
    let y_label = style::tick_labels(&y_ticks);
    for t in y_ticks {
        let y = ys.px(t);
        c.line(vec![(plot.x0, y), (plot.x1, y)], GRID, 1)?;
        c.text(
            &y_label(t),
            plot.x0 - 6,
            y,
            &f,
            &MUTED,
            HPos::Right,
            VPos::Center,
        )?;
    }
    for &t in x_ticks {
        let x = xs.px(t);
        c.line(vec![(x, plot.y0), (x, plot.y1)], GRID, 1)?;
        c.text(
            &x_label(t),
            x,
            plot.y1 + 6,
            &f,
            &MUTED,
            HPos::Center,
            VPos::Top,
        )?;
    }
    c.line(vec![(plot.x0, plot.y1), (plot.x1, plot.y1)], MUTED, 1)?;
    c.line(vec![(plot.x0, plot.y0), (plot.x0, plot.y1)], MUTED, 1)?;
    let t = style::font(13.0);
    c.text(
        x_title,
        (plot.x0 + plot.x1) / 2,
        plot.y1 + 26,
        &t,
        &INK,
        HPos::Center,
        VPos::Top,
    )?;
    let y_title = style::fit(y_title, &t, plot.y1 - plot.y0);
    let w = style::width(&y_title, &t);
    c.text_up(
        &y_title,
        plot.x0 - 52,
        (plot.y0 + plot.y1) / 2 + w / 2,
        &t,
        &INK,
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Point {
    pub label: String,
    pub x: f64,
    pub y: f64,
    /// Index into `Scatter::groups` (0 when there is no legend).
    pub group: usize,
    /// Labelled first and in the accent colour (profiled territories).
    pub highlight: bool,
    /// Whether to try to label it (extremes, profiled territories).
    pub labelled: bool,
}

/// y = a + b·t(x), t = ln when the x axis is logarithmic.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub a: f64,
    pub b: f64,
    pub r2: f64,
}

#[derive(Debug)]
pub struct Scatter {
    pub points: Vec<Point>,
    /// Legend entries (colours by group); empty for one colour.
    pub groups: Vec<String>,
    pub x_title: String,
    pub y_title: String,
    pub log_x: bool,
    pub x_domain: (f64, f64),
    pub y_domain: (f64, f64),
    pub fit: Option<Fit>,
}

impl Scatter {
    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let legend_h = if self.groups.is_empty() { 0 } else { 26 };
        let plot = Rect {
            x0: r.x0 + 70,
            y0: r.y0 + legend_h + 8,
            x1: r.x1 - 10,
            y1: r.y1 - 50,
        };
        let xs = if self.log_x {
            Scale::log(self.x_domain, (plot.x0, plot.x1))
        } else {
            Scale::linear(self.x_domain, (plot.x0, plot.x1))
        };
        let ys = Scale::linear(self.y_domain, (plot.y1, plot.y0));
        let x_ticks = xs.ticks(8);
        axes(
            c,
            plot,
            &xs,
            &ys,
            &x_ticks,
            &style::tick,
            &self.x_title,
            &self.y_title,
        )?;
        // Legend.
        let f = style::font(12.0);
        let mut x = r.x0 + 70;
        for (k, g) in self.groups.iter().enumerate() {
            c.circle(x + 5, r.y0 + 9, 5, style::category(k), true)?;
            c.text(g, x + 14, r.y0 + 9, &f, &INK, HPos::Left, VPos::Center)?;
            x += 14 + style::width(g, &f) + 20;
        }
        // Fitted curve.
        if let Some(fit) = self.fit {
            let pts: Vec<(i32, i32)> = (0..=200)
                .map(|i| {
                    let t = i as f64 / 200.0;
                    let xv = if self.log_x {
                        (self.x_domain.0.ln() + t * (self.x_domain.1.ln() - self.x_domain.0.ln()))
                            .exp()
                    } else {
                        self.x_domain.0 + t * (self.x_domain.1 - self.x_domain.0)
                    };
                    let tv = if self.log_x { xv.ln() } else { xv };
                    (
                        xs.px(xv),
                        ys.px((fit.a + fit.b * tv).clamp(self.y_domain.0, self.y_domain.1)),
                    )
                })
                .collect();
            c.line(pts, MUTED, 2)?;
        }
        // Points, then labels (profiled territories first), avoiding each other.
        let mut placer = Placer::default();
        for p in &self.points {
            let (px, py) = (xs.px(p.x), ys.px(p.y));
            let colour = if p.highlight {
                ACCENT
            } else if self.groups.is_empty() {
                style::BAR
            } else {
                style::category(p.group)
            };
            c.circle(
                px,
                py,
                if p.highlight { 5 } else { 4 },
                colour.mix(0.85),
                true,
            )?;
            placer.block(Rect {
                x0: px - 3,
                y0: py - 3,
                x1: px + 3,
                y1: py + 3,
            });
        }
        let small = style::font(11.0);
        let mut order: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.labelled || p.highlight)
            .collect();
        order.sort_by_key(|p| !p.highlight);
        for p in order {
            let (px, py) = (xs.px(p.x), ys.px(p.y));
            let text = style::fit(&p.label, &small, 180);
            let w = style::width(&text, &small);
            let h = 14;
            let candidates = [
                Rect {
                    x0: px + 7,
                    y0: py - h / 2,
                    x1: px + 7 + w,
                    y1: py + h / 2,
                },
                Rect {
                    x0: px - 7 - w,
                    y0: py - h / 2,
                    x1: px - 7,
                    y1: py + h / 2,
                },
                Rect {
                    x0: px - w / 2,
                    y0: py - 6 - h,
                    x1: px + w / 2 + 1,
                    y1: py - 6,
                },
                Rect {
                    x0: px - w / 2,
                    y0: py + 6,
                    x1: px + w / 2 + 1,
                    y1: py + 6 + h,
                },
            ];
            if let Some(b) = placer.place(candidates, plot) {
                let colour = if p.highlight { ACCENT } else { INK };
                c.text(
                    &text,
                    b.x0,
                    (b.y0 + b.y1) / 2,
                    &small,
                    &colour,
                    HPos::Left,
                    VPos::Center,
                )?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
    /// None: a background line (all territories), drawn thin and grey, unlabelled.
    pub colour: Option<RGBColor>,
    pub width: u32,
}

#[derive(Debug)]
pub struct Trend {
    pub years: Vec<i64>,
    pub series: Vec<Series>,
    pub y_title: String,
    pub y_domain: (f64, f64),
}

impl Trend {
    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let f = style::font(12.0);
        let label_w = self
            .series
            .iter()
            .filter(|s| s.colour.is_some())
            .map(|s| style::width(&s.label, &f).min(220))
            .max()
            .unwrap_or(0);
        let plot = Rect {
            x0: r.x0 + 70,
            y0: r.y0 + 8,
            x1: r.x1 - label_w - 24,
            y1: r.y1 - 50,
        };
        let (first, last) = (
            *self.years.first().unwrap_or(&0) as f64,
            *self.years.last().unwrap_or(&0) as f64,
        );
        let xs = Scale::linear((first - 0.25, last + 0.25), (plot.x0, plot.x1));
        let ys = Scale::linear(self.y_domain, (plot.y1, plot.y0));
        let ticks: Vec<f64> = self.years.iter().map(|&y| y as f64).collect();
        axes(
            c,
            plot,
            &xs,
            &ys,
            &ticks,
            &|t| format!("{t:.0}"),
            "year",
            &self.y_title,
        )?;
        // Background lines first, then coloured ones.
        let mut ends: Vec<(i32, String, RGBColor)> = Vec::new();
        for background in [true, false] {
            for s in self
                .series
                .iter()
                .filter(|s| s.colour.is_none() == background)
            {
                let colour = s.colour.unwrap_or(RGBColor(200, 205, 210));
                // Consecutive years with values are joined; a gap breaks the line.
                let mut run: Vec<(i32, i32)> = Vec::new();
                for (y, v) in self.years.iter().zip(&s.values) {
                    match v {
                        Some(v) => run.push((xs.px(*y as f64), ys.px(*v))),
                        None => {
                            if run.len() > 1 {
                                c.line(std::mem::take(&mut run), colour, s.width)?;
                            }
                            run.clear();
                        }
                    }
                }
                if s.colour.is_some() {
                    for (y, v) in self.years.iter().zip(&s.values) {
                        if let Some(v) = v {
                            c.circle(xs.px(*y as f64), ys.px(*v), 3, colour, true)?;
                        }
                    }
                    if let Some(v) = s.values.iter().rev().flatten().next() {
                        ends.push((ys.px(*v), s.label.clone(), colour));
                    }
                }
                if run.len() > 1 {
                    c.line(run, colour, s.width)?;
                }
            }
        }
        // End labels, pushed apart vertically so that none overlap.
        ends.sort_by_key(|e| e.0);
        let mut placed: Vec<i32> = Vec::new();
        for (y, _, _) in &ends {
            let y = match placed.last() {
                Some(&p) if *y < p + 15 => p + 15,
                _ => *y,
            };
            placed.push(y);
        }
        let overflow = placed.last().map_or(0, |&y| (y - plot.y1).max(0));
        for ((_, label, colour), y) in ends.iter().zip(placed) {
            let y = y - overflow;
            c.text(
                &style::fit(label, &f, 220),
                plot.x1 + 10,
                y,
                &f,
                colour,
                HPos::Left,
                VPos::Center,
            )?;
        }
        Ok(())
    }
}
