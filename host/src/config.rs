//! `sluice.toml`: the host configuration. Every key is documented in
//! `examples/sluice.toml`, which a test parses. Unknown keys and bad values
//! are errors naming the key's path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::activity::{RetryPolicy, Timeouts};
use crate::sandbox::{DirGrant, Grants, HttpRule, Limits};

/// The whole host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// Task queues by name. Queues not listed are created on first use with
    /// the default settings.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
    /// Activity types by name.
    #[serde(default)]
    pub activities: BTreeMap<String, ActivityConfig>,
    /// Trace export.
    #[serde(default)]
    pub traces: TracesConfig,
    /// The Temporal frontend (`WorkflowService`, on the gRPC listener).
    #[serde(default)]
    pub temporal: TemporalConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalConfig {
    /// Serve Temporal's `WorkflowService` beside `sluice.v1`.
    pub enabled: bool,
    /// The one namespace Temporal clients name; others are NOT_FOUND.
    pub namespace: String,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        TemporalConfig { enabled: true, namespace: "default".into() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// An OTLP/HTTP collector (`http://host:4318`); no export when absent.
    pub otlp_endpoint: Option<String>,
    /// The service name spans carry (default: `sluice`).
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address (loopback by default).
    pub listen: SocketAddr,
    /// This host's name; its host-specific queue is `<queue>@<host_id>`.
    pub host_id: Option<String>,
    /// Cap on payloads and heartbeat details.
    pub max_payload: ByteSize,
    /// Bearer-token auth on every RPC; off when absent.
    pub auth: Option<AuthConfig>,
    /// TLS for the gRPC endpoint; plain HTTP/2 when absent.
    pub tls: Option<TlsConfig>,
    /// The HTTP listener: JSON API, event streams, OpenAPI, metrics.
    pub http: HttpConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve HTTP at all.
    pub enabled: bool,
    /// Its listen address (loopback by default).
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { enabled: true, listen: "127.0.0.1:7280".parse().unwrap() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Hex SHA-256 of each accepted token (`sluice hash-token` prints it).
    pub tokens_sha256: Vec<String>,
    /// Hex SHA-256 of the tokens that may also change what a guest may
    /// reach (env, dirs, allow_http) when deploying or updating a type.
    /// They are accepted for everything else too.
    #[serde(default)]
    pub operator_tokens_sha256: Vec<String>,
    /// Let `grpc.health.v1` checks through without a token, for load
    /// balancers and probes (they learn only whether a service is serving).
    #[serde(default)]
    pub health_without_token: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (relative to the config file).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7233".parse().unwrap(),
            host_id: None,
            max_payload: ByteSize::mib(2),
            auth: None,
            tls: None,
            http: HttpConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file, created on first start (relative to the config file).
    pub path: PathBuf,
    /// Closed executions (with their history and logs) are deleted this
    /// long after they closed.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// A PostgreSQL store shared by several hosts (`postgres://…`) instead
    /// of the SQLite file.
    pub url: Option<String>,
    /// Connections to PostgreSQL this host opens for reads and type
    /// changes (writes share two more).
    pub pool_size: u32,
    /// How long a host's lease lasts unrenewed (it renews three times per
    /// lease); once it ends, other hosts take over the host's attempts.
    #[serde(with = "duration")]
    pub host_lease: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("sluice.db"),
            retention: Duration::from_secs(7 * 24 * 3600),
            url: None,
            pool_size: 8,
            host_lease: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Instance slots reserved by the pooling allocator: more than the
    /// queues' slots plus the guest threads (an instance goes back to the
    /// pool just after its attempt's result) and warm idle instances.
    pub pool_instances: u32,
    /// Where compiled components are cached (default: the user cache dir).
    pub cache_dir: Option<PathBuf>,
    /// Largest component file accepted.
    pub max_component_size: ByteSize,
    /// Threads that run guests (0: one per core). They run apart from the
    /// control plane (API, dispatch, timers, store), at a lower OS priority.
    pub guest_threads: usize,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection {
            pool_instances: 1000,
            cache_dir: None,
            max_component_size: ByteSize::mib(256),
            guest_threads: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Attempts this host runs at once from this queue.
    pub slots: u32,
    /// Dispatches per second from this queue; `0` pauses it; absent = unlimited.
    pub rate_limit: Option<f64>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { slots: 64, rate_limit: None }
    }
}

/// One activity type: its component, where it is served, its sandbox
/// limits and grants, and its default execution options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    /// The component file (relative to the config file).
    pub component: PathBuf,
    /// Task queues whose attempts of this type this host runs.
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// Cap on attempts of this type running at once on this host.
    pub slots: Option<u32>,
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    pub fuel: Option<u64>,
    #[serde(default = "default_max_output")]
    pub max_output: ByteSize,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host directories the guest may read, `HOST` or `HOST::GUEST`.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Host directories the guest may read and write.
    #[serde(default)]
    pub dirs_rw: Vec<String>,
    /// Hosts the guest may reach with wasi:http: `HOST`, `HOST:PORT`,
    /// `*.DOMAIN` or `*.DOMAIN:PORT`. None by default.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Run attempts in instances kept warm from earlier successful attempts
    /// (module state then persists between attempts). Off by default.
    #[serde(default)]
    pub reuse_instances: bool,
    #[serde(default, with = "opt_duration")]
    pub schedule_to_close_timeout: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub schedule_to_start_timeout: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub start_to_close_timeout: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub heartbeat_timeout: Option<Duration>,
    /// How long a started attempt may take to stop after a cancel request.
    #[serde(default = "default_cancel_grace", with = "duration")]
    pub cancel_grace: Duration,
    #[serde(default)]
    pub retry: RetryConfig,
    /// These settings as written (the keys of `[activities.NAME]` but
    /// `component`, as JSON): what the store keeps and `--set` changes.
    #[serde(skip)]
    pub settings: serde_json::Value,
}

/// Settings that grant a guest access to the host: changing them over the
/// API needs an operator token.
pub const GRANT_KEYS: [&str; 4] = ["env", "dirs", "dirs_rw", "allow_http"];

fn default_queues() -> Vec<String> {
    vec!["default".to_string()]
}
fn default_memory() -> ByteSize {
    ByteSize::mib(512)
}
fn default_max_output() -> ByteSize {
    ByteSize::mib(1)
}
fn default_cancel_grace() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(with = "duration")]
    pub initial_interval: Duration,
    pub backoff_coefficient: f64,
    #[serde(with = "opt_duration")]
    pub maximum_interval: Option<Duration>,
    pub maximum_attempts: u32,
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let p = RetryPolicy::default();
        RetryConfig {
            initial_interval: p.initial_interval,
            backoff_coefficient: p.backoff_coefficient,
            maximum_interval: p.maximum_interval,
            maximum_attempts: p.maximum_attempts,
            non_retryable_error_types: p.non_retryable_error_types,
        }
    }
}

