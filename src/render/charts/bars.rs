//! Horizontal bar charts, one row per territory, sorted: rankings of a score, relational
//! capability with its interval, and stacked dimension contributions. Labels never
//! overlap: rows are 20 px apart, names are shortened with an ellipsis to the label
//! column, and long lists are split into pages by the pack.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, R, Rect, Scale};
use crate::render::style::{self, ACCENT, BAR, GRID, INK, MUTED};

pub const ROW: i32 = 20;
/// Axis labels above the rows.
const AXIS: i32 = 26;

#[derive(Debug, Clone)]
pub struct Row {
    pub rank: Option<u32>,
    pub label: String,
    pub highlight: bool,
}

/// Rank and name columns; returns the x where bars start.
fn labels<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    rows: &[Row],
    r: Rect,
    max_label: i32,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let f = style::font(12.0);
    let fb = style::bold(12.0);
    let rank_w = rows
        .iter()
        .filter_map(|row| row.rank)
        .map(|k| style::width(&format!("{k}"), &f))
        .max()
        .unwrap_or(0)
        + 10;
    let name_w = rows
        .iter()
        .map(|row| style::width(&row.label, &f))
        .max()
        .unwrap_or(0)
        .min(max_label);
    let bars_x = r.x0 + rank_w + name_w + 12;
    for (i, row) in rows.iter().enumerate() {
        let y = r.y0 + AXIS + i as i32 * ROW + ROW / 2;
        if i % 2 == 1 {
            c.rect(
                r.x0,
                y - ROW / 2,
                r.x1,
                y + ROW / 2,
                RGBColor(248, 249, 250),
                true,
            )?;
        }
        if let Some(k) = row.rank {
            c.text(
                &format!("{k}"),
                r.x0 + rank_w - 10,
                y,
                &f,
                &MUTED,
                HPos::Right,
                VPos::Center,
            )?;
        }
        let font = if row.highlight { &fb } else { &f };
        let colour = if row.highlight { ACCENT } else { INK };
        c.text(
            &style::fit(&row.label, font, name_w),
            bars_x - 8,
            y,
            font,
            &colour,
            HPos::Right,
            VPos::Center,
        )?;
    }
    Ok(bars_x)
}

/// Vertical grid lines with their values above the rows.
fn axis<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    s: &Scale,
    ticks: &[f64],
    r: Rect,
    rows: usize,
    fmt: impl Fn(f64) -> String,
) -> R<DB> {
    let f = style::font(11.0);
    let bottom = r.y0 + AXIS + rows as i32 * ROW;
    for &t in ticks {
        let x = s.px(t);
        c.line(vec![(x, r.y0 + AXIS - 4), (x, bottom)], GRID, 1)?;
        c.text(
            &fmt(t),
            x,
            r.y0 + AXIS - 8,
            &f,
            &MUTED,
            HPos::Center,
            VPos::Bottom,
        )?;
    }
    Ok(())
}

/// A ranking: one bar per territory.
#[derive(Debug)]
pub struct Bars {
    pub rows: Vec<Row>,
    pub values: Vec<Option<f64>>,
    pub domain: (f64, f64),
}

