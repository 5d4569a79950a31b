//! The timeline: one bar per (certificate, port) — or (address, port) on a certificate page —
//! from first to last seen on one time axis with year (and, for short spans, month) ticks.
//! Geometry is computed here; `templates/timeline.html` draws it as SVG (every text escaped by
//! the template engine, no script).

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// Width of the drawing in SVG units (the page scales it to its container).
pub const WIDTH: i64 = 1200;
/// Width of the label column.
pub const LABEL_W: i64 = 260;
/// Height of a row.
pub const ROW_H: i64 = 18;
/// Space above the first row for the tick labels.
pub const TOP: i64 = 20;
/// Number of bar colours in the stylesheet (`.c0` … `.c7`).
pub const COLOURS: usize = 8;

/// One input row.
#[derive(Debug, Clone)]
pub struct Span {
    /// Label left of the bar.
    pub label: String,
    /// Tooltip.
    pub title: String,
    /// Where clicking the bar leads.
    pub href: String,
    /// Colour group (rows with the same key share a colour).
    pub group: usize,
    /// First seen.
    pub first: DateTime<Utc>,
    /// Last seen.
    pub last: DateTime<Utc>,
}

/// A drawn bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub label_y: i64,
    pub label: String,
    pub title: String,
    pub href: String,
    pub class: String,
}

/// An axis tick.
#[derive(Debug, Clone)]
pub struct Tick {
    pub x: i64,
    pub label: String,
    pub major: bool,
}

/// The whole drawing.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub width: i64,
    pub height: i64,
    pub label_w: i64,
    pub bottom: i64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
}

impl Timeline {
    /// Lays out `spans` (in the order given) on a shared axis.
    pub fn new(spans: &[Span]) -> Option<Timeline> {
        let start = spans.iter().map(|s| s.first).min()?;
        let end = spans.iter().map(|s| s.last.max(s.first)).max()?;
        // Pad by a day on both sides so short spans and the edges stay visible.
        let start = start - chrono::Duration::days(1);
        let end = end + chrono::Duration::days(1);
        let span_secs = (end - start).num_seconds().max(1);
        let plot_w = WIDTH - LABEL_W - 10;
        let x_of = |t: DateTime<Utc>| -> i64 {
            let off = (t - start).num_seconds().clamp(0, span_secs);
            LABEL_W
                + i64::try_from(i128::from(off) * i128::from(plot_w) / i128::from(span_secs))
                    .unwrap_or(0)
        };
        let bars: Vec<Bar> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let row = i64::try_from(i).unwrap_or(0);
                let x = x_of(s.first);
                let x2 = x_of(s.last.max(s.first));
                Bar {
                    x,
                    y: TOP + row * ROW_H + 3,
                    w: (x2 - x).max(2),
                    label_y: TOP + row * ROW_H + 13,
                    label: s.label.clone(),
                    title: s.title.clone(),
                    href: s.href.clone(),
                    class: format!("bar c{}", s.group % COLOURS),
                }
            })
            .collect();
        let mut ticks = Vec::new();
        let months = (end - start).num_days() < 3 * 366;
        let mut y = start.year();
        while let Some(jan) = Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single() {
            if jan > end {
                break;
            }
            for m in 1..=12u32 {
                let Some(t) = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single() else {
                    continue;
                };
                if t < start || t > end || (m != 1 && !months) {
                    continue;
                }
                ticks.push(Tick {
                    x: x_of(t),
                    label: if m == 1 {
                        y.to_string()
                    } else if months && (end - start).num_days() < 400 {
                        format!("{m:02}")
                    } else {
                        String::new()
                    },
                    major: m == 1,
                });
            }
            y += 1;
        }
        // Without a year line near the left edge, say where the axis starts.
        if !ticks.iter().any(|t| t.major && t.x < LABEL_W + 80) {
            ticks.insert(
                0,
                Tick {
                    x: LABEL_W + 20,
                    label: (start + chrono::Duration::days(1))
                        .format("%Y-%m")
                        .to_string(),
                    major: false,
                },
            );
        }
        let rows = i64::try_from(spans.len()).unwrap_or(0);
        let bottom = TOP + rows * ROW_H + 4;
        Some(Timeline {
            width: WIDTH,
            height: bottom + 4,
            label_w: LABEL_W,
            bottom,
            bars,
            ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn span(first: DateTime<Utc>, last: DateTime<Utc>, group: usize) -> Span {
        Span {
            label: "l".into(),
            title: "t".into(),
            href: "/".into(),
            group,
            first,
            last,
        }
    }

    #[test]
    fn bars_share_one_axis() {
        let t = Timeline::new(&[
            span(day(2023, 1, 1), day(2023, 2, 1), 0),
            span(day(2024, 1, 1), day(2024, 12, 1), 1),
            span(day(2024, 3, 1), day(2024, 3, 1), 9),
        ])
        .unwrap();
        assert_eq!(t.bars.len(), 3);
        // Ordered left to right by start; later ends are further right.
        assert!(t.bars[0].x < t.bars[2].x);
        assert!(t.bars[1].x < t.bars[2].x);
        assert!(t.bars[1].x + t.bars[1].w > t.bars[2].x + t.bars[2].w);
        // Everything inside the plot.
        for b in &t.bars {
            assert!(b.x >= LABEL_W && b.x + b.w <= WIDTH, "{b:?}");
        }
        // A point sighting stays visible; colour groups wrap.
        assert_eq!(t.bars[2].w, 2);
        assert_eq!(t.bars[2].class, "bar c1");
        // Year ticks at 2023-01-01 (the first bar's start) and 2024-01-01.
        let years: Vec<&str> = t
            .ticks
            .iter()
            .filter(|k| k.major)
            .map(|k| k.label.as_str())
            .collect();
        assert_eq!(years, vec!["2023", "2024"]);
        assert_eq!(t.height, TOP + 3 * ROW_H + 8);
    }

    #[test]
    fn the_axis_start_is_labelled_when_no_year_line_is_near() {
        let t = Timeline::new(&[span(day(2022, 6, 1), day(2024, 2, 1), 0)]).unwrap();
        assert_eq!(t.ticks[0].label, "2022-06");
        assert!(!t.ticks[0].major);
        let t = Timeline::new(&[span(day(2023, 1, 1), day(2024, 2, 1), 0)]).unwrap();
        assert_eq!(
            t.ticks.iter().find(|k| !k.label.is_empty()).unwrap().label,
            "2023"
        );
    }

    #[test]
    fn empty_is_none() {
        assert!(Timeline::new(&[]).is_none());
    }
}
