//! A real PostgreSQL server for tests and benchmarks: the one named by
//! `SLUICE_TEST_POSTGRES` (a URL of a server where the user may create
//! databases; `.ci/run` starts one), else a throwaway cluster started here
//! from Debian's `postgresql` binaries on a free loopback port, in a
//! temporary directory, stopped when this process ends. Each caller gets a
//! database of its own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A URL of a new, empty database.
pub fn fresh_database() -> String {
    let server = server();
    let name = format!("sluice_{}", uuid_like());
    // On a thread of its own: callers may be inside a runtime already.
    let (url, sql) = (server.clone(), format!("CREATE DATABASE {name}"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("PostgreSQL answers");
            tokio::spawn(conn);
            client.batch_execute(&sql).await.expect("a database is created");
        })
    })
    .join()
    .unwrap();
    with_database(&server, &name)
}

fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|i| *i > base.find("://").unwrap_or(0) + 2).unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

/// The server's URL (its `postgres` database).
pub fn server() -> String {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("SLUICE_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => start_cluster(),
        })
        .clone()
}

fn bin_dir() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        find_bin().unwrap_or_else(|| {
            install();
            find_bin().unwrap_or_else(|| {
                panic!(
                    "these tests need PostgreSQL: install Debian's postgresql package (apt-get install postgresql), \
                     or set SLUICE_TEST_POSTGRES to the URL of a server where the user may create databases"
                )
            })
        })
    })
    .clone()
}

/// Installs Debian's PostgreSQL, as the guest toolchains are installed on
/// first use, when this runs as root with apt-get.
fn install() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 || Command::new("apt-get").arg("--version").output().is_err() {
        return;
    }
    eprintln!("installing Debian's postgresql for the tests (apt-get)...");
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
}

fn find_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|dirs| {
        let mut versions: Vec<PathBuf> =
            dirs.flatten().map(|d| d.path().join("bin")).filter(|b| b.join("initdb").exists()).collect();
        versions.sort();
        versions.pop()
    })
}

/// initdb refuses to run as root: the cluster then belongs to `postgres`.
fn owner() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", "postgres"]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn as_owner(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Clusters of earlier runs that were stopped (no `postmaster.pid` left).
fn remove_stopped_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let stale =
            e.file_name().to_string_lossy().starts_with("sluice-pg-") && !e.path().join("data/postmaster.pid").exists();
        if stale {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn start_cluster() -> String {
    remove_stopped_clusters();
    let bin = bin_dir();
    let dir = std::env::temp_dir().join(format!("sluice-pg-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some((uid, gid)) = owner() {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    let data = dir.join("data");
    let out = as_owner(Command::new(bin.join("initdb")).args(["-A", "trust", "-U", "postgres", "-D"]).arg(&data))
        .output()
        .expect("initdb runs");
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    spawn_server(&bin, &data, &dir, port);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready =
            Command::new(bin.join("pg_isready")).args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()]).status();
        if ready.is_ok_and(|s| s.success()) {
            return url;
        }
        assert!(Instant::now() < deadline, "the test PostgreSQL did not start (see {})", dir.join("log").display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server from a thread that lives as long as the process: the
/// server gets SIGTERM when that thread (so the process) ends.
fn spawn_server(bin: &Path, data: &Path, dir: &Path, port: u16) {
    let (bin, data, dir) = (bin.to_path_buf(), data.to_path_buf(), dir.to_path_buf());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"])
            .arg("-k")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log);
        as_owner(&mut cmd);
        // SAFETY: prctl is async-signal-safe; it only sets the signal the
        // child gets when this thread ends.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child: Child = cmd.spawn().expect("postgres starts");
        tx.send(()).unwrap();
        let _keep = child;
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap();
}