impl Bars {
    pub fn height(&self) -> i32 {
        super::TOP + AXIS + self.rows.len() as i32 * ROW + 16
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let x0 = labels(c, &self.rows, r, 380)?;
        let s = Scale::linear(self.domain, (x0, r.x1 - 48));
        let ticks = s.ticks(5);
        axis(
            c,
            &s,
            &ticks,
            r,
            self.rows.len(),
            style::tick_labels(&ticks),
        )?;
        let f = style::font(11.0);
        let zero = s.px(self.domain.0.max(0.0).min(self.domain.1));
        for (i, (row, v)) in self.rows.iter().zip(&self.values).enumerate() {
            let y = r.y0 + AXIS + i as i32 * ROW + ROW / 2;
            match v {
                Some(v) => {
                    let x = s.px(*v);
                    let colour = if row.highlight { ACCENT } else { BAR };
                    c.rect(
                        zero.min(x),
                        y - 7,
                        zero.max(x).max(zero.min(x) + 1),
                        y + 7,
                        colour,
                        true,
                    )?;
                    c.text(
                        &style::score(*v),
                        x.max(zero) + 4,
                        y,
                        &f,
                        &INK,
                        HPos::Left,
                        VPos::Center,
                    )?;
                }
                None => c.text(
                    "no score",
                    zero + 4,
                    y,
                    &f,
                    &MUTED,
                    HPos::Left,
                    VPos::Center,
                )?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Interval {
    pub mean: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub small: bool,
    pub respondents: u32,
}

/// Relational capability: mean and confidence interval per territory.
#[derive(Debug)]
pub struct Intervals {
    pub rows: Vec<Row>,
    pub values: Vec<Interval>,
    pub domain: (f64, f64),
}

impl Intervals {
    pub fn height(&self) -> i32 {
        super::TOP + AXIS + self.rows.len() as i32 * ROW + 16
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let x0 = labels(c, &self.rows, r, 300)?;
        let f = style::font(11.0);
        let text_w = style::width("0.000 [0.000, 0.000]  n = 00000 †", &f);
        let s = Scale::linear(self.domain, (x0 + 8, r.x1 - text_w - 12));
        let ticks = s.ticks(6);
        axis(
            c,
            &s,
            &ticks,
            r,
            self.rows.len(),
            style::tick_labels(&ticks),
        )?;
        for (i, (row, v)) in self.rows.iter().zip(&self.values).enumerate() {
            let y = r.y0 + AXIS + i as i32 * ROW + ROW / 2;
            let colour = if row.highlight { ACCENT } else { BAR };
            if let Some((lo, hi)) = v.ci {
                let (a, b) = (s.px(lo), s.px(hi));
                c.line(vec![(a, y), (b, y)], colour, 2)?;
                c.line(vec![(a, y - 4), (a, y + 4)], colour, 1)?;
                c.line(vec![(b, y - 4), (b, y + 4)], colour, 1)?;
            }
            if let Some(m) = v.mean {
                c.circle(s.px(m), y, 4, colour, !v.small)?;
                if v.small {
                    c.circle(s.px(m), y, 4, WHITE, true)?;
                    c.circle(s.px(m), y, 4, colour, false)?;
                }
            }
            let text = match (v.mean, v.ci) {
                (Some(m), Some((lo, hi))) => {
                    format!("{m:.3} [{lo:.3}, {hi:.3}]  n = {}", v.respondents)
                }
                (Some(m), None) => format!("{m:.3}  n = {}", v.respondents),
                _ => format!("no score  n = {}", v.respondents),
            };
            let text = if v.small { format!("{text} †") } else { text };
            c.text(&text, r.x1 - text_w, y, &f, &INK, HPos::Left, VPos::Center)?;
        }
        Ok(())
    }
}

/// Stacked bars: each territory's score split into parts (e.g. dimension contributions).
#[derive(Debug)]
pub struct Stacked {
    pub rows: Vec<Row>,
    pub parts: Vec<Vec<Option<f64>>>,
    pub part_names: Vec<String>,
    pub domain: (f64, f64),
    /// Digits after the decimal point in the total label.
    pub digits: usize,
}

impl Stacked {
    pub fn height(&self) -> i32 {
        super::TOP + 28 + AXIS + self.rows.len() as i32 * ROW + 16
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        // Legend first, on its own line.
        let f = style::font(12.0);
        let mut x = r.x0;
        for (k, name) in self.part_names.iter().enumerate() {
            c.rect(x, r.y0 + 2, x + 14, r.y0 + 16, style::category(k), true)?;
            c.text(name, x + 20, r.y0 + 9, &f, &INK, HPos::Left, VPos::Center)?;
            x += 20 + style::width(name, &f) + 24;
        }
        let r = Rect { y0: r.y0 + 28, ..r };
        let x0 = labels(c, &self.rows, r, 320)?;
        let s = Scale::linear(self.domain, (x0, r.x1 - 56));
        let digits = self.digits;
        let ticks = s.ticks(5);
        axis(
            c,
            &s,
            &ticks,
            r,
            self.rows.len(),
            style::tick_labels(&ticks),
        )?;
        let small = style::font(11.0);
        for (i, parts) in self.parts.iter().enumerate() {
            let y = r.y0 + AXIS + i as i32 * ROW + ROW / 2;
            let mut acc = 0.0;
            for (k, p) in parts.iter().enumerate() {
                let Some(p) = p else { continue };
                let (a, b) = (s.px(acc), s.px(acc + p));
                if b > a {
                    c.rect(a, y - 7, b, y + 7, style::category(k), true)?;
                }
                acc += p;
            }
            if parts.iter().any(Option::is_some) {
                c.text(
                    &format!("{acc:.digits$}"),
                    s.px(acc) + 4,
                    y,
                    &small,
                    &INK,
                    HPos::Left,
                    VPos::Center,
                )?;
            } else {
                c.text(
                    "no score",
                    s.px(0.0) + 4,
                    y,
                    &small,
                    &MUTED,
                    HPos::Left,
                    VPos::Center,
                )?;
            }
        }
        Ok(())
    }
}
