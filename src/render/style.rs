//! What every chart shares: the bundled font, colours, text fitting and number formats.
//!
//! Text is measured with the same font that draws the PNGs (DejaVu Sans, embedded), so a
//! label that fits is never clipped or overlapping on any machine. SVGs name the generic
//! `sans-serif` family: a browser draws them with its own sans-serif, which is no wider
//! than DejaVu Sans, so the layout holds there too.

use std::sync::{LazyLock, Once};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The family every chart uses; registered with the embedded font.
pub const FAMILY: &str = "sans-serif";

static FONTS: Once = Once::new();

/// Registers the embedded fonts with plotters (once per process).
pub fn register_fonts() {
    FONTS.call_once(|| {
        // The bytes are DejaVu Sans from the `dejavu` crate: valid fonts, so registration
        // cannot fail at run time.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)
}

pub fn bold(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Bold)
}

static REGULAR: LazyLock<FontRef<'static>> =
    LazyLock::new(|| FontRef::try_from_slice(dejavu::sans::regular()).expect("embedded font"));
static BOLD: LazyLock<FontRef<'static>> =
    LazyLock::new(|| FontRef::try_from_slice(dejavu::sans::bold()).expect("embedded font"));

/// The embedded face of `font`.
pub fn face(font: &FontDesc<'_>) -> &'static FontRef<'static> {
    match font.get_style() {
        FontStyle::Bold => &BOLD,
        _ => &REGULAR,
    }
}

/// ab_glyph's scale for a font whose em is `size` pixels, as CSS (and so the SVG) sizes
/// text; ab_glyph's own unit is the ascent-to-descent height, about 1.16 em here.
pub fn px_scale(face: &FontRef<'_>, size: f64) -> PxScale {
    let em = face.units_per_em().unwrap_or(2048.0);
    PxScale::from(size as f32 * face.height_unscaled() / em)
}

/// Width in pixels of `text` drawn in `font`: advances and kerning of the embedded font.
pub fn width(text: &str, font: &FontDesc<'_>) -> i32 {
    let face = face(font);
    let scaled = face.as_scaled(px_scale(face, font.get_size()));
    let mut w = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        w += scaled.h_advance(id);
        prev = Some(id);
    }
    w.ceil() as i32
}

/// Labels for evenly spaced ticks, with as many decimals as their spacing needs.
pub fn tick_labels(ticks: &[f64]) -> impl Fn(f64) -> String + use<> {
    let step = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let decimals = if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).max(0.0) as usize
    } else {
        0
    };
    move |v| {
        if decimals == 0 {
            tick(v)
        } else {
            format!("{v:.decimals$}")
        }
    }
}

/// A tick label: whole numbers without decimals.
pub fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1000.0 {
        format!("{}", v.round() as i64).replace('-', "−")
    } else {
        number(v)
    }
}

/// `text`, shortened with an ellipsis to fit `max` pixels.
pub fn fit(text: &str, font: &FontDesc<'_>, max: i32) -> String {
    if width(text, font) <= max {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if width(&candidate, font) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut s: String = chars[..lo].iter().collect::<String>().trim_end().to_owned();
    s.push('…');
    s
}

/// `text` broken into at most `lines` lines of at most `max` pixels (the last one
/// shortened with an ellipsis if needed).
pub fn wrap(text: &str, font: &FontDesc<'_>, max: i32, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let candidate = if current.is_empty() {
            words[i].to_owned()
        } else {
            format!("{current} {}", words[i])
        };
        if width(&candidate, font) <= max || current.is_empty() {
            current = candidate;
            i += 1;
        } else {
            out.push(std::mem::take(&mut current));
            if out.len() == lines - 1 {
                break;
            }
        }
    }
    let rest = if i < words.len() {
        let tail = words[i..].join(" ");
        if current.is_empty() {
            tail
        } else {
            format!("{current} {tail}")
        }
    } else {
        current
    };
    if !rest.is_empty() {
        out.push(rest);
    }
    out.into_iter().map(|l| fit(&l, font, max)).collect()
}

pub const INK: RGBColor = RGBColor(33, 37, 41);
pub const MUTED: RGBColor = RGBColor(108, 117, 125);
pub const GRID: RGBColor = RGBColor(222, 226, 230);
pub const NO_DATA: RGBColor = RGBColor(189, 189, 189);
pub const CONTEXT: RGBColor = RGBColor(238, 238, 238);
pub const ACCENT: RGBColor = RGBColor(214, 39, 40);
pub const BAR: RGBColor = RGBColor(49, 104, 142);
pub const PEER: RGBColor = RGBColor(120, 120, 120);

/// Colours for categories (dimensions, groups): Okabe–Ito, distinguishable with the
/// common colour-vision deficiencies, with its yellow (too faint on white for lines and
/// labels) replaced by a purple and its black by a grey (black is the median's).
pub const CATEGORICAL: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(117, 112, 179),
    RGBColor(102, 102, 102),
];

pub fn category(i: usize) -> RGBColor {
    CATEGORICAL[i % CATEGORICAL.len()]
}

/// Viridis (perceptually uniform, legible in grey and for colour-blind readers), sampled
/// at 9 points and interpolated linearly; `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// Black or white, whichever reads better on `c`.
pub fn text_on(c: RGBColor) -> RGBColor {
    let l = 0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64;
    if l > 140.0 { INK } else { WHITE }
}

/// A score for labels: one decimal.
pub fn score(v: f64) -> String {
    format!("{v:.1}")
}

/// A number for axes and tables: few significant digits, thousands grouped.
pub fn number(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1000.0 {
        let digits = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push('\u{202f}');
            }
            grouped.push(ch);
        }
        grouped
    } else if a >= 100.0 || a == 0.0 {
        format!("{a:.0}")
    } else if a >= 10.0 {
        format!("{a:.1}")
    } else if a >= 1.0 {
        format!("{a:.2}")
    } else {
        format!("{a:.3}")
    };
    if v < 0.0 { format!("−{s}") } else { s }
}

/// A territory id as a file name: ASCII letters, digits, `-` and `_` kept, anything
/// else replaced, and a short hash added when something was replaced or cut, so two ids
/// never share a file. Stems are at most [`MAX_STEM`] bytes: file systems refuse names
/// over 255 bytes, and the stem gets suffixes such as `_radar.png`.
pub fn file_stem(id: &str) -> String {
    let clean: String = id
        .chars()
        .take(MAX_STEM - 7)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == id && !id.is_empty() && id.len() <= MAX_STEM {
        clean
    } else {
        let h = crate::stats::fnv1a(id);
        format!("{clean}_{:06x}", h & 0xff_ffff)
    }
}

/// Longest file stem drawn from an id.
pub const MAX_STEM: usize = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe_and_distinct() {
        let long = "x".repeat(400);
        assert!(file_stem(&long).len() <= MAX_STEM);
        assert_ne!(file_stem(&long), file_stem(&"x".repeat(401)));
        assert_eq!(file_stem("FR10"), "FR10");
        assert_ne!(file_stem("a/b"), file_stem("a b"));
        assert!(file_stem("Île-de-France").is_ascii());
    }

    #[test]
    fn text_is_fitted_and_wrapped_to_the_font() {
        register_fonts();
        let f = font(12.0);
        let long = "Access to information and communications";
        let short = fit(long, &f, 120);
        assert!(short.ends_with('…') && width(&short, &f) <= 120, "{short}");
        let lines = wrap(long, &f, 150, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| width(l, &f) <= 150), "{lines:?}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(31234.0), "31\u{202f}234");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(-0.5), "−0.500");
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
    }
}
