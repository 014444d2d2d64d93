//! Log lines for events that can come in floods (refused connections, failed accepts): the
//! first of a quiet period at once, then at most one per [`LOG_EVERY`] with the count held back.

use std::time::{Duration, Instant};

/// At most one log line per this long for one kind of event.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Events counted between log lines, the first one of a quiet period logged at once.
#[derive(Default)]
pub(crate) struct RateLimited {
    count: u64,
    last_line: Option<Instant>,
}

impl RateLimited {
    /// Count one; `Some(n)`: log now, `n` events since the last line.
    pub(crate) fn note(&mut self) -> Option<u64> {
        self.count += 1;
        if self.last_line.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return None;
        }
        self.last_line = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_events_logs_one_line_per_period() {
        let mut limited = RateLimited::default();
        assert_eq!(limited.note(), Some(1), "the first is logged at once");
        assert_eq!((0..1_000).filter_map(|_| limited.note()).count(), 0);
        limited.last_line = Instant::now().checked_sub(LOG_EVERY);
        assert_eq!(
            limited.note(),
            Some(1_001),
            "the next line counts what it held back"
        );
    }
}
