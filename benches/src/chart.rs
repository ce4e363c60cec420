//! One SVG bar chart per table, drawn with `plotters`: one horizontal bar per
//! implementation (median ns per item, a whisker from the fastest to the
//! slowest repetition), workforce in blue, the floor as a dashed red line and
//! figures quoted from elsewhere as outlined bars. The axis is logarithmic
//! when the values span more than [`LOG_SCALE_SPAN`]; every bar carries its
//! value, so the chart reads without the axis too.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::impls::Kind;
use crate::report::{Table, format_ns, thousands};

/// Largest `max / min` that still gets a linear axis.
pub(crate) const LOG_SCALE_SPAN: f64 = 20.0;

/// Total width of the picture, px.
const WIDTH: u32 = 960;
/// Height of one bar's band, px.
const ROW_HEIGHT: u32 = 24;
/// Space above the plot (title, two lines of subtitle, the floor's label), px.
const TOP: u32 = 86;
/// Height of the x axis' tick labels and description, px.
const AXIS: u32 = 40;
/// Height of the legend below the axis, px.
const LEGEND: u32 = 24;
/// Room right of the plot for the value labels, px.
const VALUE_ROOM: u32 = 96;
/// Approximate width of one character of the 12 px label font, px (a little
/// generous, so labels are never cut).
const CHAR_WIDTH: f64 = 6.8;
/// The labels' font.
const FONT: &str = "sans-serif";

/// Bar colours: workforce stands out, peers recede.
const WORKFORCE_FILL: RGBColor = RGBColor(0x1f, 0x6f, 0xd1);
const PEER_FILL: RGBColor = RGBColor(0xa7, 0xad, 0xb5);
const FLOOR_FILL: RGBColor = RGBColor(0x4d, 0x55, 0x60);
const CONTEXT_FILL: RGBColor = RGBColor(0xd3, 0xd7, 0xdc);
const QUOTED_EDGE: RGBColor = RGBColor(0x7a, 0x7f, 0x86);
const FLOOR_LINE: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const GRID: RGBColor = RGBColor(0xe3, 0xe6, 0xea);
const MUTED_TEXT: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The x axis: its kind and its ends.
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
            Self {
                log: false,
                low: 0.0,
                high: 1.0,
            }
        } else if max / min > LOG_SCALE_SPAN {
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
    fill: RGBColor,
    /// Drawn as an outline: a figure quoted, not measured here.
    quoted: bool,
}

/// The table's rows, then its quoted figures, as bars.
fn bars(table: &Table) -> Vec<Bar> {
    let measured = table.rows.iter().map(|row| Bar {
        label: row.implementation.clone(),
        median: row.median_ns_per_item,
        range: (row.min_ns_per_item, row.max_ns_per_item),
        fill: match row.kind {
            Kind::Workforce => WORKFORCE_FILL,
            Kind::Sequential | Kind::StaticSplit => FLOOR_FILL,
            Kind::NonStreamingPeer => CONTEXT_FILL,
            Kind::StreamingPeer => PEER_FILL,
        },
        quoted: false,
    });
    let quoted = table.quoted.iter().map(|quoted| Bar {
        label: format!("{} (quoted)", quoted.label),
        median: quoted.ns_per_item,
        range: (quoted.low_ns_per_item, quoted.high_ns_per_item),
        fill: QUOTED_EDGE,
        quoted: true,
    });
    measured.chain(quoted).collect()
}

/// Renders `table` as a standalone SVG document.
pub(crate) fn render(table: &Table) -> anyhow::Result<String> {
    let bars = bars(table);
    let mut values: Vec<f64> = bars
        .iter()
        .flat_map(|bar| [bar.median, bar.range.0, bar.range.1])
        .collect();
    values.push(table.floor_ns_per_item);
    let scale = Scale::fit(&values);
    // At least two bands: plotters needs a range of two values or more.
    let bands = bars.len().max(2);
    let height = TOP + ROW_HEIGHT * u32::try_from(bands)? + AXIS + LEGEND;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_header(&root, table, scale.log)?;
        let (plot, legend) = root.split_vertically(height - LEGEND);
        let plot = plot.margin(TOP, 0, 16, VALUE_ROOM);
        if scale.log {
            draw_bars(&plot, table, &bars, (scale.low..scale.high).log_scale())?;
        } else {
            draw_bars(&plot, table, &bars, scale.low..scale.high)?;
        }
        draw_legend(&legend, !table.quoted.is_empty())?;
        root.present()?;
    }
    Ok(svg)
}

