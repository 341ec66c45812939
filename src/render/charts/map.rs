//! Choropleth map: territories coloured by score on a viridis scale, territories without
//! a score in grey (and listed in the notes), boundaries that match no territory drawn
//! lighter as context. Territories far from the others (overseas regions, islands) get
//! inset boxes of their own instead of shrinking the main map to a dot.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Canvas, R, Rect};
use crate::render::geo::{self, Feature, PolygonRings, Projection};
use crate::render::style::{self, CONTEXT, INK, MUTED, NO_DATA};

/// A region to draw, in pixels, already clipped to where it is shown.
#[derive(Debug)]
pub struct Shape {
    pub polygons: Vec<PolygonRings>,
    pub fill: RGBColor,
}

#[derive(Debug)]
pub struct Inset {
    pub frame: Rect,
    pub label: String,
}

#[derive(Debug)]
pub struct MapChart {
    /// Context first, then territories.
    pub shapes: Vec<Shape>,
    pub insets: Vec<Inset>,
    pub map: Rect,
    pub domain: (f64, f64),
    pub legend: String,
    pub any_missing: bool,
}

/// A feature matched to a territory, with its score (None: no score).
#[derive(Debug, Clone)]
pub struct Matched {
    pub feature: usize,
    pub value: Option<f64>,
    pub label: String,
}

const INSET_W: i32 = 120;
const INSET_H: i32 = 84;
/// Vertical room of one inset: the box and its label.
const INSET_STEP: i32 = INSET_H + 40;
const MAX_MAP_H: i32 = 860;

