//! The report's charts, drawn by plotters into SVG strings: grouped bars per endpoint, with
//! target marks, on a log scale for latency (endpoints differ by orders of magnitude: a bare
//! handler's 0.2 ms beside a delivery's seconds) and linear for the rest.

use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, ValueFormatter};
use plotters::prelude::*;

pub const P50_COLOR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const P95_COLOR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub const P99_COLOR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
pub const THROUGHPUT_COLOR: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
pub const ERRORS_COLOR: RGBColor = RGBColor(0x94, 0x67, 0xbd);
pub const TARGET_COLOR: RGBColor = RGBColor(0x20, 0x20, 0x20);
pub const NOISE_COLOR: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 420;

/// One series of bars: a value per endpoint (absent: no bar).
pub struct Series<'a> {
    pub label: &'a str,
    pub color: RGBColor,
    pub values: Vec<Option<f64>>,
}

/// A horizontal mark over one endpoint's group: its target.
pub struct Mark {
    pub endpoint: usize,
    pub value: f64,
}

pub struct BarChart<'a> {
    pub title: &'a str,
    pub y_description: &'a str,
    pub endpoints: &'a [String],
    pub series: Vec<Series<'a>>,
    pub marks: Vec<Mark>,
    /// A band drawn behind the bars (the noise band of a comparison), low to high.
    pub band: Option<(f64, f64)>,
}

impl BarChart<'_> {
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.series
            .iter()
            .flat_map(|series| series.values.iter().flatten().copied())
            .chain(self.marks.iter().map(|mark| mark.value))
            .chain(self.band.iter().flat_map(|(low, high)| [*low, *high]))
            .filter(|value| value.is_finite())
    }

    /// On a log scale (every value must be positive; others are left out).
    pub fn draw_log(&self) -> Result<String, String> {
        let positive: Vec<f64> = self.values().filter(|value| *value > 0.0).collect();
        let low = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let high = positive.iter().copied().fold(0.0, f64::max);
        if positive.is_empty() {
            return self.draw(0.0..1.0, 0.0);
        }
        self.draw((low / 2.0..high * 2.0).log_scale(), low / 2.0)
    }

    /// On a linear scale from 0 (or from the lowest value, if negative).
    pub fn draw_linear(&self) -> Result<String, String> {
        let low = self.values().fold(0.0, f64::min);
        let high = self.values().fold(0.0, f64::max);
        let span = (high - low).max(1e-9);
        let low = if low < 0.0 { low - span * 0.1 } else { 0.0 };
        self.draw(low..high + span * 0.1, low.max(0.0).min(high))
    }

    fn draw<Y>(&self, y_range: Y, bar_base: f64) -> Result<String, String>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(|error| error.to_string())?;
            // Each endpoint is a group of slots: one per series, and a gap.
            let slots_per_group = self.series.len() as u32 + 1;
            let slots = (self.endpoints.len() as u32 * slots_per_group).max(2);
            let middle = self.series.len() as u32 / 2;
            let endpoints = self.endpoints;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d((0..slots - 1).into_segmented(), y_range)
                .map_err(|error| error.to_string())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(slots as usize)
                .x_label_formatter(&|slot| match slot {
                    SegmentValue::CenterOf(slot) if slot % slots_per_group == middle => endpoints
                        .get((slot / slots_per_group) as usize)
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                })
                .y_desc(self.y_description)
                .draw()
                .map_err(|error| error.to_string())?;
            if let Some((low, high)) = self.band {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(SegmentValue::Exact(0), low), (SegmentValue::Last, high)],
                        NOISE_COLOR.filled(),
                    )))
                    .map_err(|error| error.to_string())?;
            }
            for (index, series) in self.series.iter().enumerate() {
                let bars = series
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(endpoint, value)| {
                        let value = (*value)?;
                        let slot = endpoint as u32 * slots_per_group + index as u32;
                        Some(Rectangle::new(
                            [
                                (SegmentValue::Exact(slot), bar_base),
                                (SegmentValue::Exact(slot + 1), value),
                            ],
                            series.color.filled(),
                        ))
                    });
                let color = series.color;
                chart
                    .draw_series(bars)
                    .map_err(|error| error.to_string())?
                    .label(series.label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
            }
            let marks = self.marks.iter().map(|mark| {
                let first = mark.endpoint as u32 * slots_per_group;
                PathElement::new(
                    vec![
                        (SegmentValue::Exact(first), mark.value),
                        (SegmentValue::Exact(first + slots_per_group - 1), mark.value),
                    ],
                    TARGET_COLOR.stroke_width(3),
                )
            });
            if !self.marks.is_empty() {
                chart
                    .draw_series(marks)
                    .map_err(|error| error.to_string())?
                    .label("target")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 10, y)], TARGET_COLOR.stroke_width(3))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|error| error.to_string())?;
            root.present().map_err(|error| error.to_string())?;
        }
        Ok(svg)
    }
}
