//! The stores, each test body run on both backends — SQLite on a real file
//! and a real PostgreSQL server (a database per test) — so they cannot
//! drift: admission, versioned updates, claiming in priority and fair
//! order, timers, history, logs, pagination, leases, token buckets,
//! durability. PostgreSQL alone: claims from several hosts at once, hints.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sluice::activity::{ConflictPolicy, Execution, NewExecution, RetryPolicy, ReusePolicy, Status, Timeouts};
use sluice::activity::{HistoryEntry, HistoryKind};
use sluice::payload::Payload;
use sluice::store::{
    Described, ListFilter, LogEntry, LogPage, PostgresStore, SqliteStore, StartOutcome, Store, StoreError,
};

fn exec(id: &str, run: &str, queue: &str, priority: u8, now: u64) -> Execution {
    Execution::new(
        NewExecution {
            activity_id: id.into(),
            run_id: run.into(),
            activity_type: "t".into(),
            task_queue: queue.into(),
            input: Payload::json(&id),
            priority,
            request_id: Some(format!("req-{run}")),
            timeouts: Timeouts { start_to_close: Some(Duration::from_secs(10)), ..Timeouts::default() },
            retry: RetryPolicy::default(),
            cancel_grace: Duration::from_secs(1),
            pinned_version: None,
            trace: None,
            fairness: None,
        },
        now,
    )
    .unwrap()
}

fn h(kind: HistoryKind) -> HistoryEntry {
    HistoryEntry { at: 0, attempt: 1, kind, detail: serde_json::json!({}) }
}

async fn start(store: &Arc<dyn Store>, e: Execution) -> StartOutcome {
    store.start(e, ConflictPolicy::Fail, ReusePolicy::AllowDuplicate).await.unwrap()
}

async fn start_admits_and_is_idempotent_per_request_id(store: Arc<dyn Store>) {
    assert!(matches!(start(&store, exec("a", "r1", "q", 3, 0)).await, StartOutcome::Created(_)));
    // Same request id: the existing run.
    let mut again = exec("a", "r2", "q", 3, 0);
    again.request_id = Some("req-r1".into());
    assert!(matches!(start(&store, again).await, StartOutcome::Existing(v) if v.value.run_id == "r1"));
    // Another request while running: rejected by the conflict policy.
    assert!(
        matches!(start(&store, exec("a", "r3", "q", 3, 0)).await, StartOutcome::Rejected(m) if m.contains("already running"))
    );
    let got = store.get("a", None).await.unwrap().unwrap();
    assert_eq!((got.value.run_id.as_str(), got.version), ("r1", 1));
}

async fn updates_are_versioned(store: Arc<dyn Store>) {
    start(&store, exec("a", "r1", "q", 3, 0)).await;
    let mut e = store.get("a", Some("r1")).await.unwrap().unwrap();
    e.value.request_cancel(5).unwrap();
    let log =
        |message: &str| LogEntry { at: 5, attempt: 1, level: "info".into(), message: message.into(), fields: vec![] };
    let cancelled = h(HistoryKind::Closed(Status::Cancelled));
    let v2 = store.update(&e.value, e.version, Some(&cancelled), &[log("with the change")]).await.unwrap();
    assert_eq!(v2, 2);
    let stale = store.update(&e.value, e.version, None, &[log("stale")]).await;
    assert!(matches!(stale, Err(StoreError::Conflict(r)) if r == "r1"));
    let logs: Vec<String> = described(&store, "a", None).await.unwrap().logs.into_iter().map(|l| l.message).collect();
    assert_eq!(logs, ["with the change"], "a conflicting update writes none of its logs");
    let history: Vec<String> =
        described(&store, "a", None).await.unwrap().history.into_iter().map(|h| h.kind.to_string()).collect();
    assert_eq!(history, ["scheduled", "cancelled"]);
    assert_eq!(store.get("a", None).await.unwrap().unwrap().value.status, Status::Cancelled);
}

