//! The one SVG chart module of alinea: inline, self-contained charts for the report page and the analysis stages.

use std::fmt::Write as _;

use crate::html::escape;

/// Colours of the series (runs), in order; cycled past eight.
pub const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// Round tick values covering `[lo, hi]` (about `n` of them, steps of 1, 2 or 5 × 10^k), with the decimals their
/// labels need. A flat range is widened so that the axis still has a scale.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, usize) {
    let (lo, hi) = if (hi - lo).abs() < 1e-12 {
        if lo == 0.0 {
            (0.0, 1.0)
        } else {
            (lo - lo.abs() * 0.1, hi + hi.abs() * 0.1)
        }
    } else {
        (lo.min(hi), hi.max(lo))
    };
    let rough = (hi - lo) / n.max(2) as f64;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * mag);
    let first = (lo / step + 1e-9).floor() as i64;
    let last = (hi / step - 1e-9).ceil() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    (ticks, decimals)
}

/// A tick label: `decimals` places, without a negative zero.
fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// The legend of a chart: one swatch and name per series, one per row, from (`x`, `y`).
fn legend(s: &mut String, x: f64, y: f64, names: &[(&str, bool)]) {
    let _ = write!(s, "<g class=\"legend\" font-size=\"11\">");
    for (i, (name, dashed)) in names.iter().enumerate() {
        let yy = y + 16.0 * i as f64;
        let colour = PALETTE[i % PALETTE.len()];
        let dash = if *dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{colour}\" stroke-width=\"6\"{dash}/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 16.0,
            x + 22.0,
            yy + 4.0,
            escape(name)
        );
    }
    s.push_str("</g>");
}

/// The vertical axis at `left` from `top` to `bottom` (pixels) for data `ticks`, mapped by `to_y`: tick marks,
/// labels, light grid lines across to `right`, and the axis title `label` written upwards.
fn y_axis(
    s: &mut String,
    (left, top, right, bottom): (f64, f64, f64, f64),
    ticks: &[f64],
    decimals: usize,
    to_y: impl Fn(f64) -> f64,
    label: &str,
) {
    let _ = write!(
        s,
        "<g class=\"y-axis\" font-size=\"10\"><line x1=\"{left:.1}\" y1=\"{top:.1}\" x2=\"{left:.1}\" y2=\"{bottom:.1}\" stroke=\"#333\"/>"
    );
    for &t in ticks {
        let y = to_y(t);
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\
<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{left:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + 0.5,
            left - 4.0,
            left - 6.0,
            y + 3.5,
            tick_label(t, decimals)
        );
    }
    let mid = (top + bottom) / 2.0;
    let _ = write!(
        s,
        "<text class=\"axis-label\" x=\"14\" y=\"{mid:.1}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 14 {mid:.1})\">{}</text></g>",
        escape(label)
    );
}

