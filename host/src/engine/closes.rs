//! Who waits for executions to close — result long-polls and
//! WatchActivities streams — and the delivery of each close to exactly
//! those waiting for it (by activity id, or by queue and type), so a close
//! wakes its own waiters instead of every watcher, and they need not read
//! the store again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::mutate::not_found;
use super::operations::{check_ids, check_name};
use super::{Engine, EngineError};
use crate::activity::Execution;

/// Closes a queue/type watcher may fall behind by before it is dropped.
pub const MAX_LAG: usize = 10_000;

/// Which closes a filter subscription receives; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct CloseFilter {
    pub task_queue: Option<String>,
    pub activity_type: Option<String>,
}

impl CloseFilter {
    fn matches(&self, e: &Execution) -> bool {
        self.task_queue.as_ref().is_none_or(|q| *q == e.task_queue)
            && self.activity_type.as_ref().is_none_or(|t| *t == e.activity_type)
    }
}

#[derive(Clone)]
struct Waiter {
    id: u64,
    tx: mpsc::UnboundedSender<Arc<Execution>>,
    /// Closes sent and not yet received: a filter waiter is dropped at
    /// `MAX_LAG`. An id waiter receives at most one close per run of its
    /// ids, so it is not bounded (a bound could lose a later run's close).
    queued: Arc<AtomicUsize>,
}

impl Waiter {
    fn send(&self, e: Arc<Execution>) -> bool {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(e).is_ok()
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    by_activity: HashMap<String, Vec<Waiter>>,
    by_filter: Vec<(CloseFilter, Waiter)>,
}

#[derive(Default, Clone)]
pub(super) struct Closes {
    inner: Arc<Mutex<Inner>>,
}

/// One waiter's closes; unregisters itself when dropped.
pub struct Subscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Arc<Execution>>,
    queued: Arc<AtomicUsize>,
    activity_ids: Vec<String>,
    inner: Arc<Mutex<Inner>>,
}

impl Subscription {
    /// The next close, or `None` once a filter subscription was dropped
    /// for falling behind (an id subscription is never dropped).
    pub async fn recv(&mut self) -> Option<Arc<Execution>> {
        let e = self.rx.recv().await?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(e)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.inner.lock().unwrap();
        for a in &self.activity_ids {
            if let Some(v) = inner.by_activity.get_mut(a) {
                v.retain(|w| w.id != self.id);
                if v.is_empty() {
                    inner.by_activity.remove(a);
                }
            }
        }
        inner.by_filter.retain(|(_, w)| w.id != self.id);
    }
}

impl Closes {
    /// Closes of any run of these activity ids.
    pub fn subscribe_ids(&self, activity_ids: Vec<String>) -> Subscription {
        let mut inner = self.inner.lock().unwrap();
        let (sub, waiter) = self.new_subscription(&mut inner, activity_ids.clone());
        for a in activity_ids {
            inner.by_activity.entry(a).or_default().push(waiter.clone());
        }
        sub
    }

    /// Closes matching `filter`, from now on.
    pub fn subscribe_filter(&self, filter: CloseFilter) -> Subscription {
        let mut inner = self.inner.lock().unwrap();
        let (sub, waiter) = self.new_subscription(&mut inner, Vec::new());
        inner.by_filter.push((filter, waiter));
        sub
    }

    fn new_subscription(&self, inner: &mut Inner, activity_ids: Vec<String>) -> (Subscription, Waiter) {
        inner.next_id += 1;
        let id = inner.next_id;
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let sub = Subscription { id, rx, queued: queued.clone(), activity_ids, inner: self.inner.clone() };
        (sub, Waiter { id, tx, queued })
    }

    /// Whether anyone may wait for a close of `activity_id`.
    pub fn waited_for(&self, activity_id: &str) -> bool {
        let inner = self.inner.lock().unwrap();
        inner.by_activity.contains_key(activity_id) || !inner.by_filter.is_empty()
    }

