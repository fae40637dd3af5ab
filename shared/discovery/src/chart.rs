//! `--chart out.svg`: per milestone, the cumulative achievement rate of the
//! renewed and the churned cohort by contract month, so the divergence can
//! be seen. Plain SVG, one small panel per row, no scripts or external fonts:
//! it opens in any browser and pastes into a slide.

use std::fmt::Write;

use super::report::Row;

const COLUMNS: usize = 3;
const PANEL_W: f64 = 340.0;
const PANEL_H: f64 = 250.0;
const HEADER_H: f64 = 56.0;
// The plot area inside a panel.
const PLOT_X: f64 = 44.0;
const PLOT_Y: f64 = 64.0;
const PLOT_W: f64 = 276.0;
const PLOT_H: f64 = 140.0;
const RENEWED: &str = "#1b7837";
const CHURNED: &str = "#c2410c";
/// Longest title kept whole; longer ones are shortened with an ellipsis.
const TITLE_CHARS: usize = 44;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).collect::<String>() + "…"
    }
}

fn x_of(month: usize) -> f64 {
    PLOT_X + PLOT_W * month as f64 / 12.0
}

fn y_of(rate: f64) -> f64 {
    PLOT_Y + PLOT_H * (1.0 - rate.clamp(0.0, 1.0))
}

/// The polyline of a cohort, starting from 0 at contract start.
fn curve(rates: &[f64; 12]) -> String {
    let mut points = format!("{:.1},{:.1}", x_of(0), y_of(0.0));
    for (m, rate) in rates.iter().enumerate() {
        let _ = write!(points, " {:.1},{:.1}", x_of(m + 1), y_of(*rate));
    }
    points
}

fn panel(out: &mut String, row: &Row, x: f64, y: f64, (first, second): (&str, &str)) {
    let c = &row.comparison;
    let scope = if row.is_overall() {
        String::new()
    } else {
        format!(" · {} · {}", row.segment, row.tenure)
    };
    let ratio = super::report::ratio(c.ratio);
    let class = c.class.map_or_else(String::new, |k| format!(" ({})", k.as_str()));
    let diverges = c
        .divergence_month
        .map_or_else(String::new, |m| format!(" · diverges month {m}"));
    let _ = write!(
        out,
        r#"<g transform="translate({x},{y})"><title>{title}</title>
<text x="{PLOT_X}" y="20" class="title">{short}</text>
<text x="{PLOT_X}" y="38" class="sub">ratio {ratio}{class}{diverges}{scope}</text>
<text x="{PLOT_X}" y="54" class="sub">{ra}/{rn} {first} vs {ca}/{cn} {second}{small}</text>
"#,
        title = escape(&format!("{} ({})", row.name, row.milestone)),
        short = escape(&shorten(&row.name, TITLE_CHARS)),
        ra = c.renewed_achieved,
        rn = c.renewed_n,
        ca = c.churned_achieved,
        cn = c.churned_n,
        small = if c.small_cohort { " · small cohort" } else { "" },
    );
    // Grid and axes.
    for pct in [0, 25, 50, 75, 100] {
        let gy = y_of(f64::from(pct) / 100.0);
        let _ = writeln!(
            out,
            r#"<line x1="{PLOT_X}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{pct}%</text>"#,
            PLOT_X + PLOT_W,
            PLOT_X - 6.0,
            gy + 4.0
        );
    }
    for m in (0..=12).step_by(3) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{m}</text>"#,
            x_of(m),
            PLOT_Y + PLOT_H + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">months after contract start</text>"#,
        PLOT_X + PLOT_W / 2.0,
        PLOT_Y + PLOT_H + 34.0
    );
    if let Some(m) = c.divergence_month {
        let dx = x_of(m as usize);
        let _ = writeln!(
            out,
            r#"<line x1="{dx:.1}" y1="{PLOT_Y}" x2="{dx:.1}" y2="{:.1}" class="divergence"/>"#,
            PLOT_Y + PLOT_H
        );
    }
    let _ = write!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{RENEWED}" stroke-width="2.5" class="renewed"/>
<polyline points="{}" fill="none" stroke="{CHURNED}" stroke-width="2.5" stroke-dasharray="6 4" class="churned"/>
</g>
"#,
        curve(&row.renewed_by_month),
        curve(&row.churned_by_month)
    );
}