/// A grouped bar chart titled `caption`: one group per column, one bar per series (`(name, one value per column)`),
/// coloured by [`PALETTE`], with a vertical axis from zero (ticks, grid, the title `y_label` with its unit) and a
/// legend of the series; absent values draw no bar.
pub fn grouped_bars(
    caption: &str,
    y_label: &str,
    columns: &[String],
    series: &[(String, Vec<Option<f64>>)],
) -> String {
    let runs = series.len().max(1);
    let (bar, gap, h, top, left) = (14.0, 18.0, 220.0, 28.0, 62.0);
    let group_w = bar * runs as f64 + gap;
    let plot_right = left + group_w * columns.len() as f64 + 10.0;
    let legend_w = 12.0
        + 6.5
            * series
                .iter()
                .map(|(n, _)| n.chars().count())
                .max()
                .unwrap_or(0) as f64;
    let width = plot_right + 30.0 + legend_w;
    let longest = columns.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f64;
    let height = (top + h + 14.0 + longest * 4.6 + 10.0).max(top + 16.0 * runs as f64 + 10.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let (ticks, decimals) = nice_ticks(0.0, max, 5);
    let top_value = ticks.last().copied().unwrap_or(1.0).max(1e-12);
    let to_y = |v: f64| top + h - h * (v / top_value).clamp(0.0, 1.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" role=\"img\"><title>{}</title>",
        escape(caption)
    );
    y_axis(
        &mut s,
        (left, top, plot_right, top + h),
        &ticks,
        decimals,
        to_y,
        y_label,
    );
    let _ = write!(
        s,
        "<line class=\"x-axis\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{plot_right:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        top + h,
        top + h
    );
    for (c, col) in columns.iter().enumerate() {
        let x0 = left + gap / 2.0 + group_w * c as f64;
        for (r, (run, vals)) in series.iter().enumerate() {
            if let Some(v) = vals[c] {
                // A present zero keeps a hairline, so that it is told apart from an absent value (no bar).
                let y = to_y(v).min(top + h - 1.0);
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{bar}\" height=\"{:.1}\" fill=\"{}\"><title>{} · {}: {v:.2}</title></rect>",
                    x0 + bar * r as f64,
                    top + h - y,
                    PALETTE[r % PALETTE.len()],
                    escape(run),
                    escape(col)
                );
            }
        }
        // Labels hang from the middle of their group, turned so that long direction names do not overlap.
        let (lx, ly) = (x0 + bar * runs as f64 / 2.0, top + h + 12.0);
        let _ = write!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"10\" transform=\"rotate(35 {lx:.1} {ly:.1})\">{}</text>",
            escape(col)
        );
    }
    let names: Vec<(&str, bool)> = series.iter().map(|(n, _)| (n.as_str(), false)).collect();
    legend(&mut s, plot_right + 20.0, top + 6.0, &names);
    s.push_str("</svg>");
    s
}

/// One line of a [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. validation loss beside training loss).
    pub dashed: bool,
}

/// What a [`line_chart`] draws.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Title of the horizontal axis, with its unit.
    pub x_label: String,
    /// Title of the vertical axis, with its unit.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Names of the x positions 0, 1, 2…, for a categorical axis (e.g. the objectives of a sweep); `None` for a
    /// numeric axis.
    pub categories: Option<Vec<String>>,
}

/// Whether x values are spread widely enough (all positive, 100× or more apart) to need a log scale, as learning
/// rates in a sweep are.
fn wants_log(xs: &[f64]) -> bool {
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    !xs.is_empty() && lo > 0.0 && hi / lo >= 100.0
}