async fn claims_follow_priority_then_age_and_respect_backoff_and_types(store: Arc<dyn Store>) {
    start(&store, exec("low", "r1", "q", 5, 0)).await;
    start(&store, exec("old", "r2", "q", 3, 0)).await;
    start(&store, exec("new", "r3", "q", 3, 1)).await;
    start(&store, exec("urgent", "r4", "q", 1, 2)).await;
    start(&store, exec("other", "r5", "elsewhere", 1, 0)).await;
    let mut later = exec("later", "r6", "q", 1, 0);
    later.attempt_scheduled_at = 1_000; // in a backoff
    start(&store, later).await;

    let claimed = store.claim("q", None, "host/w", Default::default(), 3, 10).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|c| c.value.activity_id.as_str()).collect();
    assert_eq!(ids, ["urgent", "old", "new"]);
    assert!(claimed.iter().all(|c| c.value.status == Status::Started && c.value.worker.as_deref() == Some("host/w")));
    assert_eq!(store.next_dispatch("q", None).await.unwrap(), Some(0), "low is still waiting");
    assert!(store.claim("q", Some(vec!["nope".into()]), "w", Default::default(), 10, 10).await.unwrap().is_empty());
    let rest = store.claim("q", Some(vec!["t".into()]), "w", Default::default(), 10, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(store.next_dispatch("q", None).await.unwrap(), Some(1_000));
    assert_eq!(store.claim("q", None, "w", Default::default(), 10, 1_000).await.unwrap()[0].value.activity_id, "later");
    let stats = store.queue_stats("q", false).await.unwrap();
    assert_eq!((stats.backlog, stats.running), (0, 5));
    assert_eq!(store.started_by("host/").await.unwrap().len(), 3);
}

async fn deadlines_are_indexed_for_the_timer(store: Arc<dyn Store>) {
    start(&store, exec("a", "r1", "q", 3, 0)).await;
    assert_eq!(store.next_deadline().await.unwrap(), None, "a scheduled attempt without s2s/s2c has no deadline");
    store.claim("q", None, "w", Default::default(), 1, 100).await.unwrap();
    assert_eq!(store.next_deadline().await.unwrap(), Some(10_100));
    assert!(store.due(10_099, 10).await.unwrap().is_empty());
    assert_eq!(store.due(10_100, 10).await.unwrap().len(), 1);
}

async fn logs_history_and_pages(store: Arc<dyn Store>) {
    for i in 0..5 {
        start(&store, exec(&format!("a{i}"), &format!("r{i}"), "q", 3, i)).await;
    }
    let log = LogEntry {
        at: 1,
        attempt: 1,
        level: "info".into(),
        message: "hi".into(),
        fields: vec![("k".into(), "v".into())],
    };
    store.append_logs("r0", vec![log.clone()]).await.unwrap();
    let d = described(&store, "a0", None).await.unwrap();
    assert_eq!((d.logs, d.next_logs), (vec![log], None));
    let bad = described(&store, "a0", Some("zz")).await.unwrap_err();
    assert_eq!(bad.to_string(), "bad page token: it is not a logs page token");

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let (page, next) =
            store.list(ListFilter { page_size: 2, page_token: token, ..ListFilter::default() }).await.unwrap();
        seen.extend(page.into_iter().map(|e| e.activity_id));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, ["a4", "a3", "a2", "a1", "a0"]);
    let bad = |page_token: &str, filter: ListFilter| {
        let store = &store;
        let filter = ListFilter { page_token: Some(page_token.into()), page_size: 2, ..filter };
        async move { store.list(filter).await.unwrap_err().to_string() }
    };
    assert_eq!(bad("x", ListFilter::default()).await, "bad page token: it is not a page token");
    assert_eq!(bad("AAAA", ListFilter::default()).await, "bad page token: it is truncated");
    let (_, Some(token)) = store.list(ListFilter { page_size: 2, ..ListFilter::default() }).await.unwrap() else {
        panic!("a second page")
    };
    let other = ListFilter { task_queue: Some("other".into()), ..ListFilter::default() };
    assert_eq!(bad(&token, other).await, "bad page token: it belongs to a list with other filters");
    let (started, _) =
        store.list(ListFilter { status: Some(Status::Started), page_size: 10, ..ListFilter::default() }).await.unwrap();
    assert!(started.is_empty());

    // By id prefix and by when they were scheduled (a{i} at i ms).
    start(&store, exec("b0", "rb0", "q", 3, 9)).await;
    let ids = |filter: ListFilter| {
        let store = &store;
        async move {
            let (page, _) = store.list(ListFilter { page_size: 10, ..filter }).await.unwrap();
            page.into_iter().map(|e| e.activity_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(ListFilter { id_prefix: Some("a".into()), ..ListFilter::default() }).await,
        ["a4", "a3", "a2", "a1", "a0"]
    );
    assert_eq!(ids(ListFilter { id_prefix: Some("b".into()), ..ListFilter::default() }).await, ["b0"]);
    assert!(ids(ListFilter { id_prefix: Some("a0x".into()), ..ListFilter::default() }).await.is_empty());
    let window = ListFilter { scheduled_after: Some(1), scheduled_before: Some(3), ..ListFilter::default() };
    assert_eq!(ids(window).await, ["a2", "a1"]);
    let counts = store.queue_stats("q", false).await.unwrap().counts;
    assert_eq!(counts, [("t".to_string(), Status::Scheduled, 6)]);
    store.claim("q", None, "w", Default::default(), 1, 100).await.unwrap();
    let claimed = store.get("a0", None).await.unwrap().unwrap();
    let mut done = claimed.value.clone();
    done.complete(1, Payload::json(&1), 200).unwrap();
    store.update(&done, claimed.version, None, &[]).await.unwrap();
    let open = store.queue_stats("q", false).await.unwrap();
    assert_eq!((open.backlog, open.running, open.counts.len()), (5, 0, 1), "{:?}", open.counts);
    let all = store.queue_stats("q", true).await.unwrap().counts;
    assert_eq!(all, [("t".to_string(), Status::Completed, 1), ("t".to_string(), Status::Scheduled, 5)]);
}

#[tokio::test]
async fn state_and_secret_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let secret = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        start(&store, exec("a", "r1", "q", 3, 0)).await;
        store.secret().await.unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.secret().await.unwrap(), secret);
    assert_eq!(secret.len(), 32);
    assert_eq!(store.get("a", None).await.unwrap().unwrap().value.input, Payload::json(&"a"));
}

