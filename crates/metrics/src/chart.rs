//! The one SVG chart module of alinea: inline, self-contained charts for the report page and the analysis stages.

use std::fmt::Write as _;

use crate::html::escape;

/// Colours of the series (runs), in order; cycled past eight.
pub const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// A grouped bar chart titled `caption`: one group per column, one bar per series (`(name, one value per column)`),
/// coloured by [`PALETTE`]; absent values draw no bar. Bars scale to the largest value.
pub fn grouped_bars(
    caption: &str,
    columns: &[String],
    series: &[(String, Vec<Option<f64>>)],
) -> String {
    let runs = series.len().max(1);
    let (bar, gap, h, top, left) = (14.0, 18.0, 220.0, 20.0, 40.0);
    let group_w = bar * runs as f64 + gap;
    let width = left + group_w * columns.len() as f64 + 20.0;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" role=\"img\"><title>{}</title>",
        h + top + 70.0,
        escape(caption)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{width:.0}\" y2=\"{:.1}\" stroke=\"#999\"/>",
        top + h,
        top + h
    );
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{:.1}\" font-size=\"10\">{max:.1}</text>",
        top + 4.0
    );
    for (c, col) in columns.iter().enumerate() {
        let x0 = left + group_w * c as f64;
        for (r, (run, vals)) in series.iter().enumerate() {
            if let Some(v) = vals[c] {
                let bh = h * (v / max).max(0.0);
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} · {}: {v:.2}</title></rect>",
                    x0 + bar * r as f64,
                    top + h - bh,
                    PALETTE[r % PALETTE.len()],
                    escape(run),
                    escape(col)
                );
            }
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" transform=\"rotate(45 {:.1} {:.1})\">{}</text>",
            x0,
            top + h + 12.0,
            x0,
            top + h + 12.0,
            escape(col)
        );
    }
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
    fn grouped_bars_draw_one_bar_per_present_value_scaled_to_the_maximum() {
        let cols = vec!["be".to_string(), "li<".to_string()];
        let series = vec![
            ("a".to_string(), vec![Some(2.0), None]),
            ("b&c".to_string(), vec![Some(4.0), Some(1.0)]),
        ];
        let s = grouped_bars("t", &cols, &series);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<rect ").count(), 3);
        // The largest bar is the full 220 px plot height; 2.0 of 4.0 is half of it.
        assert!(
            s.contains("height=\"220.0\" fill=\"#f28e2b\"><title>b&amp;c · be: 4.00</title>"),
            "{s}"
        );
        assert!(s.contains("height=\"110.0\" fill=\"#4e79a7\""), "{s}");
        assert!(s.contains(">li&lt;</text>"));
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
