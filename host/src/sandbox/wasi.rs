//! The WASI capabilities an attempt is granted: none unless configured.
//! stdout/stderr are captured (bounded), environment variables are explicit,
//! directories are opt-in preopens (read-only unless said), every socket
//! address the guest tries is refused and recorded, and outbound HTTP goes
//! only to allow-listed hosts (see `http`).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Capabilities granted to an activity type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grants {
    /// Environment variables the guest sees (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Host directories made visible to the guest.
    pub dirs: Vec<DirGrant>,
    /// Destinations the guest may reach with wasi:http (none by default).
    pub http: Vec<super::HttpRule>,
}

/// One preopened directory: `host` on the host appears as `guest` inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

impl DirGrant {
    /// Parses `HOST[::GUEST]`; the guest path defaults to the host path.
    pub fn parse(spec: &str, writable: bool) -> anyhow::Result<Self> {
        let (host, guest) = match spec.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (spec, spec),
        };
        if host.is_empty() || guest.is_empty() {
            anyhow::bail!("directory grant {spec:?} must look like HOST or HOST::GUEST");
        }
        Ok(DirGrant { host: PathBuf::from(host), guest: guest.to_string(), writable })
    }
}

impl FromStr for DirGrant {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        DirGrant::parse(s, false)
    }
}

/// Captured stdout and stderr of one attempt.
pub(crate) struct Captured {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub cap: usize,
}

impl Captured {
    /// True once either stream hit its cap (later writes were refused).
    pub fn overflowed(&self) -> bool {
        self.stdout.contents().len() >= self.cap || self.stderr.contents().len() >= self.cap
    }
}

/// Builds the WASI context of one attempt. Denied socket uses are appended
/// to `denials`.
pub(crate) fn build(
    grants: &Grants,
    max_output: usize,
    denials: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<(WasiCtx, Captured)> {
    let stdout = MemoryOutputPipe::new(max_output);
    let stderr = MemoryOutputPipe::new(max_output);
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout.clone()).stderr(stderr.clone()).envs(&grants.env);
    for dir in &grants.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| anyhow::anyhow!("cannot grant directory {}: {e:#}", dir.host.display()))?;
    }
    // Let socket calls reach the address check so refusals are recorded
    // (with TCP/UDP disabled they fail before anything can be logged).
    builder.allow_tcp(true).allow_udp(true).socket_addr_check(move |addr, use_| {
        // The implicit bind to an ephemeral port that precedes a connect
        // grants nothing by itself; allowing it lets the refusal name the
        // address actually asked for.
        let implicit_bind = matches!(use_, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
            && addr.ip().is_unspecified()
            && addr.port() == 0;
        if implicit_bind {
            return Box::pin(async { true });
        }
        let what = match use_ {
            SocketAddrUse::TcpBind => "bind TCP",
            SocketAddrUse::TcpListen => "listen TCP",
            SocketAddrUse::TcpAccept => "accept TCP",
            SocketAddrUse::TcpConnect => "connect TCP",
            SocketAddrUse::UdpBind => "bind UDP",
            SocketAddrUse::UdpSend => "send UDP",
            SocketAddrUse::UdpReceive => "receive UDP",
        };
        denials.lock().unwrap().push(format!("capability denied: {what} {addr} (no network access is granted)"));
        Box::pin(async { false })
    });
    Ok((builder.build(), Captured { stdout, stderr, cap: max_output }))
}