/// A line chart with both axes (ticks, tick labels, titles with units), grid lines, a point marker per value and
/// a legend; a numeric x axis turns logarithmic when its values span two orders of magnitude or more.
pub fn line_chart(c: &LineChart) -> String {
    let (w, h, left, top, bottom_pad): (f64, f64, f64, f64, f64) = (460.0, 240.0, 62.0, 30.0, 46.0);
    let legend_w = 12.0
        + 6.5
            * c.series
                .iter()
                .map(|s| s.name.chars().count())
                .max()
                .unwrap_or(0) as f64;
    let (right, bottom) = (left + w, top + h);
    let width = right + 30.0 + legend_w;
    let height = (bottom + bottom_pad).max(top + 16.0 * c.series.len() as f64 + 10.0);
    let xs: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .collect();
    let log = c.categories.is_none() && wants_log(&xs);
    let tx = |x: f64| if log { x.log10() } else { x };
    let fold = |v: &[f64]| {
        v.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            })
    };
    let (xlo, xhi) = match &c.categories {
        Some(cats) => (-0.5, cats.len().max(1) as f64 - 0.5),
        None if xs.is_empty() => (0.0, 1.0),
        None => {
            let (l, h) = fold(&xs);
            (tx(l), tx(h))
        }
    };
    let (xlo, xhi) = if (xhi - xlo).abs() < 1e-12 {
        (xlo - 0.5, xhi + 0.5)
    } else {
        (xlo, xhi)
    };
    let (ylo, yhi) = if ys.is_empty() { (0.0, 1.0) } else { fold(&ys) };
    let (yticks, ydec) = nice_ticks(ylo, yhi, 5);
    let (y0, y1) = (yticks[0], *yticks.last().unwrap_or(&1.0));
    let to_x = |x: f64| left + (tx(x) - xlo) / (xhi - xlo) * w;
    let to_y = |y: f64| bottom - (y - y0) / (y1 - y0).max(1e-12) * h;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" role=\"img\"><title>{0}</title>\
<text x=\"{left}\" y=\"16\" font-size=\"13\">{0}</text>",
        escape(&c.title)
    );
    y_axis(
        &mut s,
        (left, top, right, bottom),
        &yticks,
        ydec,
        to_y,
        &c.y_label,
    );
    let _ = write!(
        s,
        "<g class=\"x-axis\" font-size=\"10\"><line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#333\"/>"
    );
    // Tick positions in data units (raw x for a linear axis, the exponent for a log one, the index of a category).
    let xticks: Vec<(f64, String)> = match &c.categories {
        Some(cats) => cats
            .iter()
            .enumerate()
            .map(|(i, n)| (left + (i as f64 - xlo) / (xhi - xlo) * w, n.clone()))
            .collect(),
        None if log => {
            let (lo, hi) = (xlo.floor() as i32, xhi.ceil() as i32);
            (lo..=hi)
                .map(|e| 10f64.powi(e))
                .filter(|v| tx(*v) >= xlo - 1e-9 && tx(*v) <= xhi + 1e-9)
                .map(|v| (to_x(v), format!("1e{}", v.log10().round() as i32)))
                .collect()
        }
        None => {
            let (t, d) = nice_ticks(xlo, xhi, 6);
            t.into_iter()
                .filter(|v| *v >= xlo - 1e-9 && *v <= xhi + 1e-9)
                .map(|v| (to_x(v), tick_label(v, d)))
                .collect()
        }
    };
    for (x, label) in &xticks {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 15.0,
            escape(label)
        );
    }
    let scale = if log { " (log scale)" } else { "" };
    let _ = write!(
        s,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}{scale}</text></g>",
        left + w / 2.0,
        bottom + 36.0,
        escape(&c.x_label)
    );
    for (i, series) in c.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| {
                let px = if c.categories.is_some() {
                    left + (x - xlo) / (xhi - xlo) * w
                } else {
                    to_x(x)
                };
                (px, to_y(y))
            })
            .collect();
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let dash = if series.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"{dash} points=\"{}\"><title>{}</title></polyline>",
            path.join(" "),
            escape(&series.name)
        );
        // Markers make single points (one evaluation, one sweep value) visible; many points would only clutter.
        if pts.len() <= 40 {
            for ((x, y), (dx, dy)) in pts.iter().zip(&series.points) {
                let _ = write!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.8\" fill=\"{colour}\"><title>{}: {dx} → {dy:.4}</title></circle>",
                    escape(&series.name)
                );
            }
        }
    }
    let names: Vec<(&str, bool)> = c
        .series
        .iter()
        .map(|s| (s.name.as_str(), s.dashed))
        .collect();
    legend(&mut s, right + 20.0, top + 6.0, &names);
    s.push_str("</svg>");
    s
}

