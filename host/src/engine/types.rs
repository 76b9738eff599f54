//! Activity types at run time: their settings, deployed versions and which
//! is current, the queues this host serves for them. The store keeps them;
//! this registry is what dispatch, starts and attempts read. Each change is
//! committed to the store first, then installed here (runner, slots,
//! dispatchers): attempts already running keep the component they started on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::Semaphore;

use super::{Engine, EngineError, Queue, dispatch, host_queue};
use crate::config::{ActivityConfig, Config, QueueConfig};
use crate::store::{CurrentVersions, TypeChange, TypeRecord, VersionRecord};

/// A type as installed on this host.
pub(super) struct TypeState {
    pub config: ActivityConfig,
    /// Per-type cap on concurrent attempts on this host.
    pub slots: Option<Arc<Semaphore>>,
    pub record: TypeRecord,
}

/// The installed types and the queues served for them.
#[derive(Default)]
pub(super) struct Registry {
    types: RwLock<HashMap<String, Arc<TypeState>>>,
    current: RwLock<CurrentVersions>,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    /// `[queues]` of the config: slots and rate of a queue when it is first served.
    queue_configs: HashMap<String, QueueConfig>,
}

impl Registry {
    pub fn new(config: &Config) -> Registry {
        Registry { queue_configs: config.queues.clone().into_iter().collect(), ..Registry::default() }
    }

    pub fn get(&self, name: &str) -> Option<Arc<TypeState>> {
        self.types.read().expect("types lock").get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<TypeState>> {
        let mut v: Vec<_> = self.types.read().expect("types lock").values().cloned().collect();
        v.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        v
    }

    pub fn current_versions(&self) -> CurrentVersions {
        self.current.read().expect("versions lock").clone()
    }

    pub fn current_version(&self, activity_type: &str) -> Option<String> {
        self.current.read().expect("versions lock").get(activity_type).cloned()
    }

    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.queues.read().expect("queues lock").keys().cloned().collect();
        names.sort();
        names
    }

    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.read().expect("queues lock").get(name).cloned()
    }
}

/// The start-to-close timeout a type gets on its first deploy, unless set.
const NEW_TYPE_TIMEOUT: &str = "5m";

/// One upload to deploy: the file is in the components directory already.
#[derive(Debug, Clone)]
pub struct Deploy {
    pub activity_type: String,
    /// The uploaded component (moved into place, content-addressed).
    pub file: PathBuf,
    /// Default: `v<n>`, n one more than the type's versions so far.
    pub label: Option<String>,
    /// Serve the type on this queue (sets `queues`).
    pub queue: Option<String>,
    /// Settings to change, `key=value` (TOML values; dotted keys).
    pub set: Vec<String>,
    /// Who deployed, as recorded.
    pub by: String,
    /// The caller may change grants (env, dirs, allow_http).
    pub operator: bool,
}

/// The components directory of a store: beside its file.
pub fn components_dir(config: &Config) -> PathBuf {
    let dir = config.store.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join("components")
}

fn component_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.wasm"))
}

impl Engine {
    /// The type's current version of each type, for claims.
    pub(super) fn current_versions(&self) -> CurrentVersions {
        self.registry.current_versions()
    }

    /// The stored component file of a hash.
    pub fn component_file(&self, hash: &str) -> PathBuf {
        component_path(&self.components, hash)
    }

    /// Every type with its versions.
    pub fn activity_types(&self) -> Vec<TypeRecord> {
        self.registry.all().iter().map(|t| t.record.clone()).collect()
    }

    /// One type with its versions and settings.
    pub fn activity_type(&self, name: &str) -> Result<(TypeRecord, ActivityConfig), EngineError> {
        let t = self.registry.get(name).ok_or_else(|| EngineError::NotFound(format!("no activity type {name}")))?;
        Ok((t.record.clone(), t.config.clone()))
    }

    /// Checks that a start may pin `version` of `activity_type`.
    pub(super) fn check_version(&self, activity_type: &str, version: &str) -> Result<(), EngineError> {
        let t = self.registry.get(activity_type).ok_or_else(|| {
            EngineError::Invalid(format!("version {version}: there is no deployed activity type {activity_type}"))
        })?;
        if t.record.versions.iter().all(|v| v.label != version) {
            let known: Vec<&str> = t.record.versions.iter().map(|v| v.label.as_str()).collect();
            return Err(EngineError::Invalid(format!(
                "activity type {activity_type} has no version {version} (it has {})",
                known.join(", ")
            )));
        }
        Ok(())
    }