impl MapChart {
    /// Lays out the map for a chart whose plotting region starts at `top`.
    pub fn build(
        features: &[Feature],
        matched: &[Matched],
        domain: (f64, f64),
        legend: String,
        top: i32,
    ) -> MapChart {
        let is_matched: Vec<bool> = {
            let mut v = vec![false; features.len()];
            for m in matched {
                v[m.feature] = true;
            }
            v
        };
        let centroids: Vec<Option<[f64; 2]>> = matched
            .iter()
            .map(|m| geo::centroid(&features[m.feature].polygons))
            .collect();
        let remote = remote(&centroids);
        // Projection centred on the main group of territories.
        let main: Vec<&PolygonRings> = matched
            .iter()
            .zip(&remote)
            .filter(|(_, r)| !**r)
            .flat_map(|(m, _)| &features[m.feature].polygons)
            .collect();
        let ll = geo::bbox(main.iter().copied()).unwrap_or([-1.0, -1.0, 1.0, 1.0]);
        let proj = Projection::centred((ll[0] + ll[2]) / 2.0, (ll[1] + ll[3]) / 2.0);
        let project = |p: &PolygonRings| -> PolygonRings {
            p.iter()
                .map(|ring| ring.iter().map(|&q| proj.project(q)).collect())
                .collect()
        };
        let main_projected: Vec<PolygonRings> = main.iter().map(|p| project(p)).collect();
        let b = geo::bbox(main_projected.iter()).unwrap_or([-1.0, -1.0, 1.0, 1.0]);

        // Main map to the right of the inset column, as large as the width allows.
        let n_insets = remote.iter().filter(|r| **r).count() as i32;
        // Up to 5 insets in one column, more in two.
        let inset_cols = if n_insets > 5 { 2 } else { 1 };
        let inset_rows = (n_insets + inset_cols - 1) / inset_cols;
        let left = super::MARGIN
            + if n_insets > 0 {
                inset_cols * (INSET_W + 12) + 12
            } else {
                0
            };
        let right = super::WIDTH as i32 - super::MARGIN - 150;
        let (bw, bh) = ((b[2] - b[0]).max(1e-9), (b[3] - b[1]).max(1e-9));
        let mut scale = (right - left) as f64 / bw;
        if bh * scale > MAX_MAP_H as f64 {
            scale = MAX_MAP_H as f64 / bh;
        }
        let insets_h = inset_rows * INSET_STEP;
        let map_h = ((bh * scale).ceil() as i32).max(insets_h).max(360);
        let map = Rect {
            x0: left,
            y0: top,
            x1: left + (bw * scale).ceil() as i32,
            y1: top + map_h,
        };
        let to_px = |[x, y]: [f64; 2]| -> [f64; 2] {
            [
                map.x0 as f64 + (x - b[0]) * scale,
                map.y0 as f64 + (b[3] - y) * scale,
            ]
        };
        let view = Rect {
            x0: map.x0 - 10,
            y0: map.y0 - 4,
            x1: (map.x1 + 10).min(super::WIDTH as i32 - super::MARGIN - 140),
            y1: map.y1 + 4,
        };
        let place = |polygons: &[PolygonRings], f: &dyn Fn([f64; 2]) -> [f64; 2], clip: Rect| {
            polygons
                .iter()
                .filter_map(|p| {
                    let rings: PolygonRings = p
                        .iter()
                        .map(|ring| {
                            clip_ring(&simplify(ring.iter().map(|&q| f(q)).collect()), clip)
                        })
                        .filter(|r| r.len() >= 3)
                        .collect();
                    (!rings.is_empty()).then_some(rings)
                })
                .collect::<Vec<_>>()
        };
        let main_px = |q: [f64; 2]| to_px(proj.project(q));

        let mut shapes = Vec::new();
        for (i, f) in features.iter().enumerate() {
            if !is_matched[i] {
                let polygons = place(&f.polygons, &main_px, view);
                if !polygons.is_empty() {
                    shapes.push(Shape {
                        polygons,
                        fill: CONTEXT,
                    });
                }
            }
        }
        let span = (domain.1 - domain.0).max(1e-9);
        let colour = |v: Option<f64>| match v {
            Some(v) => style::viridis((v - domain.0) / span),
            None => NO_DATA,
        };
        let mut insets = Vec::new();
        let mut k = 0;
        for (m, r) in matched.iter().zip(&remote) {
            let f = &features[m.feature];
            if !*r {
                shapes.push(Shape {
                    polygons: place(&f.polygons, &main_px, view),
                    fill: colour(m.value),
                });
                continue;
            }
            // An inset: the territory on its own, centred and scaled to fit its box.
            let (row, column) = (k / inset_cols, k % inset_cols);
            let x0 = super::MARGIN + column * (INSET_W + 12);
            let frame = Rect {
                x0,
                y0: top + row * INSET_STEP,
                x1: x0 + INSET_W,
                y1: top + row * INSET_STEP + INSET_H,
            };
            k += 1;
            let c = geo::centroid(&f.polygons).unwrap_or([0.0, 0.0]);
            let local = Projection::centred(c[0], c[1]);
            let projected: Vec<PolygonRings> = f
                .polygons
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|ring| ring.iter().map(|&q| local.project(q)).collect())
                        .collect()
                })
                .collect();
            let lb = geo::bbox(projected.iter()).unwrap_or([-1.0, -1.0, 1.0, 1.0]);
            let s = ((INSET_W - 12) as f64 / (lb[2] - lb[0]).max(1e-9))
                .min((INSET_H - 12) as f64 / (lb[3] - lb[1]).max(1e-9));
            let (cx, cy) = (
                (frame.x0 + frame.x1) as f64 / 2.0,
                (frame.y0 + frame.y1) as f64 / 2.0,
            );
            let (mx, my) = ((lb[0] + lb[2]) / 2.0, (lb[1] + lb[3]) / 2.0);
            let inset_px = |q: [f64; 2]| {
                let [x, y] = local.project(q);
                [cx + (x - mx) * s, cy - (y - my) * s]
            };
            shapes.push(Shape {
                polygons: place(&f.polygons, &inset_px, frame),
                fill: colour(m.value),
            });
            insets.push(Inset {
                frame,
                label: m.label.clone(),
            });
        }
        MapChart {
            shapes,
            insets,
            map,
            domain,
            legend,
            any_missing: matched.iter().any(|m| m.value.is_none()),
        }
    }

    pub fn height(&self) -> i32 {
        self.map.y1 + 24
    }

    /// Fills for the SVG: each polygon one outline, holes bridged in.
    pub fn fill_vector<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> R<DB> {
        for s in &self.shapes {
            for p in &s.polygons {
                let pts: Vec<(i32, i32)> = geo::bridged(p)
                    .iter()
                    .map(|q| (q[0].round() as i32, q[1].round() as i32))
                    .collect();
                c.polygon(pts, s.fill)?;
            }
        }
        Ok(())
    }

    /// Fills for the PNG: even-odd scanlines straight into the RGB buffer.
    pub fn fill_bitmap(&self, buf: &mut [u8], w: usize, h: usize) {
        let clip = [0.0, 0.0, w as f64, h as f64];
        for s in &self.shapes {
            for p in &s.polygons {
                geo::fill_even_odd(buf, w, h, p, [s.fill.0, s.fill.1, s.fill.2], clip);
            }
        }
    }

    /// Boundaries, inset frames and the legend, over the fills.
    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, r: Rect) -> R<DB> {
        for s in &self.shapes {
            for p in &s.polygons {
                for ring in p {
                    let mut pts: Vec<(i32, i32)> = ring
                        .iter()
                        .map(|q| (q[0].round() as i32, q[1].round() as i32))
                        .collect();
                    pts.push(pts[0]);
                    c.line(pts, WHITE, 1)?;
                }
            }
        }
        let f = style::font(11.0);
        for inset in &self.insets {
            let b = inset.frame;
            c.rect(b.x0, b.y0, b.x1, b.y1, MUTED, false)?;
            for (k, line) in style::wrap(&inset.label, &f, b.x1 - b.x0, 2)
                .iter()
                .enumerate()
            {
                c.text(
                    line,
                    b.x0,
                    b.y1 + 4 + 15 * k as i32,
                    &f,
                    &INK,
                    HPos::Left,
                    VPos::Top,
                )?;
            }
        }
        // Legend: vertical colour bar at the right.
        let lx = r.x1 - 120;
        let (ly0, ly1) = (self.map.y0 + 20, self.map.y0 + 240);
        c.text(
            &style::fit(&self.legend, &f, 120),
            lx,
            self.map.y0,
            &f,
            &INK,
            HPos::Left,
            VPos::Top,
        )?;
        // Filled rows rather than lines: anti-aliased 1 px lines wash the colours out in SVG.
        for y in ly0..ly1 {
            let t = (ly1 - y) as f64 / (ly1 - ly0) as f64;
            c.rect(lx, y, lx + 18, y + 1, style::viridis(t), true)?;
        }
        let ticks = super::nice_ticks(self.domain.0, self.domain.1, 6);
        let span = (self.domain.1 - self.domain.0).max(1e-9);
        for t in ticks {
            let y = ly1 - (((t - self.domain.0) / span) * (ly1 - ly0) as f64).round() as i32;
            c.line(vec![(lx + 18, y), (lx + 23, y)], INK, 1)?;
            c.text(
                &style::tick(t),
                lx + 27,
                y,
                &f,
                &INK,
                HPos::Left,
                VPos::Center,
            )?;
        }
        if self.any_missing {
            c.rect(lx, ly1 + 20, lx + 18, ly1 + 34, NO_DATA, true)?;
            c.text(
                "no score",
                lx + 27,
                ly1 + 27,
                &f,
                &INK,
                HPos::Left,
                VPos::Center,
            )?;
        }
        if !self.insets.is_empty() {
            c.text(
                "Insets not to scale",
                lx,
                ly1 + 50,
                &f,
                &MUTED,
                HPos::Left,
                VPos::Center,
            )?;
        }
        Ok(())
    }
}

