//! The one cell parser: every reader (sources, covariates, national tables, surveys)
//! turns cell text into numbers and years here, so that a decimal comma, a thousands
//! separator, a missing marker or an overflowing number means the same thing everywhere,
//! and every message shows the cell as the user wrote it.

use std::fmt;

/// How numbers are written in a file: the decimal mark and an optional thousands separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NumberFormat {
    /// `,` for French and most continental exports; `.` otherwise.
    pub decimal_comma: bool,
    /// Separates groups of three digits in the whole part. With a decimal comma, spaces
    /// (plain, no-break, narrow no-break) are always accepted as such.
    pub thousands: Option<char>,
}

impl NumberFormat {
    /// The number format a file is declared with.
    pub fn of(file: &crate::plan::FileRef) -> Self {
        NumberFormat {
            decimal_comma: file.decimal_comma,
            thousands: file.thousands,
        }
    }
}

/// Why a cell is not the value it should be. Displayed as the message of a problem, with
/// the cell text quoted as it was written.
#[derive(Debug, Clone, PartialEq)]
pub enum CellError {
    NotANumber {
        text: String,
        hint: &'static str,
    },
    /// `1e400`: a number, but not one an f64 can hold.
    OutOfRange {
        text: String,
    },
    /// `inf`, `-Infinity`, `nan` written as a value.
    NotFinite {
        text: String,
    },
    NotAYear {
        text: String,
    },
    Empty,
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellError::NotANumber { text, hint } => write!(f, "\"{text}\" is not a number{hint}"),
            CellError::OutOfRange { text } => {
                write!(f, "\"{text}\" is out of range (beyond ±1.8e308)")
            }
            CellError::NotFinite { text } => write!(f, "\"{text}\" is not a finite number"),
            CellError::NotAYear { text } => {
                write!(f, "year must be a whole number, got \"{text}\"")
            }
            CellError::Empty => write!(f, "empty cell"),
        }
    }
}

/// Space-like characters that group thousands in French-style numbers.
fn is_space_group(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}')
}

/// Trims ASCII whitespace and no-break spaces (spreadsheets pad with both).
pub fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace() || is_space_group(c))
}

/// Whether a (trimmed) cell is one of the missing markers.
pub fn is_missing<S: AsRef<str>>(text: &str, markers: &[S]) -> bool {
    text.is_empty() || markers.iter().any(|m| trim(m.as_ref()) == text)
}

/// Parses a number cell (already trimmed, not a missing marker).
pub fn number(text: &str, format: NumberFormat) -> Result<f64, CellError> {
    let not_a_number = |hint: &'static str| CellError::NotANumber {
        text: text.to_owned(),
        hint,
    };
    if text.is_empty() {
        return Err(CellError::Empty);
    }
    // The common case, parsed without any allocation: digits, sign, point, exponent.
    if !format.decimal_comma
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(CellError::OutOfRange {
                text: text.to_owned(),
            }),
            Err(_) => Err(not_a_number("")),
        };
    }
    // Rust's parser accepts words ("inf", "NaN", "infinity") that are not data values here.
    let has = |word: &str| {
        text.as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    if has("inf") || has("nan") {
        return Err(CellError::NotFinite {
            text: text.to_owned(),
        });
    }
    let (decimal, other) = if format.decimal_comma {
        (',', '.')
    } else {
        ('.', ',')
    };
    let thousands = format.thousands;
    let plain: std::borrow::Cow<'_, str> = if text.contains(|c: char| {
        c == other
            || c == decimal && format.decimal_comma
            || is_space_group(c)
            || Some(c) == thousands
    }) {
        std::borrow::Cow::Owned(normalise(text, decimal, thousands, format.decimal_comma).map_err(
            |why| match why {
                Normalise::ForeignMark => {
                    if format.decimal_comma {
                        not_a_number(
                            " (the source's decimal mark is \",\": set thousands = \".\" if the point separates thousands, or decimal = \".\")",
                        )
                    } else {
                        not_a_number(" (a decimal comma? set decimal = \",\" on the source)")
                    }
                }
                Normalise::BadGrouping => {
                    not_a_number(" (thousands separators must separate groups of three digits)")
                }
            },
        )?)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    // Only digits, one sign, one point, one exponent: Rust's parser is the judge of the
    // rest, and a hex or a word would already have failed above or fail here.
    match plain.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(CellError::OutOfRange {
            text: text.to_owned(),
        }),
        Err(_) => Err(not_a_number("")),
    }
}

enum Normalise {
    /// The other mark (a point with a decimal comma, a comma with a decimal point) that is
    /// not the configured thousands separator.
    ForeignMark,
    BadGrouping,
}

