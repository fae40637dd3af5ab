//! A simulator comparison in rows: what `milepost maps simulate` prints
//! and the quarterly map review in the leadership digest repeats.

use milepost_domain::map_review::Figures;

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.0}%", v * 100.0))
}

fn money(v: u64) -> String {
    super::fmt_money(v)
}

/// The figures as rows of (what, current, proposed, change), as `milepost
/// maps simulate` prints them and the quarterly review shows them.
pub fn compared(c: &Figures, p: &Figures) -> Vec<(&'static str, String, String, String)> {
    let count = |name, a: u64, b: u64| (name, a.to_string(), b.to_string(), signed(b as i64 - a as i64));
    vec![
        count("misses", c.misses, p.misses),
        count("playbooks started", c.playbooks_started, p.playbooks_started),
        count("customer emails", c.customer_emails, p.customer_emails),
        count("CSM tasks", c.csm_tasks, p.csm_tasks),
        (
            "CSM hours",
            format!("{:.1}", c.csm_hours),
            format!("{:.1}", p.csm_hours),
            format!("{:+.1}", p.csm_hours - c.csm_hours),
        ),
        count(
            "leadership escalations",
            c.leadership_escalations,
            p.leadership_escalations,
        ),
        (
            "ARR flagged",
            money(c.arr_flagged),
            money(p.arr_flagged),
            if p.arr_flagged >= c.arr_flagged {
                format!("+{}", money(p.arr_flagged - c.arr_flagged))
            } else {
                format!("\u{2212}{}", money(c.arr_flagged - p.arr_flagged))
            },
        ),
        (
            "churned flagged before decision",
            format!("{} of {}", c.churned_flagged, c.churned),
            format!("{} of {}", p.churned_flagged, p.churned),
            signed(p.churned_flagged as i64 - c.churned_flagged as i64),
        ),
        (
            "renewed flagged (false alarms)",
            format!("{} of {}", c.renewed_flagged, c.renewed),
            format!("{} of {}", p.renewed_flagged, p.renewed),
            signed(p.renewed_flagged as i64 - c.renewed_flagged as i64),
        ),
        (
            "renewed written to",
            format!("{} of {}", c.renewed_contacted, c.renewed),
            format!("{} of {}", p.renewed_contacted, p.renewed),
            signed(p.renewed_contacted as i64 - c.renewed_contacted as i64),
        ),
        (
            "precision (flagged that churned)",
            percent(c.precision),
            percent(p.precision),
            String::new(),
        ),
        (
            "recall (churned that were flagged)",
            percent(c.recall),
            percent(p.recall),
            String::new(),
        ),
    ]
}

fn signed(d: i64) -> String {
    match d {
        0 => "0".into(),
        d if d > 0 => format!("+{d}"),
        d => format!("\u{2212}{}", -d),
    }
}
