//! The WIT contract and the guest SDKs, embedded in the binary so that
//! `sluice build` works from any folder with nothing but `sluice` installed.

use std::fs;
use std::path::Path;

use anyhow::Context as _;

/// `(path inside wit/, contents)`: the package and the WASI packages the
/// HTTP world imports.
const WIT: &[(&str, &str)] = &[
    ("activity.wit", include_str!("../../../wit/activity.wit")),
    ("deps/cli/cli.wit", include_str!("../../../wit/deps/cli/cli.wit")),
    ("deps/clocks/clocks.wit", include_str!("../../../wit/deps/clocks/clocks.wit")),
    ("deps/filesystem/filesystem.wit", include_str!("../../../wit/deps/filesystem/filesystem.wit")),
    ("deps/http/http.wit", include_str!("../../../wit/deps/http/http.wit")),
    ("deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    ("deps/random/random.wit", include_str!("../../../wit/deps/random/random.wit")),
    ("deps/sockets/sockets.wit", include_str!("../../../wit/deps/sockets/sockets.wit")),
];

pub const PYTHON: &[(&str, &str)] = &[
    ("sluice/__init__.py", include_str!("../../../guest-sdk/python/sluice/__init__.py")),
    ("sluice/_export.py", include_str!("../../../guest-sdk/python/sluice/_export.py")),
    ("sluice/http.py", include_str!("../../../guest-sdk/python/sluice/http.py")),
];

pub const JS: &[(&str, &str)] = &[("sluice.js", include_str!("../../../guest-sdk/js/sluice.js"))];

pub const C: &[(&str, &str)] = &[
    ("sluice.h", include_str!("../../../guest-sdk/c/sluice.h")),
    ("sluice.c", include_str!("../../../guest-sdk/c/sluice.c")),
];

/// The plain world, and the one that may also use `wasi:http`.
pub const WORLD: &str = "activity-component";
pub const HTTP_WORLD: &str = "activity-http-component";

/// Writes the WIT folder into `dir`.
pub fn write_wit(dir: &Path) -> anyhow::Result<()> {
    write_all(dir, WIT)
}

/// Writes `files` under `dir`, creating folders as needed.
pub fn write_all(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (name, contents) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