/// The whole chart for `rows`, in their order, its cohorts named for `cohorts`.
pub fn render(rows: &[&Row], cohorts: crate::input::CohortSplit) -> String {
    let (first, second) = cohorts.names();
    let (first, second) = (first.replace('_', " "), second.replace('_', " "));
    // The legend's second entry and its note start after the first's label.
    let (x2, note_x) = match cohorts {
        crate::input::CohortSplit::Renewal => (120, 220),
        crate::input::CohortSplit::Expansion => (130, 272),
    };
    let (x2e, x2t) = (x2 + 28, x2 + 34);
    let panels = rows.len().max(1);
    let columns = panels.min(COLUMNS);
    let lines = panels.div_ceil(COLUMNS);
    let width = columns as f64 * PANEL_W + 20.0;
    let height = HEADER_H + lines as f64 * PANEL_H + 10.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">
<title>Milestone achievement by contract month, {first} vs {second} accounts</title>
<style>
.title {{ font-size: 15px; font-weight: bold; fill: #111827; }}
.sub {{ font-size: 12px; fill: #374151; }}
.tick {{ font-size: 11px; fill: #4b5563; }}
.grid {{ stroke: #e5e7eb; stroke-width: 1; }}
.divergence {{ stroke: #6b7280; stroke-width: 1; stroke-dasharray: 2 3; }}
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="26" class="title">Cumulative achievement by contract month</text>
<line x1="20" y1="42" x2="48" y2="42" stroke="{RENEWED}" stroke-width="2.5"/><text x="54" y="46" class="sub">{first}</text>
<line x1="{x2}" y1="42" x2="{x2e}" y2="42" stroke="{CHURNED}" stroke-width="2.5" stroke-dasharray="6 4"/><text x="{x2t}" y="46" class="sub">{second}</text>
<text x="{note_x}" y="46" class="sub">dotted line: divergence month</text>
"##
    );
    if rows.is_empty() {
        out.push_str(r#"<text x="20" y="90" class="sub">No milestone to draw.</text>"#);
    }
    for (i, row) in rows.iter().enumerate() {
        let x = 10.0 + (i % COLUMNS) as f64 * PANEL_W;
        let y = HEADER_H + (i / COLUMNS) as f64 * PANEL_H;
        panel(&mut out, row, x, y, (&first, &second));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use milepost_domain::discovery::{cumulative_by_month, Cohorts, Comparison};

    use super::*;

    fn row(name: &str) -> Row {
        let cohorts = Cohorts {
            renewed_n: 10,
            renewed_achieved: 8,
            churned_n: 10,
            churned_achieved: 2,
        };
        let (renewed, churned) = (vec![20; 8], vec![200; 2]);
        Row {
            milestone: "m".into(),
            name: name.into(),
            segment: "all",
            tenure: "all",
            comparison: Comparison::new(cohorts, &renewed, &churned),
            renewed_by_month: cumulative_by_month(10, &renewed),
            churned_by_month: cumulative_by_month(10, &churned),
        }
    }

    #[test]
    fn curves_follow_the_cumulative_rates_and_names_are_escaped() {
        let svg = render(
            &[&row("Report <shared> & \"exported\"")],
            crate::input::CohortSplit::Renewal,
        );
        assert!(svg.contains("Report &lt;shared&gt; &amp; &quot;exported&quot;"));
        assert!(!svg.contains("<shared>"));
        // Renewed: 80% from month 1 on, so its second point is at y_of(0.8).
        let renewed = svg.split("class=\"renewed\"").next().unwrap();
        let points = renewed.rsplit("points=\"").next().unwrap();
        let second = points.split(' ').nth(1).unwrap();
        assert_eq!(second, format!("{:.1},{:.1}", x_of(1), y_of(0.8)));
        assert!(svg.contains("diverges month 1"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2);
    }

    #[test]
    fn panels_wrap_in_rows_of_three_and_long_names_are_shortened() {
        let long = "A milestone name far too long to fit the width of one small panel";
        let svg = render(&[&row(long); 4], crate::input::CohortSplit::Renewal);
        assert_eq!(svg.matches("<g transform").count(), 4);
        assert!(svg.contains(&format!("translate(10,{})", HEADER_H + PANEL_H)));
        assert!(svg.contains(&shorten(long, TITLE_CHARS)) && shorten(long, TITLE_CHARS).ends_with('…'));
        assert!(
            svg.contains(&format!("<title>{long} (m)</title>")),
            "the full name stays in the tooltip"
        );
    }
}
