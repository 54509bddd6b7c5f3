//! The load harness's SVG plots (`--plots DIR`): latency through token rollovers, the cold
//! burst's release curve and the end-to-end throughput per round.
//!
//! Plotters' SVG backend without its `ttf` feature: text is emitted as SVG `<text>` and laid out
//! by the viewer, so no system font library is needed. Each plot is drawn into a string and then
//! written, so a half-drawn file is never left behind.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use plotters::coord::Shift;
use plotters::prelude::*;

/// About README width.
const WIDTH: u32 = 800;
const TITLE: (&str, u32) = ("sans-serif", 22);
const LABELS: (&str, u32) = ("sans-serif", 15);
/// The layer with tokens that roll over; also the cold burst's released requests.
const LAYER: RGBColor = RGBColor(214, 96, 0);
/// The baseline: a token that never changes.
const BASELINE: RGBColor = RGBColor(31, 98, 180);
/// Token fetches and arrivals.
const TOKEN: RGBColor = RGBColor(46, 139, 87);
/// Bins of the rollover plot: each point is one bin's median or maximum.
pub const BIN: Duration = Duration::from_millis(100);

/// One request of the rollover run, in 8 bytes so that a 12 s run's million samples stay small:
/// when it completed (µs since the run started) and its latency (ns), both saturating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    at_us: u32,
    latency_ns: u32,
}

impl Sample {
    pub fn new(at: Duration, latency: Duration) -> Self {
        Self {
            at_us: u32::try_from(at.as_micros()).unwrap_or(u32::MAX),
            latency_ns: u32::try_from(latency.as_nanos()).unwrap_or(u32::MAX),
        }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns.into())
    }
}

/// One series of the rollover plot: a run's samples in any order.
pub struct Run<'a> {
    pub label: &'a str,
    pub samples: &'a [Sample],
}

/// A token fetch, as offsets from the start of the run it served: asked, and answered.
#[derive(Clone, Copy, Debug)]
pub struct Fetch {
    pub asked: Duration,
    pub answered: Duration,
}

/// Why a plot was not written: which file, and what went wrong.
#[derive(Debug)]
pub struct PlotError(String);

impl Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws into a string with `draw`, then writes the string to `path`.
fn write_svg(
    path: &Path,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<(), PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| PlotError(format!("drawing {}: {e}", path.display())))?;
        draw(&root).map_err(|e| PlotError(format!("drawing {}: {e}", path.display())))?;
        root.present()
            .map_err(|e| PlotError(format!("drawing {}: {e}", path.display())))?;
    }
    std::fs::write(path, svg).map_err(|e| PlotError(format!("writing {}: {e}", path.display())))
}

/// A latency in µs as a short label with its unit.
fn micros_label(us: f64) -> String {
    let trim = |v: f64| {
        let text = format!("{v:.1}");
        text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
    };
    if us < 1.0 {
        format!("{} ns", trim(us * 1000.0))
    } else if us < 1000.0 {
        format!("{} µs", trim(us))
    } else {
        format!("{} ms", trim(us / 1000.0))
    }
}

/// A count with thousands separators: `10,000`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Per `BIN` of completion time: (bin centre in s, median latency in µs, maximum in µs).
pub fn binned(samples: &[Sample]) -> Vec<(f64, f64, f64)> {
    let bin_us = BIN.as_micros() as u32;
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by_key(|s| (s.at_us / bin_us, s.latency_ns));
    sorted
        .chunk_by(|a, b| a.at_us / bin_us == b.at_us / bin_us)
        .map(|bin| {
            let centre = (f64::from(bin[0].at_us / bin_us) + 0.5) * BIN.as_secs_f64();
            let median = f64::from(bin[bin.len() / 2].latency_ns) / 1000.0;
            let max = f64::from(bin[bin.len() - 1].latency_ns) / 1000.0;
            (centre, median, max)
        })
        .collect()
}

