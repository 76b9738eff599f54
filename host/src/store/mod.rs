//! Durable state: executions, their history and logs, behind the `Store`
//! trait. SQLite (embedded, WAL, group commit) is the default backend; the
//! trait is shaped so a shared PostgreSQL backend can be added beside it
//! (admission, claiming and versioned updates are single store operations).

pub mod fair;
pub mod flow;
mod postgres;
mod record;
mod rows;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::activity::{ConflictPolicy, Execution, HistoryEntry, HistoryKind, Millis, ReusePolicy, Status, Transition};

pub use flow::{Bucket, Tokens};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A store URL without its password, to show.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The current component version (label) of each deployed type.
pub type CurrentVersions = std::sync::Arc<std::collections::HashMap<String, String>>;

/// A value with the version it was read at, for optimistic updates.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// A transition a store operation committed, with the execution as it
/// left it, for the engine to act on.
#[derive(Debug, Clone)]
pub struct Committed {
    pub value: Execution,
    pub version: u64,
    pub transition: Transition,
}

/// One execution to admit and insert.
#[derive(Debug, Clone)]
pub struct NewStart {
    pub exec: Execution,
    pub conflict: ConflictPolicy,
    pub reuse: ReusePolicy,
    /// Its first attempt's start, already applied to `exec`, when this host
    /// starts it at once (an eager start): the run is inserted started.
    pub started: Option<Transition>,
}

/// The result of a start request.
#[derive(Debug, Clone)]
pub enum StartOutcome {
    /// A new run was created (its `scheduled` transition committed).
    Created(Committed),
    /// An existing run was returned (same request id, or use-existing).
    Existing(Versioned<Execution>),
    /// The policies refused the start.
    Rejected(String),
}

/// One log record of an attempt: a guest log call or a line of its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: Millis,
    pub attempt: u32,
    /// `trace`..`error` for guest logs; `stdout` / `stderr` for output.
    pub level: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    /// Only open executions (scheduled or started).
    pub open: bool,
    pub activity_type: Option<String>,
    pub task_queue: Option<String>,
    /// Only ids starting with this.
    pub id_prefix: Option<String>,
    /// Only executions scheduled at or after / before these moments.
    pub scheduled_after: Option<Millis>,
    pub scheduled_before: Option<Millis>,
    /// Opaque cursor from the previous page.
    pub page_token: Option<String>,
    pub page_size: usize,
}

impl ListFilter {
    /// The token of the page after the one ending just above `seq`: opaque
    /// to clients, and tied to this filter.
    pub fn page_token_after(&self, seq: i64) -> String {
        use base64::Engine as _;
        let mut bytes = seq.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.fingerprint());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a page token of this filter continues from (`None`:
    /// the first page). A token that was not made for this filter is
    /// refused.
    pub fn position(&self) -> Result<Option<i64>, StoreError> {
        use base64::Engine as _;
        let Some(token) = &self.page_token else { return Ok(None) };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| StoreError::BadPageToken("it is not a page token".into()))?;
        let (seq, fingerprint) = bytes.split_at_checked(8).ok_or(StoreError::BadPageToken("it is truncated".into()))?;
        if fingerprint != self.fingerprint() {
            return Err(StoreError::BadPageToken("it belongs to a list with other filters".into()));
        }
        Ok(Some(i64::from_le_bytes(seq.try_into().expect("8 bytes"))))
    }

    fn fingerprint(&self) -> [u8; 8] {
        let filters = format!(
            "{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}",
            self.status,
            self.activity_type,
            self.task_queue,
            self.id_prefix,
            self.scheduled_after,
            self.scheduled_before,
            self.open
        );
        blake3::hash(filters.as_bytes()).as_bytes()[..8].try_into().expect("8 of 32 bytes")
    }
}

/// Which log records of an execution to read: a page of `size`, from the
/// start or after the page a token ended.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    pub token: Option<String>,
    pub size: usize,
}

impl LogPage {
    /// The token of the page after the record at `position`.
    pub fn token_after(position: i64) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position.to_le_bytes())
    }

    /// The position this page continues after (`None`: the first page).
    pub fn after(&self) -> Result<Option<i64>, StoreError> {
        use base64::Engine as _;
        let Some(token) = &self.token else { return Ok(None) };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok();
        let position = bytes.and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_le_bytes);
        position.map(Some).ok_or_else(|| StoreError::BadPageToken("it is not a logs page token".into()))
    }
}

/// An execution with its history and a page of its logs, read at once.
#[derive(Debug, Clone)]
pub struct Described {
    pub exec: Versioned<Execution>,
    pub history: Vec<HistoryEntry>,
    pub logs: Vec<LogEntry>,
    /// The token of the next page of logs, if there is one.
    pub next_logs: Option<String>,
}

