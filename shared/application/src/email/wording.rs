//! Wording a reader expects: dates relative to when the email is read, in
//! the reader's timezone, and possessives that read right.

use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use milepost_domain::Timestamp;

/// When something was (or is) due, seen from `now` in `tz`:
/// `was due today`, `was due yesterday`, `was due 20 Feb, five days ago`,
/// `was due 20 Dec 2025, 64 days ago`, `is due tomorrow`, `is due 3 Mar, in four days`.
pub fn due_phrase(due: Timestamp, now: Timestamp, tz: Tz) -> String {
    let due_day = tz.from_utc_datetime(&due.naive_utc()).date_naive();
    let today = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    let date = if due_day.year() == today.year() {
        due_day.format("%-d %b").to_string()
    } else {
        due_day.format("%-d %b %Y").to_string()
    };
    match (today - due_day).num_days() {
        0 => "was due today".to_string(),
        1 => "was due yesterday".to_string(),
        -1 => "is due tomorrow".to_string(),
        days if days > 1 => format!("was due {date}, {} days ago", count(days)),
        days => format!("is due {date}, in {} days", count(-days)),
    }
}

/// `Mon 9 Feb 09:00`: an instant as the reader's clock shows it.
pub fn fmt_local_datetime(t: Timestamp, tz: Tz) -> String {
    tz.from_utc_datetime(&t.naive_utc())
        .format("%a %-d %b %H:%M")
        .to_string()
}

/// Small counts in words, as people write them; larger ones in digits.
fn count(n: i64) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| WORDS.get(i))
        .map_or_else(|| n.to_string(), |w| w.to_string())
}

/// `Acme` → `Acme's`; a name ending in s takes the apostrophe alone:
/// `Atlas Systems` → `Atlas Systems'`.
pub fn possessive(name: &str) -> String {
    let name = name.trim_end();
    if name.ends_with(['s', 'S']) {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn due_dates_read_relative_to_the_send_in_the_readers_timezone() {
        let utc = chrono_tz::UTC;
        let now = at(2026, 2, 25, 10);
        assert_eq!(due_phrase(at(2026, 2, 25, 0), now, utc), "was due today");
        assert_eq!(due_phrase(at(2026, 2, 24, 0), now, utc), "was due yesterday");
        assert_eq!(
            due_phrase(at(2026, 2, 20, 0), now, utc),
            "was due 20 Feb, five days ago"
        );
        assert_eq!(due_phrase(at(2026, 1, 1, 0), now, utc), "was due 1 Jan, 55 days ago");
        assert_eq!(
            due_phrase(at(2025, 12, 20, 0), now, utc),
            "was due 20 Dec 2025, 67 days ago"
        );
        assert_eq!(due_phrase(at(2026, 2, 26, 0), now, utc), "is due tomorrow");
        assert_eq!(due_phrase(at(2026, 3, 1, 0), now, utc), "is due 1 Mar, in four days");
        // 01:00 UTC on the 25th is still the 24th in New York, and 23:00 UTC on
        // the 23rd is already the 24th in Tokyo: the day is the reader's.
        let early = at(2026, 2, 25, 1);
        assert_eq!(
            due_phrase(at(2026, 2, 24, 12), early, chrono_tz::America::New_York),
            "was due today"
        );
        assert_eq!(
            due_phrase(at(2026, 2, 23, 23), now, chrono_tz::Asia::Tokyo),
            "was due yesterday"
        );
    }

    #[test]
    fn possessives_of_names_ending_in_s_take_the_apostrophe_alone() {
        assert_eq!(possessive("Acme"), "Acme's");
        assert_eq!(possessive("Atlas Systems"), "Atlas Systems'");
        assert_eq!(possessive("GLOBEX LABS"), "GLOBEX LABS'");
        assert_eq!(possessive("Initech "), "Initech's");
    }
}
