//! The time source. The state machine is pure; the engine reads the clock
//! once per operation and waits for moments through it, so a test can run
//! the real engine on a [`ManualClock`] and move time by hand.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::activity::Millis;

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;

    /// Resolves once `now() >= at`.
    fn sleep_until(&self, at: Millis) -> Sleep;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        crate::util::now_ms()
    }

    fn sleep_until(&self, at: Millis) -> Sleep {
        let wait = Duration::from_millis(at.saturating_sub(self.now()));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// Time that moves only when told to, for tests of time-dependent rules.
pub struct ManualClock {
    now: watch::Sender<Millis>,
}

impl ManualClock {
    pub fn new(start: Millis) -> ManualClock {
        ManualClock { now: watch::channel(start).0 }
    }

    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.send_modify(|t| *t = t.saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Millis) -> Sleep {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            if now.wait_for(|t| *t >= at).await.is_err() {
                // The clock is gone: that moment never comes.
                std::future::pending::<()>().await;
            }
        })
    }
}