/// Counts of one task queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Attempts waiting (dispatchable now or in backoff).
    pub backlog: u64,
    /// Attempts started and not closed.
    pub running: u64,
    /// Executions of the queue by (type, status), every pair with any
    /// (open statuses only unless closed counts were asked for).
    pub counts: Vec<(String, Status, u64)>,
}

impl QueueStats {
    /// Counts `n` executions of `activity_type` with `status` (as stored;
    /// an unknown status is skipped).
    pub fn add(&mut self, activity_type: String, status: &str, n: u64) {
        let Some(status) = Status::parse(status) else { return };
        match status {
            Status::Scheduled => self.backlog += n,
            Status::Started => self.running += n,
            _ => {}
        }
        self.counts.push((activity_type, status, n));
    }
}

/// A type change's refusals and lookups, worded once for every backend.
pub mod refusals {
    use super::StoreError;

    pub fn no_type(name: &str) -> StoreError {
        StoreError::NotFound(format!("no activity type {name}"))
    }

    pub fn no_version(name: &str, label: &str) -> StoreError {
        StoreError::NotFound(format!("activity type {name} has no version {label}"))
    }

    pub fn label_taken(name: &str, label: &str, hash: &str) -> StoreError {
        StoreError::Refused(format!(
            "version {label} of {name} exists with other content (blake3 {}…); choose another label",
            &hash[..12.min(hash.len())]
        ))
    }

    pub fn current(name: &str, label: &str) -> StoreError {
        StoreError::Refused(format!("version {label} is the current version of {name}; roll back to another first"))
    }

    pub fn in_use(name: &str, label: &str, users: i64) -> StoreError {
        StoreError::Refused(format!(
            "version {label} of {name} is in use by {users} open execution(s) (pinned or running)"
        ))
    }
}

/// One deployed version of a type's component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    pub label: String,
    /// blake3 of the component, hex: its file is `components/<hash>.wasm`.
    pub hash: String,
    pub size: u64,
    pub deployed_at: Millis,
    pub deployed_by: String,
}

/// An activity type as stored: its settings (the `[activities.NAME]` keys,
/// as JSON), its versions (oldest first) and which one is current.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeRecord {
    pub name: String,
    pub current_version: Option<String>,
    pub settings: serde_json::Value,
    pub updated_at: Millis,
    pub versions: Vec<VersionRecord>,
}

/// One change to a type, applied atomically, in this order.
#[derive(Debug, Clone, Default)]
pub struct TypeChange {
    pub name: String,
    /// Add this version (a label that exists with the same hash is kept as
    /// it is; with another hash, refused).
    pub add_version: Option<VersionRecord>,
    /// Make this label current.
    pub make_current: Option<String>,
    /// Remove this label: refused if current, or if an open execution is
    /// pinned to it or runs on it.
    pub remove_version: Option<String>,
    /// Replace the settings.
    pub settings: Option<serde_json::Value>,
    pub now: Millis,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The execution changed since it was read; re-read and retry.
    #[error("execution {0} was changed concurrently")]
    Conflict(String),
    #[error("bad page token: {0}")]
    BadPageToken(String),
    /// A type change refused: the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("store: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("corrupt record: {e}"))
    }
}

