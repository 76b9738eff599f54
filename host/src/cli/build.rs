//! `sluice build`: a guest folder in → an activity component out.

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use crate::build::{self, BuildOptions, Language, Toolchains};

#[derive(Debug, Args)]
#[command(after_help = "\
Languages, detected from the folder's files:
  Rust        Cargo.toml  cargo, target wasm32-wasip2 (added with rustup)
  Python      app.py      componentize-py, from PyPI, in a virtual environment
  JavaScript  app.js      componentize-js and esbuild, from npm
  C           *.c         clang-19, lld-19, wasi-libc, jsmn: Debian packages (apt-get)

Python and JavaScript toolchains are installed into the toolchain folder on
first use; builds work offline after that. See docs/ for each language.")]
pub struct BuildArgs {
    /// The guest folder.
    pub dir: PathBuf,

    /// Where to write the component [default: <DIR>/<folder name>.wasm].
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// The guest's language, when detection is not wanted.
    #[arg(long, value_enum)]
    pub lang: Option<Language>,

    /// Build against the world that may import wasi:http (outbound requests
    /// to hosts the activity type allows with `allow_http`).
    #[arg(long)]
    pub http: bool,

    /// Where toolchains are installed [default: ~/.cache/sluice/toolchains].
    #[arg(long, env = "SLUICE_TOOLCHAINS", value_name = "DIR")]
    pub toolchains: Option<PathBuf>,
}

pub fn build(args: BuildArgs) -> anyhow::Result<Exit> {
    let opts = BuildOptions {
        dir: args.dir,
        out: args.out,
        language: args.lang,
        http: args.http,
        toolchains: Toolchains::new(args.toolchains)?,
    };
    let started = std::time::Instant::now();
    let built = build::build(&opts)?;
    say!(
        "built {} ({} guest, {}) in {:.1}s",
        built.component.display(),
        built.language,
        bytesize::ByteSize(built.size),
        started.elapsed().as_secs_f64()
    );
    Ok(Exit::Completed)
}
