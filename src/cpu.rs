//! CPU-heavy work inside a request: filling a year's evidence, scoring it, writing
//! megabytes of JSON. Done in place on a runtime worker, it holds up every task
//! queued behind it on that thread (a command's reply waits 30 ms behind an
//! appraisal). [`run`] first hands the worker's other tasks to another thread.

/// Runs `f`, which computes without awaiting, telling the multi-threaded runtime
/// that this thread is busy (`block_in_place`). Elsewhere (a current-thread
/// runtime, as in the tests, or outside any) it simply runs `f`.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Runs `a` and `b` at once, `b` on a scoped thread of its own, inside [`run`]:
/// two independent pieces of one request use both cores.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB + Send,
    RB: Send,
{
    run(|| {
        std::thread::scope(|s| {
            let hb = s.spawn(b);
            let ra = a();
            // A panic in `b` is a panic here, as it would have been inline.
            let rb = match hb.join() {
                Ok(rb) => rb,
                Err(p) => std::panic::resume_unwind(p),
            };
            (ra, rb)
        })
    })
}
