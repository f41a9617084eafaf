//! SVG charts (plotters, SVG backend only: no system fonts needed; text is
//! SVG `<text>` the viewer renders). Floats appear here only as chart
//! coordinates.

use std::path::Path;

use plotters::prelude::*;

use crate::analysis::History;
use crate::error::{Error, Result};
use crate::units::MS_PER_DAY;

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error(format!("{}: cannot draw chart: {e}", path.display()))
}

/// Days since `origin_ms` as a chart coordinate.
fn day_coord(t_ms: u64, origin_ms: u64) -> f64 {
    t_ms.saturating_sub(origin_ms) as f64 / MS_PER_DAY as f64
}

/// The dose-history dashboard: daily dose, patient boluses, alarms and the
/// reservoir, one panel each, over the same day axis.
pub fn history_svg(path: &Path, h: &History, title: &str) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = SVGBackend::new(path, (1100, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((4, 1));
    let origin_ms = h
        .days
        .first()
        .and_then(|d| parse_date_ms(&d.date))
        .unwrap_or(0);
    let n_days = h.days.len().max(1) as f64;

    // 1. Delivered dose per day.
    {
        let max = h.days.iter().map(|d| d.dose_ug).max().unwrap_or(1).max(1) as f64 * 1.15;
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("Delivered dose per day (µg)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n_days, 0f64..max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc("µg/day")
            .draw()
            .map_err(|e| err(&e))?;
        let total: Vec<(f64, f64)> = h
            .days
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                [
                    (i as f64, d.dose_ug as f64),
                    (i as f64 + 1.0, d.dose_ug as f64),
                ]
            })
            .collect();
        chart
            .draw_series(AreaSeries::new(total, 0.0, BLUE.mix(0.25)).border_style(BLUE))
            .map_err(|e| err(&e))?
            .label("total dose")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }

    // 2. Patient boluses granted and denied per day.
    {
        let max = h
            .days
            .iter()
            .map(|d| d.boluses_granted.max(d.boluses_denied))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            + 1.0;
        let mut chart = ChartBuilder::on(&panels[1])
            .caption("Patient boluses per day", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n_days, 0f64..max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc("boluses")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(h.days.iter().enumerate().map(|(i, d)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.1, 0.0), (x + 0.5, f64::from(d.boluses_granted))],
                    GREEN.filled(),
                )
            }))
            .map_err(|e| err(&e))?
            .label("granted")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], GREEN.filled()));
        chart
            .draw_series(h.days.iter().enumerate().map(|(i, d)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.5, 0.0), (x + 0.9, f64::from(d.boluses_denied))],
                    RED.filled(),
                )
            }))
            .map_err(|e| err(&e))?
            .label("denied")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], RED.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }

    // 3. Alarms by priority over time.
    {
        let mut chart = ChartBuilder::on(&panels[2])
            .caption("Alarms raised (by priority)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n_days, 0f64..4f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_labels(5)
            .y_label_formatter(&|y| {
                match y.round() as i64 {
                    1 => "low",
                    2 => "medium",
                    3 => "high",
                    _ => "",
                }
                .to_string()
            })
            .draw()
            .map_err(|e| err(&e))?;
        let level = |p: &str| match p {
            "High" => 3.0,
            "Medium" => 2.0,
            _ => 1.0,
        };
        chart
            .draw_series(h.alarms.iter().map(|a| {
                let x = day_coord(a.time_ms, origin_ms);
                let y = level(&a.priority);
                let end = a.cleared_ms.map_or(n_days, |c| day_coord(c, origin_ms));
                PathElement::new(vec![(x, y), (end.max(x + 0.05), y)], RED.stroke_width(4))
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(h.alarms.iter().map(|a| {
                Circle::new(
                    (day_coord(a.time_ms, origin_ms), level(&a.priority)),
                    4,
                    RED.filled(),
                )
            }))
            .map_err(|e| err(&e))?;
    }

    // 4. Reservoir volume.
    {
        let max_nl = h
            .reservoir
            .iter()
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chart = ChartBuilder::on(&panels[3])
            .caption("Reservoir (mL)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n_days, 0f64..(max_nl as f64 / 1e6 * 1.1))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc("mL")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                h.reservoir
                    .iter()
                    .map(|(t, v)| (day_coord(*t, origin_ms), *v as f64 / 1e6)),
                MAGENTA.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Unix ms of a `YYYY-MM-DD` date at 00:00 UTC.
/// Battery charge left over time, from the capsule's own estimate at each
/// daily read-out, against the capacity when new.
pub fn battery_svg(
    path: &Path,
    samples: &[(u64, u64)],
    capacity_pah: u64,
    title: &str,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = SVGBackend::new(path, (1100, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| err(&e))?;
    let mah = |pah: u64| pah as f64 / 1e9;
    let days = samples
        .last()
        .map_or(1.0, |(t, _)| day_coord(*t, 0))
        .max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Charge left (mAh), the capsule's coulomb count",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..days, 0f64..mah(capacity_pah) * 1.05)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("mAh")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|(t, pah)| (day_coord(*t, 0), mah(*pah))),
            BLUE,
        ))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

fn parse_date_ms(date: &str) -> Option<u64> {
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    // days_from_civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| d * MS_PER_DAY)
}

/// A trumpet curve: max and min percentage error per observation window.
pub fn trumpet_svg(
    path: &Path,
    windows_min: &[u32],
    max_pct: &[f64],
    min_pct: &[f64],
    overall_pct: f64,
    title: &str,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let bound = max_pct
        .iter()
        .chain(min_pct)
        .map(|v| v.abs())
        .fold(5.0f64, f64::max)
        * 1.2;
    let x_max = f64::from(windows_min.iter().copied().max().unwrap_or(31)) + 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, -bound..bound)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("observation window (min)")
        .y_desc("flow error (%)")
        .draw()
        .map_err(|e| err(&e))?;
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        windows_min
            .iter()
            .zip(v)
            .map(|(w, e)| (f64::from(*w), *e))
            .collect()
    };
    chart
        .draw_series(LineSeries::new(pts(max_pct), RED.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("Ep(max)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(pts(min_pct), BLUE.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("Ep(min)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, overall_pct), (x_max, overall_pct)],
            BLACK.mix(0.6).stroke_width(1),
        ))
        .map_err(|e| err(&e))?
        .label("overall error A")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