/// A bar chart of signed values around a zero line (positive up in blue, negative down in red), one bar per
/// labelled value, titled `title`; bars scale to the largest magnitude.
pub fn signed_bars(labels: &[u32], values: &[f64], title: &str) -> String {
    let (layers, deltas) = (labels, values);
    let (w, h, pad) = (640.0, 320.0, 40.0);
    let max = deltas.iter().fold(1e-9f64, |m, d| m.max(d.abs()));
    let n = layers.len().max(1) as f64;
    let bar = (w - 2.0 * pad) / n;
    let zero = h / 2.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{pad}\" y=\"16\" font-size=\"13\">{}</text>",
        escape(title)
    );
    let _ = writeln!(
        s,
        "<line x1=\"{pad}\" y1=\"{zero}\" x2=\"{}\" y2=\"{zero}\" stroke=\"#444\"/>",
        w - pad
    );
    for (i, (l, d)) in layers.iter().zip(deltas).enumerate() {
        let len = d.abs() / max * (h / 2.0 - pad);
        let (y, color) = if *d >= 0.0 {
            (zero - len, "#2b7bb9")
        } else {
            (zero, "#d9534f")
        };
        let x = pad + i as f64 * bar;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{len:.1}\" fill=\"{color}\"><title>layer {l}: {d:+.4}</title></rect>",
            x + 1.0,
            (bar - 2.0).max(1.0)
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{l}</text>",
            x + bar / 2.0,
            h - 10.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{}\">+{max:.3}</text><text x=\"4\" y=\"{}\">-{max:.3}</text>",
        pad,
        h - pad
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_bars_draw_one_bar_per_present_value_on_a_scaled_axis_with_a_legend() {
        let cols = vec!["be".to_string(), "li<".to_string()];
        let series = vec![
            ("a".to_string(), vec![Some(2.0), None]),
            ("b&c".to_string(), vec![Some(4.0), Some(1.0)]),
        ];
        let s = grouped_bars("t", "BLEU (points)", &cols, &series);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<rect ").count(), 3);
        // Ticks 0, 1, …, 4: the largest bar is the full 220 px plot height; 2.0 of 4.0 is half of it.
        assert!(
            s.contains("height=\"220.0\" fill=\"#f28e2b\"><title>b&amp;c · be: 4.00</title>"),
            "{s}"
        );
        assert!(s.contains("height=\"110.0\" fill=\"#4e79a7\""), "{s}");
        assert!(s.contains(">li&lt;</text>"));
        for tick in [
            ">0</text>",
            ">2</text>",
            ">4</text>",
            ">BLEU (points)</text>",
        ] {
            assert!(s.contains(tick), "{tick}: {s}");
        }
        assert!(
            s.contains("<g class=\"legend\"") && s.contains(">b&amp;c</text>"),
            "{s}"
        );
    }

    #[test]
    fn nice_ticks_cover_the_range_in_round_steps() {
        assert_eq!(nice_ticks(0.0, 4.0, 5), (vec![0.0, 1.0, 2.0, 3.0, 4.0], 0));
        assert_eq!(
            nice_ticks(0.0, 37.2, 5).0,
            vec![0.0, 10.0, 20.0, 30.0, 40.0]
        );
        let (t, d) = nice_ticks(2.31, 2.46, 5);
        assert_eq!(d, 2);
        assert!(
            t[0] <= 2.31 && *t.last().unwrap() >= 2.46 && t.len() <= 7,
            "{t:?}"
        );
        assert_eq!(
            nice_ticks(0.0, 0.0, 5).0.last(),
            Some(&1.0),
            "a flat range still gets a scale"
        );
        assert_eq!(tick_label(-0.0, 1), "0.0");
    }

    #[test]
    fn line_chart_has_both_axes_a_legend_and_a_log_scale_for_wide_sweeps() {
        let c = LineChart {
            title: "loss".into(),
            x_label: "step".into(),
            y_label: "cross-entropy (nats/token)".into(),
            series: vec![
                Series {
                    name: "train".into(),
                    points: vec![(1.0, 3.0), (2.0, 2.5), (3.0, 2.0)],
                    dashed: false,
                },
                Series {
                    name: "validation".into(),
                    points: vec![(3.0, 2.2)],
                    dashed: true,
                },
            ],
            categories: None,
        };
        let s = line_chart(&c);
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 4);
        assert!(s.contains(">step</text>") && s.contains(">cross-entropy (nats/token)</text>"));
        assert!(s.contains("stroke-dasharray") && s.contains(">validation</text>"));
        assert!(!s.contains("log scale"));
        let sweep = LineChart {
            series: vec![Series {
                name: "en-be".into(),
                points: vec![(1e-4, 1.0), (1e-3, 2.0), (1e-2, 1.5)],
                dashed: false,
            }],
            x_label: "learning_rate".into(),
            ..c
        };
        let s = line_chart(&sweep);
        assert!(s.contains(">learning_rate (log scale)</text>"), "{s}");
        for t in [">1e-4<", ">1e-3<", ">1e-2<"] {
            assert!(s.contains(t), "{t}: {s}");
        }
    }

    #[test]
    fn signed_bars_put_negative_values_below_the_zero_line() {
        let s = signed_bars(&[0, 1], &[0.5, -0.25], "Δ <&>");
        assert!(s.contains(">Δ &lt;&amp;&gt;</text>"), "{s}");
        // Zero line at 160 px; the larger magnitude spans 160 - 40 = 120 px.
        assert!(s.contains("y=\"40.0\" width=\"278.0\" height=\"120.0\" fill=\"#2b7bb9\"><title>layer 0: +0.5000"), "{s}");
        assert!(s.contains("y=\"160.0\" width=\"278.0\" height=\"60.0\" fill=\"#d9534f\"><title>layer 1: -0.2500"), "{s}");
    }
}