/// The drawing area of an SVG written to a string.
type Area<'svg> = DrawingArea<SVGBackend<'svg>, Shift>;

/// A text style of the label font.
fn text_style(size: u32, color: &'static RGBColor, pos: Pos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(pos)
}

/// The title and the two lines under it.
fn draw_header(root: &Area<'_>, table: &Table, log: bool) -> anyhow::Result<()> {
    let top_left = Pos::new(HPos::Left, VPos::Top);
    let title = format!(
        "{} {}: median ns per item, {} workers on {} cores",
        table.workload, table.workload_name, table.workers, table.cores
    );
    let title_style = TextStyle::from((FONT, 16).into_font().style(FontStyle::Bold)).pos(top_left);
    root.draw(&Text::new(title, (16, 10), title_style))?;
    let lines = [
        format!("{} items, {}", thousands(table.n_items), table.work),
        format!(
            "{} cores, {}, {}. Shorter is faster; {} scale; whiskers: min–max of {} rep(s).",
            table.cores,
            table.cpu_model,
            table.date,
            if log { "log" } else { "linear" },
            table.reps,
        ),
    ];
    for (line, y) in lines.into_iter().zip([34, 50]) {
        root.draw(&Text::new(
            line,
            (16, y),
            text_style(12, &MUTED_TEXT, top_left),
        ))?;
    }
    Ok(())
}

