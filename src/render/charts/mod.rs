//! Charts as data (`Figure`), drawn by one generic function per kind onto any plotters
//! backend: once to SVG, once to a bitmap that becomes the PNG. Each figure is laid out
//! from its content (rows, labels measured with the bundled font), so the two files show
//! the same picture, and the same figure always gives the same bytes.

pub mod bars;
pub mod dots;
pub mod heatmap;
pub mod map;
pub mod radar;
pub mod xy;

use plotters::coord::Shift;
use plotters::element::{Circle, PathElement, Polygon, Rectangle, Text};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, INK, MUTED};

pub const WIDTH: u32 = 1200;
pub const MARGIN: i32 = 28;
/// Top of the plotting region, under the title and subtitle.
pub const TOP: i32 = 88;

/// Title, subtitle, notes and source line around every chart.
#[derive(Debug, Clone)]
pub struct Frame {
    pub title: String,
    pub subtitle: String,
    pub notes: Vec<String>,
    pub source: String,
}

impl Frame {
    /// Height taken under the plotting region by the notes and source line.
    pub fn footer(&self) -> i32 {
        34 + 17 * self.notes.len() as i32
    }
}

#[derive(Debug)]
pub enum Chart {
    Bars(bars::Bars),
    Intervals(bars::Intervals),
    Stacked(bars::Stacked),
    Radar(radar::Radar),
    Heatmap(heatmap::Heatmap),
    Scatter(xy::Scatter),
    Trend(xy::Trend),
    Map(map::MapChart),
    Dots(dots::Dots),
}

/// One chart of the pack.
#[derive(Debug)]
pub struct Figure {
    /// File name without extension, unique in the pack (may contain one `/`).
    pub stem: String,
    pub frame: Frame,
    pub chart: Chart,
    /// What the chart shows, for the HTML page.
    pub caption: String,
}

impl Figure {
    pub fn size(&self) -> (u32, u32) {
        let footer = self.frame.footer();
        let h = match &self.chart {
            Chart::Bars(c) => c.height(),
            Chart::Intervals(c) => c.height(),
            Chart::Stacked(c) => c.height(),
            Chart::Radar(_) => 860,
            Chart::Heatmap(c) => c.height(),
            Chart::Scatter(_) => 760,
            Chart::Trend(_) => 680,
            Chart::Map(c) => c.height(),
            Chart::Dots(c) => c.height(),
        };
        (WIDTH, (h + footer) as u32)
    }
}

/// Renders a figure to SVG text and PNG bytes.
pub fn render(fig: &Figure) -> Result<(String, Vec<u8>), String> {
    style::register_fonts();
    let (w, h) = fig.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let c = Canvas {
            area: &root,
            raster: false,
        };
        if let Chart::Map(m) = &fig.chart {
            m.fill_vector(&c).map_err(err)?;
        }
        draw(fig, &c).map_err(err)?;
        root.present().map_err(err)?;
    }
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    if let Chart::Map(m) = &fig.chart {
        m.fill_bitmap(&mut buf, w as usize, h as usize);
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let c = Canvas {
            area: &root,
            raster: true,
        };
        draw(fig, &c).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok((svg, png(&buf, w, h)?))
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(fig: &Figure, c: &Canvas<'_, DB>) -> R<DB> {
    let (w, h) = fig.size();
    let inner = c.frame(&fig.frame, w as i32, h as i32)?;
    match &fig.chart {
        Chart::Bars(x) => x.draw(c, inner),
        Chart::Intervals(x) => x.draw(c, inner),
        Chart::Stacked(x) => x.draw(c, inner),
        Chart::Radar(x) => x.draw(c, inner),
        Chart::Heatmap(x) => x.draw(c, inner),
        Chart::Scatter(x) => x.draw(c, inner),
        Chart::Trend(x) => x.draw(c, inner),
        Chart::Map(x) => x.draw(c, inner),
        Chart::Dots(x) => x.draw(c, inner),
    }
}

pub type R<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The plotting region: left, top, right, bottom.
#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

/// Thin drawing helpers over a plotters area, in pixels.
pub struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    /// Text is rasterised here rather than by plotters, whose glyph placement ignores
    /// side bearings and aligns each glyph on its own box (a full stop ends up at
    /// mid-height: "83.9" reads "83·9").
    raster: bool,
}

impl<DB: DrawingBackend> std::fmt::Debug for Canvas<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canvas")
    }
}

