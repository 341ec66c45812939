//! Boundaries for choropleth maps: GeoJSON reading, projection and polygon filling.
//!
//! Polygons are projected with the Lambert azimuthal equal-area projection centred on the
//! territories drawn (areas are compared on a choropleth, so they must not be distorted;
//! it is the projection of EPSG:3035 for Europe and works for any one region of the
//! globe). Holes are honoured: the bitmap fill is our own even-odd scanline fill over
//! the rings in floating point (plotters' fill works on whole pixels and on one ring);
//! the SVG gets each polygon as one path with its holes bridged in and wound against the
//! outer ring, which the default nonzero rule leaves empty.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A ring: closed list of points (first point not repeated at the end).
pub type Ring = Vec<[f64; 2]>;
/// An outer ring then its holes.
pub type PolygonRings = Vec<Ring>;

#[derive(Debug, Clone)]
pub struct Feature {
    pub id: String,
    pub name: Option<String>,
    /// Longitude/latitude in degrees.
    pub polygons: Vec<PolygonRings>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use the map boundaries {}: {message}", path.display())]
pub struct GeoError {
    pub path: PathBuf,
    pub message: String,
}

/// Reads a GeoJSON FeatureCollection of Polygon and MultiPolygon features; `id_property`
/// names the property holding the id (falling back to the feature's `id` member).
pub fn parse(
    path: &Path,
    text: &str,
    id_property: &str,
    name_property: Option<&str>,
) -> Result<Vec<Feature>, GeoError> {
    let fail = |message: String| GeoError {
        path: path.to_path_buf(),
        message,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        fail(format!(
            "not valid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if root.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(fail("expected a GeoJSON FeatureCollection".into()));
    }
    let features = root
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("the FeatureCollection has no \"features\" array".into()))?;
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let n = i + 1;
        let props = f.get("properties");
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(x) => Some(x.to_string()),
            _ => None,
        };
        let id = props
            .and_then(|p| p.get(id_property))
            .and_then(scalar)
            .or_else(|| {
                (id_property == "id")
                    .then(|| f.get("id").and_then(scalar))
                    .flatten()
            })
            .ok_or_else(|| fail(format!("feature {n} has no property \"{id_property}\"")))?;
        let name = name_property
            .and_then(|p| props.and_then(|pr| pr.get(p)))
            .and_then(scalar);
        let geometry = f.get("geometry").unwrap_or(&Value::Null);
        let polygons = match geometry.get("type").and_then(Value::as_str) {
            None if geometry.is_null() => Vec::new(),
            Some("Polygon") => vec![polygon(geometry.get("coordinates")).ok_or_else(|| {
                fail(format!(
                    "feature {n} (\"{id}\"): malformed Polygon coordinates"
                ))
            })?],
            Some("MultiPolygon") => geometry
                .get("coordinates")
                .and_then(Value::as_array)
                .and_then(|ps| {
                    ps.iter()
                        .map(|p| polygon(Some(p)))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    fail(format!(
                        "feature {n} (\"{id}\"): malformed MultiPolygon coordinates"
                    ))
                })?,
            Some(other) => {
                return Err(fail(format!(
                    "feature {n} (\"{id}\") is a {other}; only Polygon and MultiPolygon can be mapped"
                )));
            }
            None => {
                return Err(fail(format!(
                    "feature {n} (\"{id}\") has a geometry without type"
                )));
            }
        };
        out.push(Feature { id, name, polygons });
    }
    if out.is_empty() {
        return Err(fail("the FeatureCollection has no features".into()));
    }
    Ok(out)
}

fn polygon(v: Option<&Value>) -> Option<PolygonRings> {
    v?.as_array()?
        .iter()
        .map(|ring| {
            let mut pts: Ring = ring
                .as_array()?
                .iter()
                .map(|p| {
                    let p = p.as_array()?;
                    let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
                    (x.is_finite() && y.is_finite()).then_some([x, y])
                })
                .collect::<Option<_>>()?;
            if pts.len() > 1 && pts.first() == pts.last() {
                pts.pop();
            }
            (pts.len() >= 3).then_some(pts)
        })
        .collect()
}

