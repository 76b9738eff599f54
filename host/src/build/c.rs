//! C guests: `*.c` files implementing `sluice_activity_run` (see
//! guest-sdk/c/sluice.h), compiled by Debian's clang-19 against wasi-libc as
//! a WASI preview1 reactor, then made into a component with the preview1
//! adapter. The bindings (wit-bindgen's C generator) and the componentization
//! (wit-component) run inside `sluice` itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

use super::{Job, sdk, toolchain};

const CLANG: &str = "clang-19";

/// Files the Debian packages put in place; all present means installed.
const REQUIRED: &[&str] = &[
    "/usr/bin/clang-19",
    "/usr/bin/wasm-ld-19",
    "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a",
    "/usr/lib/wasm32-wasi/libc.a",
    "/usr/lib/wasm32-wasi/crt1-reactor.o",
    "/usr/include/jsmn.h",
];

/// The guest's C sources, sorted.
pub(super) fn sources(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "c") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

pub(super) fn build(job: &Job) -> anyhow::Result<()> {
    let sources = sources(job.dir)?;
    if sources.is_empty() {
        bail!("a C guest needs at least one .c file in {}", job.dir.display());
    }
    ensure_toolchain(job.toolchains)?;
    let gen_dir = job.scratch.join("gen");
    generate_bindings(job.wit, job.world, &gen_dir)?;
    sdk::write_all(&gen_dir, sdk::C)?;

    let core = job.scratch.join("core.wasm");
    toolchain::run(
        Command::new(CLANG)
            .args(["--target=wasm32-wasi", "--sysroot=/usr", "-mexec-model=reactor", "-O2", "-std=gnu11"])
            .args(["-Wall", "-Wno-unused-parameter"])
            .arg("-I")
            .arg(&gen_dir)
            .arg("-I")
            .arg(job.dir)
            .args(&sources)
            .arg(gen_dir.join("activity_component.c"))
            .arg(gen_dir.join("sluice.c"))
            .arg(gen_dir.join("activity_component_component_type.o"))
            .arg("-o")
            .arg(&core)
            .current_dir(job.dir),
        "compiling with clang-19",
    )?;

    let module = std::fs::read(&core).with_context(|| format!("cannot read {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the compiled module carries no component type (was activity_component_component_type.o linked?)")?
        .validate(true)
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)
        .context("cannot use the WASI preview1 adapter")?
        .encode()
        .context("cannot make a component of the compiled module")?;
    std::fs::write(job.out, component).with_context(|| format!("cannot write {}", job.out.display()))?;
    Ok(())
}

/// Generates `activity_component.{c,h}` and the component-type object for
/// `world` into `out`. Both worlds are renamed to `activity_component`, so
/// the guest's code is the same for either.
fn generate_bindings(wit: &Path, world: &str, out: &Path) -> anyhow::Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit).context("cannot parse the WIT package")?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    let mut files = wit_bindgen_core::Files::default();
    let opts = wit_bindgen_c::Opts { rename_world: Some("activity-component".into()), ..Default::default() };
    opts.build().generate(&mut resolve, world, &mut files).context("cannot generate the C bindings")?;
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        std::fs::write(out.join(name), contents).with_context(|| format!("cannot write {name}"))?;
    }
    Ok(())
}

/// Installs the Debian packages when something is missing: with apt-get as
/// root, otherwise an error saying the command to run.
/// The required files that are not there.
fn missing() -> Vec<&'static str> {
    REQUIRED.iter().copied().filter(|p| !Path::new(p).exists()).collect()
}

fn ensure_toolchain(toolchains: &toolchain::Toolchains) -> anyhow::Result<()> {
    if missing().is_empty() {
        return Ok(());
    }
    let _lock = toolchains.lock("c-apt")?;
    let absent = missing();
    if absent.is_empty() {
        return Ok(());
    }
    let packages = toolchain::C_PACKAGES.join(" ");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        bail!(
            "the C toolchain is not installed ({} missing); install it with:\n    sudo apt-get install {packages}",
            absent.join(", ")
        );
    }
    say!("installing the C toolchain with apt-get: {packages} (first use only)");
    let install = || {
        toolchain::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"])
                .args(toolchain::C_PACKAGES)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &format!("apt-get install {packages} (Debian packages)"),
        )
    };
    if install().is_err() {
        // A fresh machine may not have the package lists yet.
        toolchain::run(Command::new("apt-get").args(["update", "-q"]), "apt-get update")?;
        install()?;
    }
    let still = missing();
    if !still.is_empty() {
        bail!("apt-get installed {packages}, but {} is still missing", still.join(", "));
    }
    Ok(())
}
