//! The wall clock task rules are written in (result TTLs, retry backoff, leases), behind
//! one type, so tests move time forward instead of sleeping through it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Milliseconds since the Unix epoch: the system's, or a [`ManualClock`]'s.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<watch::Sender<i64>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => super::store::now_ms(),
            Some(manual) => *manual.borrow(),
        }
    }

    /// Waits until the clock reads `at_ms` or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match &self.0 {
            None => {
                let wait = u64::try_from(at_ms - self.now_ms()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Some(manual) => {
                let mut now = manual.subscribe();
                // The sender lives as long as `self`, so this only returns when due.
                let _ = now.wait_for(|now| *now >= at_ms).await;
            }
        }
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<watch::Sender<i64>>);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self(Arc::new(watch::Sender::new(start_ms)))
    }

    /// Moves the clock forward, waking whatever waits for the new time.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.send_modify(|now| *now = now.saturating_add(by));
    }

    /// The clock to hand to the task system.
    pub fn clock(&self) -> Clock {
        Clock(Some(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_it_reaches_their_time() {
        let manual = ManualClock::new(1_000);
        let clock = manual.clock();
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(1_500).await }
        });
        manual.advance(Duration::from_millis(499));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        manual.advance(Duration::from_millis(1));
        sleeper.await.expect("woken");
        assert_eq!(clock.now_ms(), 1_500);
    }
}
