//! A hand-written SVG bar chart per table: one horizontal bar per
//! implementation (median ns per item, a whisker from the fastest to the
//! slowest repetition), workforce rows highlighted, the floor as a dashed line
//! and figures quoted from elsewhere as outlined bars. The axis is logarithmic
//! when the values span more than [`LOG_SCALE_SPAN`]; every bar carries its
//! value, so the chart reads without the axis too.

use std::fmt::Write as _;

use crate::impls::Kind;
use crate::report::{Table, format_ns};

/// Largest `max / min` that still gets a linear axis.
pub(crate) const LOG_SCALE_SPAN: f64 = 20.0;

/// Total width of the picture, px.
const WIDTH: f64 = 960.0;
/// Height of one bar's band, px.
const ROW_HEIGHT: f64 = 24.0;
/// Space above the first bar (title, two lines of subtitle, the floor's label), px.
const TOP: f64 = 86.0;
/// Space below the last bar (axis labels, legend), px.
const BOTTOM: f64 = 58.0;
/// Room right of the plot for the value labels, px.
const VALUE_ROOM: f64 = 96.0;
/// Approximate width of one character of the 12 px label font, px (a little
/// generous, so labels never run off the left edge).
const CHAR_WIDTH: f64 = 6.8;
/// The same for bold labels.
const BOLD_CHAR_WIDTH: f64 = 7.6;

/// Bar colours: workforce stands out, peers recede.
const WORKFORCE_FILL: &str = "#1f6fd1";
const PEER_FILL: &str = "#a7adb5";
const FLOOR_FILL: &str = "#4d5560";
const CONTEXT_FILL: &str = "#d3d7dc";
const FLOOR_LINE: &str = "#c0392b";

/// Maps values to a position between 0 (left) and 1 (right) of the plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    /// Logarithmic (base 10) or linear.
    pub(crate) log: bool,
    /// Value at the left edge (a power of ten on a log axis, 0 on a linear one).
    pub(crate) low: f64,
    /// Value at the right edge (a power of ten, or a "nice" round number).
    pub(crate) high: f64,
}

impl Scale {
    /// A scale that shows every finite positive value of `values`: linear from
    /// zero when they span at most [`LOG_SCALE_SPAN`], else logarithmic
    /// between the powers of ten around them.
    pub(crate) fn fit(values: &[f64]) -> Self {
        let positive = values
            .iter()
            .copied()
            .filter(|value| value.is_finite() && *value > 0.0);
        let (min, max) = positive.fold((f64::INFINITY, 0.0_f64), |(min, max), value| {
            (min.min(value), max.max(value))
        });
        if max <= 0.0 {
            return Self {
                log: false,
                low: 0.0,
                high: 1.0,
            };
        }
        if max / min > LOG_SCALE_SPAN {
            Self {
                log: true,
                low: 10_f64.powf(min.log10().floor()),
                high: 10_f64.powf(max.log10().ceil()),
            }
        } else {
            Self {
                log: false,
                low: 0.0,
                high: nice_ceiling(max),
            }
        }
    }

    /// Where `value` falls, 0..=1 (clamped; non-positive values on a log
    /// axis fall at 0).
    pub(crate) fn position(&self, value: f64) -> f64 {
        let fraction = if self.log {
            if value <= 0.0 {
                return 0.0;
            }
            (value.log10() - self.low.log10()) / (self.high.log10() - self.low.log10())
        } else {
            (value - self.low) / (self.high - self.low)
        };
        fraction.clamp(0.0, 1.0)
    }

