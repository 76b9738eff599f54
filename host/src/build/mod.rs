//! `sluice build`: turns a guest folder — Rust, Python, JavaScript or C —
//! into an activity component, installing the language's toolchain on first
//! use (see `toolchain`). The WIT contract and the SDKs are embedded (`sdk`),
//! so a build needs no checkout of this repository.

mod c;
mod js;
mod python;
mod rust;
pub mod sdk;
pub mod toolchain;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

pub use toolchain::Toolchains;

/// The languages a guest can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    Python,
    #[value(alias = "javascript")]
    Js,
    C,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
            Language::C => "C",
        })
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The guest folder.
    pub dir: PathBuf,
    /// Where to write the component; `<dir>/<folder name>.wasm` by default.
    pub out: Option<PathBuf>,
    /// The language; detected from the folder's files when `None`.
    pub language: Option<Language>,
    /// Target the world that may import `wasi:http` (Python, JS, C; a Rust
    /// guest picks its world in its own bindings).
    pub http: bool,
    pub toolchains: Toolchains,
}

/// The finished build.
#[derive(Debug)]
pub struct Built {
    pub language: Language,
    pub component: PathBuf,
    pub size: u64,
}

/// Detects the language of the guest in `dir` from its entry file.
pub fn detect(dir: &Path) -> anyhow::Result<Language> {
    if dir.join("Cargo.toml").is_file() {
        return Ok(Language::Rust);
    }
    if dir.join("app.py").is_file() {
        return Ok(Language::Python);
    }
    if dir.join("app.js").is_file() {
        return Ok(Language::Js);
    }
    if !c::sources(dir)?.is_empty() {
        return Ok(Language::C);
    }
    bail!(
        "cannot tell the language of the guest in {}: expected Cargo.toml (Rust), app.py (Python), \
         app.js (JavaScript) or *.c files (C); pass --lang to say",
        dir.display()
    )
}

/// Builds the guest in `opts.dir` into a component.
pub fn build(opts: &BuildOptions) -> anyhow::Result<Built> {
    if !opts.dir.is_dir() {
        bail!("the guest folder {} does not exist", opts.dir.display());
    }
    let dir = opts.dir.canonicalize().with_context(|| format!("cannot resolve {}", opts.dir.display()))?;
    let language = match opts.language {
        Some(l) => l,
        None => detect(&dir)?,
    };
    let out = match &opts.out {
        Some(o) => std::path::absolute(o).with_context(|| format!("cannot resolve {}", o.display()))?,
        None => dir.join(format!("{}.wasm", folder_name(&dir))),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut scratch = tempfile::Builder::new()
        .prefix("sluice-build-")
        .tempdir()
        .context("cannot create a scratch folder for the build")?;
    // SLUICE_BUILD_KEEP=1 keeps the generated bindings and bundles to look at.
    if std::env::var_os("SLUICE_BUILD_KEEP").is_some() {
        scratch.disable_cleanup(true);
        say!("keeping the build's scratch folder {}", scratch.path().display());
    }
    let world = if opts.http { sdk::HTTP_WORLD } else { sdk::WORLD };
    let wit = scratch.path().join("wit");
    if language != Language::Rust {
        sdk::write_wit(&wit)?;
    }
    let job = Job { dir: &dir, out: &out, scratch: scratch.path(), wit: &wit, world, toolchains: &opts.toolchains };
    match language {
        Language::Rust => rust::build(&job),
        Language::Python => python::build(&job),
        Language::Js => js::build(&job),
        Language::C => c::build(&job),
    }
    .with_context(|| format!("cannot build the {language} guest in {}", dir.display()))?;
    // The preamble says what the file is; no need to read a large guest whole.
    let mut header = [0u8; 8];
    let mut file =
        std::fs::File::open(&out).with_context(|| format!("the build wrote no component at {}", out.display()))?;
    let size = file.metadata()?.len();
    if std::io::Read::read_exact(&mut file, &mut header).is_err() || !wasmparser::Parser::is_component(&header) {
        bail!("the build of {} produced {}, which is not a WebAssembly component", dir.display(), out.display());
    }
    Ok(Built { language, component: out, size })
}

/// One build in progress: absolute paths and the chosen world.
struct Job<'a> {
    dir: &'a Path,
    out: &'a Path,
    scratch: &'a Path,
    /// The WIT package (with its WASI deps), written into the scratch folder.
    wit: &'a Path,
    world: &'a str,
    toolchains: &'a Toolchains,
}

fn folder_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "activity".into())
}