/// The durable store. Every method is one atomic operation; when it
/// returns, its writes are committed (and fsynced).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Admits new executions under the id policies and inserts them, in
    /// order, in one atomic operation (a later start sees an earlier one).
    async fn start_many(&self, starts: Vec<NewStart>) -> Result<Vec<StartOutcome>, StoreError>;

    /// Admits one new execution; see `start_many`.
    async fn start(
        &self,
        exec: Execution,
        conflict: ConflictPolicy,
        reuse: ReusePolicy,
    ) -> Result<StartOutcome, StoreError> {
        let mut outcomes = self.start_many(vec![NewStart { exec, conflict, reuse, started: None }]).await?;
        Ok(outcomes.pop().expect("one outcome per start"))
    }

    /// Replaces an execution if it is still at `version`, appends its
    /// history entry, if any, and `logs`, all in one commit. Returns the
    /// new version. Its options are rewritten only by an `options-updated`
    /// transition.
    async fn update(
        &self,
        exec: &Execution,
        version: u64,
        history: Option<&HistoryEntry>,
        logs: &[LogEntry],
    ) -> Result<u64, StoreError>;

    /// Claims up to `limit` dispatchable attempts of `queue` (of `types`
    /// only, when given), highest priority first, starting them for `worker`
    /// (`Execution::start`, recorded as its transition; `versions` holds the
    /// current component version of each type). Unlike other
    /// writes, a claim may be answered before it is durable: a crash that
    /// loses it leaves the attempt dispatchable again.
    async fn claim(
        &self,
        queue: &str,
        types: Option<Vec<String>>,
        worker: &str,
        versions: CurrentVersions,
        limit: usize,
        now: Millis,
    ) -> Result<Vec<Committed>, StoreError>;

    /// The earliest time an attempt of `queue` (of `types`) becomes dispatchable.
    async fn next_dispatch(&self, queue: &str, types: Option<Vec<String>>) -> Result<Option<Millis>, StoreError>;

    /// Open executions whose next deadline is at or before `now`.
    async fn due(&self, now: Millis, limit: usize) -> Result<Vec<Versioned<Execution>>, StoreError>;

    /// The earliest deadline of any open execution.
    async fn next_deadline(&self) -> Result<Option<Millis>, StoreError>;

    /// The given run, or the latest run of the id.
    async fn get(&self, activity_id: &str, run_id: Option<&str>) -> Result<Option<Versioned<Execution>>, StoreError>;

    /// A page of executions, newest first, and the next page's token.
    async fn list(&self, filter: ListFilter) -> Result<(Vec<Execution>, Option<String>), StoreError>;

    async fn append_logs(&self, run_id: &str, logs: Vec<LogEntry>) -> Result<(), StoreError>;

    /// Started executions whose worker id starts with `prefix` (a host's own
    /// workers), for recovery after a restart.
    /// The execution (given run, or latest run of the id) with its history
    /// and a page of its logs, in one consistent read.
    async fn describe(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        logs: LogPage,
    ) -> Result<Option<Described>, StoreError>;

    async fn started_by(&self, prefix: &str) -> Result<Vec<Versioned<Execution>>, StoreError>;

    /// Backlog and running counts (by index), with the open executions by
    /// type; `closed` adds the closed ones by type and status, which reads
    /// every retained row of the queue (for operators, not for polling).
    async fn queue_stats(&self, queue: &str, closed: bool) -> Result<QueueStats, StoreError>;

    /// Deletes a closed run with its history and logs; false if there is no
    /// such closed run.
    async fn delete(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Deletes up to `limit` runs closed before `cutoff`, oldest first, with
    /// their history and logs; returns how many.
    async fn delete_closed_before(&self, cutoff: Millis, limit: usize) -> Result<usize, StoreError>;

    /// Every activity type with its versions.
    async fn types(&self) -> Result<Vec<TypeRecord>, StoreError>;

    /// Applies `change` in one commit (creating the type if needed) and
    /// returns the type as it left it.
    async fn change_type(&self, change: TypeChange) -> Result<TypeRecord, StoreError>;

    /// The host secret that signs task tokens, created on first use
    /// (shared by every host of the store).
    async fn secret(&self) -> Result<Vec<u8>, StoreError>;

    /// Registers `host`, or renews its lease, until `until`.
    async fn renew_lease(&self, host: &str, until: Millis) -> Result<(), StoreError>;

    /// Hosts whose lease ended before `now`: they are gone, and the
    /// attempts their workers started are lost.
    async fn expired_hosts(&self, now: Millis) -> Result<Vec<String>, StoreError>;

    /// Forgets a host: every host when its lease ended before
    /// `expired_before` (its attempts were taken over), or unconditionally
    /// (`None`: a host leaving cleanly).
    async fn forget_host(&self, host: &str, expired_before: Option<Millis>) -> Result<(), StoreError>;

    /// Draws up to `want` dispatches from `queue`'s global token bucket.
    async fn take_tokens(&self, queue: &str, bucket: Bucket, want: u32, now: Millis) -> Result<Tokens, StoreError>;

    /// Keeps a deployed component's bytes where every host can fetch them
    /// (`components/<hash>.wasm` beside a store only this host uses needs
    /// nothing more).
    async fn put_component(&self, _hash: &str, _bytes: Vec<u8>) -> Result<(), StoreError> {
        Ok(())
    }

    /// A component's bytes, if the store keeps them.
    async fn component(&self, _hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    /// Whether other hosts may share this store (their type changes and
    /// components come through it).
    fn shared(&self) -> bool {
        false
    }

    /// What other hosts commit, as hints to act sooner (`None`: only this
    /// host uses the store). Every loop polls as well: a lost hint delays
    /// work, never loses it.
    fn hints(&self) -> Option<tokio::sync::broadcast::Receiver<Hint>> {
        None
    }

    /// How often loops look at the store whatever the hints say: other
    /// hosts change a shared store without waking this one.
    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(30)
    }
}

/// A change another host committed: a transition, or (with no `kind`) the
/// latest heartbeat details and progress of a running attempt.
#[derive(Debug, Clone)]
pub struct Hint {
    pub activity_id: String,
    pub run_id: String,
    pub task_queue: String,
    pub attempt: u32,
    pub at: Millis,
    pub kind: Option<HistoryKind>,
    pub status: Status,
    /// The execution's next deadline after it.
    pub deadline: Option<Millis>,
    /// Whether it made an attempt dispatchable (a start, a retry, ...).
    pub dispatchable: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shown_store_url_has_no_password() {
        assert_eq!(super::redacted("postgres://u:secret@db:5432/x"), "postgres://u@db:5432/x");
        assert_eq!(super::redacted("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(super::redacted("postgresql://db/x"), "postgresql://db/x");
    }
}
