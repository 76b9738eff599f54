//! LISTEN for what other hosts commit: each NOTIFY payload names the host
//! it comes from, then one transition per line (see `batch::hint`). Hints
//! only make hosts act sooner — every loop polls too — so a lost
//! connection (reconnected after a pause) or a lagging receiver delays
//! work and never loses it.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::activity::{HistoryKind, Status};
use crate::store::Hint;

/// Starts listening; hints from hosts other than `origin` are sent on the
/// returned channel.
pub fn spawn(config: tokio_postgres::Config, origin: String) -> broadcast::Sender<Hint> {
    let (tx, _) = broadcast::channel(16_384);
    let hints = tx.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&config, &origin, &hints).await {
                tracing::warn!("listening for other hosts' changes: {e}; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tx
}

async fn listen(config: &tokio_postgres::Config, origin: &str, hints: &broadcast::Sender<Hint>) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // The connection is driven here; its notifications are forwarded.
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            if tx.send(message).is_err() {
                return;
            }
        }
    });
    client.batch_execute("LISTEN sluice").await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.recv().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                for hint in parse(n.payload(), origin) {
                    // No receiver yet is fine: the engine subscribes when it starts.
                    let _ = hints.send(hint);
                }
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    driver.abort();
    Err("the connection closed".into())
}

/// The hints of one payload, unless this host sent it.
fn parse(payload: &str, origin: &str) -> Vec<Hint> {
    let mut lines = payload.split('\n');
    if lines.next() == Some(origin) {
        return Vec::new();
    }
    lines.filter_map(line).collect()
}

fn line(l: &str) -> Option<Hint> {
    type Line = (String, String, String, u32, u64, String, String, Option<u64>, bool);
    let (activity_id, run_id, task_queue, attempt, at, kind, status, deadline, dispatchable): Line =
        serde_json::from_str(l).ok()?;
    Some(Hint {
        activity_id,
        run_id,
        task_queue,
        attempt,
        at,
        kind: match kind.as_str() {
            "" => None,
            k => Some(HistoryKind::parse(k)?),
        },
        status: Status::parse(&status)?,
        deadline,
        dispatchable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_read_line_by_line_and_a_hosts_own_are_ignored() {
        let payload = "host-a\n[\"a\",\"r\",\"q\",2,1000,\"retry-scheduled\",\"scheduled\",5000,true]\nnot json";
        let hints = parse(payload, "host-b");
        assert_eq!(hints.len(), 1, "the bad line is skipped");
        let h = &hints[0];
        assert_eq!(
            (h.activity_id.as_str(), h.attempt, h.kind, h.deadline),
            ("a", 2, Some(HistoryKind::RetryScheduled), Some(5000))
        );
        assert!(h.dispatchable);
        assert!(parse(payload, "host-a").is_empty());
    }
}
