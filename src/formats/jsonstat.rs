//! JSON-stat 2.0 datasets, as served by Eurostat's Statistics API and by many national
//! offices.
//!
//! Accepted:
//! - `value` as a dense array (`null` = missing) or a sparse object keyed by flat index;
//!   numbers, or numeric strings (read as numbers).
//! - `status` as one string or a one-element array (both apply to every published value),
//!   an array as long as the cube, or a sparse object keyed by flat index.
//! - `dimension.<id>.category.index` as an array, an object `{code: position}`, or absent
//!   for a single category (the only key of `label`).
//! - `role` (`time`, `geo`, `metric`), kept in [`Dimension::roles`]; category labels in
//!   [`Dimension::labels`].
//!
//! The flat index is row-major, the last dimension varying fastest. A row is emitted for
//! every cell with a value or a cell-level status, so a confidential `|C` cell with no
//! number is a row with no value. A `size` containing 0, or an empty `value`, is an empty
//! cube (Eurostat answers an unknown filter value that way).
//!
//! Rejected with a message: text that is not JSON (with serde_json's line and column),
//! JSON-stat 1.x bundles, collections (their datasets are listed), `class: "dimension"`,
//! and Eurostat's error body `{"error":[{status, id, label}]}`, which may come with HTTP 200.
//!
//! Filtered-out categories are dropped from [`Dimension::codes`]; the other categories are
//! kept in the publisher's order, with or without data.

use serde_json::{Map, Value};

use super::{Cube, Dimension, Filters, FormatError, RowFilter, excerpt};

/// Parses one JSON-stat 2.0 dataset, keeping the rows `filters` wants.
pub fn parse(bytes: &[u8], filters: &Filters) -> Result<Cube, FormatError> {
    let root: Value = serde_json::from_slice(super::strip_bom(bytes)).map_err(|e| {
        FormatError::new(format!(
            "not JSON: {e} (the response starts with: {})",
            excerpt(bytes)
        ))
    })?;
    let Value::Object(root) = root else {
        return Err(FormatError::new(format!(
            "not a JSON-stat dataset: the JSON is {}, not an object",
            kind(&root)
        )));
    };
    check_identity(&root)?;
    dataset(&root, filters)
}

/// Everything that is not a 2.0 dataset is turned away here with a message saying what
/// it is, so the analyst knows whether to change the request or the publisher.
fn check_identity(root: &Map<String, Value>) -> Result<(), FormatError> {
    if let Some(error) = root.get("error") {
        return Err(FormatError::new(eurostat_error(error)));
    }
    let class = root.get("class").and_then(Value::as_str);
    let version = root.get("version").and_then(Value::as_str);
    match class {
        Some("collection") => return Err(FormatError::new(collection(root))),
        Some("dimension") => {
            return Err(FormatError::new(
                "this is a JSON-stat dimension (class \"dimension\"), not a dataset: it \
                 describes categories but holds no values",
            ));
        }
        Some("dataset") | None => {}
        Some(other) => {
            return Err(FormatError::new(format!(
                "unknown JSON-stat class \"{other}\"; expected \"dataset\""
            )));
        }
    }
    if let Some(v) = version
        && !v.starts_with('2')
    {
        return Err(FormatError::new(format!(
            "JSON-stat version {v} is not supported; ask the publisher for JSON-stat 2.0"
        )));
    }
    if class.is_none() && version.is_none() {
        // 1.x: a bundle {"name": dataset, …}, whose datasets keep `id` and `size` inside
        // `dimension`.
        let bundled = root
            .iter()
            .filter(|(_, v)| v.get("dimension").is_some())
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>();
        let bare = root
            .get("dimension")
            .is_some_and(|d| d.get("id").is_some() || d.get("size").is_some());
        if !bundled.is_empty() || bare {
            let named = if bundled.is_empty() {
                String::new()
            } else {
                format!(" (a bundle of datasets: {})", bundled.join(", "))
            };
            return Err(FormatError::new(format!(
                "JSON-stat 1.x{named} is not supported; ask the publisher for JSON-stat 2.0"
            )));
        }
    }
    Ok(())
}

fn eurostat_error(error: &Value) -> String {
    let items = match error {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let described = items
        .iter()
        .map(|item| {
            let field = |name: &str| match item.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(v) => Some(v.to_string()),
            };
            match field("label").or_else(|| field("message")) {
                Some(label) => {
                    let mut codes = Vec::new();
                    if let Some(s) = field("status") {
                        codes.push(format!("status {s}"));
                    }
                    if let Some(id) = field("id") {
                        codes.push(format!("id {id}"));
                    }
                    if codes.is_empty() {
                        label
                    } else {
                        format!("{label} ({})", codes.join(", "))
                    }
                }
                None => item.to_string(),
            }
        })
        .collect::<Vec<_>>();
    format!(
        "the publisher answered with an error instead of data: {}",
        described.join("; ")
    )
}