/// The execution's history and a page of up to 10 log records, by id.
async fn fairness_keys_share_a_queue_by_weight(store: Arc<dyn Store>) {
    use sluice::activity::Fairness;
    // A burst of 60 from tenant a, then 20 from b with twice the weight.
    for i in 0..60 {
        let mut e = exec(&format!("a{i}"), &format!("ra{i}"), "q", 3, i);
        e.fairness = Some(Fairness { key: "a".into(), weight: 1.0 });
        start(&store, e).await;
    }
    for i in 0..20 {
        let mut e = exec(&format!("b{i}"), &format!("rb{i}"), "q", 3, 100 + i);
        e.fairness = Some(Fairness { key: "b".into(), weight: 2.0 });
        start(&store, e).await;
    }
    // Claimed one at a time, as a queue with one free slot does.
    let mut order = String::new();
    for _ in 0..15 {
        let c = store.claim("q", None, "w", Default::default(), 1, 1_000).await.unwrap();
        order.push_str(&c[0].value.activity_id[..1]);
    }
    assert_eq!(order.matches('b').count(), 10, "b is served twice as often as a despite a's burst: {order}");
    // Priority still comes first, whatever the keys.
    let mut urgent = exec("u", "ru", "q", 1, 2_000);
    urgent.fairness = Some(Fairness { key: "a".into(), weight: 1.0 });
    start(&store, urgent).await;
    let c = store.claim("q", None, "w", Default::default(), 1, 3_000).await.unwrap();
    assert_eq!(c[0].value.activity_id, "u");
    // A batch claim interleaves too; the default key is a key like any other.
    start(&store, exec("plain", "rp", "q", 3, 3_000)).await;
    let c = store.claim("q", None, "w", Default::default(), 6, 4_000).await.unwrap();
    let ids: Vec<&str> = c.iter().map(|c| c.value.activity_id.as_str()).collect();
    assert!(ids.contains(&"plain") && ids.iter().any(|i| i.starts_with('a')), "{ids:?}");
}

async fn leases_expire_and_are_forgotten(store: Arc<dyn Store>) {
    store.renew_lease("h1", 10_000).await.unwrap();
    store.renew_lease("h2", 5_000).await.unwrap();
    assert!(store.expired_hosts(5_000).await.unwrap().is_empty());
    assert_eq!(store.expired_hosts(5_001).await.unwrap(), ["h2"]);
    // Renewed meanwhile: a survivor does not forget it.
    store.renew_lease("h2", 20_000).await.unwrap();
    store.forget_host("h2", Some(5_001)).await.unwrap();
    assert_eq!(store.expired_hosts(15_000).await.unwrap(), ["h1"]);
    store.forget_host("h1", Some(15_000)).await.unwrap();
    store.forget_host("h2", None).await.unwrap();
    assert!(store.expired_hosts(u64::MAX / 2).await.unwrap().is_empty());
}