impl RetryConfig {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial_interval: self.initial_interval,
            backoff_coefficient: self.backoff_coefficient,
            maximum_interval: self.maximum_interval,
            maximum_attempts: self.maximum_attempts,
            non_retryable_error_types: self.non_retryable_error_types.clone(),
        }
    }
}

impl ActivityConfig {
    /// A type's config from its stored settings, checked as `sluice.toml`'s
    /// are; errors name the key.
    pub fn from_settings(name: &str, settings: &serde_json::Value) -> Result<ActivityConfig, String> {
        let mut with_component = settings.clone();
        let table = with_component.as_object_mut().ok_or("the settings must be a table of keys")?;
        if table.contains_key("component") {
            return Err("component: set by deploying a version, not as a setting".into());
        }
        table.insert("component".into(), "deployed".into());
        let mut a: ActivityConfig = serde_path_to_error::deserialize(with_component).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })?;
        a.validate(name)?;
        for d in a.dirs.iter().chain(&a.dirs_rw) {
            let grant = DirGrant::parse(d, false).map_err(|e| format!("dirs: {e}"))?;
            if grant.host.is_relative() {
                return Err(format!("dirs: {d:?}: give an absolute host path"));
            }
        }
        a.settings = settings.clone();
        Ok(a)
    }

    /// Checks what deserialization cannot; errors start with `activities.NAME`.
    fn validate(&self, name: &str) -> Result<(), String> {
        let key = |k: &str| format!("activities.{name}.{k}");
        if self.queues.is_empty() {
            return Err(format!("{}: list at least one task queue", key("queues")));
        }
        for q in &self.queues {
            crate::limits::check_name("task queue", q).map_err(|e| format!("{}: {e}", key("queues")))?;
        }
        if self.slots == Some(0) {
            return Err(format!("{}: must be at least 1", key("slots")));
        }
        self.timeouts().resolve().map_err(|e| format!("activities.{name}: {e}"))?;
        self.retry.policy().validate().map_err(|e| format!("activities.{name}: {e}"))?;
        for (d, w) in self.dirs.iter().map(|d| (d, "dirs")).chain(self.dirs_rw.iter().map(|d| (d, "dirs_rw"))) {
            DirGrant::parse(d, false).map_err(|e| format!("{}: {e}", key(w)))?;
        }
        for h in &self.allow_http {
            h.parse::<HttpRule>().map_err(|e| format!("{}: {e}", key("allow_http")))?;
        }
        Ok(())
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            schedule_to_close: self.schedule_to_close_timeout,
            schedule_to_start: self.schedule_to_start_timeout,
            start_to_close: self.start_to_close_timeout,
            heartbeat: self.heartbeat_timeout,
        }
    }

    /// The sandbox limits of one attempt; `timeout` is the attempt's own.
    pub fn limits(&self, max_payload: usize, timeout: Option<Duration>) -> Limits {
        Limits {
            memory: self.memory.as_u64(),
            timeout,
            fuel: self.fuel,
            max_output: self.max_output.as_u64() as usize,
            max_payload,
        }
    }

    pub fn grants(&self) -> Grants {
        let dirs = self.dirs.iter().map(|d| (d, false)).chain(self.dirs_rw.iter().map(|d| (d, true)));
        Grants {
            env: self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            dirs: dirs.filter_map(|(d, w)| DirGrant::parse(d, w).ok()).collect(),
            http: self.allow_http.iter().filter_map(|h| h.parse().ok()).collect(),
        }
    }
}

