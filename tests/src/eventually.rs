//! Waiting for what must happen, without timing goals: a test polls a condition (or awaits a
//! future) until it holds, and a deadline only turns a hang into a failure that says what was
//! awaited and what was last seen. Nothing here sleeps to prove that something did NOT happen:
//! a test proves absence by an event that must come after it (a Pong behind the frame under
//! test, a watcher pass past the block, a guard pass that reports nothing to do).

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for something that must happen before it fails. It is no timing
/// goal: a loaded 2-core machine running every test at once is slow, and a failure after a
/// minute beats a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// What one look at a condition found: done with a value, or not yet, with what it saw.
pub trait Look {
    /// What [`eventually`] returns once the condition holds.
    type Value;
    /// What the look saw while the condition did not hold (printed on timeout).
    type Seen: Debug;
    /// `Ok(value)`: done; `Err(seen)`: look again.
    fn into_result(self) -> Result<Self::Value, Self::Seen>;
}

/// `true`: done.
impl Look for bool {
    type Value = ();
    type Seen = bool;
    fn into_result(self) -> Result<(), bool> {
        if self { Ok(()) } else { Err(false) }
    }
}

/// `Some(value)`: done with the value.
impl<T> Look for Option<T> {
    type Value = T;
    type Seen = &'static str;
    fn into_result(self) -> Result<T, &'static str> {
        self.ok_or("None")
    }
}

/// `Ok(value)`: done with the value; `Err(seen)`: not yet, `seen` is what was observed.
impl<T, S: Debug> Look for Result<T, S> {
    type Value = T;
    type Seen = S;
    fn into_result(self) -> Result<T, S> {
        self
    }
}

/// `Ok(seen)` when `done`, else `Err(seen)`: a look that reports the value it checked.
///
/// ```ignore
/// eventually(PATIENCE, "bob's deposit", async || {
///     let deposit = alice.channel_record(1).unwrap().on_chain.deposit_b;
///     done_if(deposit == 50, deposit)
/// })
/// .await;
/// ```
pub fn done_if<T>(done: bool, seen: T) -> Result<T, T> {
    if done { Ok(seen) } else { Err(seen) }
}

/// Look at a condition until it holds and return its value; after `within`, panic naming
/// `what` and the last thing the look saw. The look may do anything async (an RPC call, a
/// watcher pass, a payment that is refused until a link is up). Looks start 5 ms apart and
/// back off to 100 ms.
pub async fn eventually<L: Look>(
    within: Duration,
    what: &str,
    mut look: impl AsyncFnMut() -> L,
) -> L::Value {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(5);
    loop {
        let seen = match look().await.into_result() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}; last seen: {seen:?}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Await `future`, which must complete; after [`PATIENCE`] panic naming `what`.
pub async fn soon<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}
