//! Times in the text people write: a video's chapters, from the timestamps that start
//! lines of its description (`0:00 Intro`, as YouTube and PeerTube read them), and the
//! `?t=` of a shared link (`90`, `90s`, `1h2m3s`).

use serde::{Deserialize, Serialize};

/// One chapter: where it starts and what it is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chapter {
    /// Where it starts, in seconds.
    pub start: u64,
    /// Its title.
    pub title: String,
}

/// Longest chapter title kept, in characters.
const MAX_TITLE_CHARS: usize = 100;
/// Most chapters read from one description.
const MAX_CHAPTERS: usize = 100;

/// The chapters a description lists: lines starting with a timestamp (`m:ss`, `mm:ss` or
/// `h:mm:ss`, maybe in brackets, maybe after a dash or bullet) followed by a title. Only a
/// real chapter list counts: at least two entries, the first at 0:00, each later than
/// the one before (and, when the duration is known, inside the video); anything else is
/// no chapters at all.
pub fn chapters(description: &str, duration_ms: Option<u64>) -> Vec<Chapter> {
    let mut found: Vec<Chapter> = Vec::new();
    for line in description.lines() {
        let Some((start, title)) = chapter_line(line) else {
            continue;
        };
        if found.last().is_some_and(|last| start <= last.start) {
            return Vec::new();
        }
        if duration_ms.is_some_and(|ms| start * 1000 >= ms) {
            return Vec::new();
        }
        found.push(Chapter { start, title });
        if found.len() > MAX_CHAPTERS {
            return Vec::new();
        }
    }
    if found.len() < 2 || found[0].start != 0 {
        return Vec::new();
    }
    found
}

/// `(start, title)` of a line that begins with a timestamp.
fn chapter_line(line: &str) -> Option<(u64, String)> {
    let line = line
        .trim()
        .trim_start_matches(['-', '•', '*', '–', '—'])
        .trim_start();
    let (bracketed, rest) = match line.strip_prefix(['(', '[']) {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let (stamp, rest) = rest.split_at(end);
    let start = clock_seconds(stamp)?;
    let rest = if bracketed {
        rest.strip_prefix([')', ']'])?
    } else {
        rest
    };
    let title = rest
        .trim_start_matches([' ', '\t', '-', '–', '—', ':', '|', '·'])
        .trim();
    if title.is_empty() {
        return None;
    }
    Some((start, title.chars().take(MAX_TITLE_CHARS).collect()))
}

/// Seconds of `m:ss`, `mm:ss` or `h:mm:ss`.
fn clock_seconds(stamp: &str) -> Option<u64> {
    let parts: Vec<&str> = stamp.split(':').collect();
    let number = |part: &str, max: u64| -> Option<u64> {
        (!part.is_empty() && part.len() <= 2)
            .then(|| part.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    match parts.as_slice() {
        [m, s] if s.len() == 2 => Some(number(m, 99)? * 60 + number(s, 59)?),
        [h, m, s] if m.len() == 2 && s.len() == 2 => {
            Some(number(h, 99)? * 3600 + number(m, 59)? * 60 + number(s, 59)?)
        }
        _ => None,
    }
}

/// A shared link's `?t=`: whole seconds (`90`, `90s`, `90.5`) or hours, minutes and
/// seconds (`1h2m3s`, `2m30s`, `1h`). Anything else is no time.
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let plain = text.strip_suffix('s').unwrap_or(text);
    if !plain.is_empty() && plain.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return plain
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s as u64);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit = 0u8;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (rank, unit) = match c.to_ascii_lowercase() {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return None,
        };
        if number.is_empty() || rank <= last_unit {
            return None;
        }
        total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(unit)?)?;
        number.clear();
        last_unit = rank;
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapter_lists_are_read_as_people_write_them() {
        let description = "Our talk.\n\n0:00 Intro\n1:30 - The engine\n(12:05) Questions\n• 1:02:03 Wrap-up: thanks";
        let found = chapters(description, None);
        assert_eq!(
            found,
            vec![
                Chapter {
                    start: 0,
                    title: "Intro".into()
                },
                Chapter {
                    start: 90,
                    title: "The engine".into()
                },
                Chapter {
                    start: 725,
                    title: "Questions".into()
                },
                Chapter {
                    start: 3723,
                    title: "Wrap-up: thanks".into()
                },
            ]
        );
        assert!(chapters("1:00 Not from the start\n2:00 Later", None).is_empty());
        assert!(chapters("0:00 Only one", None).is_empty());
        assert!(chapters("0:00 A\n5:00 B\n3:00 Back in time", None).is_empty());
        assert!(chapters("0:00 A\n5:00 Past the end", Some(120_000)).is_empty());
        assert!(chapters("0:00 A\n1:75 Not a time", None).len() < 2);
        assert!(chapters("Meet at 10:30 tomorrow\n0:00", None).is_empty());
    }

    #[test]
    fn shared_times_read_every_form() {
        assert_eq!(parse_time("90"), Some(90));
        assert_eq!(parse_time("90s"), Some(90));
        assert_eq!(parse_time("90.5"), Some(90));
        assert_eq!(parse_time("1h2m3s"), Some(3723));
        assert_eq!(parse_time("2m30s"), Some(150));
        assert_eq!(parse_time("1h"), Some(3600));
        assert_eq!(parse_time("5M"), Some(300));
        for bad in [
            "",
            "-5",
            "1m30",
            "12x",
            "1s2m",
            "h",
            "1h1h",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