/// A config error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { file: file.clone(), message: format!("cannot read: {e}") })?;
        // Absolute, so paths in the config stay right whatever the working
        // directory (a type's stored settings need absolute directories).
        let folder = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = std::path::absolute(folder)
            .map_err(|e| ConfigError { file: file.clone(), message: format!("cannot resolve its folder: {e}") })?;
        Config::parse(&text, &base).map_err(|message| ConfigError { file, message })
    }

    /// Parses and validates config text; relative paths are joined to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            match inner.span() {
                Some(span) => format!("{path}: {msg} (line {})", line_of(text, span.start)),
                None => format!("{path}: {msg}"),
            }
        })?;
        config.validate()?;
        config.resolve_paths(base);
        config.keep_settings(text)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(auth) = &self.server.auth {
            if auth.tokens_sha256.is_empty() {
                return Err("server.auth.tokens_sha256: list at least one token hash".into());
            }
            for h in auth.tokens_sha256.iter().chain(&auth.operator_tokens_sha256) {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "server.auth.tokens_sha256: {h:?} is not a hex SHA-256 (run `sluice hash-token` to make one)"
                    ));
                }
            }
        }
        if self.store.retention < Duration::from_secs(1) {
            return Err("store.retention: must be at least 1s".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&self.store.host_lease) {
            return Err(format!(
                "store.host_lease: must be 1s to 10m, got {}",
                humantime::format_duration(self.store.host_lease)
            ));
        }
        crate::limits::check_name("temporal.namespace", &self.temporal.namespace)?;
        if !(1..=100).contains(&self.store.pool_size) {
            return Err(format!("store.pool_size: must be 1 to 100, got {}", self.store.pool_size));
        }
        if let Some(url) = &self.store.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(format!(
                "store.url: must be a PostgreSQL URL (postgres://user:password@host:port/database), got one \
                 starting {:?}",
                url.split("://").next().unwrap_or_default()
            ));
        }
        for (name, queue) in &self.queues {
            if let Some(rate) = queue.rate_limit
                && !(rate >= 0.0 && rate.is_finite())
            {
                return Err(format!("queues.{name}.rate_limit: must be a number ≥ 0, got {rate}"));
            }
            if queue.slots == 0 {
                return Err(format!("queues.{name}.slots: must be at least 1"));
            }
        }
        for (name, a) in &self.activities {
            a.validate(name)?;
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.store.path);
        if let Some(tls) = &mut self.server.tls {
            join(&mut tls.cert);
            join(&mut tls.key);
        }
        if let Some(dir) = &mut self.sandbox.cache_dir {
            join(dir);
        }
        for a in self.activities.values_mut() {
            join(&mut a.component);
            for spec in a.dirs.iter_mut().chain(a.dirs_rw.iter_mut()) {
                if let Ok(mut grant) = DirGrant::parse(spec, false) {
                    join(&mut grant.host);
                    *spec = format!("{}::{}", grant.host.display(), grant.guest);
                }
            }
        }
    }

    /// Keeps each type's keys as written (but `component`, and with its
    /// directories resolved), for the store.
    fn keep_settings(&mut self, text: &str) -> Result<(), String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let Some(toml::Value::Table(types)) = table.get("activities") else { return Ok(()) };
        for (name, a) in &mut self.activities {
            let mut settings = serde_json::to_value(types.get(name)).map_err(|e| format!("activities.{name}: {e}"))?;
            if let Some(t) = settings.as_object_mut() {
                t.remove("component");
                for key in ["dirs", "dirs_rw"] {
                    let resolved = if key == "dirs" { &a.dirs } else { &a.dirs_rw };
                    if t.contains_key(key) {
                        t.insert(key.into(), serde_json::json!(resolved));
                    }
                }
            }
            a.settings = settings;
        }
        Ok(())
    }

    /// This host's id: configured, else the machine's host name.
    pub fn host_id(&self) -> String {
        self.server.host_id.clone().unwrap_or_else(crate::util::hostname)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Durations written like `500ms`, `30s`, `5m`, `1h 30m`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e} (write e.g. \"30s\")")))?;
        crate::activity::check_duration(&format!("duration {s:?}"), parsed).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}