/// `rollover-latency.svg`: per 100 ms, the median and maximum latency of each run, with the
/// rolling run's token fetches shaded and each new token's arrival marked.
pub fn rollover_latency(
    path: &Path,
    rolling: Run<'_>,
    fixed: Run<'_>,
    fetches: &[Fetch],
    run_for: Duration,
) -> Result<(), PlotError> {
    let seconds = run_for.as_secs_f64();
    // The requests in flight when the run ended complete after it, in a bin of their own.
    let within = |samples| -> Vec<(f64, f64, f64)> {
        binned(samples)
            .into_iter()
            .filter(|b| b.0 < seconds)
            .collect()
    };
    let (rolling_bins, fixed_bins) = (within(rolling.samples), within(fixed.samples));
    let all = || rolling_bins.iter().chain(&fixed_bins);
    let low = all().map(|b| b.1).fold(f64::MAX, f64::min).max(0.01);
    let high = all().map(|b| b.2).fold(0.0, f64::max).max(low * 10.0);
    // Room at the top for the legend: about a decade and a half above the highest maximum.
    let (y_low, y_high) = (low / 2.0, high * 40.0);
    write_svg(path, 500, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Request latency through token rollovers (3 s tokens, 200 ms fetch)",
                TITLE,
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..seconds, (y_low..y_high).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("time since the load started (s)")
            .y_desc("latency: maximum and median per 100 ms (log scale)")
            .y_label_formatter(&|us| micros_label(*us))
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .light_line_style(WHITE)
            .draw()?;
        let shown: Vec<&Fetch> = fetches
            .iter()
            .filter(|f| f.answered.as_secs_f64() <= seconds)
            .collect();
        if !shown.is_empty() {
            chart
                .draw_series(shown.iter().map(|f| {
                    Rectangle::new(
                        [
                            (f.asked.as_secs_f64(), y_low),
                            (f.answered.as_secs_f64(), y_high),
                        ],
                        TOKEN.mix(0.18).filled(),
                    )
                }))?
                .label("token fetch in flight")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 22, y + 6)], TOKEN.mix(0.18).filled())
                });
            chart
                .draw_series(shown.iter().map(|f| {
                    let at = f.answered.as_secs_f64();
                    PathElement::new(vec![(at, y_low), (at, y_high)], TOKEN.stroke_width(2))
                }))?
                .label("new token arrives")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], TOKEN.stroke_width(2))
                });
        }
        for (run, bins, color) in [
            (&rolling, &rolling_bins, LAYER),
            (&fixed, &fixed_bins, BASELINE),
        ] {
            chart
                .draw_series(LineSeries::new(
                    bins.iter().map(|b| (b.0, b.2)),
                    color.stroke_width(2),
                ))?
                .label(format!("{}: maximum", run.label))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                });
            chart
                .draw_series(LineSeries::new(
                    bins.iter().map(|b| (b.0, b.1)),
                    color.mix(0.45).stroke_width(2),
                ))?
                .label(format!("{}: median", run.label))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.mix(0.45).stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font(LABELS)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    })
}

/// Up to about `points` points of the cumulative count of `times` (sorted, in ms): the count
/// reached at each time, starting from zero.
pub fn cumulative(times: &[f64], points: usize) -> Vec<(f64, f64)> {
    let step = times.len().div_ceil(points.max(1)).max(1);
    let mut curve = Vec::with_capacity(times.len() / step + 3);
    if let Some(first) = times.first() {
        curve.push((*first, 0.0));
    }
    curve.extend(
        times
            .iter()
            .enumerate()
            .skip(step - 1)
            .step_by(step)
            .map(|(i, t)| (*t, (i + 1) as f64)),
    );
    if let Some(last) = times.last()
        && !times.len().is_multiple_of(step)
    {
        curve.push((*last, times.len() as f64));
    }
    curve
}

/// `cold-burst-release.svg`: above, the whole burst (requests sent and released over time
/// since the burst started, the token request and its arrival marked); below, the release
/// alone, in ms since the token arrived.
pub fn cold_burst_release(
    path: &Path,
    sent: &[Duration],
    released: &[Duration],
    token_asked: Duration,
    token_arrived: Duration,
) -> Result<(), PlotError> {
    let ms = |times: &[Duration]| {
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        ms
    };
    let (sent, released) = (ms(sent), ms(released));
    let (asked, arrived) = (
        token_asked.as_secs_f64() * 1000.0,
        token_arrived.as_secs_f64() * 1000.0,
    );
    let n = released.len().max(sent.len()).max(1) as f64;
    let last = released.last().copied().unwrap_or(arrived).max(arrived);
    let after: Vec<f64> = released.iter().map(|t| t - arrived).collect();
    let spread = after.last().copied().unwrap_or(0.0).max(0.1);
    write_svg(path, 640, |root| {
        let root = root.titled(
            &format!(
                "Cold burst: {} concurrent requests, one token fetch (200 ms)",
                thousands(released.len() as f64)
            ),
            TITLE,
        )?;
        let (upper, lower) = root.split_vertically(300);
        let vertical =
            |x: f64, style: ShapeStyle| PathElement::new(vec![(x, 0.0), (x, n * 1.05)], style);
        let mut whole = ChartBuilder::on(&upper)
            .caption("the whole burst", LABELS)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..last * 1.04, 0.0..n * 1.05)?;
        whole
            .configure_mesh()
            .x_desc("time since the burst started (ms)")
            .y_desc("requests (cumulative)")
            .y_label_formatter(&|y| thousands(*y))
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .light_line_style(WHITE)
            .draw()?;
        whole
            .draw_series(std::iter::once(vertical(
                asked,
                TOKEN.mix(0.5).stroke_width(2),
            )))?
            .label(format!("token requested ({asked:.2} ms)"))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], TOKEN.mix(0.5).stroke_width(2))
            });
        whole
            .draw_series(std::iter::once(vertical(arrived, TOKEN.stroke_width(2))))?
            .label(format!("token arrives ({arrived:.1} ms)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], TOKEN.stroke_width(2)));
        whole
            .draw_series(LineSeries::new(
                cumulative(&sent, 600),
                BASELINE.stroke_width(2),
            ))?
            .label("requests sent, waiting for the token")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], BASELINE.stroke_width(2)));
        whole
            .draw_series(LineSeries::new(
                cumulative(&released, 600),
                LAYER.stroke_width(2),
            ))?
            .label("requests released (answered)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], LAYER.stroke_width(2)));
        whole
            .configure_series_labels()
            .label_font(LABELS)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::MiddleMiddle)
            .draw()?;

        let mut zoom = ChartBuilder::on(&lower)
            .caption("the release, from the token's arrival", LABELS)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(-spread * 0.04..spread * 1.04, 0.0..n * 1.05)?;
        zoom.configure_mesh()
            .x_desc("time since the token arrived (ms)")
            .y_desc("requests released")
            .y_label_formatter(&|y| thousands(*y))
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .light_line_style(WHITE)
            .draw()?;
        zoom.draw_series(std::iter::once(vertical(0.0, TOKEN.stroke_width(2))))?;
        zoom.draw_series(LineSeries::new(
            cumulative(&after, 600),
            LAYER.stroke_width(2),
        ))?;
        Ok(())
    })
}