    /// Validates, stores and makes current a new version of a type, with
    /// its settings changes, in one durable step; then installs it.
    pub async fn deploy(self: &Arc<Self>, d: Deploy) -> Result<TypeRecord, EngineError> {
        let result = self.deploy_file(&d).await;
        // The upload is in place under its hash, or not needed.
        let _ = std::fs::remove_file(&d.file);
        result
    }

    async fn deploy_file(self: &Arc<Self>, d: &Deploy) -> Result<TypeRecord, EngineError> {
        crate::limits::check_name("activity type", &d.activity_type).map_err(EngineError::Invalid)?;
        if let Some(l) = &d.label {
            check_label(l)?;
        }
        let runner = self.runner.clone();
        let file = d.file.clone();
        let (hash, size) = tokio::task::spawn_blocking(move || runner.check(&file))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| {
                // The message names the upload's temporary file: the caller knows it as "the upload".
                let e = e.replace(&d.file.display().to_string(), "it");
                EngineError::Invalid(format!("the upload is not a deployable component: {e}"))
            })?;
        let existing = self.registry.get(&d.activity_type).map(|t| t.record.clone());
        // A new type runs attempts of up to 5 minutes unless told otherwise
        // (a type needs a start-to-close or schedule-to-close timeout).
        let mut settings = existing
            .as_ref()
            .map_or_else(|| serde_json::json!({"start_to_close_timeout": NEW_TYPE_TIMEOUT}), |t| t.settings.clone());
        if let Some(q) = &d.queue {
            settings["queues"] = serde_json::json!([q]);
        }
        apply_sets(&mut settings, &d.set, d.operator)?;
        ActivityConfig::from_settings(&d.activity_type, &settings).map_err(EngineError::Invalid)?;
        let versions = existing.as_ref().map(|t| t.versions.clone()).unwrap_or_default();
        let label = match &d.label {
            Some(l) => l.clone(),
            None => match versions.iter().find(|v| v.hash == hash) {
                // The same content again: make that version current.
                Some(v) => v.label.clone(),
                None => next_label(&versions),
            },
        };
        let target = component_path(&self.components, &hash);
        if !target.exists() {
            std::fs::rename(&d.file, &target)
                .map_err(|e| EngineError::Internal(format!("cannot store the component: {e}")))?;
        }
        self.share_component(&hash).await?;
        let version = VersionRecord {
            label: label.clone(),
            hash,
            size,
            deployed_at: self.clock.now(),
            deployed_by: d.by.clone(),
        };
        let change = TypeChange {
            name: d.activity_type.clone(),
            add_version: Some(version),
            make_current: Some(label),
            settings: Some(settings),
            now: self.clock.now(),
            ..TypeChange::default()
        };
        self.change_type(change).await
    }

    /// Makes an earlier version current: `to`, or the one deployed before
    /// the current one.
    pub async fn rollback(self: &Arc<Self>, name: &str, to: Option<&str>) -> Result<TypeRecord, EngineError> {
        let (record, _) = self.activity_type(name)?;
        let label = match to {
            Some(l) => l.to_string(),
            None => {
                let current = record.versions.iter().position(|v| Some(&v.label) == record.current_version.as_ref());
                let before = current.and_then(|i| i.checked_sub(1)).map(|i| record.versions[i].label.clone());
                before.ok_or_else(|| {
                    EngineError::Precondition(format!("{name} has no version before its current one to roll back to"))
                })?
            }
        };
        let change =
            TypeChange { name: name.into(), make_current: Some(label), now: self.clock.now(), ..Default::default() };
        self.change_type(change).await
    }

    /// Changes a type's settings (`key=value`, as at deploy).
    pub async fn update_type(
        self: &Arc<Self>,
        name: &str,
        set: &[String],
        operator: bool,
    ) -> Result<TypeRecord, EngineError> {
        let (record, _) = self.activity_type(name)?;
        let mut settings = record.settings.clone();
        apply_sets(&mut settings, set, operator)?;
        ActivityConfig::from_settings(name, &settings).map_err(EngineError::Invalid)?;
        let change =
            TypeChange { name: name.into(), settings: Some(settings), now: self.clock.now(), ..Default::default() };
        self.change_type(change).await
    }

    /// Removes a version nothing uses.
    pub async fn remove_version(self: &Arc<Self>, name: &str, label: &str) -> Result<TypeRecord, EngineError> {
        self.activity_type(name)?;
        let change = TypeChange {
            name: name.into(),
            remove_version: Some(label.into()),
            now: self.clock.now(),
            ..Default::default()
        };
        self.change_type(change).await
    }

    /// Puts a component stored here where the other hosts of a shared store
    /// can fetch it, before any type names it.
    async fn share_component(&self, hash: &str) -> Result<(), crate::store::StoreError> {
        if !self.store.shared() {
            return Ok(());
        }
        let path = component_path(&self.components, hash);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| crate::store::StoreError::Backend(e.to_string()))?
            .map_err(|e| crate::store::StoreError::Backend(format!("cannot read the component {hash}: {e}")))?;
        self.store.put_component(hash, bytes).await
    }

    /// Fetches the components of `record` this host does not have yet from
    /// the store (deployed on another host).
    pub(super) async fn fetch_components(&self, record: &TypeRecord) -> Result<(), String> {
        for v in &record.versions {
            let target = component_path(&self.components, &v.hash);
            if target.exists() {
                continue;
            }
            let bytes = self.store.component(&v.hash).await.map_err(|e| e.to_string())?.ok_or_else(|| {
                format!(
                    "version {} (blake3 {}) is in neither {} nor the store",
                    v.label,
                    v.hash,
                    self.components.display()
                )
            })?;
            let tmp = self.components.join(format!(".fetch-{}", uuid::Uuid::now_v7()));
            tokio::task::spawn_blocking(move || {
                use std::io::Write as _;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &target)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot store version {} here: {e}", v.label))?;
        }
        Ok(())
    }

    /// Commits a type change, then installs the type as it now is.
    async fn change_type(self: &Arc<Self>, change: TypeChange) -> Result<TypeRecord, EngineError> {
        let _serial = self.type_changes.lock().await;
        let record = self.store.change_type(change).await?;
        self.fetch_components(&record).await.map_err(EngineError::Internal)?;
        self.install_blocking(record.clone()).await.map_err(EngineError::Internal)?;
        Ok(record)
    }

    /// `install`, on a blocking thread: loading a component may compile it
    /// (seconds of cranelift), which must not hold up an async worker.
    pub(super) async fn install_blocking(self: &Arc<Self>, record: TypeRecord) -> Result<(), String> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.install(record)).await.map_err(|e| e.to_string())?
    }

    /// Installs a stored type: its settings, its versions' components, its
    /// slots and the queues it is served on.
    pub(super) fn install(self: &Arc<Self>, record: TypeRecord) -> Result<(), String> {
        let name = record.name.clone();
        let config = ActivityConfig::from_settings(&name, &record.settings)?;
        let files: Vec<(String, PathBuf)> =
            record.versions.iter().map(|v| (v.label.clone(), component_path(&self.components, &v.hash))).collect();
        self.runner.install(&name, &config, &files).map_err(|e| format!("activity type {name}: {e}"))?;
        let old = self.registry.get(&name);
        let slots = match (&old, config.slots) {
            // Same cap: keep the semaphore, whose permits running attempts hold.
            (Some(o), Some(n)) if o.config.slots == Some(n) => o.slots.clone(),
            (_, n) => n.map(|n| Arc::new(Semaphore::new(n as usize))),
        };
        let queues: Vec<String> = config.queues.iter().cloned().chain([host_queue(&self.host_id)]).collect();
        let state = Arc::new(TypeState { config, slots, record: record.clone() });
        self.registry.types.write().expect("types lock").insert(name.clone(), state);
        {
            let mut current = self.registry.current.write().expect("versions lock");
            let mut map = (**current).clone();
            match &record.current_version {
                Some(v) => map.insert(name.clone(), v.clone()),
                None => map.remove(&name),
            };
            *current = Arc::new(map);
        }
        self.serve(&name, &queues);
        Ok(())
    }

    /// Serves type `name` on exactly `queues`, starting a dispatcher for a
    /// queue served for the first time.
    fn serve(self: &Arc<Self>, name: &str, queues: &[String]) {
        let mut started = Vec::new();
        {
            let mut all = self.registry.queues.write().expect("queues lock");
            for (qname, q) in all.iter() {
                let mut types = q.types.write().expect("queue types lock");
                let wanted = queues.contains(qname);
                let has = types.iter().any(|t| t == name);
                if wanted && !has {
                    types.push(name.to_string());
                } else if !wanted && has {
                    types.retain(|t| t != name);
                }
            }
            for qname in queues {
                if all.contains_key(qname) {
                    continue;
                }
                let qc = self.registry.queue_configs.get(qname).cloned().unwrap_or_default();
                let q = Arc::new(Queue {
                    name: qname.clone(),
                    slots: Arc::new(Semaphore::new(qc.slots as usize)),
                    slots_total: qc.slots as usize,
                    types: RwLock::new(vec![name.to_string()]),
                    rate_limit: qc.rate_limit,
                    idle: Default::default(),
                });
                all.insert(qname.clone(), q.clone());
                started.push(q);
            }
        }
        for q in started {
            tokio::spawn(dispatch::run(self.clone(), q));
        }
        // A type now served on a queue may have a backlog there.
        for q in queues {
            self.wake.wake_queue(q);
        }
    }

    /// At start: `sluice.toml`'s types are declarations — a component that
    /// changed is deployed as a new version, the settings written are
    /// applied — then every stored type is installed.
    pub(super) async fn load_types(self: &Arc<Self>, config: &Config) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.components)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", self.components.display()))?;
        let stored: HashMap<String, TypeRecord> =
            self.store.types().await?.into_iter().map(|t| (t.name.clone(), t)).collect();
        for (name, a) in &config.activities {
            let runner = self.runner.clone();
            let path = a.component.clone();
            let (hash, size) = tokio::task::spawn_blocking(move || runner.check(&path))
                .await?
                .map_err(|e| anyhow::anyhow!("activity type {name}: {e}"))?;
            let target = component_path(&self.components, &hash);
            if !target.exists() {
                let tmp = self.components.join(format!(".copy-{}", uuid::Uuid::now_v7()));
                std::fs::copy(&a.component, &tmp).and_then(|_| std::fs::rename(&tmp, &target)).map_err(|e| {
                    anyhow::anyhow!("activity type {name}: cannot copy {} into the store: {e}", a.component.display())
                })?;
            }
            self.share_component(&hash).await?;
            let old = stored.get(name);
            let current_hash = old.and_then(|t| {
                t.versions.iter().find(|v| Some(&v.label) == t.current_version.as_ref()).map(|v| v.hash.clone())
            });
            let mut change = TypeChange { name: name.clone(), now: self.clock.now(), ..Default::default() };
            if current_hash.as_deref() != Some(hash.as_str()) {
                let versions = old.map(|t| t.versions.clone()).unwrap_or_default();
                let label =
                    versions.iter().find(|v| v.hash == hash).map_or_else(|| next_label(&versions), |v| v.label.clone());
                change.add_version = Some(VersionRecord {
                    label: label.clone(),
                    hash,
                    size,
                    deployed_at: self.clock.now(),
                    deployed_by: "sluice.toml".into(),
                });
                change.make_current = Some(label);
            }
            if old.is_none_or(|t| t.settings != a.settings) {
                change.settings = Some(a.settings.clone());
            }
            if change.add_version.is_some() || change.settings.is_some() {
                self.store.change_type(change).await?;
            }
        }
        for record in self.store.types().await? {
            let name = record.name.clone();
            let installed = match self.fetch_components(&record).await {
                Ok(()) => self.install_blocking(record).await,
                Err(e) => Err(e),
            };
            if let Err(e) = installed {
                if config.activities.contains_key(&name) {
                    anyhow::bail!(e);
                }
                // A deployed type that cannot load here must not stop the others.
                tracing::error!("{e}; its attempts wait until it is deployed again");
            }
        }
        Ok(())
    }
}

