//! Percentile curves of several histograms on one chart, as SVG and PNG: latency (log
//! scale) against percentile, with the x axis spread as HdrHistogram's plotter does
//! (`1/(1-p)` on a log scale, so 99%, 99.9% and 99.99% get equal room).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Fonts looked for when `--font` is not given (Debian's fonts-dejavu-core first).
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// The deepest percentile drawn: 99.9999%.
const X_MAX: f64 = 6.0;
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn register_font(font: Option<&Path>) -> anyhow::Result<()> {
    let path = match font {
        Some(p) => p.to_path_buf(),
        None => FONT_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                anyhow!(
                    "no TrueType font found (apt-get install fonts-dejavu-core, or pass --font)"
                )
            })?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading font {}", path.display()))?;
    // The font registry wants 'static bytes; one font per process run.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))
}

/// (x, latency in µs) points of a histogram's percentile curve.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    for v in h.iter_quantiles(10) {
        let q = v.quantile_iterated_to();
        let us = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        let x = if q >= 1.0 {
            X_MAX
        } else {
            (-(1.0 - q).log10()).min(X_MAX)
        };
        pts.push((x, us.max(0.001)));
    }
    pts
}

fn x_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    match x.round() as i32 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        _ => format!("{p:.*}%", (x.round() as usize).saturating_sub(2)),
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing: {e}");
    root.fill(&WHITE).map_err(e)?;
    let lo = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min);
    let hi = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (lo, hi) = ((lo * 0.8).max(0.01), (hi * 1.25).max(lo * 2.0));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..X_MAX, (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| {
            if *v >= 1000.0 {
                format!("{:.1} ms", v / 1000.0)
            } else {
                format!("{v:.0} µs")
            }
        })
        .x_desc("percentile")
        .y_desc("latency")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (k, (label, pts)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(e)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Draw `series` (label, histogram in ns) to `svg` and/or `png`.
pub fn plot(
    title: &str,
    series: &[(String, Histogram<u64>)],
    svg: Option<&Path>,
    png: Option<&Path>,
    font: Option<&Path>,
) -> anyhow::Result<()> {
    if series.is_empty() || series.iter().all(|s| s.1.is_empty()) {
        bail!("nothing to plot: every histogram is empty");
    }
    register_font(font)?;
    let curves: Vec<(String, Vec<(f64, f64)>)> =
        series.iter().map(|(l, h)| (l.clone(), curve(h))).collect();
    let size = (1000u32, 600u32);
    if let Some(p) = svg {
        draw(SVGBackend::new(p, size).into_drawing_area(), title, &curves)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = png {
        let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
        draw(
            BitMapBackend::with_buffer(&mut buf, size).into_drawing_area(),
            title,
            &curves,
        )?;
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_rise_and_labels_name_the_nines() {
        let mut h = crate::engine::new_hist();
        for v in 1..=100_000u64 {
            h.record(v * 100).unwrap();
        }
        let c = curve(&h);
        assert!(c.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        assert_eq!(c.last().unwrap().0, X_MAX);
        assert_eq!(x_label(&2.0), "99%");
        assert_eq!(x_label(&3.0), "99.9%");
        assert_eq!(x_label(&5.0), "99.999%");
    }
}