/// `e2e-throughput.svg`: requests/s per round, `(static header, layer)` per round.
pub fn e2e_throughput(path: &Path, rounds: &[(f64, f64)], seconds: u64) -> Result<(), PlotError> {
    let n = rounds.len();
    let values = || rounds.iter().flat_map(|r| [r.0, r.1]);
    let low = values().fold(f64::MAX, f64::min);
    let high = values().fold(0.0, f64::max);
    let pad = ((high - low) * 0.5).max(high * 0.02);
    let (y_low, y_high) = ((low - pad).max(0.0), high + pad);
    let mean =
        |pick: fn(&(f64, f64)) -> f64| rounds.iter().map(pick).sum::<f64>() / n.max(1) as f64;
    let (header_mean, layer_mean) = (mean(|r| r.0), mean(|r| r.1));
    write_svg(path, 420, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("End to end over loopback: throughput per round ({seconds} s each way)"),
                TITLE,
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(80)
            .build_cartesian_2d(0.5..n as f64 + 0.5, y_low..y_high)?;
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc("requests/s (axis does not start at 0)")
            .x_labels(n + 1)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-9 {
                    format!("{}", x.round())
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .light_line_style(WHITE)
            .draw()?;
        for (label, mean, pick, color) in [
            ("static header (tower-http)", header_mean, 0, BASELINE),
            ("BearerTokenLayer", layer_mean, 1, LAYER),
        ] {
            let points = rounds
                .iter()
                .enumerate()
                .map(move |(i, r)| ((i + 1) as f64, if pick == 0 { r.0 } else { r.1 }));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(4))?
                .label(format!("{label}: mean {}/s", thousands(mean)))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font(LABELS)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tower-bearer-plots-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The point counts of the `<polyline>`s drawn in `color` with `opacity`: plotters draws
    /// each line series as one (and also axis ticks and legend marks, with two points each).
    fn lines(svg: &str, color: RGBColor, opacity: &str) -> Vec<usize> {
        let stroke = format!(
            "opacity=\"{opacity}\" stroke=\"#{:02X}{:02X}{:02X}\"",
            color.0, color.1, color.2
        );
        svg.split("<polyline")
            .skip(1)
            .filter(|line| line.contains(&stroke))
            .map(|line| {
                let points = line.split("points=\"").nth(1).unwrap_or("");
                points[..points.find('"').unwrap_or(0)]
                    .split_whitespace()
                    .count()
            })
            .collect()
    }

    #[test]
    fn samples_saturate_instead_of_wrapping() {
        let sample = Sample::new(Duration::from_secs(10_000), Duration::from_secs(10));
        assert_eq!(sample.at_us, u32::MAX);
        assert_eq!(sample.latency(), Duration::from_nanos(u32::MAX.into()));
    }

    #[test]
    fn bins_give_each_100_ms_its_median_and_maximum() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let samples = [
            Sample::new(ms(10), us(1)),
            Sample::new(ms(60), us(7)),
            Sample::new(ms(20), us(3)),
            Sample::new(ms(40), us(2)),
            Sample::new(ms(70), us(5)),
            Sample::new(ms(130), us(4)),
        ];
        let bins = binned(&samples);
        let expected = [(0.05, 3.0, 7.0), (0.15, 4.0, 4.0)];
        assert_eq!(bins.len(), expected.len(), "{bins:?}");
        for (bin, want) in bins.iter().zip(expected) {
            assert!((bin.0 - want.0).abs() < 1e-9, "{bins:?}");
            assert_eq!((bin.1, bin.2), (want.1, want.2), "{bins:?}");
        }
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(10_000.4), "10,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn cumulative_curves_start_at_zero_and_end_at_the_count() {
        let times: Vec<f64> = (1..=10).map(f64::from).collect();
        let curve = cumulative(&times, 3);
        assert_eq!(curve.first(), Some(&(1.0, 0.0)));
        assert_eq!(curve.last(), Some(&(10.0, 10.0)));
        assert!(curve.len() <= 3 + 2, "{curve:?}");
        assert!(
            curve
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(cumulative(&times, 100).len(), 11);
        assert!(cumulative(&[], 10).is_empty());
    }

    #[test]
    fn the_rollover_plot_has_both_series_and_the_token_marks() {
        let dir = dir("rollover");
        let path = dir.join("rollover-latency.svg");
        let samples = |base: u64| -> Vec<Sample> {
            (0..4000)
                .map(|i| {
                    Sample::new(
                        Duration::from_millis(i),
                        Duration::from_nanos(base + i % 7 * 50),
                    )
                })
                .collect()
        };
        let (rolling, fixed) = (samples(400), samples(300));
        let fetches = [Fetch {
            asked: Duration::from_millis(1800),
            answered: Duration::from_millis(2000),
        }];
        rollover_latency(
            &path,
            Run {
                label: "refreshing tokens",
                samples: &rolling,
            },
            Run {
                label: "static token",
                samples: &fixed,
            },
            &fetches,
            Duration::from_secs(4),
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("width=\"800\""));
        assert!(svg.contains("Request latency through token rollovers"));
        for label in [
            "refreshing tokens: maximum",
            "refreshing tokens: median",
            "static token: maximum",
            "static token: median",
            "token fetch in flight",
            "new token arrives",
            "time since the load started (s)",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        // Per run, the maximum and the median: a point per 100 ms bin of the 4 s, in a full and
        // a lighter stroke; the token's arrival is a vertical line.
        for color in [LAYER, BASELINE] {
            for opacity in ["1", "0.45"] {
                let lines = lines(&svg, color, opacity);
                assert!(lines.contains(&40), "{color:?} {opacity}: {lines:?}");
            }
        }
        assert!(lines(&svg, TOKEN, "1").contains(&2));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_cold_burst_plot_has_the_sent_and_released_curves() {
        let dir = dir("cold");
        let path = dir.join("cold-burst-release.svg");
        let sent: Vec<Duration> = (0..1000).map(|i| Duration::from_micros(i * 20)).collect();
        let released: Vec<Duration> = (0..1000)
            .map(|i| Duration::from_micros(200_000 + i * 3))
            .collect();
        cold_burst_release(
            &path,
            &sent,
            &released,
            Duration::from_micros(50),
            Duration::from_micros(200_000),
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for label in [
            "Cold burst: 1,000 concurrent requests",
            "requests sent, waiting for the token",
            "requests released (answered)",
            "token arrives (200.0 ms)",
            "time since the token arrived (ms)",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        // Sent (one curve), released (the whole burst and the zoom), each of many points.
        let many = |lines: Vec<usize>| lines.into_iter().filter(|n| *n > 100).count();
        assert_eq!(many(lines(&svg, BASELINE, "1")), 1);
        assert_eq!(many(lines(&svg, LAYER, "1")), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_throughput_plot_has_a_point_per_round_for_each_client() {
        let dir = dir("e2e");
        let path = dir.join("e2e-throughput.svg");
        let rounds = [
            (120_000.0, 121_000.0),
            (118_000.0, 117_500.0),
            (119_000.0, 119_900.0),
        ];
        e2e_throughput(&path, &rounds, 5).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("static header (tower-http): mean 119,000/s"));
        assert!(svg.contains("BearerTokenLayer: mean 119,467/s"));
        // A line of a point per round for each client, and a marker at each point.
        assert!(lines(&svg, BASELINE, "1").contains(&3));
        assert!(lines(&svg, LAYER, "1").contains(&3));
        assert_eq!(svg.matches("<circle").count(), 6);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_the_file() {
        let path = Path::new("/nonexistent-dir-of-plots/e2e-throughput.svg");
        let error = e2e_throughput(path, &[(1.0, 1.0)], 1).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("writing /nonexistent-dir-of-plots/e2e-throughput.svg"),
            "{error}"
        );
    }
}