fn collection(root: &Map<String, Value>) -> String {
    let items = root
        .get("link")
        .and_then(|l| l.get("item"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed = items
        .iter()
        .map(|item| {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            match (text("label"), text("href")) {
                (Some(l), Some(h)) => format!("\"{l}\" <{h}>"),
                (Some(l), None) => format!("\"{l}\" (embedded)"),
                (None, Some(h)) => format!("<{h}>"),
                (None, None) => "(unnamed)".to_owned(),
            }
        })
        .collect::<Vec<_>>();
    let label = root
        .get("label")
        .and_then(Value::as_str)
        .map(|l| format!(" \"{l}\""))
        .unwrap_or_default();
    format!(
        "this is a JSON-stat collection{label}, not a dataset: request one of its {} \
         datasets instead: {}",
        listed.len(),
        listed.join("; ")
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn member<'a>(root: &'a Map<String, Value>, name: &str) -> Result<&'a Value, FormatError> {
    root.get(name).ok_or_else(|| {
        let members = root.keys().map(String::as_str).collect::<Vec<_>>();
        FormatError::new(format!(
            "not a JSON-stat dataset: no `{name}` member (members: {})",
            members.join(", ")
        ))
    })
}

type Labels<'a> = Option<&'a Map<String, Value>>;

/// A dimension's categories as published, in index order.
fn categories<'a>(id: &str, dim: &'a Value) -> Result<(Vec<String>, Labels<'a>), FormatError> {
    let err = |m: String| FormatError::new(format!("dimension {id}: {m}"));
    let category = dim
        .get("category")
        .ok_or_else(|| err("no `category` member".into()))?;
    let labels = category.get("label").and_then(Value::as_object);
    let codes = match category.get("index") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|c| match c {
                Value::String(s) => Ok(s.clone()),
                other => Err(err(format!(
                    "category index holds {}, not a code",
                    kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Object(positions)) => {
            let mut codes: Vec<Option<String>> = vec![None; positions.len()];
            for (code, pos) in positions {
                let p = pos
                    .as_u64()
                    .and_then(|p| usize::try_from(p).ok())
                    .filter(|&p| p < codes.len())
                    .ok_or_else(|| {
                        err(format!(
                            "category {code} has position {pos}, outside 0..{}",
                            codes.len()
                        ))
                    })?;
                if codes[p].is_some() {
                    return Err(err(format!("two categories have position {p}")));
                }
                codes[p] = Some(code.clone());
            }
            // Every slot is filled: n distinct positions below n.
            codes.into_iter().flatten().collect()
        }
        Some(other) => {
            return Err(err(format!(
                "category index is {}, not an array or an object",
                kind(other)
            )));
        }
        // The spec allows no index only for a single category, named by `label`'s only key.
        None => match labels {
            Some(l) if l.len() <= 1 => l.keys().cloned().collect(),
            Some(l) => {
                return Err(err(format!(
                    "no category index but {} labels: the order of the categories is unknown",
                    l.len()
                )));
            }
            None => return Err(err("neither a category index nor labels".into())),
        },
    };
    let mut seen = std::collections::HashSet::with_capacity(codes.len());
    if let Some(dup) = codes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(err(format!("category {dup} is listed twice")));
    }
    Ok((codes, labels))
}

/// Per-cell statuses, or one for every published value.
enum Status<'a> {
    None,
    All(&'a str),
    Dense(&'a [Value]),
    Sparse(Vec<(u64, &'a Value)>),
}

enum Values<'a> {
    Dense(&'a [Value]),
    Sparse(Vec<(u64, &'a Value)>),
}

/// Sparse keys, sorted by cell (serde_json's map orders keys as text: "10" before "2").
fn sparse<'a>(
    member: &str,
    map: &'a Map<String, Value>,
    cells: u64,
) -> Result<Vec<(u64, &'a Value)>, FormatError> {
    let mut out = Vec::with_capacity(map.len());
    for (key, v) in map {
        let flat = key
            .parse::<u64>()
            .ok()
            .filter(|&f| f < cells)
            .ok_or_else(|| {
                FormatError::new(format!(
                    "`{member}` has key \"{key}\", which is not a cell number between 0 and {} \
                     (the product of `size`)",
                    cells.saturating_sub(1)
                ))
            })?;
        out.push((flat, v));
    }
    out.sort_unstable_by_key(|&(f, _)| f);
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(FormatError::new(format!(
            "`{member}` names cell {} twice",
            w[0].0
        )));
    }
    Ok(out)
}

/// Looks up ascending cells in a sorted sparse list, advancing a cursor.
fn seek<'a>(list: &[(u64, &'a Value)], cursor: &mut usize, flat: u64) -> Option<&'a Value> {
    while let Some(&(f, v)) = list.get(*cursor) {
        if f > flat {
            return None;
        }
        *cursor += 1;
        if f == flat {
            return Some(v);
        }
    }
    None
}

fn dataset(root: &Map<String, Value>, filters: &Filters) -> Result<Cube, FormatError> {
    let ids = member(root, "id")?
        .as_array()
        .ok_or_else(|| FormatError::new("`id` is not an array of dimension ids"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| FormatError::new("`id` holds something other than text"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sizes = member(root, "size")?
        .as_array()
        .ok_or_else(|| FormatError::new("`size` is not an array of integers"))?
        .iter()
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| FormatError::new(format!("`size` holds {v}, not a count")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((i, id)) = ids
        .iter()
        .enumerate()
        .find(|(i, id)| ids[..*i].contains(id))
    {
        return Err(FormatError::new(format!(
            "`id` names dimension {id} twice (positions {} and {})",
            ids.iter().position(|x| x == id).unwrap_or(0) + 1,
            i + 1
        )));
    }
    if ids.len() != sizes.len() {
        return Err(FormatError::new(format!(
            "`id` names {} dimensions but `size` gives {} sizes",
            ids.len(),
            sizes.len()
        )));
    }
    let cells = sizes
        .iter()
        .try_fold(1u64, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| FormatError::new("the product of `size` overflows"))?;
    let dims = member(root, "dimension")?
        .as_object()
        .ok_or_else(|| FormatError::new("`dimension` is not an object"))?;

    let mut row_filter = RowFilter::new(filters, &ids);
    // Per dimension: published position → position among the kept categories.
    let mut remaps: Vec<Vec<Option<u32>>> = Vec::with_capacity(ids.len());
    let mut dimensions = Vec::with_capacity(ids.len());
    for (d, (id, &size)) in ids.iter().zip(&sizes).enumerate() {
        let dim = dims.get(id).ok_or_else(|| {
            FormatError::new(format!("dimension {id} is in `id` but not in `dimension`"))
        })?;
        let (codes, labels) = categories(id, dim)?;
        if codes.len() as u64 != size {
            return Err(FormatError::new(format!(
                "dimension {id} lists {} categories but `size` says {size}",
                codes.len()
            )));
        }
        let mut remap = Vec::with_capacity(codes.len());
        let mut kept = Vec::new();
        for code in codes {
            if row_filter.wants(d, &code) {
                let k = u32::try_from(kept.len())
                    .map_err(|_| FormatError::new(format!("dimension {id} is too large")))?;
                remap.push(Some(k));
                kept.push(code);
            } else {
                remap.push(None);
            }
        }
        let labels = labels
            .map(|l| {
                kept.iter()
                    .filter_map(|c| Some((c.clone(), l.get(c)?.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        remaps.push(remap);
        dimensions.push(Dimension {
            id: id.clone(),
            codes: kept,
            labels,
            roles: Default::default(),
        });
    }
    // Roles naming no dimension are ignored: a loader falls back on the ids anyway, and a
    // stray role should not cost the whole dataset.
    if let Some(Value::Object(roles)) = root.get("role") {
        for (role, named) in roles {
            for name in named
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Some(dim) = dimensions.iter_mut().find(|d| d.id == name) {
                    dim.roles.insert(role.clone());
                }
            }
        }
    }

    let values = match member(root, "value")? {
        Value::Array(items) => {
            if items.len() as u64 != cells {
                return Err(FormatError::new(format!(
                    "`value` has {} entries but the dimensions' sizes ({}) make {cells} cells",
                    items.len(),
                    sizes
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(" × ")
                )));
            }
            Values::Dense(items)
        }
        Value::Object(map) => Values::Sparse(sparse("value", map, cells)?),
        other => {
            return Err(FormatError::new(format!(
                "`value` is {}, not an array or an object",
                kind(other)
            )));
        }
    };
    let status = match root.get("status") {
        None | Some(Value::Null) => Status::None,
        Some(Value::String(s)) => Status::All(s),
        Some(Value::Array(items)) if items.len() == 1 && cells != 1 => match &items[0] {
            Value::String(s) => Status::All(s),
            Value::Null => Status::None,
            other => {
                return Err(FormatError::new(format!(
                    "`status` holds {}, not a flag",
                    kind(other)
                )));
            }
        },
        Some(Value::Array(items)) => {
            if items.len() as u64 != cells {
                return Err(FormatError::new(format!(
                    "`status` has {} entries; it must have one, or one per cell ({cells})",
                    items.len()
                )));
            }
            Status::Dense(items)
        }
        Some(Value::Object(map)) => Status::Sparse(sparse("status", map, cells)?),
        Some(other) => {
            return Err(FormatError::new(format!(
                "`status` is {}, not a string, an array or an object",
                kind(other)
            )));
        }
    };

    let mut cube = Cube {
        keys: vec![Vec::new(); dimensions.len()],
        dimensions,
        ..Cube::default()
    };
    if cells == 0 {
        return Ok(cube);
    }
    // Candidate cells, ascending: every cell when either member is dense, else the union
    // of the sparse keys.
    let candidates: Box<dyn Iterator<Item = u64> + '_> = match (&values, &status) {
        (Values::Dense(_), _) | (_, Status::Dense(_)) => Box::new(0..cells),
        (Values::Sparse(v), Status::Sparse(s)) => Box::new(merged(v, s)),
        (Values::Sparse(v), _) => Box::new(v.iter().map(|&(f, _)| f)),
    };
    let mut value_cursor = 0;
    let mut status_cursor = 0;
    let mut positions = vec![0u32; sizes.len()];
    'cells: for flat in candidates {
        let mut rest = flat;
        for d in (0..sizes.len()).rev() {
            // sizes[d] > 0 here: cells > 0.
            let pos = rest % sizes[d];
            rest /= sizes[d];
            match remaps[d].get(pos as usize) {
                Some(Some(k)) => positions[d] = *k,
                _ => {
                    // Not wanted: skip, but keep the sparse cursors in step.
                    if let Values::Sparse(v) = &values {
                        seek(v, &mut value_cursor, flat);
                    }
                    if let Status::Sparse(s) = &status {
                        seek(s, &mut status_cursor, flat);
                    }
                    continue 'cells;
                }
            }
        }
        let raw = match &values {
            Values::Dense(items) => items.get(flat as usize),
            Values::Sparse(v) => seek(v, &mut value_cursor, flat),
        };
        let cell_status = match &status {
            Status::None => None,
            Status::All(_) => None,
            Status::Dense(items) => items.get(flat as usize),
            Status::Sparse(s) => seek(s, &mut status_cursor, flat),
        };
        let value = match raw {
            None | Some(Value::Null) => None,
            Some(v) => Some(number(v, &cube, &positions)?),
        };
        let mut flag = match cell_status {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(FormatError::new(format!(
                    "the status of cell {} is {}, not a flag",
                    describe(&cube, &positions),
                    kind(other)
                )));
            }
        };
        // A dataset-wide status qualifies the published values; it does not turn every
        // empty cell of a sparse cube into a row.
        if let (Status::All(s), Some(_)) = (&status, value) {
            flag = Some(s);
        }
        let flag = flag.filter(|f| !f.is_empty());
        if value.is_none() && flag.is_none() {
            continue;
        }
        for (keys, &p) in cube.keys.iter_mut().zip(&positions) {
            keys.push(p);
        }
        cube.values.push(value);
        cube.flags.push(flag.map(str::to_owned));
    }
    Ok(cube)
}

/// The union of two sorted, duplicate-free cell lists, ascending.
fn merged<'a>(
    a: &'a [(u64, &'a Value)],
    b: &'a [(u64, &'a Value)],
) -> impl Iterator<Item = u64> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || match (a.get(i), b.get(j)) {
        (Some(&(x, _)), Some(&(y, _))) => {
            if x <= y {
                i += 1;
            }
            if y <= x {
                j += 1;
            }
            Some(x.min(y))
        }
        (Some(&(x, _)), None) => {
            i += 1;
            Some(x)
        }
        (None, Some(&(y, _))) => {
            j += 1;
            Some(y)
        }
        (None, None) => None,
    })
}

