//! A guest that misbehaves on request, to show (and test) that the sandbox
//! contains it. The input names the behaviour:
//!
//! | input | does |
//! |---|---|
//! | `{"do": "trap"}` | executes `unreachable` |
//! | `{"do": "panic", "message": "..."}` | panics |
//! | `{"do": "loop"}` | spins forever without calling the host |
//! | `{"do": "sleep", "ms": N}` | blocks in the host for N ms |
//! | `{"do": "memory", "mib": N}` | allocates N MiB (or until it fails) |
//! | `{"do": "recurse"}` | recurses without bound |
//! | `{"do": "flood"}` | prints to stdout forever |
//! | `{"do": "print", "stdout": "...", "stderr": "..."}` | prints and returns |
//! | `{"do": "read-file", "path": "..."}` | reads a file, returns its text or the error |
//! | `{"do": "write-file", "path": "...", "text": "..."}` | writes a file, returns the error if any |
//! | `{"do": "connect", "addr": "host:port"}` | opens a TCP connection, returns the error if any |
//! | `{"do": "env"}` | returns the environment variables it sees |
//! | `{"do": "fail", "type": "...", "message": "...", "non_retryable": b, "retry_ms": N}` | application error |
//! | `{"do": "output", "bytes": N}` | returns a string of N bytes |
//! | `{"do": "heartbeat", "bytes": N}` | heartbeats details of N bytes, then completes |
//! | `{"do": "wait-cancel", "ms": N}` | heartbeats every N ms until cancellation is requested |
//! | `{"do": "ignore-cancel", "ms": N}` | heartbeats every N ms and never stops |
//! | `{"do": "pending"}` | returns pending with its task token logged |
//! | `{"do": "info"}` | returns its activity info and task token |
//! | `{"do": "count"}` | returns how many times this instance has run (shows instance reuse) |
//! | `{"do": "lines", "count": N}` | prints N empty lines, then completes |
//! | `{"do": "logs", "count": N}` | writes N empty log records, then completes |

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_guest::{ActivityError, Context, LogLevel};

#[derive(Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
enum Behaviour {
    Trap,
    Panic { message: String },
    Loop,
    Sleep { ms: u64 },
    Memory { mib: usize },
    Recurse,
    Flood,
    Print { #[serde(default)] stdout: String, #[serde(default)] stderr: String },
    ReadFile { path: String },
    WriteFile { path: String, text: String },
    Connect { addr: String },
    Env,
    Fail {
        #[serde(rename = "type", default)]
        error_type: String,
        message: String,
        #[serde(default)]
        non_retryable: bool,
        retry_ms: Option<u64>,
    },
    Output { bytes: usize },
    Heartbeat { bytes: usize },
    WaitCancel { ms: u64 },
    IgnoreCancel { ms: u64 },
    Pending,
    Info,
    Count,
    Lines { count: usize },
    Logs { count: usize },
}

/// Calls served by this instance: 1 in a fresh instance every time, more
/// when the host reuses warm instances.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn misbehave(ctx: &Context, input: Behaviour) -> Result<Value, ActivityError> {
    match input {
        Behaviour::Count => Ok(json!({"calls": CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1})),
        Behaviour::Trap => core::arch::wasm32::unreachable(),
        Behaviour::Panic { message } => panic!("{message}"),
        Behaviour::Loop => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Behaviour::Sleep { ms } => {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(json!({"slept_ms": ms}))
        }
        Behaviour::Memory { mib } => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                blocks.push(vec![1u8; 1 << 20]);
            }
            Ok(json!({"allocated_mib": blocks.len()}))
        }
        Behaviour::Recurse => Ok(json!({"result": recurse(std::hint::black_box(u64::MAX))})),
        Behaviour::Lines { count } => {
            let mut out = std::io::stdout().lock();
            for _ in 0..count {
                out.write_all(b"\n").ok();
            }
            out.flush().ok();
            Ok(json!({"lines": count}))
        }
        Behaviour::Logs { count } => {
            for _ in 0..count {
                ctx.log(LogLevel::Info, "", &[]);
            }
            Ok(json!({"logs": count}))
        }
        Behaviour::Flood => {
            let line = "flooding stdout with this line again and again\n".repeat(16);
            loop {
                print!("{line}");
            }
        }
        Behaviour::Print { stdout, stderr } => {
            print!("{stdout}");
            eprint!("{stderr}");
            std::io::stdout().flush().ok();
            Ok(json!({"printed": true}))
        }
        Behaviour::ReadFile { path } => Ok(match std::fs::read_to_string(&path) {
            Ok(text) => json!({"text": text}),
            Err(e) => json!({"error": e.to_string()}),
        }),
        Behaviour::WriteFile { path, text } => Ok(match std::fs::write(&path, text) {
            Ok(()) => json!({"written": true}),
            Err(e) => json!({"error": e.to_string()}),
        }),
        Behaviour::Connect { addr } => Ok(match std::net::TcpStream::connect(&addr) {
            Ok(_) => json!({"connected": true}),
            Err(e) => json!({"error": e.to_string()}),
        }),
        Behaviour::Env => Ok(json!(std::env::vars().collect::<BTreeMap<_, _>>())),
        Behaviour::Fail { error_type, message, non_retryable, retry_ms } => {
            let mut err = ActivityError::new(error_type, message).with_details(&json!({"why": "asked to"}));
            if non_retryable {
                err = err.non_retryable();
            }
            if let Some(ms) = retry_ms {
                err = err.with_next_retry_delay(Duration::from_millis(ms));
            }
            Err(err)
        }
        Behaviour::Output { bytes } => Ok(json!("x".repeat(bytes))),
        Behaviour::Heartbeat { bytes } => {
            ctx.heartbeat(&"h".repeat(bytes))?;
            Ok(json!({"heartbeat_bytes": bytes}))
        }
        Behaviour::WaitCancel { ms } => {
            for beat in 0u64.. {
                ctx.heartbeat(&beat)?;
                std::thread::sleep(Duration::from_millis(ms));
            }
            unreachable!()
        }
        Behaviour::IgnoreCancel { ms } => loop {
            let _ = ctx.heartbeat_alive();
            std::thread::sleep(Duration::from_millis(ms));
        },
        Behaviour::Pending => {
            let token = ctx.task_token();
            ctx.log(LogLevel::Info, "handing off", &[("token", &token)]);
            Err(ActivityError::pending())
        }
        Behaviour::Info => {
            let info = ctx.info();
            Ok(json!({
                "activity_id": info.activity_id,
                "run_id": info.run_id,
                "activity_type": info.activity_type,
                "task_queue": info.task_queue,
                "attempt": info.attempt,
                "host_task_queue": info.host_task_queue,
                "heartbeat_timeout_ms": info.heartbeat_timeout_ms,
                "start_to_close_deadline_ms": info.start_to_close_deadline_ms,
                "task_token": ctx.task_token(),
            }))
        }
    }
}

/// Recurses `n` levels deep. Kept free of stack-allocated locals so the
/// frames live on the wasm call stack (not Rust's shadow stack in linear
/// memory), and non-associative so LLVM cannot turn it into a loop.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    recurse(n - 1).wrapping_mul(31) ^ n
}

sluice_guest::export_activity!(misbehave);
