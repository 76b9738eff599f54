//! Types through the real engine: `sluice.toml` declarations applied at
//! start, deploys, rollback and the version an attempt runs.

use serde_json::json;

use super::*;
use crate::activity::HistoryKind::*;
use crate::engine::Deploy;

fn deploy(h: &Harness, content: &str, label: Option<&str>) -> Deploy {
    let file = h.dir.path().join(format!("upload-{content}"));
    std::fs::write(&file, content).unwrap();
    Deploy {
        activity_type: "t".into(),
        file,
        label: label.map(str::to_string),
        queue: None,
        set: vec![],
        by: "tester".into(),
        operator: false,
    }
}

#[tokio::test]
async fn a_changed_component_in_sluice_toml_becomes_a_new_version_at_start() {
    let h = Harness::new("").await;
    let (t, _) = h.engine.activity_type("t").unwrap();
    assert_eq!((t.current_version.as_deref(), t.versions.len()), (Some("v1"), 1));
    assert_eq!(t.versions[0].deployed_by, "sluice.toml");
    // Restarted on the same store with the same file: nothing new.
    let Harness { dir, config, store, .. } = h;
    let h = Harness::on(dir, config, store).await;
    assert_eq!(h.engine.activity_type("t").unwrap().0.versions.len(), 1);
    // The file changed: v2, current.
    std::fs::write(h.dir.path().join("unused.wasm"), "new content").unwrap();
    let Harness { dir, config, store, .. } = h;
    let h = Harness::on(dir, config, store).await;
    let (t, _) = h.engine.activity_type("t").unwrap();
    assert_eq!((t.current_version.as_deref(), t.versions.len()), (Some("v2"), 2));
}

#[tokio::test]
async fn attempts_run_the_current_version_unless_pinned_and_keep_the_one_they_started_on() {
    let mut h = Harness::new("").await;
    h.start("old", input(), |_| {}).await;
    let running = h.next_attempt().await;
    assert_eq!(running.call.version.as_deref(), Some("v1"));
    let t = h.engine.deploy(deploy(&h, "two", Some("v2"))).await.unwrap();
    assert_eq!(t.current_version.as_deref(), Some("v2"));
    h.start("new", input(), |_| {}).await;
    assert_eq!(h.next_attempt().await.call.version.as_deref(), Some("v2"));
    h.start("pinned", input(), |r| r.version = Some("v1".into())).await;
    assert_eq!(h.next_attempt().await.call.version.as_deref(), Some("v1"));
    running.complete(json!(1));
    h.transition("old", Closed(crate::activity::Status::Completed)).await;
    assert_eq!(h.exec("old").await.version.as_deref(), Some("v1"), "it finished on v1");
    // Rollback, and the same content again is the same version.
    assert_eq!(h.engine.rollback("t", None).await.unwrap().current_version.as_deref(), Some("v1"));
    let again = h.engine.deploy(deploy(&h, "two", None)).await.unwrap();
    assert_eq!((again.current_version.as_deref(), again.versions.len()), (Some("v2"), 2));
    let err = h.engine.rollback("t", Some("v7")).await.unwrap_err();
    assert_eq!(err.to_string(), "activity type t has no version v7");
    let err = h.engine.rollback("nope", None).await.unwrap_err();
    assert_eq!(err.to_string(), "no activity type nope");
}

#[tokio::test]
async fn a_deploy_on_a_new_queue_serves_it_at_once() {
    let mut h = Harness::new("").await;
    h.start("waiting", input(), |r| r.task_queue = Some("fresh".into())).await;
    let d = Deploy { queue: Some("fresh".into()), ..deploy(&h, "three", None) };
    h.engine.deploy(d).await.unwrap();
    let a = h.next_attempt().await;
    assert_eq!(a.call.info.task_queue, "fresh");
    assert_eq!(h.engine.served_queue("q").map(|q| q.1), Some(vec![]), "t left its old queue");
}
