//! Builds the example guests (examples/, their own cargo workspace) for
//! wasm32-wasip2 and exposes each component's path as a constant.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().parent().unwrap().to_path_buf();
    let examples = root.join("examples");
    watch(&examples, &root);

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // Share one guest target dir between profiles (test, bench) so guests
    // build once: <target>/wasm-guests, where OUT_DIR is
    // <target>/<profile>/build/<pkg>/out.
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .map(|t| t.join("wasm-guests"))
        .unwrap_or_else(|| out_dir.join("wasm-guests"));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TARGET, "--workspace", "--manifest-path"])
        .arg(examples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo to build the guest components");
    if !status.success() {
        panic!(
            "building the example guests failed (see above). Is the target installed? \
             Run `rustup target add {TARGET}`."
        );
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    let mut consts = String::new();
    for member in members(&examples) {
        let file = wasm_dir.join(format!("{}.wasm", member.replace('-', "_")));
        assert!(file.exists(), "guest {member} was built but {} is missing", file.display());
        consts.push_str(&format!(
            "/// Path of the compiled `examples/{member}` component.\n\
             pub const {}: &str = {:?};\n",
            member.to_uppercase().replace('-', "_"),
            file.display().to_string()
        ));
    }
    fs::write(out_dir.join("programs.rs"), consts).unwrap();
}

/// The guest crates: every folder of examples/ with a Cargo.toml.
fn members(examples: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(examples)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn watch(examples: &Path, root: &Path) {
    for path in [
        examples.join("Cargo.toml"),
        examples.join("Cargo.lock"),
        root.join("wit"),
        root.join("guest-sdk/rust/src"),
        root.join("guest-sdk/rust/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for member in members(examples) {
        println!("cargo:rerun-if-changed={}", examples.join(&member).join("src").display());
        println!("cargo:rerun-if-changed={}", examples.join(&member).join("Cargo.toml").display());
    }
}
