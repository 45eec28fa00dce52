//! What a bundle prints: the harness sends each `console` line as a protocol line of the
//! call it belongs to (call 0: printed outside any call), and they are kept here until
//! the call ends, within bounds per line and per call, whatever the harness claims.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Longest line kept, in characters.
pub const LINE_CHARS: usize = 4000;
/// Most lines kept of one call.
pub const LINES_PER_CALL: usize = 200;
/// Most bytes of text kept of one call.
pub const BYTES_PER_CALL: usize = 64 * 1024;
/// Most lines kept that were printed outside any call, until a call takes them.
const OUTSIDE_LINES: usize = 50;

/// One line a bundle printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLine {
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// `log`, `info`, `debug`, `warn` or `error`.
    pub level: String,
    /// What was printed.
    pub text: String,
}

#[derive(Default)]
struct Kept {
    lines: Vec<ConsoleLine>,
    bytes: usize,
    dropped: usize,
}

/// Lines of the calls in flight, by call id.
#[derive(Default)]
pub(super) struct Console {
    calls: HashMap<u64, Kept>,
}

impl Console {
    /// Starts keeping lines for call `id`.
    pub fn open(&mut self, id: u64) {
        self.calls.entry(id).or_default();
    }

    /// Keeps a line for call `id` (0: outside any call); lines of calls not open are
    /// dropped, so a bundle cannot make the runner keep lines for calls it invents.
    pub fn push(&mut self, id: u64, level: &str, mut text: String, at: i64) {
        let Some(kept) = (match id {
            0 => Some(self.calls.entry(0).or_default()),
            id => self.calls.get_mut(&id),
        }) else {
            return;
        };
        let max_lines = if id == 0 {
            OUTSIDE_LINES
        } else {
            LINES_PER_CALL
        };
        if let Some((cut, _)) = text.char_indices().nth(LINE_CHARS) {
            text.truncate(cut);
            text.push('…');
        }
        if kept.lines.len() >= max_lines || kept.bytes + text.len() > BYTES_PER_CALL {
            kept.dropped += 1;
            return;
        }
        let level = match level {
            "info" | "debug" | "warn" | "error" => level,
            _ => "log",
        };
        kept.bytes += text.len();
        kept.lines.push(ConsoleLine {
            at,
            level: level.to_string(),
            text,
        });
    }

    /// Counts `count` lines of call `id` that were never sent.
    pub fn dropped(&mut self, id: u64, count: usize) {
        if let Some(kept) = self.calls.get_mut(&id) {
            kept.dropped = kept.dropped.saturating_add(count);
        }
    }

    /// The lines of call `id`, which is over, after those printed outside any call
    /// since the last call ended.
    pub fn take(&mut self, id: u64) -> Vec<ConsoleLine> {
        let outside = self.calls.remove(&0).unwrap_or_default();
        let own = self.calls.remove(&id).unwrap_or_default();
        let mut lines = outside.lines;
        lines.extend(own.lines);
        let dropped = outside.dropped + own.dropped;
        if dropped > 0 {
            lines.push(ConsoleLine {
                at: lines.last().map_or(0, |line| line.at),
                level: "warn".into(),
                text: format!(
                    "({dropped} further lines were not kept: at most {LINES_PER_CALL} lines \
                     and {BYTES_PER_CALL} bytes per call)"
                ),
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_only_kept_for_open_calls() {
        let mut console = Console::default();
        console.push(7, "log", "invented".into(), 1);
        console.open(1);
        console.push(0, "info", "top level".into(), 1);
        console.push(1, "shout", "x".repeat(LINE_CHARS + 10), 2);
        for i in 0..LINES_PER_CALL {
            console.push(1, "warn", format!("{i}"), 3);
        }
        let lines = console.take(1);
        assert_eq!(lines[0].text, "top level");
        assert_eq!(lines[1].level, "log");
        assert_eq!(lines[1].text.chars().count(), LINE_CHARS + 1);
        assert_eq!(lines.len(), 1 + LINES_PER_CALL + 1);
        assert!(
            lines
                .last()
                .is_some_and(|l| l.text.starts_with("(1 further lines"))
        );
        assert!(console.take(7).is_empty());
    }
}
