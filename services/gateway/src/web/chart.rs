//! Charts drawn on the server as inline SVG: no script, printable, readable without colour
//! (every series is also labelled).

use maud::{Markup, html};

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
const COLOURS: [&str; 4] = ["#0b6e6e", "#b3261e", "#b35c00", "#3b5bdb"];

/// A named series of values, one per x label.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if max <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn frame(labels: &[String], max: f64, body: Markup, title: &str) -> Markup {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let every = (labels.len() / 8).max(1);
    let step = if labels.len() > 1 {
        plot_w / (labels.len() - 1) as f64
    } else {
        0.0
    };
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
            title { (title) }
            @for i in 0..=4 {
                @let y = TOP + plot_h * f64::from(i) / 4.0;
                line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#e5e9ef" {}
                text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (fmt(max * f64::from(4 - i) / 4.0)) }
            }
            @for (i, label) in labels.iter().enumerate() {
                @if i % every == 0 {
                    text x=(LEFT + step * i as f64) y=(H - 8.0) text-anchor="middle" { (label) }
                }
            }
            (body)
        }
    }
}

fn fmt(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A line chart of several series over the same labels.
pub fn lines(title: &str, labels: &[String], series: &[Series<'_>]) -> Markup {
    let max = nice_max(series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = if labels.len() > 1 {
        plot_w / (labels.len() - 1) as f64
    } else {
        0.0
    };
    let body = html! {
        @for (k, s) in series.iter().enumerate() {
            @let colour = COLOURS[k % COLOURS.len()];
            @let points = s.values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", LEFT + step * i as f64, TOP + plot_h * (1.0 - v / max))).collect::<Vec<_>>().join(" ");
            polyline points=(points) fill="none" stroke=(colour) stroke-width="2" data-series=(s.name) {}
            text x=(LEFT + 8.0 + 120.0 * k as f64) y=(TOP + 10.0) fill=(colour) { "— " (s.name) }
        }
    };
    frame(labels, max, body, title)
}

/// A bar chart of one value per label.
pub fn bars(title: &str, labels: &[String], values: &[f64]) -> Markup {
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / values.len().max(1) as f64;
    let width = (slot * 0.7).max(1.0);
    let body = html! {
        @for (i, v) in values.iter().enumerate() {
            @let h = plot_h * v / max;
            rect x=(format!("{:.1}", LEFT + slot * i as f64 + (slot - width) / 2.0)) y=(format!("{:.1}", TOP + plot_h - h))
                width=(format!("{width:.1}")) height=(format!("{h:.1}")) fill=(COLOURS[0]) {
                title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (fmt(*v)) }
            }
        }
    };
    // Bars are centred in their slots; the frame's labels are spaced for points, so label here.
    let labelled = html! {
        (body)
        @for (i, label) in labels.iter().enumerate() {
            @if labels.len() <= 12 || i % (labels.len() / 12 + 1) == 0 {
                text x=(format!("{:.1}", LEFT + slot * (i as f64 + 0.5))) y=(H - 8.0) text-anchor="middle" { (label) }
            }
        }
    };
    frame(&[], max, labelled, title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_a_readable_maximum() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(42.0), 50.0);
        assert_eq!(nice_max(180.0), 200.0);
    }

    #[test]
    fn a_chart_has_one_line_per_series_and_one_bar_per_value() {
        let labels: Vec<String> = (1..=5).map(|d| format!("11-{d:02}")).collect();
        let svg = lines(
            "mentions",
            &labels,
            &[
                Series {
                    name: "negative",
                    values: vec![1.0, 3.0, 0.0, 2.0, 5.0],
                },
                Series {
                    name: "all",
                    values: vec![4.0, 6.0, 2.0, 3.0, 9.0],
                },
            ],
        )
        .into_string();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("data-series=\"negative\""));
        let svg = bars("cases", &labels, &[1.0, 2.0, 3.0, 4.0, 5.0]).into_string();
        assert_eq!(svg.matches("<rect").count(), 5);
    }
}
