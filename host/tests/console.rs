//! The web console in a real browser: headless Debian Chromium driven by
//! playwright-core (`tests/console`, installed by `npm ci` there) against
//! the real `sluice serve`. Screenshots are left in
//! `target/console-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::server::Server;

#[test]
fn the_console_signs_in_shows_live_progress_and_cancels_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/console");
    assert!(
        script.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/console (.ci/run does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (.ci/run does), or set CHROMIUM"
    );
    let hash = sluice::api::hash_token("console-token");
    let (server, _dir) = Server::start(&format!("[server.auth]\ntokens_sha256 = [\"{hash}\"]\n"));
    let shots = root.join("target/console-screenshots");
    let out = Command::new("node")
        .arg(script.join("console.test.mjs"))
        .arg(format!("http://{}/", server.http))
        .arg("console-token")
        .arg(&shots)
        .current_dir(&script)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    for step in [
        "a wrong token is refused",
        "its progress bar advances live",
        "cancelled from the console",
        "fits a phone-width window",
    ] {
        assert!(stdout.contains(step), "{step} not reached:\n{stdout}");
    }
    assert!(shots.join("activity.png").exists());
}