/// Lambert azimuthal equal-area projection on the sphere, centred at (lon0, lat0).
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    lon0: f64,
    sin_lat0: f64,
    cos_lat0: f64,
}

impl Projection {
    pub fn centred(lon0: f64, lat0: f64) -> Self {
        let l = lat0.to_radians();
        Projection {
            lon0: lon0.to_radians(),
            sin_lat0: l.sin(),
            cos_lat0: l.cos(),
        }
    }

    /// Projected (x east, y north), in Earth radii.
    pub fn project(&self, [lon, lat]: [f64; 2]) -> [f64; 2] {
        let (lam, phi) = (lon.to_radians() - self.lon0, lat.to_radians());
        let (sp, cp) = phi.sin_cos();
        let cl = lam.cos();
        let denom = 1.0 + self.sin_lat0 * sp + self.cos_lat0 * cp * cl;
        // The antipode of the centre has no image; it is never near the territories drawn.
        let k = (2.0 / denom.max(1e-12)).sqrt();
        [
            k * cp * lam.sin(),
            k * (self.cos_lat0 * sp - self.sin_lat0 * cp * cl),
        ]
    }
}

/// Bounding box `[min_x, min_y, max_x, max_y]` of polygons.
pub fn bbox<'a>(polygons: impl IntoIterator<Item = &'a PolygonRings>) -> Option<[f64; 4]> {
    let mut b: Option<[f64; 4]> = None;
    for p in polygons {
        for &[x, y] in p.first().into_iter().flatten() {
            b = Some(match b {
                None => [x, y, x, y],
                Some([a, c, d, e]) => [a.min(x), c.min(y), d.max(x), e.max(y)],
            });
        }
    }
    b
}

/// Area-weighted centroid of the outer rings (the largest polygon dominates).
pub fn centroid(polygons: &[PolygonRings]) -> Option<[f64; 2]> {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for p in polygons {
        let Some(ring) = p.first() else { continue };
        let n = ring.len();
        let (mut ra, mut rx, mut ry) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let [x0, y0] = ring[i];
            let [x1, y1] = ring[(i + 1) % n];
            let cross = x0 * y1 - x1 * y0;
            ra += cross;
            rx += (x0 + x1) * cross;
            ry += (y0 + y1) * cross;
        }
        // Each part counts by its area whatever its winding: GeoJSON files wind outer
        // rings both ways, and parts of opposite winding would otherwise cancel.
        let sign = if ra < 0.0 { -1.0 } else { 1.0 };
        a += sign * ra;
        cx += sign * rx;
        cy += sign * ry;
    }
    if a.abs() < 1e-18 {
        let b = bbox(polygons)?;
        return Some([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]);
    }
    Some([cx / (3.0 * a), cy / (3.0 * a)])
}

fn signed_area(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let [x0, y0] = ring[i];
            let [x1, y1] = ring[(i + 1) % n];
            x0 * y1 - x1 * y0
        })
        .sum::<f64>()
        / 2.0
}

/// One closed outline for the SVG: the outer ring, then each hole joined to it by a
/// zero-width bridge and wound the other way, so that the nonzero rule leaves holes empty.
pub fn bridged(polygon: &PolygonRings) -> Vec<[f64; 2]> {
    let Some(outer) = polygon.first() else {
        return Vec::new();
    };
    let mut out = outer.clone();
    let outer_sign = signed_area(outer).signum();
    if polygon.len() > 1 {
        out.push(outer[0]);
        for hole in &polygon[1..] {
            let mut h = hole.clone();
            if signed_area(&h).signum() == outer_sign {
                h.reverse();
            }
            out.extend_from_slice(&h);
            out.push(h[0]);
            out.push(outer[0]);
        }
    }
    out
}

