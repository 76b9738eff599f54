//! The on-disk cache of compiled components, keyed by the component's
//! content hash and the engine's compatibility hash, so a component is
//! compiled once per host version and settings (large Python or JS guests
//! take seconds to compile) and later loads only deserialize.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept. `None` disables the disk cache.
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The default location: `$SLUICE_CACHE_DIR`, else the user's cache dir.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("SLUICE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("sluice").join("components")))
    }

    /// Returns the compiled component for `bytes`, from the cache when it
    /// holds an entry for this engine, compiling (and storing) it otherwise.
    /// `hash` is the content hash of `bytes`; `compat` the engine's
    /// compatibility hash.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
        compat: u64,
    ) -> anyhow::Result<(Component, CacheUse)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheUse::Disabled));
        };
        let entry = dir.join(format!("{hash}-{compat:016x}.cwasm"));
        // Read into memory rather than mapping the file: a mapped entry that
        // someone truncates later would crash the host with SIGBUS.
        if let Ok(compiled) = fs::read(&entry) {
            // SAFETY: entries are written by `Component::serialize` of an
            // engine with the same compatibility hash, into a directory only
            // the host writes; a damaged entry fails the header checks of
            // `deserialize` and is replaced below.
            match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(err) => {
                    tracing::warn!("ignoring unreadable compiled-component cache entry {}: {err:#}", entry.display())
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = store(dir, &entry, &component) {
            tracing::warn!("cannot write the compiled-component cache {}: {err:#}", dir.display());
        }
        Ok((component, CacheUse::Miss))
    }
}

/// What the cache did for one load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
    Disabled,
}

/// Writes atomically (temp file + rename) so a crash never leaves a torn entry.
fn store(dir: &Path, entry: &Path, component: &Component) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = component.serialize()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&bytes)?;
    tmp.persist(entry)?;
    Ok(())
}