async fn a_token_bucket_is_shared_by_every_draw(store: Arc<dyn Store>) {
    use sluice::store::Bucket;
    let bucket = Bucket::for_rate(100.0); // holds 5
    let first = store.take_tokens("q", bucket, 10, 1_000).await.unwrap();
    assert_eq!(first.granted, 1, "a new bucket holds one");
    let none = store.take_tokens("q", bucket, 10, 1_000).await.unwrap();
    assert_eq!((none.granted, none.next_at), (0, Some(1_010)));
    let refilled = store.take_tokens("q", bucket, 10, 2_000).await.unwrap();
    assert_eq!(refilled.granted, 5, "at most the burst after a second");
    assert_eq!(store.take_tokens("other", bucket, 10, 2_000).await.unwrap().granted, 1, "one bucket per queue");
}

async fn described(store: &Arc<dyn Store>, id: &str, token: Option<&str>) -> Result<Described, StoreError> {
    let page = LogPage { token: token.map(str::to_string), size: 10 };
    Ok(store.describe(id, None, page).await?.expect("the execution exists"))
}

/// The error of reopening a new store after `sql` ran on it.
fn reopen_after(sql: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    SqliteStore::open(&path).err().expect("the store was refused").to_string()
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let err = reopen_after("PRAGMA user_version = 99");
    assert!(
        err.ends_with("the store has schema version 99, newer than this sluice understands (5); upgrade sluice"),
        "{err}"
    );
}

#[tokio::test]
async fn a_store_whose_tables_differ_from_its_version_is_refused_at_open() {
    // As a development build that changed migration 1 in place left it.
    let err = reopen_after("ALTER TABLE executions DROP COLUMN history");
    assert!(err.contains("table executions has columns [seq, run_id,"), "{err}");
    assert!(
        err.ends_with(
            "state, history, options, input_encoding, input, closed_at, fairness_key, history_len]; the store was written by an \
             incompatible build of sluice: move it aside"
        ),
        "{err}"
    );
}

async fn a_batch_of_starts_is_admitted_in_order(store: Arc<dyn Store>) {
    use sluice::store::NewStart;
    let new = |run: &str| NewStart {
        exec: exec("same", run, "q", 3, 0),
        conflict: ConflictPolicy::Fail,
        reuse: ReusePolicy::AllowDuplicate,
        started: None,
    };
    let outcomes = store
        .start_many(vec![new("r1"), new("r2"), NewStart { exec: exec("other", "r3", "q", 3, 0), ..new("r3") }])
        .await
        .unwrap();
    assert!(matches!(&outcomes[0], StartOutcome::Created(v) if v.value.run_id == "r1"));
    assert!(
        matches!(&outcomes[1], StartOutcome::Rejected(m) if m.contains("already running")),
        "a later start sees an earlier one of the same batch"
    );
    assert!(matches!(&outcomes[2], StartOutcome::Created(v) if v.value.activity_id == "other"));
}

async fn history_keeps_its_first_entry_and_the_latest_ones(store: Arc<dyn Store>) {
    start(&store, exec("a", "r1", "q", 3, 0)).await;
    let mut v = store.get("a", None).await.unwrap().unwrap();
    for i in 0..250u32 {
        let entry =
            HistoryEntry { at: i as u64, attempt: i, kind: HistoryKind::Started, detail: serde_json::json!({}) };
        v.version = store.update(&v.value, v.version, Some(&entry), &[]).await.unwrap();
    }
    let history = described(&store, "a", None).await.unwrap().history;
    assert_eq!(history.len(), 200);
    assert_eq!(history[0].kind, HistoryKind::Scheduled);
    assert_eq!(history[1].attempt, 51);
    assert_eq!(history.last().unwrap().attempt, 249);
}

