//! `sluice.toml`: the shipped example parses, and bad configs name the key.

use std::path::Path;
use std::time::Duration;

use sluice::config::Config;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/etc/sluice"))
}

#[test]
fn the_example_config_parses_and_means_what_it_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sluice.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:7233");
    assert_eq!(config.queues["default"].slots, 64);
    let hello = &config.activities["hello"];
    assert!(hello.component.ends_with("examples/target/wasm32-wasip2/release/hello.wasm"), "{:?}", hello.component);
    assert_eq!(hello.start_to_close_timeout, Some(Duration::from_secs(10)));
    assert_eq!(hello.retry.maximum_attempts, 5);
    assert_eq!(hello.retry.non_retryable_error_types, ["EmptyName"]);
    assert_eq!(hello.env["GREETING_STYLE"], "friendly");
    assert_eq!(hello.memory.as_u64(), 64 << 20);
    let resumable = &config.activities["resumable"];
    assert_eq!(resumable.heartbeat_timeout, Some(Duration::from_secs(10)));
    assert_eq!(resumable.retry.initial_interval, Duration::from_millis(200));
    assert_eq!(resumable.retry.backoff_coefficient, 2.0, "defaults fill the rest");
    // What the store keeps of each type is valid on its own.
    for (name, a) in &config.activities {
        sluice::config::ActivityConfig::from_settings(name, &a.settings).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_config_given_by_a_relative_path_keeps_directories_absolute() {
    // As the README runs it: `serve --config examples/sluice.toml` from the checkout.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(&root).unwrap();
    let config = Config::load(Path::new("examples/sluice.toml"));
    std::env::set_current_dir(cwd).unwrap();
    let config = config.unwrap();
    let email = &config.activities["send-email"];
    assert!(
        email.dirs_rw.iter().all(|d| Path::new(d.split("::").next().unwrap()).is_absolute()),
        "{:?}",
        email.dirs_rw
    );
    sluice::config::ActivityConfig::from_settings("send-email", &email.settings).unwrap();
}

#[test]
fn an_empty_config_gets_the_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:7233");
    assert_eq!(config.store.path, Path::new("/etc/sluice/sluice.db"));
    assert!(config.activities.is_empty());
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisten_addr = 3\n").unwrap_err();
    assert!(err.starts_with("server.listen_addr: unknown field `listen_addr`, expected one of `listen`"), "{err}");
    assert!(err.contains("(line 3)"), "{err}");

    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"1s\"\n[activities.a.retry]\nmax_attempts = 3\n").unwrap_err();
    assert!(err.starts_with("activities.a.retry.max_attempts: unknown field `max_attempts`, expected one of"), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"soon\"\n").unwrap_err();
    assert!(err.starts_with("activities.a.start_to_close_timeout: invalid duration \"soon\""), "{err}");

    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"101years\"\n").unwrap_err();
    assert!(
        err.starts_with(
            "activities.a.start_to_close_timeout: duration \"101years\" is 101years, over the limit of 100 years"
        ),
        "{err}"
    );

    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\nmemory = \"lots\"\n").unwrap_err();
    assert!(err.starts_with("activities.a.memory: "), "{err}");

    let err = parse("[server]\nlisten = \"nowhere\"\n").unwrap_err();
    assert!(err.starts_with("server.listen: invalid socket address"), "{err}");

    let err = parse(
        "[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"1s\"\nallow_http = [\"https://x.com\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        err,
        "activities.a.allow_http: allowed HTTP host \"https://x.com\" must not have a scheme or path; \
         expected HOST, HOST:PORT, *.DOMAIN or *.DOMAIN:PORT"
    );

    let err = parse("[queues.q]\nslots = 0\n").unwrap_err();
    assert_eq!(err, "queues.q.slots: must be at least 1");

    let err = parse("[queues.q]\nrate_limit = -1.0\n").unwrap_err();
    assert_eq!(err, "queues.q.rate_limit: must be a number ≥ 0, got -1");

    let err = parse("[store]\nurl = \"mysql://u:secret@db/x\"\n").unwrap_err();
    assert_eq!(
        err,
        "store.url: must be a PostgreSQL URL (postgres://user:password@host:port/database), got one starting \"mysql\""
    );
    assert!(!err.contains("secret"), "a password is never shown");
    let err = parse("[store]\nhost_lease = \"500ms\"\n").unwrap_err();
    assert_eq!(err, "store.host_lease: must be 1s to 10m, got 500ms");
    let err = parse("[store]\npool_size = 0\n").unwrap_err();
    assert_eq!(err, "store.pool_size: must be 1 to 100, got 0");
    let ok = parse("[store]\nurl = \"postgresql://u@127.0.0.1:5/x\"\nhost_lease = \"3s\"\n").unwrap();
    assert_eq!(
        (ok.store.url.as_deref(), ok.store.host_lease),
        (Some("postgresql://u@127.0.0.1:5/x"), Duration::from_secs(3))
    );
}

#[test]
fn an_activity_without_a_close_timeout_is_refused() {
    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\n").unwrap_err();
    assert_eq!(err, "activities.a: one of schedule_to_close_timeout and start_to_close_timeout is required");
    let err = parse("[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"1s\"\n[activities.a.retry]\nbackoff_coefficient = 0.5\n").unwrap_err();
    assert_eq!(err, "activities.a: retry_policy.backoff_coefficient must be at least 1.0, got 0.5");
    let err =
        parse("[activities.a]\ncomponent = \"a.wasm\"\nstart_to_close_timeout = \"1s\"\nqueues = []\n").unwrap_err();
    assert_eq!(err, "activities.a.queues: list at least one task queue");
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/sluice.toml")).unwrap_err().to_string();
    assert_eq!(err, "/nonexistent/sluice.toml: cannot read: No such file or directory (os error 2)");
}
