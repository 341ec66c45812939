//! Heatmap: territories (rows, in rank order) × components (columns, grouped by
//! dimension), one colour per score on a viridis scale with its legend. Column names are
//! written upwards so that any number of components stays legible.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, R, Rect};
use crate::render::charts::bars::Row;
use crate::render::style::{self, INK, MUTED, NO_DATA};

pub const ROW: i32 = 18;

#[derive(Debug)]
pub struct Heatmap {
    pub columns: Vec<String>,
    /// Dimension name and how many columns it spans, left to right.
    pub groups: Vec<(String, usize)>,
    pub rows: Vec<Row>,
    pub values: Vec<Vec<Option<f64>>>,
    pub domain: (f64, f64),
}

impl Heatmap {
    fn header(&self) -> i32 {
        let f = style::font(11.0);
        let longest = self
            .columns
            .iter()
            .map(|c| style::width(c, &f))
            .max()
            .unwrap_or(0);
        22 + longest.min(250) + 10
    }

    pub fn height(&self) -> i32 {
        super::TOP + self.header() + self.rows.len() as i32 * ROW + 70
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        let f = style::font(11.0);
        let label_w = self
            .rows
            .iter()
            .map(|row| style::width(&format!("{}  {}", row.rank.unwrap_or(0), row.label), &f))
            .max()
            .unwrap_or(0)
            .min(320);
        let x0 = r.x0 + label_w + 10;
        let n = self.columns.len().max(1) as i32;
        let cell = ((r.x1 - x0) / n).min(90);
        let header = self.header();
        let y0 = r.y0 + header;
        // Dimension bands and column names.
        let mut col = 0;
        for (k, (name, span)) in self.groups.iter().enumerate() {
            let (a, b) = (x0 + col as i32 * cell, x0 + (col + span) as i32 * cell);
            c.rect(a + 1, r.y0, b - 1, r.y0 + 16, style::category(k), true)?;
            let text = style::fit(name, &f, b - a - 6);
            c.text(
                &text,
                (a + b) / 2,
                r.y0 + 8,
                &f,
                &style::text_on(style::category(k)),
                HPos::Center,
                VPos::Center,
            )?;
            col += span;
        }
        for (j, name) in self.columns.iter().enumerate() {
            let x = x0 + j as i32 * cell + cell / 2;
            let text = style::fit(name, &f, header - 32);
            c.text_up(&text, x, y0 - 6, &f, &INK)?;
        }
        // Cells.
        let span = (self.domain.1 - self.domain.0).max(1e-9);
        for (i, (row, values)) in self.rows.iter().zip(&self.values).enumerate() {
            let y = y0 + i as i32 * ROW;
            let label = format!(
                "{}  {}",
                row.rank.map_or(String::new(), |k| k.to_string()),
                row.label
            );
            c.text(
                &style::fit(&label, &f, label_w),
                x0 - 8,
                y + ROW / 2,
                &f,
                &INK,
                HPos::Right,
                VPos::Center,
            )?;
            for (j, v) in values.iter().enumerate() {
                let x = x0 + j as i32 * cell;
                let colour = match v {
                    Some(v) => style::viridis((v - self.domain.0) / span),
                    None => NO_DATA,
                };
                c.rect(x, y, x + cell - 1, y + ROW - 1, colour, true)?;
                let text = v.map_or("–".to_string(), |v| format!("{v:.0}"));
                c.text(
                    &text,
                    x + cell / 2,
                    y + ROW / 2,
                    &f,
                    &style::text_on(colour),
                    HPos::Center,
                    VPos::Center,
                )?;
            }
        }
        // Legend: the colour scale, and the colour of missing scores.
        let ly = y0 + self.rows.len() as i32 * ROW + 22;
        let (la, lb) = (x0, x0 + 300);
        for x in la..lb {
            let t = (x - la) as f64 / (lb - la) as f64;
            c.rect(x, ly, x + 1, ly + 12, style::viridis(t), true)?;
        }
        c.text(
            &style::score(self.domain.0),
            la,
            ly + 16,
            &f,
            &MUTED,
            HPos::Left,
            VPos::Top,
        )?;
        c.text(
            &style::score(self.domain.1),
            lb,
            ly + 16,
            &f,
            &MUTED,
            HPos::Right,
            VPos::Top,
        )?;
        c.text(
            "score",
            (la + lb) / 2,
            ly + 16,
            &f,
            &MUTED,
            HPos::Center,
            VPos::Top,
        )?;
        c.rect(lb + 30, ly, lb + 50, ly + 12, NO_DATA, true)?;
        c.text(
            "no score",
            lb + 56,
            ly + 6,
            &f,
            &INK,
            HPos::Left,
            VPos::Center,
        )?;
        Ok(())
    }
}