impl<DB: DrawingBackend> Canvas<'_, DB> {
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &self,
        s: &str,
        x: i32,
        y: i32,
        font: &FontDesc<'_>,
        colour: &RGBColor,
        h: HPos,
        v: VPos,
    ) -> R<DB> {
        if s.is_empty() {
            return Ok(());
        }
        if self.raster {
            return self.raster_text(s, x, y, font, colour, h, v, false);
        }
        let ts = TextStyle::from(svg_font(font))
            .color(colour)
            .pos(Pos::new(h, v));
        self.area.draw(&Text::new(s.to_owned(), (x, y), ts))
    }

    /// Text turned a quarter left (reading upwards), anchored at its start.
    pub fn text_up(
        &self,
        s: &str,
        x: i32,
        y: i32,
        font: &FontDesc<'_>,
        colour: &RGBColor,
    ) -> R<DB> {
        if self.raster {
            return self.raster_text(s, x, y, font, colour, HPos::Left, VPos::Center, true);
        }
        let ts = TextStyle::from(svg_font(font).transform(FontTransform::Rotate270))
            .color(colour)
            .pos(Pos::new(HPos::Left, VPos::Center));
        self.area.draw(&Text::new(s.to_owned(), (x, y), ts))
    }

    /// Draws text with the embedded font, anti-aliased, with the baseline placed as the
    /// SVG backend places it (`dy` of 0.76 em, ±0.5 ex), so PNG and SVG agree. `up`:
    /// turned a quarter left, reading upwards from (x, y).
    #[allow(clippy::too_many_arguments)]
    fn raster_text(
        &self,
        s: &str,
        x: i32,
        y: i32,
        font: &FontDesc<'_>,
        colour: &RGBColor,
        h: HPos,
        v: VPos,
        up: bool,
    ) -> R<DB> {
        use ab_glyph::{Font, ScaleFont, point};
        let face = style::face(font);
        let size = font.get_size();
        let scaled = face.as_scaled(style::px_scale(face, size));
        let width = style::width(s, font) as f32;
        let ex = 0.547 * size as f32; // DejaVu Sans x-height, in em
        let start = match h {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let baseline = match v {
            VPos::Top => 0.76 * size as f32,
            VPos::Center => 0.5 * ex,
            VPos::Bottom => -0.5 * ex,
        };
        let mut pen = start;
        let mut prev = None;
        for ch in s.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scaled.scale(), point(pen, baseline));
            pen += scaled.h_advance(id);
            let Some(outline) = face.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let (u, w) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                let (px, py) = if up { (x + w, y - u) } else { (x + u, y + w) };
                result = self
                    .area
                    .draw_pixel((px, py), &colour.mix(coverage.min(1.0) as f64));
            });
            result?;
        }
        Ok(())
    }

    pub fn rect<C: Color>(
        &self,
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        colour: C,
        filled: bool,
    ) -> R<DB> {
        let style = if filled {
            colour.filled()
        } else {
            colour.stroke_width(1)
        };
        self.area.draw(&Rectangle::new([(x0, y0), (x1, y1)], style))
    }

    pub fn line<C: Color>(&self, points: Vec<(i32, i32)>, colour: C, width: u32) -> R<DB> {
        self.area
            .draw(&PathElement::new(points, colour.stroke_width(width)))
    }

    pub fn circle<C: Color>(&self, x: i32, y: i32, r: i32, colour: C, filled: bool) -> R<DB> {
        let style = if filled {
            colour.filled()
        } else {
            colour.stroke_width(2)
        };
        self.area.draw(&Circle::new((x, y), r, style))
    }

    pub fn polygon<C: Color>(&self, points: Vec<(i32, i32)>, colour: C) -> R<DB> {
        self.area.draw(&Polygon::new(points, colour.filled()))
    }

    /// Title, subtitle, notes and source line; returns the plotting region.
    fn frame(
        &self,
        f: &Frame,
        w: i32,
        h: i32,
    ) -> Result<Rect, DrawingAreaErrorKind<DB::ErrorType>> {
        let max = w - 2 * MARGIN;
        let title = style::bold(22.0);
        self.text(
            &style::fit(&f.title, &title, max),
            MARGIN,
            20,
            &title,
            &INK,
            HPos::Left,
            VPos::Top,
        )?;
        let sub = style::font(14.0);
        self.text(
            &style::fit(&f.subtitle, &sub, max),
            MARGIN,
            54,
            &sub,
            &MUTED,
            HPos::Left,
            VPos::Top,
        )?;
        let small = style::font(11.0);
        self.text(
            &style::fit(&f.source, &small, max),
            MARGIN,
            h - 12,
            &small,
            &MUTED,
            HPos::Left,
            VPos::Bottom,
        )?;
        let note = style::font(12.0);
        for (i, n) in f.notes.iter().enumerate() {
            let y = h - 34 - 17 * (f.notes.len() - 1 - i) as i32;
            self.text(
                &style::fit(n, &note, max),
                MARGIN,
                y,
                &note,
                &INK,
                HPos::Left,
                VPos::Bottom,
            )?;
        }
        Ok(Rect {
            x0: MARGIN,
            y0: TOP,
            x1: w - MARGIN,
            y1: h - f.footer() - 6,
        })
    }
}

