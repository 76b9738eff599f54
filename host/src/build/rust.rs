//! Rust guests: a cargo package (a `cdylib` using the `sluice-guest`
//! crate), built in release mode for `wasm32-wasip2`.

use std::process::Command;

use anyhow::{Context as _, bail};

use super::{Job, toolchain};

const TARGET: &str = "wasm32-wasip2";

pub(super) fn build(job: &Job) -> anyhow::Result<()> {
    ensure_target()?;
    let out = toolchain::run(
        Command::new("cargo")
            .args(["build", "--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(job.dir.join("Cargo.toml"))
            .current_dir(job.dir),
        "cargo build",
    )?;
    // The package's own cdylib: the last artifact cargo reports with a .wasm file.
    let mut wasm = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        for file in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = file.as_str().filter(|f| f.ends_with(".wasm")) {
                wasm = Some(f.to_string());
            }
        }
    }
    let Some(wasm) = wasm else {
        bail!("cargo built no .wasm file; is the package a `crate-type = [\"cdylib\"]` library?");
    };
    std::fs::copy(&wasm, job.out).with_context(|| format!("cannot copy {wasm} to {}", job.out.display()))?;
    Ok(())
}

/// Adds the wasm32-wasip2 target with rustup if it is missing.
fn ensure_target() -> anyhow::Result<()> {
    let installed = toolchain::run(Command::new("rustup").args(["target", "list", "--installed"]), "rustup")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    say!("installing the Rust target {TARGET} with rustup (first use only)");
    toolchain::run(Command::new("rustup").args(["target", "add", TARGET]), "rustup target add wasm32-wasip2")?;
    Ok(())
}
