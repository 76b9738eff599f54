//! The process's allocator: mimalloc (also for C code, via its `override`
//! feature), tuned so memory under load is given back instead of kept.
//!
//! Every attempt allocates and frees a store, a WASI context and SQLite
//! buffers; glibc's allocator spent a sixth of the engine's time there.
//! Left at its defaults mimalloc backs its arenas with transparent huge
//! pages (one touched byte makes 2 MiB resident) and keeps freed pages for
//! a second; the host then idled at 47 MiB and peaked at 2.5× that under
//! load. Without huge pages and with freed pages returned after 10 ms it
//! idles at 28 MiB and peaks below twice that, at the same CPU per activity
//! (`cargo bench -p sluice --bench external`). An operator's
//! `MIMALLOC_ALLOW_THP` or `MIMALLOC_PURGE_DELAY` still wins.

use std::ffi::{c_int, c_long};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (the Rust binding
/// does not name it).
const PURGE_DELAY: c_int = 15;

/// How long freed memory stays with the process before it is given back.
const PURGE_DELAY_MS: c_long = 10;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
}

/// Applies the settings above; call first thing in `main`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's table.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // mimalloc read its own option before `main`; the kernel's
        // per-process switch covers the arenas it already reserved.
        // SAFETY: prctl with these arguments has no memory-safety
        // preconditions; a failure leaves huge pages allowed.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }

    /// The purge delay mimalloc uses now, in ms.
    fn purge_delay_ms() -> c_long {
        // SAFETY: reading an option has no preconditions.
        unsafe { mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn tuning_returns_freed_memory_soon_and_turns_huge_pages_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return; // the operator's settings win; nothing of ours to check
        }
        // mimalloc v3's default for purge_delay, and no other option's:
        // `PURGE_DELAY` names the right option.
        assert_eq!(purge_delay_ms(), 1000);
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
        // SAFETY: as in `tune`.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