async fn an_eager_start_is_inserted_started_with_both_entries(store: Arc<dyn Store>) {
    use sluice::activity::{Change, Transition};
    use sluice::store::NewStart;
    let mut e = exec("eager", "r1", "q", 3, 0);
    let change = e.start("host/wasm", Some("v2"), 5).unwrap();
    let started = Some(Transition::new(change, &e, 5));
    let new = NewStart { exec: e, conflict: ConflictPolicy::Fail, reuse: ReusePolicy::AllowDuplicate, started };
    let outcome = store.start_many(vec![new]).await.unwrap().remove(0);
    assert!(matches!(&outcome, StartOutcome::Created(c) if matches!(c.transition.change, Change::Scheduled)));
    assert!(store.claim("q", None, "w", Default::default(), 10, 1_000).await.unwrap().is_empty(), "nothing to claim");
    let d = described(&store, "eager", None).await.unwrap();
    assert_eq!(
        (d.exec.value.status, d.exec.value.worker.as_deref(), d.exec.value.version.as_deref()),
        (Status::Started, Some("host/wasm"), Some("v2"))
    );
    let kinds: Vec<HistoryKind> = d.history.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, [HistoryKind::Scheduled, HistoryKind::Started]);
    assert_eq!(store.started_by("host/").await.unwrap().len(), 1, "its host's recovery finds it");
    assert_eq!(store.next_deadline().await.unwrap(), Some(10_005), "its start-to-close deadline is armed");
    // It goes on like any started run.
    let entry =
        HistoryEntry { at: 9, attempt: 1, kind: HistoryKind::Closed(Status::Completed), detail: serde_json::json!({}) };
    store.update(&d.exec.value, d.exec.version, Some(&entry), &[]).await.unwrap();
    assert_eq!(described(&store, "eager", None).await.unwrap().history.len(), 3);
}

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap())
}

async fn postgres() -> Arc<dyn Store> {
    let url = common::postgres::fresh_database();
    Arc::new(PostgresStore::open(&url, 4, "test-host").await.unwrap())
}

/// Runs each named test body on both stores.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(super::sqlite(&dir)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::postgres().await).await
            }
        }
    )*};
}

on_both_stores!(
    fairness_keys_share_a_queue_by_weight,
    leases_expire_and_are_forgotten,
    a_token_bucket_is_shared_by_every_draw,
    start_admits_and_is_idempotent_per_request_id,
    updates_are_versioned,
    claims_follow_priority_then_age_and_respect_backoff_and_types,
    deadlines_are_indexed_for_the_timer,
    logs_history_and_pages,
    history_keeps_its_first_entry_and_the_latest_ones,
    a_batch_of_starts_is_admitted_in_order,
    an_eager_start_is_inserted_started_with_both_entries
);

/// Hosts of one PostgreSQL database: each claims what no other holds, sees
/// the others' commits, shares the token secret, and is told what they do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hosts_claim_apart_and_see_each_other() {
    let url = common::postgres::fresh_database();
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, 4, "host-a").await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, 4, "host-b").await.unwrap());
    assert_eq!(a.secret().await.unwrap(), b.secret().await.unwrap(), "tokens signed on one host check on the other");
    let mut hints = b.hints().expect("a shared store gives hints");
    for i in 0..200 {
        start(&a, exec(&format!("x{i}"), &format!("r{i}"), "q", 3, i)).await;
    }
    let hint = tokio::time::timeout(Duration::from_secs(10), hints.recv()).await.unwrap().unwrap();
    assert_eq!((hint.task_queue.as_str(), hint.kind, hint.dispatchable), ("q", Some(HistoryKind::Scheduled), true));
    // Both claim at once, many times: every execution is claimed once.
    let claims = (0..40).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(
            async move { store.claim("q", None, &format!("h{}/w", i % 2), Default::default(), 7, 1_000).await },
        )
    });
    let mut seen = std::collections::HashSet::new();
    for c in claims {
        for claimed in c.await.unwrap().unwrap() {
            assert!(seen.insert(claimed.value.run_id), "claimed twice");
        }
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(b.get("x7", None).await.unwrap().unwrap().value.status, Status::Started);
    // A host's stale update of another's claim conflicts.
    let v = a.get("x7", None).await.unwrap().unwrap();
    let mut done = v.value.clone();
    done.complete(1, Payload::json(&1), 2_000).unwrap();
    b.update(&done, v.version, Some(&h(HistoryKind::Closed(Status::Completed))), &[]).await.unwrap();
    assert!(matches!(a.update(&done, v.version, None, &[]).await, Err(StoreError::Conflict(_))));
}

#[tokio::test]
async fn a_newer_postgres_schema_is_refused() {
    let url = common::postgres::fresh_database();
    drop(PostgresStore::open(&url, 1, "h").await.unwrap());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.execute("UPDATE sluice_schema SET version = 99", &[]).await.unwrap();
    let err = PostgresStore::open(&url, 1, "h").await.err().expect("refused").to_string();
    assert!(
        err.ends_with("the store has schema version 99, newer than this sluice understands (1); upgrade sluice"),
        "{err}"
    );
    let bad = PostgresStore::open("postgres://nobody@127.0.0.1:1/none", 1, "h").await.err().expect("refused");
    assert!(bad.to_string().starts_with("store: cannot connect to PostgreSQL"), "{bad}");
}
