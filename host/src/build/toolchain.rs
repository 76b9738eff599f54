//! Toolchains for guest languages: where they live, installing them once
//! (under a lock, so parallel builds do not race), and running their tools
//! with errors that say what failed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail};

/// componentize-py from PyPI, for Python guests.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// componentize-js and esbuild (to bundle app + SDK + npm dependencies)
/// from npm, for JavaScript guests.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";
pub const ESBUILD: &str = "esbuild@0.28.2";
/// Debian packages for C guests: the compiler, the wasm linker, the
/// compiler runtime, the WASI libc and the jsmn JSON tokenizer (header only).
pub const C_PACKAGES: &[&str] = &["clang-19", "lld-19", "libclang-rt-19-dev-wasm32", "wasi-libc", "libjsmn-dev"];

/// The folder holding installed toolchains, one subfolder each.
#[derive(Debug, Clone)]
pub struct Toolchains {
    root: PathBuf,
}

impl Toolchains {
    /// `root`, or `$XDG_CACHE_HOME/sluice/toolchains` (`~/.cache/...`).
    pub fn new(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let root = match root {
            Some(r) => r,
            None => dirs::cache_dir()
                .context("cannot find a cache folder for toolchains; pass --toolchains")?
                .join("sluice")
                .join("toolchains"),
        };
        Ok(Toolchains { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Holds `<root>/<name>.lock` until dropped: one install of `name` at a
    /// time, across processes.
    pub fn lock(&self, name: &str) -> anyhow::Result<File> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create the toolchain folder {}", self.root.display()))?;
        let path = self.root.join(format!("{name}.lock"));
        let lock = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        lock.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(lock)
    }

    /// The folder of toolchain `name`, installing it with `install` first if
    /// no complete install is there. Installs hold a file lock; an install
    /// that was interrupted is started over.
    pub fn ensure(
        &self,
        name: &str,
        what: &str,
        install: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(name);
        let done = dir.join(".installed");
        if done.exists() {
            return Ok(dir);
        }
        let _lock = self.lock(name)?;
        if done.exists() {
            return Ok(dir);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove the partial install {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        say!("installing {what} into {} (first use only)", dir.display());
        install(&dir).with_context(|| format!("cannot install {what}"))?;
        fs::write(&done, what).with_context(|| format!("cannot write {}", done.display()))?;
        Ok(dir)
    }
}

/// Runs `cmd`, capturing its output; on failure the error names `what`,
/// the exit status and the end of what the tool printed.
pub fn run(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("{what}: `{program}` was not found")
        } else {
            anyhow::anyhow!("{what}: cannot run `{program}`: {e}")
        }
    })?;
    if !out.status.success() {
        bail!("{what} failed ({}):\n{}", out.status, tail(&out, 40));
    }
    Ok(out)
}

/// The last `lines` lines of a command's stderr and stdout.
fn tail(out: &Output, lines: usize) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text.push_str(&stdout);
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Installs componentize-py into a virtual environment in `dir`.
pub fn install_python(dir: &Path) -> anyhow::Result<()> {
    let python = std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python).arg("-m").arg("venv").arg(dir),
        "creating a Python virtual environment (needs python3 with venv)",
    )?;
    run(
        Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", COMPONENTIZE_PY]),
        &format!("pip install {COMPONENTIZE_PY} (from PyPI)"),
    )?;
    Ok(())
}

/// Installs componentize-js and esbuild with npm into `dir`.
pub fn install_js(dir: &Path) -> anyhow::Result<()> {
    let version = run(Command::new("node").arg("--version"), "checking Node.js (needs node >= 18 and npm)")?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 18 {
        bail!("componentize-js needs Node.js 18 or newer; `node --version` says {version}");
    }
    fs::write(dir.join("package.json"), "{\"name\":\"sluice-js-toolchain\",\"private\":true}\n")?;
    run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", COMPONENTIZE_JS, ESBUILD])
            .current_dir(dir),
        &format!("npm install {COMPONENTIZE_JS} {ESBUILD} (from npm)"),
    )?;
    Ok(())
}
