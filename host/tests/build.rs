//! `sluice build` for each language, and its errors: each names what went
//! wrong and where (the tool's own diagnostics included).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sluice_build(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("build").args(args).arg(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A guest folder with `files`.
fn guest(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn run(component: &Path, input: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(component)
        .args(["--input", input, "--cache-dir"])
        .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
        .output()
        .unwrap()
}

#[test]
fn a_rust_guest_builds_with_cargo() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let out_dir = tempfile::tempdir().unwrap();
    let wasm = out_dir.path().join("hello.wasm");
    let out = sluice_build(&["-o", wasm.to_str().unwrap()], &examples, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("(Rust guest,"), "{stderr}");
    let out = run(&wasm, r#"{"name":"Ada"}"#);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"greeting":"Hello, Ada!"}"#);
}

#[test]
fn a_rust_crate_that_is_not_a_cdylib_is_refused_with_the_fix() {
    let dir = guest(&[(
        "Cargo.toml",
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )]);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(err.contains("cargo built no .wasm file; is the package a `crate-type = [\"cdylib\"]` library?"), "{err}");
}

#[test]
fn folders_without_a_known_entry_file_are_refused() {
    let dir = guest(&[("README.md", "nothing to build")]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(
        err.contains("cannot tell the language of the guest in")
            && err.contains(
                "expected Cargo.toml (Rust), app.py (Python), app.js (JavaScript) or *.c files (C); pass --lang"
            ),
        "{err}"
    );
    let err = failure(&sluice_build(&[], &dir.path().join("missing"), &[]));
    assert!(err.contains("the guest folder") && err.contains("missing does not exist"), "{err}");
    let err = failure(&sluice_build(&["--lang", "python"], dir.path(), &[]));
    assert!(err.contains("a Python guest needs app.py in"), "{err}");
}

#[test]
fn python_errors_name_the_problem() {
    // No @sluice.activity: refused at build time.
    let dir = guest(&[("app.py", "def hello(ctx, input):\n    return input\n")]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(
        err.contains("componentize-py failed") && err.contains("app.py has no function marked @sluice.activity"),
        "{err}"
    );

    // A syntax error: Python's own message, with the line.
    let dir = guest(&[("app.py", "import sluice\n@sluice.activity\ndef hello(ctx, input)\n    return 1\n")]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(err.contains("SyntaxError") && err.contains("app.py"), "{err}");

    // Any other exception is a retryable failure typed by its class.
    let dir = guest(&[(
        "app.py",
        "import sluice\n@sluice.activity\ndef boom(ctx, input):\n    raise ValueError('bad value: ' + input['v'])\n",
    )]);
    let out = sluice_build(&[], dir.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let out = run(&dir.path().join(format!("{name}.wasm")), r#"{"v":"x"}"#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("application error ValueError (retryable): bad value: x"), "{stderr}");
}

#[test]
fn javascript_and_c_compile_errors_are_shown() {
    let dir = guest(&[("app.js", "export default function (ctx, input) {\n  return {;\n}\n")]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(err.contains("bundling app.js with esbuild failed") && err.contains("app.js:2"), "{err}");

    let dir = guest(&[(
        "main.c",
        "#include \"sluice.h\"\nsluice_result sluice_activity_run(const char *in, size_t n) { return oops; }\n",
    )]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(
        err.contains("compiling with clang-19 failed") && err.contains("main.c:2") && err.contains("oops"),
        "{err}"
    );

    // A C guest that forgets the entry point: the linker says which.
    let dir = guest(&[("main.c", "int unrelated(void) { return 1; }\n")]);
    let err = failure(&sluice_build(&[], dir.path(), &[]));
    assert!(err.contains("undefined symbol: sluice_activity_run"), "{err}");
}

#[test]
fn a_toolchain_that_cannot_be_installed_says_which_and_why() {
    let toolchains = tempfile::tempdir().unwrap();
    let tc = toolchains.path().to_str().unwrap();
    let dir = guest(&[("app.py", "import sluice\n")]);
    let err = failure(&sluice_build(
        &[],
        dir.path(),
        &[("SLUICE_TOOLCHAINS", tc), ("SLUICE_PYTHON", "/nonexistent/python3")],
    ));
    assert!(
        err.contains("cannot install the Python toolchain (componentize-py==0.25.1 from PyPI)")
            && err.contains("`/nonexistent/python3` was not found"),
        "{err}"
    );

    let dir = guest(&[("app.js", "export default () => 1;\n")]);
    let empty = tempfile::tempdir().unwrap();
    let err =
        failure(&sluice_build(&[], dir.path(), &[("SLUICE_TOOLCHAINS", tc), ("PATH", empty.path().to_str().unwrap())]));
    assert!(
        err.contains("cannot install the JavaScript toolchain")
            && err.contains("checking Node.js (needs node >= 18 and npm): `node` was not found"),
        "{err}"
    );
    // Nothing half-installed is taken for a toolchain next time.
    assert!(!toolchains.path().join("python-componentize-py-0.25.1/.installed").exists());
}

#[test]
fn builds_work_offline_once_the_toolchains_are_installed() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let out_dir = tempfile::tempdir().unwrap();
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test cuts the network with `unshare -n`, which needs root (or CAP_SYS_ADMIN): {probe:?}"
    );
    for lang in ["python", "js", "c"] {
        let src = examples.join(lang).join("hello");
        let wasm = out_dir.path().join(format!("{lang}.wasm"));
        // Online first, so the toolchain is installed...
        let out = sluice_build(&["-o", wasm.to_str().unwrap()], &src, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::remove_file(&wasm).unwrap();
        // ...then again in a network namespace with no interfaces up.
        let out = Command::new("unshare")
            .args(["-n", env!("CARGO_BIN_EXE_sluice"), "build", "-o", wasm.to_str().unwrap()])
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{lang} offline: {}", String::from_utf8_lossy(&out.stderr));
        let out = run(&wasm, r#"{"name":"Ada"}"#);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"greeting":"Hello, Ada!"}"#, "{lang}");
    }
}

/// Every SDK can hand work off: it logs its task token and returns pending.
#[test]
fn pending_with_the_task_token_in_every_sdk() {
    let guests = [
        guest(&[(
            "app.py",
            "import sluice\n@sluice.activity\ndef later(ctx, input):\n    ctx.log(sluice.LogLevel.INFO, 'handed off', token=ctx.task_token())\n    raise sluice.Pending()\n",
        )]),
        guest(&[(
            "app.js",
            "import { Pending } from \"sluice\";\nexport default function (ctx) {\n  ctx.log(\"info\", \"handed off\", { token: ctx.taskToken() });\n  throw new Pending();\n}\n",
        )]),
        guest(&[(
            "later.c",
            "#include <stdlib.h>\n#include \"sluice.h\"\nsluice_result sluice_activity_run(const char *in, size_t n) {\n    char *token = sluice_task_token();\n    const char *fields[] = {\"token\", token};\n    sluice_log(SLUICE_INFO, \"handed off\", fields, 1);\n    free(token);\n    return sluice_pending();\n}\n",
        )]),
    ];
    for dir in &guests {
        let wasm = dir.path().join("later.wasm");
        let out = sluice_build(&["-o", wasm.to_str().unwrap()], dir.path(), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = run(&wasm, "null");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("log info handed off token=local:"), "{stderr}");
        assert!(stderr.contains("pending after"), "{stderr}");
    }
}