/// Fills `polygon` (outer ring and holes, pixel coordinates) with the even-odd rule into an
/// RGB buffer of `width` × `height`, sampling each pixel at its centre.
pub fn fill_even_odd(
    buf: &mut [u8],
    width: usize,
    height: usize,
    polygon: &[Vec<[f64; 2]>],
    colour: [u8; 3],
    clip: [f64; 4],
) {
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for ring in polygon {
        for p in ring {
            y_min = y_min.min(p[1]);
            y_max = y_max.max(p[1]);
        }
    }
    let y0 = (y_min.max(clip[1]).floor().max(0.0)) as usize;
    let y1 = (y_max.min(clip[3]).ceil().min(height as f64)) as usize;
    let mut xs: Vec<f64> = Vec::new();
    for y in y0..y1 {
        let sy = y as f64 + 0.5;
        xs.clear();
        for ring in polygon {
            let n = ring.len();
            for i in 0..n {
                let [ax, ay] = ring[i];
                let [bx, by] = ring[(i + 1) % n];
                // Half-open rule: an edge counts when the scanline is in [min y, max y).
                if (ay <= sy && sy < by) || (by <= sy && sy < ay) {
                    xs.push(ax + (sy - ay) * (bx - ax) / (by - ay));
                }
            }
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks_exact(2) {
            let from = (pair[0].max(clip[0]) - 0.5).ceil().max(0.0) as usize;
            let to = ((pair[1].min(clip[2]) - 0.5).floor() as isize).min(width as isize - 1);
            if to < from as isize {
                continue;
            }
            for x in from..=to as usize {
                let at = (y * width + x) * 3;
                buf[at..at + 3].copy_from_slice(&colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, s: f64) -> Ring {
        vec![[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]]
    }

    #[test]
    fn even_odd_fill_leaves_holes_empty() {
        let (w, h) = (10, 10);
        let mut buf = vec![255u8; w * h * 3];
        let poly = vec![square(0.0, 0.0, 10.0), square(3.0, 3.0, 4.0)];
        fill_even_odd(&mut buf, w, h, &poly, [0, 0, 0], [0.0, 0.0, 10.0, 10.0]);
        let px = |x: usize, y: usize| buf[(y * w + x) * 3];
        assert_eq!(px(1, 1), 0);
        assert_eq!(px(5, 5), 255, "the hole stays empty");
        assert_eq!(px(8, 5), 0);
    }

    #[test]
    fn bridged_holes_wind_against_the_outer_ring() {
        let poly = vec![square(0.0, 0.0, 10.0), square(3.0, 3.0, 4.0)];
        let path = bridged(&poly);
        assert_eq!(path.len(), 4 + 1 + 4 + 2);
        // The hole part has the opposite orientation of the outer ring.
        assert!(signed_area(&path[5..9]) * signed_area(&path[..4]) < 0.0);
    }

    #[test]
    fn projection_is_centred_and_equal_area_scaled() {
        let p = Projection::centred(10.0, 52.0);
        let c = p.project([10.0, 52.0]);
        assert!(c[0].abs() < 1e-12 && c[1].abs() < 1e-12);
        // 1° of latitude near the centre ≈ 1° in radians.
        let n = p.project([10.0, 53.0]);
        assert!((n[1] - 1f64.to_radians()).abs() < 1e-4);
    }

    #[test]
    fn parts_of_opposite_winding_add_up() {
        // Two unit squares, one wound each way: the centroid lies between them.
        let ccw = vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]];
        let cw = vec![vec![[2.0, 0.0], [2.0, 1.0], [3.0, 1.0], [3.0, 0.0]]];
        let c = centroid(&[ccw, cw]).unwrap();
        assert!(
            (c[0] - 1.5).abs() < 1e-12 && (c[1] - 0.5).abs() < 1e-12,
            "{c:?}"
        );
    }

    #[test]
    fn unreadable_geojson_is_named() {
        let dir = std::env::temp_dir().join(format!("bienvivre-geo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.geojson");
        let text = "{\"type\": \"FeatureCollection\", \"features\": [";
        let e = parse(&bad, text, "id", None).unwrap_err().to_string();
        assert!(e.contains("bad.geojson") && e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
