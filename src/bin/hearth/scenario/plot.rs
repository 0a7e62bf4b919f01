//! SVG plots of a scenario's series (plotters), written next to its JSON.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

const COLORS: [RGBColor; 4] = [
    RGBColor(200, 60, 50),
    RGBColor(40, 110, 200),
    RGBColor(60, 150, 70),
    RGBColor(150, 90, 170),
];

/// One line per series over its index (1-based).
pub fn lines(path: &Path, title: &str, x: &str, y: &str, series: &[(&str, &[f64])]) -> Result<()> {
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(1f64..n as f64 + 0.5, 0f64..top)?;
    chart.configure_mesh().x_desc(x).y_desc(y).draw()?;
    for (i, (name, values)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(k, v)| (k as f64 + 1.0, *v)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