/// plotters' SVG backend writes `font-size` as the size divided by 1.24; scaled back, the
/// SVG's em is the size we measure and rasterise with.
fn svg_font(font: &FontDesc<'_>) -> FontDesc<'static> {
    FontDesc::new(
        FontFamily::Name(style::FAMILY),
        font.get_size() * 1.24,
        font.get_style(),
    )
}

/// Linear map from a data interval to a pixel interval.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
    pub log: bool,
}

impl Scale {
    pub fn linear(d: (f64, f64), r: (i32, i32)) -> Scale {
        Scale {
            d0: d.0,
            d1: d.1,
            r0: r.0 as f64,
            r1: r.1 as f64,
            log: false,
        }
    }

    pub fn log(d: (f64, f64), r: (i32, i32)) -> Scale {
        Scale {
            d0: d.0.ln(),
            d1: d.1.ln(),
            r0: r.0 as f64,
            r1: r.1 as f64,
            log: true,
        }
    }

    pub fn px(&self, v: f64) -> i32 {
        let v = if self.log { v.ln() } else { v };
        let t = if self.d1 == self.d0 {
            0.5
        } else {
            (v - self.d0) / (self.d1 - self.d0)
        };
        (self.r0 + t * (self.r1 - self.r0)).round() as i32
    }

    /// Tick values inside the domain.
    pub fn ticks(&self, target: usize) -> Vec<f64> {
        if self.log {
            log_ticks(self.d0.exp(), self.d1.exp())
        } else {
            nice_ticks(self.d0, self.d1, target)
        }
    }
}

/// Round tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Rounded to the step's decimals: 6 × 0.1 is 0.6000000000000001 otherwise.
    let scale = 10f64.powi((-step.log10().floor()).max(0.0) as i32);
    (first..=last)
        .map(|i| (i as f64 * step * scale).round() / scale)
        .collect()
}

/// 1, 2, 5 × 10^k inside [lo, hi] (lo > 0).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut k = lo.log10().floor() as i32;
    while 10f64.powi(k) <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                out.push(v);
            }
        }
        k += 1;
    }
    out
}

/// Domain of `values` widened to round numbers, never narrower than `at_least`.
pub fn domain(values: impl Iterator<Item = f64>, at_least: Option<(f64, f64)>) -> (f64, f64) {
    let (mut lo, mut hi) = at_least.unwrap_or((f64::INFINITY, f64::NEG_INFINITY));
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 100.0);
    }
    if hi <= lo {
        return (lo - 1.0, hi + 1.0);
    }
    (lo, hi)
}

/// Places labels without overlaps: each label tries its candidate boxes in order and
/// takes the first that overlaps nothing placed before; a label with no free place is
/// left out (the reader still has the point and the table).
#[derive(Debug, Default)]
pub struct Placer {
    taken: Vec<Rect>,
}

impl Placer {
    pub fn block(&mut self, r: Rect) {
        self.taken.push(r);
    }

    pub fn place(
        &mut self,
        candidates: impl IntoIterator<Item = Rect>,
        bounds: Rect,
    ) -> Option<Rect> {
        for r in candidates {
            let inside =
                r.x0 >= bounds.x0 && r.x1 <= bounds.x1 && r.y0 >= bounds.y0 && r.y1 <= bounds.y1;
            if inside && !self.taken.iter().any(|t| overlaps(t, &r)) {
                self.taken.push(r);
                return Some(r);
            }
        }
        None
    }
}

fn overlaps(a: &Rect, b: &Rect) -> bool {
    a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 100.0, 5),
            [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(nice_ticks(0.31, 0.79, 5), [0.4, 0.5, 0.6, 0.7]);
        assert_eq!(log_ticks(3.0, 60.0), [5.0, 10.0, 20.0, 50.0]);
    }

    #[test]
    fn placer_avoids_overlaps() {
        let mut p = Placer::default();
        let b = Rect {
            x0: 0,
            y0: 0,
            x1: 100,
            y1: 100,
        };
        let r = |x0, y0| Rect {
            x0,
            y0,
            x1: x0 + 20,
            y1: y0 + 10,
        };
        assert!(p.place([r(10, 10)], b).is_some());
        assert!(p.place([r(15, 15)], b).is_none());
        assert_eq!(p.place([r(15, 15), r(40, 10)], b).map(|x| x.x0), Some(40));
    }
}
