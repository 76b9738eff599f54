//! Loading components: precise errors for files that are not activity
//! components, and the compiled-component cache.

mod common;

use std::path::Path;

use serde_json::json;
use sluice::sandbox::{Allocation, CacheUse, LoadError, Sandbox, SandboxConfig};
use sluice_test_programs::HELLO;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_err(path: &Path) -> String {
    match common::sandbox().load(path, false) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load_err(Path::new("/nonexistent/activity.wasm"));
    assert_eq!(err, "cannot read component /nonexistent/activity.wasm: No such file or directory (os error 2)");
}

#[test]
fn a_non_wasm_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notes.wasm", b"hello, I am text");
    let err = load_err(&path);
    assert_eq!(
        err,
        format!("{} is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)", path.display())
    );
}

#[test]
fn a_core_module_is_told_to_become_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "core.wasm", b"\0asm\x01\0\0\0");
    let err = load_err(&path);
    assert!(err.ends_with("is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"), "{err}");
}

#[test]
fn a_truncated_component_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(HELLO).unwrap();
    let path = write(dir.path(), "cut.wasm", &bytes[..bytes.len() / 2]);
    let err = load_err(&path);
    assert!(err.starts_with(&format!("{} is not a valid component: ", path.display())), "{err}");
}

#[test]
fn a_component_without_the_activity_export_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest valid component: header only, exports nothing.
    let path = write(dir.path(), "empty.wasm", b"\0asm\x0d\0\x01\0");
    let err = load_err(&path);
    assert_eq!(
        err,
        format!(
            "{} does not export `sluice:activity/activity@0.2.0`; is it built against the sluice:activity WIT world? (it exports: nothing)",
            path.display()
        )
    );
}

#[test]
fn an_oversized_component_is_rejected_before_reading() {
    let sandbox =
        Sandbox::new(SandboxConfig { allocation: Allocation::OnDemand, cache_dir: None, max_component_size: 1000 })
            .unwrap();
    let err = sandbox.load(HELLO.as_ref(), false).err().expect("too large").to_string();
    assert!(
        err.starts_with(&format!("component {HELLO} is ")) && err.ends_with("bytes, over the limit of 1000 bytes"),
        "{err}"
    );
    assert!(matches!(sandbox.load(HELLO.as_ref(), false), Err(LoadError::TooLarge { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_are_cached_on_disk_and_damaged_entries_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let config = || SandboxConfig {
        allocation: Allocation::OnDemand,
        cache_dir: Some(cache.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let first = Sandbox::new(config()).unwrap().load(HELLO.as_ref(), false).unwrap();
    assert_eq!(first.cache, CacheUse::Miss);
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].file_name().unwrap().to_str().unwrap().starts_with(&first.hash));

    let second = Sandbox::new(config()).unwrap().load(HELLO.as_ref(), false).unwrap();
    assert_eq!(second.cache, CacheUse::Hit);
    let report = second.run(common::request(json!({"name": "cache"}))).await;
    assert_eq!(common::completed(&report), json!({"greeting": "Hello, cache!"}));

    std::fs::write(&entries[0], b"garbage").unwrap();
    let third = Sandbox::new(config()).unwrap().load(HELLO.as_ref(), false).unwrap();
    assert_eq!(third.cache, CacheUse::Miss, "a damaged entry is recompiled");
    let report = third.run(common::request(json!({"name": "fixed"}))).await;
    assert_eq!(common::completed(&report), json!({"greeting": "Hello, fixed!"}));
}

#[test]
fn on_demand_allocation_works_too() {
    let sandbox = Sandbox::new(SandboxConfig {
        allocation: Allocation::OnDemand,
        cache_dir: Some(common::cache_dir()),
        ..SandboxConfig::default()
    })
    .unwrap();
    assert_eq!(sandbox.allocation(), Allocation::OnDemand);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(sandbox.load(HELLO.as_ref(), false).unwrap().run(common::request(json!({"name": "od"}))));
    assert_eq!(common::completed(&report), json!({"greeting": "Hello, od!"}));
}