/// `v<n+1>` for a type with `versions`, skipping labels taken.
fn next_label(versions: &[VersionRecord]) -> String {
    (versions.len() + 1..)
        .map(|n| format!("v{n}"))
        .find(|l| versions.iter().all(|v| &v.label != l))
        .expect("a free label")
}

fn check_label(label: &str) -> Result<(), EngineError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if !ok {
        return Err(EngineError::Invalid(format!(
            "version label {label:?}: use 1-64 letters, digits, '.', '_', '-' or '+'"
        )));
    }
    Ok(())
}

/// Applies `key=value` settings (TOML values, else plain strings; dotted
/// keys reach into tables, e.g. `retry.maximum_attempts=3`).
pub fn apply_sets(settings: &mut serde_json::Value, sets: &[String], operator: bool) -> Result<(), EngineError> {
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .ok_or_else(|| EngineError::Invalid(format!("--set {set:?}: write key=value, e.g. slots=4")))?;
        let key = key.trim();
        let path: Vec<&str> = key.split('.').collect();
        if key.is_empty() || path.iter().any(|p| p.is_empty()) {
            return Err(EngineError::Invalid(format!("--set {set:?}: empty key")));
        }
        if key == "component" {
            return Err(EngineError::Invalid("--set component: deploy a component instead".into()));
        }
        if crate::config::GRANT_KEYS.contains(&path[0]) && !operator {
            return Err(EngineError::BadToken(format!(
                "--set {key}: changing what a guest may reach (env, dirs, dirs_rw, allow_http) needs an operator token"
            )));
        }
        let value = match toml::from_str::<toml::Table>(&format!("v = {}", raw.trim())) {
            Ok(mut t) => serde_json::to_value(t.remove("v")).map_err(|e| EngineError::Invalid(e.to_string()))?,
            Err(_) => serde_json::Value::String(raw.trim().to_string()),
        };
        let mut node = &mut *settings;
        for part in &path[..path.len() - 1] {
            if !node.get(*part).is_some_and(|n| n.is_object()) {
                node[*part] = serde_json::json!({});
            }
            node = &mut node[*part];
        }
        node[path[path.len() - 1]] = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_set_by_dotted_keys_with_toml_values() {
        let mut s = serde_json::json!({"slots": 2});
        let sets = ["slots=4", "retry.maximum_attempts=3", "start_to_close_timeout=30s", "queues=[\"a\", \"b\"]"];
        apply_sets(&mut s, &sets.map(String::from), false).unwrap();
        assert_eq!(
            s,
            serde_json::json!({"slots": 4, "retry": {"maximum_attempts": 3}, "start_to_close_timeout": "30s", "queues": ["a", "b"]})
        );
        ActivityConfig::from_settings("t", &s).unwrap();
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let err = |sets: &[&str], operator: bool| {
            let mut s = serde_json::json!({});
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            match apply_sets(&mut s, &sets, operator) {
                Err(e) => e.to_string(),
                Ok(()) => ActivityConfig::from_settings("t", &s).unwrap_err(),
            }
        };
        assert!(err(&["slots"], false).contains("write key=value"));
        assert!(err(&["component=x.wasm"], false).contains("deploy a component instead"));
        assert!(err(&["env.KEY=v"], false).contains("needs an operator token"));
        assert!(err(&["slots=0"], true).contains("activities.t.slots: must be at least 1"));
        assert!(err(&["colour=1"], true).contains("unknown field `colour`"));
        assert!(err(&["start_to_close_timeout=soon"], true).contains("start_to_close_timeout: invalid duration"));
        let e = err(&["dirs=[\"rel/path\"]", "start_to_close_timeout=1s"], true);
        assert!(e.contains("give an absolute host path"), "{e}");
    }

    #[test]
    fn labels_count_up_and_are_checked() {
        let v = |label: &str| VersionRecord {
            label: label.into(),
            hash: String::new(),
            size: 0,
            deployed_at: 0,
            deployed_by: String::new(),
        };
        assert_eq!(next_label(&[]), "v1");
        assert_eq!(next_label(&[v("v1"), v("v3")]), "v4");
        assert_eq!(next_label(&[v("v2"), v("x")]), "v3");
        assert!(check_label("2024-11.rc1+b").is_ok());
        assert!(check_label("has space").unwrap_err().to_string().contains("use 1-64 letters"));
    }
}