    /// The values to mark on the axis: every power of ten (with 2× and 5×
    /// between them when there are at most three decades) on a log axis, five
    /// even steps on a linear one.
    pub(crate) fn ticks(&self) -> Vec<f64> {
        if self.log {
            let decades = (self.high / self.low).log10().round() as i32;
            let mut ticks = Vec::new();
            for decade in 0..=decades {
                let base = self.low * 10_f64.powi(decade);
                ticks.push(base);
                if decades <= 3 && decade < decades {
                    ticks.extend([2.0 * base, 5.0 * base]);
                }
            }
            ticks
        } else {
            (0..=5)
                .map(|step| self.low + (self.high - self.low) * f64::from(step) / 5.0)
                .collect()
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is at least
/// `value`: a round right edge for a linear axis.
pub(crate) fn nice_ceiling(value: f64) -> f64 {
    if !(value.is_finite() && value > 0.0) {
        return 1.0;
    }
    let magnitude = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude)
}

/// One bar to draw.
struct Bar {
    /// Label left of the bar.
    label: String,
    /// Median, ns per item.
    median: f64,
    /// Fastest and slowest repetition.
    range: (f64, f64),
    /// Fill colour.
    fill: &'static str,
    /// Bold label (workforce).
    bold: bool,
    /// Drawn as an outline: a figure quoted, not measured here.
    quoted: bool,
}

/// Renders `table` as a standalone SVG document.
pub(crate) fn render(table: &Table) -> String {
    let mut bars: Vec<Bar> = table
        .rows
        .iter()
        .map(|row| {
            let (fill, bold) = match row.kind {
                Kind::Workforce => (WORKFORCE_FILL, true),
                Kind::Sequential | Kind::StaticSplit => (FLOOR_FILL, false),
                Kind::NonStreamingPeer => (CONTEXT_FILL, false),
                Kind::StreamingPeer => (PEER_FILL, false),
            };
            Bar {
                label: row.implementation.clone(),
                median: row.median_ns_per_item,
                range: (row.min_ns_per_item, row.max_ns_per_item),
                fill,
                bold,
                quoted: false,
            }
        })
        .collect();
    bars.extend(table.quoted.iter().map(|quoted| Bar {
        label: format!("{} (quoted)", quoted.label),
        median: quoted.ns_per_item,
        range: (quoted.low_ns_per_item, quoted.high_ns_per_item),
        fill: "none",
        bold: false,
        quoted: true,
    }));

    let mut values: Vec<f64> = bars
        .iter()
        .flat_map(|bar| [bar.median, bar.range.0, bar.range.1])
        .collect();
    values.push(table.floor_ns_per_item);
    let scale = Scale::fit(&values);

    let widest_label = bars
        .iter()
        .map(|bar| {
            let char_width = if bar.bold {
                BOLD_CHAR_WIDTH
            } else {
                CHAR_WIDTH
            };
            bar.label.chars().count() as f64 * char_width
        })
        .fold(60.0, f64::max);
    let plot_left = 16.0 + widest_label + 12.0;
    let plot_width = (WIDTH - plot_left - VALUE_ROOM).max(200.0);
    let plot_height = ROW_HEIGHT * bars.len() as f64;
    let height = TOP + plot_height + BOTTOM;
    let x_of = |value: f64| plot_left + scale.position(value) * plot_width;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(&format!(
            "{} {}: median ns per item, {} workers on {} cores",
            table.workload, table.workload_name, table.workers, table.cores
        ))
    );
    let _ = writeln!(
        svg,
        r##"<text x="16" y="44" fill="#555">{}</text>"##,
        escape(&format!(
            "{} items, {}",
            crate::report::thousands(table.n_items),
            table.work,
        ))
    );
    let _ = writeln!(
        svg,
        r##"<text x="16" y="60" fill="#555">{}</text>"##,
        escape(&format!(
            "{} cores, {}, {}. Shorter is faster; {}; whiskers: min–max of {} rep(s).",
            table.cores,
            table.cpu_model,
            table.date,
            if scale.log {
                "log scale"
            } else {
                "linear scale"
            },
            table.reps,
        ))
    );

    // Grid lines and axis labels.
    let axis_y = TOP + plot_height;
    for tick in scale.ticks() {
        let x = x_of(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{axis_y}" stroke="#e3e6ea"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            axis_y + 16.0,
            escape(&axis_label(tick))
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{plot_left:.1}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#888"/>"##,
        plot_left + plot_width
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">ns per item</text>"##,
        plot_left + plot_width / 2.0,
        axis_y + 32.0
    );

    for (index, bar) in bars.iter().enumerate() {
        let top = TOP + ROW_HEIGHT * index as f64;
        let middle = top + ROW_HEIGHT / 2.0;
        let weight = if bar.bold {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end"{weight}>{}</text>"#,
            plot_left - 8.0,
            middle + 4.0,
            escape(&bar.label)
        );
        if !bar.median.is_finite() {
            continue;
        }
        let end = x_of(bar.median);
        let width = (end - plot_left).max(1.0);
        let style = if bar.quoted {
            r##"fill="none" stroke="#7a7f86" stroke-dasharray="4 3""##.to_owned()
        } else {
            format!(r#"fill="{}""#, bar.fill)
        };
        let _ = writeln!(
            svg,
            r#"<rect x="{plot_left:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" {style}><title>{}</title></rect>"#,
            top + 4.0,
            ROW_HEIGHT - 8.0,
            escape(&format!("{}: {} ns/item", bar.label, format_ns(bar.median)))
        );
        let (low, high) = bar.range;
        if low.is_finite() && high.is_finite() && high > low {
            let (x1, x2) = (x_of(low), x_of(high));
            let _ = writeln!(
                svg,
                r##"<path d="M{x1:.1} {middle:.1}H{x2:.1}M{x1:.1} {:.1}V{:.1}M{x2:.1} {:.1}V{:.1}" stroke="#222" fill="none"/>"##,
                middle - 4.0,
                middle + 4.0,
                middle - 4.0,
                middle + 4.0
            );
        }
        let label_x = x_of(bar.median.max(high)).max(end) + 6.0;
        let _ = writeln!(
            svg,
            r#"<text x="{label_x:.1}" y="{:.1}"{weight}>{}</text>"#,
            middle + 4.0,
            escape(&format_ns(bar.median))
        );
    }

    if table.floor_ns_per_item.is_finite() && table.floor_ns_per_item > 0.0 {
        let x = x_of(table.floor_ns_per_item);
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{axis_y}" stroke="{FLOOR_LINE}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
            TOP - 6.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{FLOOR_LINE}">{}</text>"#,
            x + 4.0,
            TOP - 8.0,
            escape(&format!("floor {} ns", format_ns(table.floor_ns_per_item)))
        );
    }

    // Legend.
    let legend_y = height - 12.0;
    let mut x = 16.0;
    for (fill, text) in [
        (WORKFORCE_FILL, "workforce"),
        (PEER_FILL, "streaming peer"),
        (CONTEXT_FILL, "not streaming (context)"),
        (FLOOR_FILL, "sequential / static split"),
    ] {
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{fill}"/><text x="{:.1}" y="{legend_y:.1}">{text}</text>"#,
            legend_y - 10.0,
            x + 16.0
        );
        x += 16.0 + text.len() as f64 * CHAR_WIDTH + 18.0;
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{FLOOR_LINE}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{legend_y:.1}">floor</text>"#,
        legend_y - 4.0,
        x + 14.0,
        legend_y - 4.0,
        x + 18.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// A tick label: `0.1`, `2.5`, `10`, `20k`, `1M`.
pub(crate) fn axis_label(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// Escapes text for SVG content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrow_range_gets_a_linear_axis_from_zero() {
        let scale = Scale::fit(&[12.0, 30.0, f64::NAN, 48.0]);
        assert!(!scale.log);
        assert!((scale.low, scale.high) == (0.0, 50.0));
        assert!((scale.position(25.0) - 0.5).abs() < 1e-12);
        assert_eq!(scale.ticks(), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
    }

    #[test]
    fn a_wide_range_gets_a_log_axis_on_whole_decades() {
        let scale = Scale::fit(&[0.9, 31.0, 47_000.0]);
        assert!(scale.log);
        assert!((scale.low - 0.1).abs() < 1e-12 && (scale.high - 100_000.0).abs() < 1e-6);
        // Six decades: each power of ten is one sixth further right.
        assert!((scale.position(1.0) - 1.0 / 6.0).abs() < 1e-9);
        assert!((scale.position(1_000.0) - 4.0 / 6.0).abs() < 1e-9);
        assert!(scale.position(0.0).abs() < f64::EPSILON);
        assert!((scale.position(1e9) - 1.0).abs() < f64::EPSILON);
        assert_eq!(scale.ticks().len(), 7);
        let narrow = Scale::fit(&[3.0, 300.0]);
        // 1 to 1,000: 1, 2, 5 per decade and the last power of ten.
        assert_eq!(narrow.ticks().len(), 3 * 3 + 1);
    }

    #[test]
    fn nice_ceilings_are_round() {
        assert!((nice_ceiling(48.0) - 50.0).abs() < 1e-9);
        assert!((nice_ceiling(21.0) - 25.0).abs() < 1e-9);
        assert!((nice_ceiling(100.0) - 100.0).abs() < 1e-9);
        assert!((nice_ceiling(0.31) - 0.5).abs() < 1e-12);
        assert!((nice_ceiling(f64::NAN) - 1.0).abs() < f64::EPSILON);
        let empty = Scale::fit(&[]);
        assert!(!empty.log && (empty.high - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(axis_label(0.1), "0.1");
        assert_eq!(axis_label(2.5), "2.5");
        assert_eq!(axis_label(10.0), "10");
        assert_eq!(axis_label(20_000.0), "20k");
        assert_eq!(axis_label(1_000_000.0), "1M");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