fn number(v: &Value, cube: &Cube, positions: &[u32]) -> Result<f64, FormatError> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        // Some publishers quote their numbers; text that is not a number is refused
        // rather than read as missing, so that nothing is lost silently.
        Value::String(s) => super::parse_number(s.trim()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        FormatError::new(format!(
            "the value of cell {} is {}, not a number",
            describe(cube, positions),
            match v {
                Value::String(s) => format!("the text \"{s}\""),
                other => kind(other).to_owned(),
            }
        ))
    })
}

fn describe(cube: &Cube, positions: &[u32]) -> String {
    cube.dimensions
        .iter()
        .zip(positions)
        .map(|(d, &p)| {
            format!(
                "{}={}",
                d.id,
                d.codes.get(p as usize).map_or("?", String::as_str)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::formats::test_support::{cell, check_shape, codes, filters, has, parsed, sample};
    use crate::formats::{Filters, Flag};

    fn ok(json: &str) -> crate::formats::Cube {
        parsed(parse(json.as_bytes(), &Filters::new()))
    }

    fn err(json: &str) -> String {
        parse(json.as_bytes(), &Filters::new())
            .expect_err("should be refused")
            .to_string()
    }

    /// geo (index as array) × year (index as object) × concept (no index, one label).
    const DENSE: &str = r#"{
        "version": "2.0", "class": "dataset",
        "id": ["geo", "year", "concept"], "size": [2, 2, 1],
        "role": {"geo": ["geo"], "time": ["year"], "metric": ["concept"]},
        "dimension": {
            "geo": {"category": {"index": ["FR", "DE"], "label": {"FR": "France", "DE": "Germany"}}},
            "year": {"category": {"index": {"2021": 1, "2020": 0}}},
            "concept": {"category": {"label": {"UNR": "unemployment rate"}}}
        },
        "value": [1.5, null, "2.5", 4]
    }"#;

    #[test]
    fn dense_values_roles_labels_and_index_forms() {
        let cube = ok(DENSE);
        let ids = cube
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(ids, ["geo", "year", "concept"]);
        assert_eq!(cube.dimensions[0].codes, ["FR", "DE"]);
        // The object index gives the order, not the key order of the text.
        assert_eq!(cube.dimensions[1].codes, ["2020", "2021"]);
        // Absent index: the only label's key is the category.
        assert_eq!(cube.dimensions[2].codes, ["UNR"]);
        assert_eq!(cube.dimensions[0].labels["DE"], "Germany");
        assert_eq!(cube.dimensions[2].labels["UNR"], "unemployment rate");
        assert!(cube.dimensions[0].roles.contains("geo"));
        assert!(cube.dimensions[1].roles.contains("time"));
        assert!(cube.dimensions[2].roles.contains("metric"));
        // The null cell is no row; a quoted number is a number.
        assert_eq!(cube.len(), 3);
        assert_eq!(codes(&cube, 0), ["FR", "2020", "UNR"]);
        assert_eq!(cell(&cube, &["FR", "2020", "UNR"]), (Some(1.5), None));
        assert!(!has(&cube, &["FR", "2021", "UNR"]));
        assert_eq!(cell(&cube, &["DE", "2020", "UNR"]), (Some(2.5), None));
        assert_eq!(cell(&cube, &["DE", "2021", "UNR"]), (Some(4.0), None));
        assert!(cube.lines.is_none());
    }

    /// Eurostat's form: sparse value and status, a status with no value (`|C`).
    const SPARSE: &str = r#"{
        "version": "2.0", "class": "dataset",
        "id": ["geo", "time"], "size": [2, 6],
        "dimension": {
            "geo": {"category": {"index": {"AT": 0, "BE": 1}}},
            "time": {"category": {"index": {"2015": 0, "2016": 1, "2017": 2, "2018": 3, "2019": 4, "2020": 5}}}
        },
        "value": {"10": 10.0, "2": 2.0, "0": 0.5, "11": null},
        "status": {"2": "e", "3": "|C", "10": "", "11": "u"}
    }"#;

    #[test]
    fn sparse_values_and_statuses() {
        let cube = ok(SPARSE);
        // In cell order (the text orders "10" before "2"); cells 0, 2, 3, 10, 11.
        let rows = (0..cube.len())
            .map(|r| codes(&cube, r).join("/"))
            .collect::<Vec<_>>();
        assert_eq!(
            rows,
            ["AT/2015", "AT/2017", "AT/2018", "BE/2019", "BE/2020"]
        );
        assert_eq!(cell(&cube, &["AT", "2017"]), (Some(2.0), Some("e")));
        // Confidential, no number: a row, with its flag.
        let (value, flag) = cell(&cube, &["AT", "2018"]);
        assert_eq!(value, None);
        assert!(Flag::parse(flag.unwrap()).confidential);
        // An empty status is no flag.
        assert_eq!(cell(&cube, &["BE", "2019"]), (Some(10.0), None));
        // A null value with a status is a row.
        assert_eq!(cell(&cube, &["BE", "2020"]), (None, Some("u")));
    }

    fn with_status(status: &str, value: &str) -> String {
        format!(
            r#"{{"version": "2.0", "class": "dataset", "id": ["t"], "size": [3],
                "dimension": {{"t": {{"category": {{"index": ["a", "b", "c"]}}}}}},
                "value": {value}, "status": {status}}}"#
        )
    }

    #[test]
    fn status_forms() {
        let flags = |cube: &crate::formats::Cube| {
            (0..cube.len())
                .map(|r| (cube.code(0, r).to_owned(), cube.flags[r].clone()))
                .collect::<Vec<_>>()
        };
        let s = |x: &str| Some(x.to_owned());
        // One string: every published value carries it; the null cell stays no row.
        let cube = ok(&with_status(r#""p""#, "[1, null, 3]"));
        assert_eq!(flags(&cube), [("a".into(), s("p")), ("c".into(), s("p"))]);
        // A one-element array applies to all, like the string.
        let cube = ok(&with_status(r#"["p"]"#, "[1, 2, 3]"));
        assert_eq!(cube.flags, [s("p"), s("p"), s("p")]);
        // One per cell; null is no flag; a flagged empty cell is a row.
        let cube = ok(&with_status(r#"["e", null, "|C"]"#, "[1, 2, null]"));
        assert_eq!(
            flags(&cube),
            [
                ("a".into(), s("e")),
                ("b".into(), None),
                ("c".into(), s("|C"))
            ]
        );
        assert_eq!(cube.values, [Some(1.0), Some(2.0), None]);
        // Sparse object with a dense value.
        let cube = ok(&with_status(r#"{"1": "b"}"#, "[1, 2, 3]"));
        assert_eq!(cube.flags, [None, s("b"), None]);
        // A global status on a sparse value does not fill the empty cells.
        let cube = ok(&with_status(r#""p""#, r#"{"2": 3}"#));
        assert_eq!(flags(&cube), [("c".into(), s("p"))]);
        // Any other length is an error.
        let e = err(&with_status(r#"["a", "b"]"#, "[1, 2, 3]"));
        assert!(e.contains("`status` has 2 entries"), "{e}");
    }

    /// A 3×2×4 cube whose values spell their position: A×100 + B×10 + C (1-based).
    fn order_cube() -> String {
        let mut values = Vec::new();
        for a in 1..=3 {
            for b in 1..=2 {
                for c in 1..=4 {
                    values.push((a * 100 + b * 10 + c).to_string());
                }
            }
        }
        format!(
            r#"{{"version": "2.0", "class": "dataset", "id": ["A", "B", "C"], "size": [3, 2, 4],
                "dimension": {{
                    "A": {{"category": {{"index": ["1", "2", "3"]}}}},
                    "B": {{"category": {{"index": ["1", "2"]}}}},
                    "C": {{"category": {{"index": ["1", "2", "3", "4"]}}}}
                }},
                "value": [{}]}}"#,
            values.join(",")
        )
    }

    #[test]
    fn row_major_last_dimension_fastest() {
        let cube = ok(&order_cube());
        assert_eq!(cube.len(), 24);
        for r in 0..cube.len() {
            let c = codes(&cube, r);
            let expected = format!("{}{}{}", c[0], c[1], c[2]).parse::<f64>().unwrap();
            assert_eq!(cube.values[r], Some(expected), "row {r}: {c:?}");
        }
        // The last dimension varies fastest.
        assert_eq!(codes(&cube, 1), ["1", "1", "2"]);
        assert_eq!(codes(&cube, 4), ["1", "2", "1"]);
        assert_eq!(codes(&cube, 8), ["2", "1", "1"]);
    }

    #[test]
    fn filters_keep_rows_and_categories_wanted() {
        let json = order_cube();
        let cube = parse(
            json.as_bytes(),
            &filters(&[("a", &["2"]), ("C", &["4", "1"])]),
        )
        .unwrap();
        check_shape(&cube);
        assert_eq!(cube.dimensions[0].codes, ["2"]);
        assert_eq!(cube.dimensions[1].codes, ["1", "2"]);
        // The publisher's order, not the filter's.
        assert_eq!(cube.dimensions[2].codes, ["1", "4"]);
        assert_eq!(
            cube.values,
            [Some(211.0), Some(214.0), Some(221.0), Some(224.0)]
        );
        // Codes match case-insensitively; sparse cells too.
        let cube = parse(SPARSE.as_bytes(), &filters(&[("GEO", &["be"])])).unwrap();
        assert_eq!(cube.len(), 2);
        assert_eq!(cube.dimensions[0].codes, ["BE"]);
        assert_eq!(cell(&cube, &["BE", "2020"]), (None, Some("u")));
        // A filter on a dimension the dataset lacks filters nothing (the loader reports it).
        let cube = parse(SPARSE.as_bytes(), &filters(&[("sex", &["T"])])).unwrap();
        assert_eq!(cube.len(), 5);
        // Filtered-out text values are never read.
        let text = DENSE.replace("\"2.5\"", "\"n/a\"");
        let cube = parse(text.as_bytes(), &filters(&[("geo", &["FR"])])).unwrap();
        assert_eq!(cube.len(), 1);
    }

    #[test]
    fn empty_cubes_are_not_errors() {
        let zero = r#"{"version": "2.0", "class": "dataset", "id": ["geo", "time"], "size": [0, 1],
            "dimension": {"geo": {"category": {"index": {}, "label": {}}},
                          "time": {"category": {"index": {"2026-08": 0}}}},
            "value": {}}"#;
        let cube = ok(zero);
        assert!(cube.is_empty());
        assert_eq!(cube.dimensions.len(), 2);
        assert_eq!(cube.dimensions[1].codes, ["2026-08"]);
        let cube = ok(&with_status("{}", "{}"));
        assert!(cube.is_empty());
        let cube = ok(&with_status("[null, null, null]", "[null, null, null]"));
        assert!(cube.is_empty());
        // A dense value with size 0 is an empty array.
        assert!(ok(&zero.replace("\"value\": {}", "\"value\": []")).is_empty());
    }

    #[test]
    fn structural_errors() {
        let e = err(&DENSE.replace(r#""size": [2, 2, 1]"#, r#""size": [2, 2]"#));
        assert!(
            e.contains("`id` names 3 dimensions but `size` gives 2"),
            "{e}"
        );
        let e = err(&DENSE.replace(r#""size": [2, 2, 1]"#, r#""size": [3, 2, 1]"#));
        assert!(
            e.contains("dimension geo lists 2 categories but `size` says 3"),
            "{e}"
        );
        let e = err(&DENSE.replace("[1.5, null, \"2.5\", 4]", "[1.5, null, 2.5]"));
        assert!(
            e.contains("`value` has 3 entries") && e.contains("2 × 2 × 1"),
            "{e}"
        );
        let e = err(&SPARSE.replace(r#""10": 10.0"#, r#""12": 10.0"#));
        assert!(
            e.contains("key \"12\"") && e.contains("between 0 and 11"),
            "{e}"
        );
        let e = err(&SPARSE.replace(r#""10": 10.0"#, r#""x": 10.0"#));
        assert!(e.contains("key \"x\""), "{e}");
        let e = err(&SPARSE.replace(r#""3": "|C""#, r#""-3": "|C""#));
        assert!(e.contains("`status` has key \"-3\""), "{e}");
        let e = err(&DENSE.replace("\"2.5\"", "\"n/a\""));
        assert!(
            e.contains("geo=DE, year=2020, concept=UNR") && e.contains("\"n/a\""),
            "{e}"
        );
        let e = err(&DENSE.replace(
            r#"{"UNR": "unemployment rate"}"#,
            r#"{"UNR": "rate", "POP": "population"}"#,
        ));
        assert!(
            e.contains("dimension concept: no category index but 2 labels"),
            "{e}"
        );
        let e = err(&DENSE.replace(r#"{"2021": 1, "2020": 0}"#, r#"{"2021": 2, "2020": 0}"#));
        assert!(
            e.contains("dimension year: category 2021 has position 2"),
            "{e}"
        );
        let e = err(&DENSE.replace(r#"["FR", "DE"]"#, r#"["FR", "FR"]"#));
        assert!(e.contains("category FR is listed twice"), "{e}");
        let e = err(&DENSE.replace(
            r#""id": ["geo", "year", "concept"]"#,
            r#""id": ["geo", "year", "unit"]"#,
        ));
        assert!(
            e.contains("dimension unit is in `id` but not in `dimension`"),
            "{e}"
        );
        let e = err(&DENSE.replace(
            r#""id": ["geo", "year", "concept"]"#,
            r#""id": ["geo", "year", "geo"]"#,
        ));
        assert!(
            e.contains("`id` names dimension geo twice (positions 1 and 3)"),
            "{e}"
        );
        let e = err(r#"{"version": "2.0", "class": "dataset", "label": "x"}"#);
        assert!(e.contains("no `id` member"), "{e}");
        let e = err(
            r#"{"version": "2.0", "class": "dataset", "id": [], "size": [], "dimension": {}, "value": [1, 2]}"#,
        );
        assert!(e.contains("`value` has 2 entries"), "{e}");
        let e = err(r#"[1, 2]"#);
        assert!(e.contains("an array, not an object"), "{e}");
        let e = err(&DENSE.replace(
            r#""size": [2, 2, 1]"#,
            r#""size": [4294967296, 4294967296, 4294967296]"#,
        ));
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn not_json_says_where() {
        let e = err("{\"version\": \"2.0\",\n \"class\": }");
        assert!(
            e.starts_with("not JSON") && e.contains("line 2 column 11"),
            "{e}"
        );
        let e = err("<html><body>Service unavailable</body></html>");
        assert!(e.contains("line 1 column 1") && e.contains("<html>"), "{e}");
        assert!(err("").starts_with("not JSON"));
    }

    #[test]
    fn refuses_what_is_not_a_2_0_dataset() {
        let e = err(
            r#"{"oecd": {"label": "x", "value": [1], "dimension": {"id": ["a"], "size": [1]}},
                        "canada": {"value": [1], "dimension": {"id": ["a"], "size": [1]}}}"#,
        );
        assert!(
            e.contains("JSON-stat 1.x")
                && e.contains("canada, oecd")
                && e.contains("ask the publisher for JSON-stat 2.0"),
            "{e}"
        );
        let e = err(
            r#"{"version": "2.0", "class": "collection", "label": "Samples",
            "link": {"item": [{"class": "dataset", "href": "https://x/a.json", "label": "A"},
                              {"class": "dataset", "label": "B", "value": []}]}}"#,
        );
        assert!(
            e.contains("collection \"Samples\"")
                && e.contains("\"A\" <https://x/a.json>")
                && e.contains("\"B\" (embedded)"),
            "{e}"
        );
        let e = err(r#"{"version": "2.0", "class": "dimension", "category": {}}"#);
        assert!(e.contains("class \"dimension\""), "{e}");
        let e = err(r#"{"error":[{"status":413,"id":413,"label":"EXTRACTION_TOO_BIG: too big"}]}"#);
        assert!(
            e.contains("EXTRACTION_TOO_BIG: too big (status 413, id 413)"),
            "{e}"
        );
        let e = err(r#"{"error":{"status":400,"id":150,"label":"ERR_SEMANTIC: bad dimension"}}"#);
        assert!(
            e.contains("ERR_SEMANTIC: bad dimension (status 400, id 150)"),
            "{e}"
        );
    }

    // ---- Captured responses (README.md and FORMATS.md in shared/data/official_samples).

    #[test]
    #[ignore = "needs ../shared/data"]
    fn eurostat_hlth_ehis_hc7() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_jsonstat/HLTH_EHIS_HC7.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // python3: d=json.load(…); len(set(d['value']) | set(d['status'])) → 7027
        // (6,537 values, 957 statuses of which 490 `|C` without a value).
        assert_eq!(cube.len(), 7027);
        assert_eq!(cube.values.iter().filter(|v| v.is_some()).count(), 6537);
        assert_eq!(cube.flags.iter().filter(|f| f.is_some()).count(), 957);
        // No `role` member in Eurostat output.
        assert!(cube.dimensions.iter().all(|d| d.roles.is_empty()));
        // Decoding flat keys with the sizes [1,9,3,5,4,16,1] in python3:
        // "0" → A/TOTAL/T/E10-E14/TOTAL/BE/2008 = 4.6, no status;
        // "1049" → A/Y15-24/T/F32_F33/ED0-2/MT/2008 = 7.7, status "u";
        // "19" → A/TOTAL/T/E10-E14/ED0-2/DE/2008: no value, status "|C".
        let key = |c: &[&'static str]| c.to_vec();
        assert_eq!(
            cell(
                &cube,
                &key(&["A", "TOTAL", "T", "E10-E14", "TOTAL", "BE", "2008"])
            ),
            (Some(4.6), None)
        );
        assert_eq!(
            cell(
                &cube,
                &key(&["A", "Y15-24", "T", "F32_F33", "ED0-2", "MT", "2008"])
            ),
            (Some(7.7), Some("u"))
        );
        let (value, flag) = cell(
            &cube,
            &["A", "TOTAL", "T", "E10-E14", "ED0-2", "DE", "2008"],
        );
        assert_eq!((value, flag), (None, Some("|C")));
        assert!(Flag::parse(flag.unwrap()).confidential);
        assert_eq!(cube.dimensions[5].labels["DE"], "Germany");
        // Filtered on one country: only its cells.
        let mt = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_jsonstat/HLTH_EHIS_HC7.json"
            )),
            &filters(&[("geo", &["mt"])]),
        )
        .unwrap();
        assert!(!mt.is_empty() && mt.dimensions[5].codes == ["MT"]);
        assert_eq!(
            cell(&mt, &["A", "Y15-24", "T", "F32_F33", "ED0-2", "MT", "2008"]),
            (Some(7.7), Some("u"))
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn eurostat_all_confidential() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_jsonstat/sts-inpr-m-ie-confidential.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // `value` is {} and `status` has "0".."5": "|C" (grep -c '|C' → 6 plus the label).
        assert_eq!(cube.len(), 6);
        assert!(cube.values.iter().all(Option::is_none));
        assert!(
            cube.flags
                .iter()
                .all(|f| f.as_deref() == Some("|C") && Flag::parse("|C").confidential)
        );
        assert_eq!(
            cube.dimensions[6].codes,
            [
                "2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06"
            ]
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn eurostat_unknown_geo_is_an_empty_cube() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_jsonstat/une-rt-m-geo-xx-last1.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        assert!(cube.is_empty());
        // "size": [1, 3, 3, 2, 3, 0, 1]
        assert_eq!(cube.dimensions[5].id, "geo");
        assert!(cube.dimensions[5].codes.is_empty());
        assert_eq!(cube.dimensions[1].codes, ["NSA", "SA", "TC"]);
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn eurostat_last_three_months() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_jsonstat/une-rt-m-geo-de-lower-last3.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // "value": {"0": 4.0, "1": 4.0}, no status; time 2026-06..08, the third without data.
        assert_eq!(cube.len(), 2);
        let at = |t| ["M", "SA", "TOTAL", "PC_ACT", "T", "DE", t];
        assert_eq!(cell(&cube, &at("2026-06")), (Some(4.0), None));
        assert_eq!(cell(&cube, &at("2026-07")), (Some(4.0), None));
        assert!(!has(&cube, &at("2026-08")));
        assert_eq!(cube.dimensions[6].codes, ["2026-06", "2026-07", "2026-08"]);
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn json_stat_org_canada() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/jsonstat_spec_samples/canada.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // 1×1×20×2×3 = 120 values, no null; "status": ["a"] applies to all.
        assert_eq!(cube.len(), 120);
        assert!(cube.flags.iter().all(|f| f.as_deref() == Some("a")));
        // `country` has no index: the only label key, CA.
        assert_eq!(cube.dimensions[0].codes, ["CA"]);
        assert_eq!(cube.dimensions[0].labels["CA"], "Canada");
        assert!(cube.dimensions[0].roles.contains("geo"));
        assert!(cube.dimensions[1].roles.contains("time"));
        assert!(cube.dimensions[3].roles.contains("metric"));
        // python3 decoding: cell 0 = CA/2012/T/POP/T 34880.5; cell 17 = CA/2012/9/PERCENT/F 5.1;
        // cell 119 = CA/2012/older/PERCENT/F 1.0.
        assert_eq!(
            cell(&cube, &["CA", "2012", "T", "POP", "T"]),
            (Some(34880.5), Some("a"))
        );
        assert_eq!(
            cell(&cube, &["CA", "2012", "9", "PERCENT", "F"]),
            (Some(5.1), Some("a"))
        );
        assert_eq!(
            cell(&cube, &["CA", "2012", "older", "PERCENT", "F"]),
            (Some(1.0), Some("a"))
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn json_stat_org_order() {
        let bytes = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/jsonstat_spec_samples/order.json"
        ));
        // Its values are text ("A1B1C1"), which a numeric cube cannot hold: refused, naming
        // the first cell.
        let e = parse(&bytes, &Filters::new()).unwrap_err();
        assert!(
            e.message.contains("A=1, B=1, C=1") && e.message.contains("\"A1B1C1\""),
            "{e}"
        );
        // To check the order, each text "AxByCz" is rewritten as the number xyz; the
        // structure is the file's. Row-major, last dimension fastest: every row's codes
        // spell its value…
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for v in json["value"].as_array_mut().unwrap() {
            let digits = v.as_str().unwrap().replace(['A', 'B', 'C'], "");
            *v = serde_json::Value::from(digits.parse::<u32>().unwrap());
        }
        let cube = parse(json.to_string().as_bytes(), &Filters::new()).unwrap();
        assert_eq!(cube.len(), 24);
        let mismatched = (0..cube.len())
            .filter(|&r| {
                let c = codes(&cube, r).concat().parse::<f64>().unwrap();
                cube.values[r] != Some(c)
            })
            .collect::<Vec<_>>();
        // …except cell 11, which the sample itself misprints as "A1B1C4" where A2B1C4
        // belongs (grep -o '"A1B1C4"' order.json | wc -l → 2).
        assert_eq!(mismatched, [11]);
        assert_eq!(codes(&cube, 11), ["2", "1", "4"]);
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn json_stat_org_oecd() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/jsonstat_spec_samples/oecd.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // 1×36×12 = 432 values, none null; 72 sparse statuses, all "e".
        assert_eq!(cube.len(), 432);
        assert_eq!(
            cube.flags
                .iter()
                .filter(|f| f.as_deref() == Some("e"))
                .count(),
            72
        );
        // python3: cell 0 = UNR/AU/2003 5.943826289; cell 10 = UNR/AU/2013 5.50415003 "e";
        // cell 431 = UNR/OECD/2014 8.004598637 "e".
        assert_eq!(
            cell(&cube, &["UNR", "AU", "2003"]),
            (Some(5.943826289), None)
        );
        assert_eq!(
            cell(&cube, &["UNR", "AU", "2013"]),
            (Some(5.50415003), Some("e"))
        );
        assert_eq!(
            cell(&cube, &["UNR", "OECD", "2014"]),
            (Some(8.004598637), Some("e"))
        );
        assert_eq!(cube.dimensions[0].codes, ["UNR"]);
        assert!(cube.dimensions[1].roles.contains("geo"));
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn json_stat_org_galicia() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/jsonstat_spec_samples/galicia.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // 6×22×3×2×5×1 = 3,960 values of which 4 null (cells 3278, 3288, 3298, 3947).
        assert_eq!(cube.len(), 3956);
        // Two geo dimensions.
        let geo = cube
            .dimensions
            .iter()
            .filter(|d| d.roles.contains("geo"))
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(geo, ["birth", "residence"]);
        // python3: cell 1 = T/T/T/2001/15/pop 1096027; cell 3959 = F/100/F/2011/36/pop 11.
        assert_eq!(
            cell(&cube, &["T", "T", "T", "2001", "15", "pop"]),
            (Some(1096027.0), None)
        );
        assert_eq!(
            cell(&cube, &["F", "100", "F", "2011", "36", "pop"]),
            (Some(11.0), None)
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn json_stat_org_refusals() {
        let e = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/jsonstat_spec_samples/oecd-canada.json"
            )),
            &Filters::new(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("JSON-stat 1.x") && e.message.contains("canada, oecd"),
            "{e}"
        );
        let e = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/jsonstat_spec_samples/collection.json"
            )),
            &Filters::new(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("collection")
                && e.message.contains("8 datasets")
                && e.message
                    .contains("<http://json-stat.org/samples/galicia.json>"),
            "{e}"
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn eurostat_error_bodies() {
        let e = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_errors/ds-045409-extraction-too-big.json"
            )),
            &Filters::new(),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("EXTRACTION_TOO_BIG: The requested extraction is too big")
                && e.message.contains("(status 413, id 413)"),
            "{e}"
        );
        let e = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_errors/ds-999999-statistics.json"
            )),
            &Filters::new(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("ERR_NOT_FOUND_4: DS-999999")
                && e.message.contains("(status 404, id 100)"),
            "{e}"
        );
        // The SDMX endpoint's XML fault is not JSON: said so, with its first words.
        let e = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_errors/ds-045409-fault-413.xml"
            )),
            &Filters::new(),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("not JSON") && e.message.contains("<"),
            "{e}"
        );
    }
}
