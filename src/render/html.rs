//! The pack's pages: `index.html` with every chart and its caption, and one page per
//! profiled territory with its charts and a table of its scores and ranks. Plain HTML
//! with the style inline and relative links only: it opens from disk, offline.

use std::fmt::Write;

use super::charts::Figure;
use super::{Inputs, style};
use crate::plan::Level;

const CSS: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:0;color:#212529;background:#f8f9fa}\
header{background:#fff;border-bottom:1px solid #dee2e6;padding:16px 28px}\
h1{font-size:24px;margin:0 0 6px}h2{font-size:19px;margin:28px 0 10px}\
main{padding:0 28px 40px;max-width:1260px}nav a{margin-right:14px}\
figure{background:#fff;border:1px solid #dee2e6;margin:0 0 22px;padding:10px}\
figure img{max-width:100%;height:auto;display:block}\
figcaption{font-size:14px;color:#495057;margin-top:6px}\
table{border-collapse:collapse;background:#fff;font-size:14px}\
td,th{border:1px solid #dee2e6;padding:4px 10px;text-align:left}td.n{text-align:right}\
.muted{color:#6c757d;font-size:13px}ul.cols{columns:4;padding-left:18px}";

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(title)
    )
}

/// A figure: the PNG, linking to the SVG, with its caption. `prefix` leads from the page
/// to the pack's folder.
fn figure(f: &Figure, prefix: &str) -> String {
    let (w, h) = f.size();
    format!(
        "<figure id=\"{id}\"><a href=\"{prefix}{stem}.svg\"><img src=\"{prefix}{stem}.png\" width=\"{w}\" height=\"{h}\" alt=\"{alt}\"></a>\n<figcaption>{cap} <a href=\"{prefix}{stem}.svg\">SVG</a> · <a href=\"{prefix}{stem}.png\">PNG</a></figcaption></figure>\n",
        id = esc(&f.stem.replace('/', "-")),
        stem = f.stem,
        alt = esc(&f.frame.title),
        cap = esc(&f.caption),
    )
}

/// Profile pages, then `index.html` (last: the pack is complete when it is written).
pub(super) fn pages(x: &Inputs<'_>, figures: &[Figure]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let ix = x.index;
    let title = format!("{} — chart pack", x.pipeline.name);
    let year = ix.and_then(|ix| ix.years[x.year]);

    // Profile pages.
    let mut profile_links = Vec::new();
    if let Some(ix) = ix {
        for &t in &x.profiles {
            let terr = &ix.territories[t];
            let stem = style::file_stem(&terr.id);
            let prefix = format!("profiles/{stem}_");
            let mut p = head(&format!("{} — {}", terr.name, x.pipeline.name));
            let _ = write!(
                p,
                "<header><h1>{}</h1><p class=\"muted\">{}{}{} · <a href=\"../index.html\">back to the chart pack</a></p></header>\n<main>\n",
                esc(&terr.name),
                esc(&terr.id),
                terr.group
                    .as_ref()
                    .map_or(String::new(), |g| format!(" · {}", esc(g))),
                year.map_or(String::new(), |y| format!(" · {y}"))
            );
            let mut any = false;
            for f in figures.iter().filter(|f| f.stem.starts_with(&prefix)) {
                p.push_str(&figure(f, "../"));
                any = true;
            }
            if !any {
                p.push_str("<p class=\"muted\">No chart applies to this territory.</p>\n");
            }
            p.push_str("<h2>Scores and ranks</h2>\n<table><tr><th>level</th><th>score</th><th>0–100</th><th>rank</th></tr>\n");
            let n = ix.territories.len();
            for level in [Level::Index, Level::Dimension, Level::Component] {
                for node in ix.nodes_at(level) {
                    let v = ix.value(node, x.year, t);
                    let r = ix.rank(node, x.year, t);
                    let indent = match level {
                        Level::Index => "",
                        Level::Dimension => "&nbsp;&nbsp;",
                        _ => "&nbsp;&nbsp;&nbsp;&nbsp;",
                    };
                    let name = if level == Level::Index {
                        format!("<b>{}</b>", esc(&ix.nodes[node].name))
                    } else {
                        esc(&ix.nodes[node].name)
                    };
                    let _ = writeln!(
                        p,
                        "<tr><td>{}</td><td>{indent}{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                        level.as_str(),
                        v.map_or("–".into(), style::score),
                        r.map_or("–".into(), |r| format!("{r} / {n}"))
                    );
                }
            }
            p.push_str("</table>\n");
            if let Some(rt) = x
                .rci
                .as_ref()
                .and_then(|r| r.territories.iter().find(|rt| rt.id == terr.id))
            {
                let _ = write!(
                    p,
                    "<h2>Relational capability</h2>\n<table><tr><td>mean RCI (0–1)</td><td class=\"n\">{}</td></tr><tr><td>95% interval</td><td class=\"n\">{}</td></tr><tr><td>rank</td><td class=\"n\">{}</td></tr><tr><td>M0</td><td class=\"n\">{}</td></tr><tr><td>respondents</td><td class=\"n\">{}{}</td></tr></table>\n",
                    rt.mean.map_or("–".into(), |m| format!("{m:.3}")),
                    rt.ci
                        .map_or("–".into(), |(a, b)| format!("{a:.3} – {b:.3}")),
                    rt.rank.map_or("–".into(), |r| r.to_string()),
                    rt.m0.map_or("–".into(), |m| format!("{m:.3}")),
                    rt.respondents,
                    if rt.small_sample {
                        " (small sample)"
                    } else {
                        ""
                    }
                );
            }
            p.push_str("</main>\n</body>\n</html>\n");
            out.push((format!("profiles/{stem}.html"), p.into_bytes()));
            profile_links.push((stem, terr.name.clone()));
        }
    }

    // Comparison pages.
    let mut compare_links = Vec::new();
    for c in &x.comparisons {
        let stem = c
            .territories
            .iter()
            .map(|t| style::file_stem(&t.id))
            .collect::<Vec<_>>()
            .join("_");
        let names: Vec<String> = c.territories.iter().map(|t| t.name.clone()).collect();
        let heading = names.join(" · ");
        let mut p = head(&format!("{heading} — {}", x.pipeline.name));
        let _ = write!(
            p,
            "<header><h1>{}</h1><p class=\"muted\">{}{} · <a href=\"../index.html\">back to the chart pack</a></p></header>\n<main>\n",
            esc(&heading),
            esc(&c
                .territories
                .iter()
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
                .join(", ")),
            c.year.map_or(String::new(), |y| format!(" · {y}")),
        );
        for f in figures
            .iter()
            .filter(|f| f.stem == format!("compare/{stem}"))
        {
            p.push_str(&figure(f, "../"));
        }
        p.push_str("<h2>Scores, ranks and group medians</h2>\n<table><tr><th>node</th>");
        for t in &c.territories {
            let _ = write!(
                p,
                "<th>{}</th><th>rank</th><th>median of its group</th>",
                esc(&t.name)
            );
        }
        p.push_str("</tr>\n");
        for r in &c.rows {
            let indent = match r.level.as_str() {
                "index" => "",
                "dimension" => "&nbsp;&nbsp;",
                _ => "&nbsp;&nbsp;&nbsp;&nbsp;",
            };
            let _ = write!(p, "<tr><td>{indent}{}</td>", esc(&r.node_name));
            for k in 0..c.territories.len() {
                let _ = write!(
                    p,
                    "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                    r.values[k].map_or("–".into(), style::score),
                    r.ranks[k].map_or("–".into(), |v| v.to_string()),
                    r.group_medians[k].map_or("–".into(), style::score),
                );
            }
            p.push_str("</tr>\n");
        }
        p.push_str("</table>\n</main>\n</body>\n</html>\n");
        out.push((format!("compare/{stem}.html"), p.into_bytes()));
        compare_links.push((stem, heading));
    }

    // The index page.
    let mut s = head(&title);
    let _ = write!(
        s,
        "<header><h1>{}</h1><p class=\"muted\">Chart pack{} · pipeline <code>{}</code> · bienvivre {}</p>\n<nav>",
        esc(&x.pipeline.name),
        year.map_or(String::new(), |y| format!(" · {y}")),
        esc(&x.pipeline.id),
        env!("CARGO_PKG_VERSION")
    );
    // Sections: anchor, heading, and the file-name prefix of their figures.
    let sections = [
        ("rankings", "Rankings", "ranking_"),
        ("maps", "Maps", "map_"),
        ("heatmap", "Heatmap", "heatmap_"),
        ("scatter", "Index and covariate", "scatter_"),
        ("trends", "Trends", "trend_"),
        ("relational", "Relational capability", "rci_"),
    ];
    for (id, name, prefix) in &sections {
        if figures.iter().any(|f| f.stem.starts_with(prefix)) {
            let _ = write!(s, "<a href=\"#{id}\">{name}</a>");
        }
    }
    if !profile_links.is_empty() {
        s.push_str("<a href=\"#profiles\">Territory profiles</a>");
    }
    if !compare_links.is_empty() {
        s.push_str("<a href=\"#comparisons\">Comparisons</a>");
    }
    s.push_str("</nav></header>\n<main>\n");
    for (id, name, prefix) in &sections {
        let chosen: Vec<&Figure> = figures
            .iter()
            .filter(|f| f.stem.starts_with(prefix))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let _ = writeln!(s, "<h2 id=\"{id}\">{name}</h2>");
        for f in chosen {
            s.push_str(&figure(f, ""));
        }
    }
    if !profile_links.is_empty() {
        s.push_str("<h2 id=\"profiles\">Territory profiles</h2>\n<ul class=\"cols\">\n");
        for (stem, name) in &profile_links {
            let _ = writeln!(
                s,
                "<li><a href=\"profiles/{stem}.html\">{}</a></li>",
                esc(name)
            );
        }
        s.push_str("</ul>\n");
    }
    if !compare_links.is_empty() {
        s.push_str("<h2 id=\"comparisons\">Comparisons</h2>\n<ul>\n");
        for (stem, heading) in &compare_links {
            let _ = writeln!(
                s,
                "<li><a href=\"compare/{stem}.html\">{}</a></li>",
                esc(heading)
            );
        }
        s.push_str("</ul>\n");
    }
    // For the analyst rather than the reader: at the end.
    if !x.warnings.is_empty() {
        s.push_str("<h2 id=\"notes\">Technical notes</h2>\n<ul>\n");
        for w in &x.warnings {
            let _ = writeln!(s, "<li class=\"muted\">{}</li>", esc(w));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</main>\n</body>\n</html>\n");
    out.push(("index.html".into(), s.into_bytes()));
    out
}