    /// Delivers a committed close to its waiters. Never blocks: a filter
    /// waiter `MAX_LAG` closes behind is dropped (its stream then ends).
    pub fn closed(&self, e: &Execution) {
        let mut inner = self.inner.lock().unwrap();
        if inner.by_activity.is_empty() && inner.by_filter.is_empty() {
            return;
        }
        let mut shared: Option<Arc<Execution>> = None;
        let mut value = || shared.get_or_insert_with(|| Arc::new(e.clone())).clone();
        if let Some(waiters) = inner.by_activity.get(&e.activity_id) {
            for w in waiters {
                w.send(value());
            }
        }
        inner.by_filter.retain(|(filter, w)| {
            if !filter.matches(e) {
                return true;
            }
            w.queued.load(Ordering::Acquire) < MAX_LAG && w.send(value())
        });
    }
}

/// Most activity ids one WatchActivities stream follows.
pub const MAX_WATCHED_IDS: usize = 10_000;

/// The closes a WatchActivities stream sends, in order.
pub struct CloseWatch {
    /// Already closed when the watch began.
    ready: VecDeque<Arc<Execution>>,
    /// activity id → run still open; `None` for a filter watch (no end).
    open: Option<HashMap<String, String>>,
    sub: Subscription,
}

impl CloseWatch {
    /// The next close; `None` once every watched id has closed.
    pub async fn next(&mut self) -> Option<Result<Arc<Execution>, EngineError>> {
        if let Some(e) = self.ready.pop_front() {
            return Some(Ok(e));
        }
        loop {
            if self.open.as_ref().is_some_and(HashMap::is_empty) {
                return None;
            }
            let Some(e) = self.sub.recv().await else {
                // Nothing more comes after the error.
                self.open = Some(HashMap::new());
                return Some(Err(EngineError::TooLarge(format!(
                    "the watcher fell behind by more than {MAX_LAG} closes and was dropped; watch again, \
                     and list executions to catch up"
                ))));
            };
            match &mut self.open {
                None => return Some(Ok(e)),
                Some(open) => {
                    if open.get(&e.activity_id) == Some(&e.run_id) {
                        open.remove(&e.activity_id);
                        return Some(Ok(e));
                    }
                }
            }
        }
    }
}