/// Territories whose centroid lies far from the others: more than 3.5 times the median
/// distance from the median centroid (overseas regions, remote islands).
fn remote(centroids: &[Option<[f64; 2]>]) -> Vec<bool> {
    let known: Vec<[f64; 2]> = centroids.iter().flatten().copied().collect();
    if known.len() < 5 {
        return vec![false; centroids.len()];
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let lon = median(known.iter().map(|c| c[0]).collect());
    let lat = median(known.iter().map(|c| c[1]).collect());
    let proj = Projection::centred(lon, lat);
    let dist = |c: &[f64; 2]| {
        let [x, y] = proj.project(*c);
        (x * x + y * y).sqrt()
    };
    let typical = median(known.iter().map(dist).collect()).max(1e-6);
    centroids
        .iter()
        .map(|c| c.is_some_and(|c| dist(&c) > 3.5 * typical))
        .collect()
}

/// Drops points within half a pixel of the previous one: the picture is the same and the
/// SVG is several times smaller.
fn simplify(ring: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(ring.len());
    for p in ring {
        if let Some(q) = out.last()
            && (p[0] - q[0]).abs() < 0.5
            && (p[1] - q[1]).abs() < 0.5
        {
            continue;
        }
        out.push(p);
    }
    out
}

/// Sutherland–Hodgman clipping of a ring to a rectangle, one side at a time.
fn clip_ring(ring: &[[f64; 2]], r: Rect) -> Vec<[f64; 2]> {
    // Each side: the coordinate it bounds (0 = x, 1 = y), its value, and whether the
    // inside is above (true) or below it.
    let sides = [
        (0, r.x0 as f64, true),
        (0, r.x1 as f64, false),
        (1, r.y0 as f64, true),
        (1, r.y1 as f64, false),
    ];
    let mut out = ring.to_vec();
    for (axis, at, above) in sides {
        if out.is_empty() {
            break;
        }
        let inside = |p: [f64; 2]| if above { p[axis] >= at } else { p[axis] <= at };
        let cut = |a: [f64; 2], b: [f64; 2]| {
            let t = (at - a[axis]) / (b[axis] - a[axis]);
            let mut p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            p[axis] = at;
            p
        };
        let input = std::mem::take(&mut out);
        let n = input.len();
        for i in 0..n {
            let (a, b) = (input[(i + n - 1) % n], input[i]);
            match (inside(a), inside(b)) {
                (true, true) => out.push(b),
                (true, false) => out.push(cut(a, b)),
                (false, true) => {
                    out.push(cut(a, b));
                    out.push(b);
                }
                (false, false) => {}
            }
        }
    }
    out
}

/// Matches territory ids to features (through aliases): per territory its feature, and
/// the features no territory claims.
pub fn match_features(
    features: &[Feature],
    territories: &[String],
    aliases: &BTreeMap<String, String>,
) -> (Vec<Option<usize>>, Vec<usize>) {
    let by_id: BTreeMap<&str, usize> = features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.as_str(), i))
        .collect();
    let mut claimed = vec![false; features.len()];
    let found: Vec<Option<usize>> = territories
        .iter()
        .map(|t| {
            let key = aliases.get(t).map_or(t.as_str(), String::as_str);
            let i = by_id.get(key).copied();
            if let Some(i) = i {
                claimed[i] = true;
            }
            i
        })
        .collect();
    let unclaimed = (0..features.len()).filter(|&i| !claimed[i]).collect();
    (found, unclaimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_the_inside() {
        let r = Rect {
            x0: 0,
            y0: 0,
            x1: 10,
            y1: 10,
        };
        let ring = vec![[-5.0, 5.0], [5.0, -5.0], [15.0, 5.0], [5.0, 15.0]];
        let out = clip_ring(&ring, r);
        assert!(
            out.iter()
                .all(|p| (0.0..=10.0).contains(&p[0]) && (0.0..=10.0).contains(&p[1]))
        );
        assert!(out.len() >= 4);
    }

    #[test]
    fn far_territories_are_remote() {
        let mut c: Vec<Option<[f64; 2]>> = (0..20)
            .map(|i| Some([2.0 + (i % 5) as f64, 46.0 + (i / 5) as f64]))
            .collect();
        c.push(Some([55.5, -21.1])); // Réunion
        let r = remote(&c);
        assert!(r[20] && !r[..20].iter().any(|x| *x));
    }
}
