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
    /// Per-attempt cap on each stream.
    pub cap: usize,
    /// Bytes each pipe held before this attempt (a warm instance's pipes
    /// carry its earlier attempts' output).
    skip: (usize, usize),
    /// What each pipe can hold in all.
    capacity: usize,
}

impl Captured {
    /// This attempt's stdout.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.contents()[self.skip.0..].to_vec()
    }

    /// This attempt's stderr.
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.contents()[self.skip.1..].to_vec()
    }

    /// True once this attempt wrote its cap to either stream, or a pipe is
    /// full (later writes were refused).
    pub fn overflowed(&self) -> bool {
        let (out, err) = (self.stdout.contents().len(), self.stderr.contents().len());
        out - self.skip.0 >= self.cap || err - self.skip.1 >= self.cap || out.max(err) >= self.capacity
    }

    /// Starts a new attempt on the same pipes.
    pub fn rearm(&mut self, cap: usize) {
        self.skip = (self.stdout.contents().len(), self.stderr.contents().len());
        self.cap = cap;
    }

    /// Whether another attempt could write its full cap.
    pub fn has_room(&self) -> bool {
        let used = self.stdout.contents().len().max(self.stderr.contents().len());
        self.capacity.saturating_sub(used) > self.cap
    }
}

/// Pipe capacity, in attempts' worth of output, of a reusable instance.
const WARM_OUTPUT_ATTEMPTS: usize = 4;

/// Builds the WASI context of one attempt (`reusable`: of an instance that
/// may serve several). Denied socket uses are appended to `denials`.
pub(crate) fn build(
    grants: &Grants,
    max_output: usize,
    reusable: bool,
    denials: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<(WasiCtx, Captured)> {
    let capacity = if reusable { max_output.saturating_mul(WARM_OUTPUT_ATTEMPTS) } else { max_output };
    let stdout = MemoryOutputPipe::new(capacity);
    let stderr = MemoryOutputPipe::new(capacity);
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
    Ok((builder.build(), Captured { stdout, stderr, cap: max_output, skip: (0, 0), capacity }))
}
