//! Where guests run: a tokio runtime of their own, on threads at a lower OS
//! priority, apart from the host's control plane (API, dispatch, timers,
//! store). A guest that spins between two epoch yields then holds one of
//! these threads, never one that answers requests or fires timers, and
//! the kernel prefers the control plane when both want a core.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

/// How much lower guest threads run (the nice value added).
const NICENESS: i32 = 10;

pub struct GuestThreads {
    /// `Some` until dropped; shut down in the background so dropping it in
    /// async code does not block.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl GuestThreads {
    /// `threads` workers (0: one per core).
    pub fn new(threads: usize) -> std::io::Result<GuestThreads> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sluice-guest")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(GuestThreads { runtime: Some(runtime), handle })
    }

    /// Runs `work` on a guest thread; resolves with the first half of its
    /// output as soon as it is ready, while that thread goes on to drop the
    /// second. An attempt's report so goes to be committed while its
    /// instance is torn down. A large `work` should come boxed: it is
    /// moved here as it is.
    pub async fn run_then_drop<T, D>(&self, work: impl Future<Output = (T, D)> + Send + 'static) -> Option<T>
    where
        T: Send + 'static,
        D: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(async move {
            let (out, teardown) = work.await;
            let _ = tx.send(out);
            drop(teardown);
        });
        rx.await.ok()
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux: per thread).
fn lower_priority() {
    // SAFETY: gettid and setpriority have no memory-safety preconditions;
    // a failure (say, no permission) leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, current.saturating_add(NICENESS).min(19));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_run_on_their_own_threads_at_a_lower_priority() {
        let guests = GuestThreads::new(1).unwrap();
        let here = nice();
        let rt = Builder::new_current_thread().build().unwrap();
        let (name, there) = rt
            .block_on(guests.run_then_drop(async { ((std::thread::current().name().map(str::to_string), nice()), ()) }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("sluice-guest"));
        assert_eq!(there, (here + NICENESS).min(19));
    }

    #[test]
    fn the_output_arrives_before_the_rest_is_dropped() {
        struct Slow(std::sync::mpsc::Receiver<()>);
        impl Drop for Slow {
            fn drop(&mut self) {
                // Holds its guest thread until the caller has the output.
                let _ = self.0.recv_timeout(std::time::Duration::from_secs(10));
            }
        }
        let guests = GuestThreads::new(1).unwrap();
        let (release, held) = std::sync::mpsc::channel();
        let rt = Builder::new_current_thread().enable_time().build().unwrap();
        let out = rt.block_on(async {
            let work = guests.run_then_drop(async move { ("report", Slow(held)) });
            tokio::time::timeout(std::time::Duration::from_secs(5), work).await
        });
        assert_eq!(out.expect("the output waited for the drop"), Some("report"));
        release.send(()).unwrap();
    }

    #[test]
    fn a_panic_before_the_output_resolves_to_none() {
        let guests = GuestThreads::new(1).unwrap();
        let rt = Builder::new_current_thread().build().unwrap();
        let out = rt.block_on(guests.run_then_drop(async {
            if true {
                panic!("the guest thread's work failed");
            }
            (1, ())
        }));
        assert_eq!(out, None);
    }

    /// This thread's nice value.
    fn nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Field 19 (nice), after the parenthesised command name.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(16).unwrap().parse().unwrap()
    }
}