impl Engine {
    /// The execution once closed, waiting up to `wait` for it to close.
    /// Returns it as it is (maybe still open) when the wait ends.
    pub async fn wait_closed(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        wait: Duration,
    ) -> Result<Execution, EngineError> {
        // Subscribed before the read, so a close in between is not missed.
        let mut sub = self.closes.subscribe_ids(vec![activity_id.to_string()]);
        let e = self.get(activity_id, run_id).await?.value;
        if e.status.is_closed() {
            return Ok(e);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, sub.recv()).await {
                Ok(Some(closed)) if closed.run_id == e.run_id => return Ok(Arc::unwrap_or_clone(closed)),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return Ok(e),
            }
        }
    }

    /// Follows the latest runs of `activity_ids` until all have closed.
    pub async fn watch_ids(&self, activity_ids: Vec<String>) -> Result<CloseWatch, EngineError> {
        if activity_ids.is_empty() || activity_ids.len() > MAX_WATCHED_IDS {
            return Err(EngineError::Invalid(format!(
                "watch 1 to {MAX_WATCHED_IDS} activity ids, not {}",
                activity_ids.len()
            )));
        }
        let mut seen = HashSet::new();
        for id in &activity_ids {
            check_ids(id, None)?;
            if !seen.insert(id.as_str()) {
                return Err(EngineError::Invalid(format!("activity id {id} is listed twice")));
            }
        }
        let sub = self.closes.subscribe_ids(activity_ids.clone());
        // Concurrent reads share the store's batches.
        let reads = activity_ids.iter().map(|id| self.store.get(id, None));
        let found = futures_util::future::join_all(reads).await;
        let (mut ready, mut open) = (VecDeque::new(), HashMap::new());
        for (id, e) in activity_ids.into_iter().zip(found) {
            let e = e?.ok_or_else(|| EngineError::NotFound(not_found(&id, None)))?.value;
            if e.status.is_closed() {
                ready.push_back(Arc::new(e));
            } else {
                open.insert(id, e.run_id);
            }
        }
        Ok(CloseWatch { ready, open: Some(open), sub })
    }

    /// Follows every execution matching `filter` that closes from now on.
    pub fn watch_filter(&self, filter: CloseFilter) -> Result<CloseWatch, EngineError> {
        if filter.task_queue.is_none() && filter.activity_type.is_none() {
            return Err(EngineError::Invalid(
                "watch activity ids, a task_queue or an activity_type (none was given)".into(),
            ));
        }
        if let Some(q) = &filter.task_queue {
            check_name("task_queue", q)?;
        }
        if let Some(t) = &filter.activity_type {
            check_name("activity_type", t)?;
        }
        Ok(CloseWatch { ready: VecDeque::new(), open: None, sub: self.closes.subscribe_filter(filter) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{NewExecution, Timeouts};
    use crate::payload::Payload;

    fn exec(id: &str, queue: &str, ty: &str) -> Execution {
        let new = NewExecution {
            activity_id: id.into(),
            run_id: format!("run-{id}"),
            activity_type: ty.into(),
            task_queue: queue.into(),
            input: Payload::json(&1),
            priority: 3,
            request_id: None,
            timeouts: Timeouts { start_to_close: Some(std::time::Duration::from_secs(1)), ..Timeouts::default() },
            retry: Default::default(),
            cancel_grace: std::time::Duration::from_secs(1),
            pinned_version: None,
            trace: None,
            fairness: None,
        };
        Execution::new(new, 0).unwrap()
    }

    #[tokio::test]
    async fn a_close_reaches_the_waiters_of_its_id_and_matching_filters_only() {
        let closes = Closes::default();
        let mut a = closes.subscribe_ids(vec!["a".into()]);
        let mut q = closes.subscribe_filter(CloseFilter { task_queue: Some("q".into()), activity_type: None });
        let mut t = closes.subscribe_filter(CloseFilter { task_queue: None, activity_type: Some("other".into()) });
        closes.closed(&exec("b", "q", "noop"));
        closes.closed(&exec("a", "z", "noop"));
        assert_eq!(q.recv().await.unwrap().activity_id, "b");
        assert_eq!(a.recv().await.unwrap().activity_id, "a");
        assert!(t.rx.try_recv().is_err(), "the type filter matched nothing");
        assert!(q.rx.try_recv().is_err(), "queue z is not q");
    }

    #[tokio::test]
    async fn a_filter_waiter_that_falls_behind_is_dropped() {
        let closes = Closes::default();
        let mut slow = closes.subscribe_filter(CloseFilter::default());
        for i in 0..=MAX_LAG {
            closes.closed(&exec(&format!("x{i}"), "q", "noop"));
        }
        let mut got = 0;
        while slow.recv().await.is_some() {
            got += 1;
        }
        assert_eq!(got, MAX_LAG, "what fit was delivered, then the stream ended");
    }

    #[tokio::test]
    async fn an_id_waiter_gets_the_close_of_every_run_even_unread() {
        let closes = Closes::default();
        let mut a = closes.subscribe_ids(vec!["a".into()]);
        let (mut first, mut second) = (exec("a", "q", "noop"), exec("a", "q", "noop"));
        (first.run_id, second.run_id) = ("r1".into(), "r2".into());
        closes.closed(&first);
        closes.closed(&second);
        assert_eq!(a.recv().await.unwrap().run_id, "r1");
        assert_eq!(a.recv().await.unwrap().run_id, "r2", "a waiter for r2 must not miss it behind r1");
    }

    #[test]
    fn a_dropped_subscription_unregisters() {
        let closes = Closes::default();
        let a = closes.subscribe_ids(vec!["a".into(), "b".into()]);
        let f = closes.subscribe_filter(CloseFilter::default());
        drop((a, f));
        let inner = closes.inner.lock().unwrap();
        assert!(inner.by_activity.is_empty() && inner.by_filter.is_empty());
    }
}