/// Rewrites `text` with `.` as the decimal mark and no thousands separators, checking
/// that separators sit between groups of three digits of the whole part.
fn normalise(
    text: &str,
    decimal: char,
    thousands: Option<char>,
    spaces_group: bool,
) -> Result<String, Normalise> {
    let mut out = String::with_capacity(text.len());
    // Digits since the last group separator, and whether a separator was seen.
    let mut run = 0usize;
    let mut grouped = false;
    let mut in_whole = true;
    let mut first_group = true;
    for c in text.chars() {
        let is_group = in_whole
            && (Some(c) == thousands || (spaces_group && is_space_group(c)))
            && c != decimal;
        if is_group {
            // The first group has 1–3 digits, every later one exactly 3.
            if run == 0 || run > 3 || (!first_group && run != 3) {
                return Err(Normalise::BadGrouping);
            }
            grouped = true;
            first_group = false;
            run = 0;
            continue;
        }
        if c == decimal {
            if grouped && run != 3 {
                return Err(Normalise::BadGrouping);
            }
            in_whole = false;
            out.push('.');
            continue;
        }
        if c == '.' || c == ',' || is_space_group(c) {
            return Err(Normalise::ForeignMark);
        }
        if in_whole {
            if c.is_ascii_digit() {
                run += 1;
            } else if c == 'e' || c == 'E' {
                if grouped && run != 3 {
                    return Err(Normalise::BadGrouping);
                }
                in_whole = false;
            }
        }
        out.push(c);
    }
    if in_whole && grouped && run != 3 {
        return Err(Normalise::BadGrouping);
    }
    Ok(out)
}

/// Parses a year cell: a whole number, also when written as a float (`2022.0`, as pandas
/// writes integer columns that had a missing value).
pub fn year(text: &str) -> Result<i64, CellError> {
    let bad = || CellError::NotAYear {
        text: text.to_owned(),
    };
    if let Ok(y) = text.parse::<i64>() {
        return Ok(y);
    }
    let x: f64 = text.parse().map_err(|_| bad())?;
    year_of_float(x).ok_or_else(bad)
}

/// A year stored as a float (Parquet written by pandas): whole numbers only.
pub fn year_of_float(x: f64) -> Option<i64> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15).then_some(x as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: NumberFormat = NumberFormat {
        decimal_comma: false,
        thousands: None,
    };
    const COMMA: NumberFormat = NumberFormat {
        decimal_comma: true,
        thousands: None,
    };

    fn with(decimal_comma: bool, thousands: char) -> NumberFormat {
        NumberFormat {
            decimal_comma,
            thousands: Some(thousands),
        }
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(number("12.5", POINT), Ok(12.5));
        assert_eq!(number("-3", POINT), Ok(-3.0));
        assert_eq!(number("1e3", POINT), Ok(1000.0));
        assert_eq!(number("12,5", COMMA), Ok(12.5));
        assert_eq!(number("1 234,5", COMMA), Ok(1234.5));
        assert_eq!(number("1\u{a0}234\u{a0}567,25", COMMA), Ok(1_234_567.25));
    }

    #[test]
    fn a_point_with_a_decimal_comma_is_an_error_unless_it_groups_thousands() {
        let e = number("26.754", COMMA).unwrap_err();
        assert!(e.to_string().contains("\"26.754\" is not a number"), "{e}");
        assert!(e.to_string().contains("thousands = \".\""), "{e}");
        assert_eq!(number("26.754", with(true, '.')), Ok(26754.0));
        assert_eq!(number("1.234.567,5", with(true, '.')), Ok(1_234_567.5));
        assert!(number("26.75", with(true, '.')).is_err());
        assert!(number("1.2345", with(true, '.')).is_err());
        assert!(number("26,7,5", COMMA).is_err());
    }

    #[test]
    fn a_comma_with_a_decimal_point_is_an_error_unless_it_groups_thousands() {
        let e = number("12,5", POINT).unwrap_err();
        assert!(e.to_string().contains("decimal = \",\""), "{e}");
        assert_eq!(number("12,345.5", with(false, ',')), Ok(12345.5));
        assert!(number("12,34.5", with(false, ',')).is_err());
        assert!(number("1 234.5", POINT).is_err());
    }

    #[test]
    fn overflow_is_out_of_range_and_words_are_not_finite() {
        assert_eq!(
            number("1e400", POINT).unwrap_err().to_string(),
            "\"1e400\" is out of range (beyond ±1.8e308)"
        );
        assert!(matches!(
            number("-1e999", POINT),
            Err(CellError::OutOfRange { .. })
        ));
        for w in ["inf", "-inf", "Infinity", "NaN", "nan"] {
            assert!(
                matches!(number(w, POINT), Err(CellError::NotFinite { .. })),
                "{w}"
            );
        }
        assert!(number("abc", POINT).is_err());
        assert!(number("0x10", POINT).is_err());
    }

    #[test]
    fn years_accept_whole_floats_only() {
        assert_eq!(year("2022"), Ok(2022));
        assert_eq!(year("2022.0"), Ok(2022));
        assert_eq!(
            year("2022.5").unwrap_err().to_string(),
            "year must be a whole number, got \"2022.5\""
        );
        assert!(year("x").is_err());
        assert_eq!(year_of_float(2022.0), Some(2022));
        assert_eq!(year_of_float(f64::NAN), None);
    }

    #[test]
    fn missing_markers() {
        assert!(is_missing("", &["NA"]));
        assert!(is_missing("NA", &["NA"]));
        assert!(!is_missing("0", &["NA"]));
    }
}