/// The axes, the bars with their whiskers and values, and the floor, on an x
/// axis over `x_range` (linear or logarithmic).
fn draw_bars<X>(area: &Area<'_>, table: &Table, bars: &[Bar], x_range: X) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let bands = bars.len().max(2);
    // Band 0 is at the bottom: the first bar goes in the top band.
    let band_of = |index: usize| bands - 1 - index;
    let label_width = bars
        .iter()
        .map(|bar| bar.label.chars().count() as f64 * CHAR_WIDTH)
        .fold(60.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(AXIS)
        .y_label_area_size(label_width.ceil() as u32 + 12)
        .build_cartesian_2d(x_range, (0..bands - 1).into_segmented())?;
    let x_start = chart.x_range().start;

    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc("ns per item")
        .x_label_formatter(&|value| axis_label(*value))
        .y_labels(bands)
        .y_label_formatter(&|value| match value {
            SegmentValue::CenterOf(band) => (bands - 1)
                .checked_sub(*band)
                .and_then(|index| bars.get(index))
                .map_or_else(String::new, |bar| bar.label.clone()),
            _ => String::new(),
        })
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 12))
        .draw()?;

    let drawn = || {
        bars.iter()
            .enumerate()
            .filter(|(_, bar)| bar.median.is_finite())
    };
    chart.draw_series(drawn().map(|(index, bar)| {
        let band = band_of(index);
        let style = if bar.quoted {
            bar.fill.stroke_width(1)
        } else {
            bar.fill.filled()
        };
        let mut rectangle = Rectangle::new(
            [
                (x_start, SegmentValue::Exact(band)),
                (bar.median, SegmentValue::Exact(band + 1)),
            ],
            style,
        );
        rectangle.set_margin(4, 4, 0, 0);
        rectangle
    }))?;
    chart.draw_series(
        drawn()
            .filter(|(_, bar)| {
                let (low, high) = bar.range;
                low.is_finite() && high.is_finite() && high > low
            })
            .map(|(index, bar)| {
                ErrorBar::new_horizontal(
                    SegmentValue::CenterOf(band_of(index)),
                    bar.range.0,
                    bar.median,
                    bar.range.1,
                    BLACK.stroke_width(1),
                    8,
                )
            }),
    )?;
    let value_style = text_style(12, &BLACK, Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(drawn().map(|(index, bar)| {
        let right = if bar.range.1.is_finite() {
            bar.median.max(bar.range.1)
        } else {
            bar.median
        };
        EmptyElement::at((right, SegmentValue::CenterOf(band_of(index))))
            + Text::new(format_ns(bar.median), (6, 0), value_style.clone())
    }))?;

    let floor = table.floor_ns_per_item;
    if floor.is_finite() && floor > 0.0 {
        chart.draw_series(std::iter::once(DashedPathElement::new(
            [(floor, SegmentValue::Exact(0)), (floor, SegmentValue::Last)],
            6,
            4,
            FLOOR_LINE.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((floor, SegmentValue::Last))
                + Text::new(
                    format!("floor {} ns", format_ns(floor)),
                    (4, -4),
                    text_style(12, &FLOOR_LINE, Pos::new(HPos::Left, VPos::Bottom)),
                ),
        ))?;
    }
    Ok(())
}

/// What the colours and the dashed line mean.
fn draw_legend(area: &Area<'_>, quoted: bool) -> anyhow::Result<()> {
    let label = text_style(12, &BLACK, Pos::new(HPos::Left, VPos::Center));
    let mut x = 16;
    let advance = |x: &mut i32, text: &str| {
        *x += 16 + (text.len() as f64 * CHAR_WIDTH) as i32 + 18;
    };
    for (fill, text) in [
        (WORKFORCE_FILL, "workforce"),
        (PEER_FILL, "streaming peer"),
        (CONTEXT_FILL, "not streaming (context)"),
        (FLOOR_FILL, "sequential / static split"),
    ] {
        area.draw(&Rectangle::new([(x, 4), (x + 12, 16)], fill.filled()))?;
        area.draw(&Text::new(text, (x + 16, 10), label.clone()))?;
        advance(&mut x, text);
    }
    area.draw(&DashedPathElement::new(
        [(x, 10), (x + 14, 10)],
        6,
        4,
        FLOOR_LINE.stroke_width(2),
    ))?;
    area.draw(&Text::new("floor", (x + 18, 10), label.clone()))?;
    advance(&mut x, "floor");
    if quoted {
        area.draw(&Rectangle::new(
            [(x, 4), (x + 12, 16)],
            QUOTED_EDGE.stroke_width(1),
        ))?;
        area.draw(&Text::new("quoted, not re-run", (x + 16, 10), label))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::ramp_table;
    use crate::workload::{W3_SEED, W6_MULTI_PRODUCER};

    #[test]
    fn a_narrow_range_gets_a_linear_axis_from_zero() {
        let scale = Scale::fit(&[12.0, 30.0, f64::NAN, 48.0]);
        assert!(!scale.log);
        assert!((scale.low, scale.high) == (0.0, 50.0));
    }

    #[test]
    fn a_wide_range_gets_a_log_axis_on_whole_decades() {
        let scale = Scale::fit(&[0.9, 31.0, 47_000.0]);
        assert!(scale.log);
        assert!((scale.low - 0.1).abs() < 1e-12 && (scale.high - 100_000.0).abs() < 1e-6);
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
    fn the_chart_names_every_row_the_floor_and_the_quoted_figure() {
        // Rows at 1..=11 ns/item and go-pkgz/pool's 3,200-3,700: a log axis.
        let mut table = ramp_table(&W3_SEED, 8);
        table.cpu_model = "test <&> CPU".to_owned();
        let svg = render(&table).expect("renders");
        assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("W3 seed: median ns per item, 8 workers on 2 cores"));
        assert!(svg.contains("log scale"));
        for row in &table.rows {
            let escaped = row.implementation.replace('<', "&lt;");
            assert!(svg.contains(&escaped), "{escaped} missing");
        }
        assert!(svg.contains("go-pkgz/pool, 8 workers (quoted)"));
        assert!(svg.contains(&format!("floor {} ns", format_ns(table.floor_ns_per_item))));
        assert!(svg.contains("ns per item") && svg.contains("quoted, not re-run"));
        // Text is escaped, not pasted into the markup.
        assert!(svg.contains("test &lt;&amp;&gt; CPU"));
    }

    #[test]
    fn close_values_get_a_linear_axis_and_no_quoted_legend() {
        // Rows at 1..=10 ns/item, the floor at 0.5: within 20x.
        let table = ramp_table(&W6_MULTI_PRODUCER, 2);
        let svg = render(&table).expect("renders");
        assert!(svg.contains("linear scale"));
        assert!(svg.contains(&format_ns(table.rows[9].median_ns_per_item)));
        assert!(!svg.contains("quoted"));
    }
}
