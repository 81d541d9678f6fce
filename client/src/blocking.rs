//! The same client for code without an async runtime.
//!
//! [`Dedup`] runs the async client on a small runtime of its own (one worker thread, which also
//! runs the connections and the lease keep-alive) and blocks the calling thread on each call.
//! Outcomes, errors and guarantees are those of the async client.
//!
//! Do not call it from async code: blocking a runtime's thread on another runtime panics. Use
//! [`crate::Dedup`] there.
//!
//! ```
//! # fn main() -> Result<(), dedup_client::Error> {
//! # let servers: Vec<_> = (0..3).map(|_| testkit::RedisServer::start()).collect();
//! # let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
//! use dedup_client::blocking::{Claim, Dedup};
//!
//! let dedup = Dedup::builder().nodes(urls).connect()?;
//! match dedup.claim("job:42")? {
//!     Claim::Acquired(lease) => {
//!         // ... work ...
//!         lease.complete(Some(b"ok"))?;
//!     }
//!     Claim::Completed { .. } => println!("already done"),
//!     Claim::InProgress { .. } => println!("running elsewhere"),
//!     Claim::Mismatch => println!("different payload"),
//! }
//! assert!(matches!(dedup.claim("job:42")?, Claim::Completed { result: Some(r) } if r == b"ok"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::builder::{Blocking, Builder};
use crate::error::Error;
use crate::lease::{Completion, LeaseWatch, Released};
use crate::once::{self, Once, OnceError};
use crate::options::{ClaimOptions, Settings};
use crate::report::ClaimReport;

/// [`crate::Claim`] with a blocking [`Lease`].
pub type Claim = crate::Claim<Lease>;

/// The client's own runtime. Dropped from inside another runtime (where blocking is not
/// allowed), it shuts down in the background instead of panicking.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime lives until drop")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

/// The blocking client: [`crate::Dedup`] behind a runtime of its own.
///
/// Cheap to clone; clones share the runtime and the connections.
///
/// # Examples
///
/// ```no_run
/// # fn run(dedup: dedup_client::blocking::Dedup) -> Result<(), dedup_client::Error> {
/// if let Some(lease) = dedup.claim("report:2024-06")?.acquired() {
///     lease.complete(None)?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dedup {
    // Field order matters: the client's connections go before the runtime they run on.
    inner: crate::Dedup,
    runtime: Arc<Runtime>,
}

impl Dedup {
    /// Starts configuring a blocking client; finish with [`Builder::<Blocking>::connect`].
    pub fn builder() -> Builder<Blocking> {
        Builder::new_blocking()
    }

    pub(crate) fn connect(nodes: &[crate::node::NodeSpec], settings: Settings) -> Result<Dedup, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dedup-client")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let inner = runtime.block_on(crate::Dedup::connect(nodes, settings))?;
        Ok(Dedup { inner, runtime: Arc::new(Runtime(Some(runtime))) })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.get().block_on(future)
    }

    fn wrap(&self, claim: crate::Claim) -> Claim {
        claim.map_lease(|inner| Lease { inner: Some(inner), runtime: self.runtime.clone() })
    }

    /// Claims `id` with the client's settings; see [`crate::Dedup::claim`].
    ///
    /// # Errors
    ///
    /// As [`crate::Dedup::claim`].
    pub fn claim(&self, id: &str) -> Result<Claim, Error> {
        self.claim_with(id, ClaimOptions::default())
    }

    /// Claims `id`; see [`crate::Dedup::claim_with`].
    ///
    /// # Errors
    ///
    /// As [`crate::Dedup::claim_with`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn run(dedup: dedup_client::blocking::Dedup) -> Result<(), dedup_client::Error> {
    /// use dedup_client::ClaimOptions;
    /// let claim = dedup.claim_with("job:42", ClaimOptions::new().fingerprint(*b"v1"))?;
    /// # drop(claim); Ok(()) }
    /// ```
    pub fn claim_with(&self, id: &str, options: ClaimOptions) -> Result<Claim, Error> {
        let claim = self.block_on(self.inner.claim_with(id, options))?;
        Ok(self.wrap(claim))
    }

    /// Claims `id` and reports every node's replies; see [`crate::Dedup::claim_with_report`].
    pub fn claim_with_report(&self, id: &str, options: ClaimOptions) -> (Result<Claim, Error>, ClaimReport) {
        let (outcome, report) = self.block_on(self.inner.claim_with_report(id, options));
        (outcome.map(|claim| self.wrap(claim)), report)
    }

    /// Runs `job` at most once per `id`; see [`Dedup::once_with`].
    ///
    /// # Errors
    ///
    /// As [`Dedup::once_with`].
    pub fn once<T, E, F>(&self, id: &str, job: F) -> Result<Once<T>, OnceError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&LeaseWatch) -> Result<T, E>,
    {
        self.once_with(id, ClaimOptions::default(), job)
    }

    /// Runs `job` at most once per `id` on the calling thread, as [`crate::Dedup::once_with`]
    /// does, with the lease kept alive in the background meanwhile.
    ///
    /// A blocking job cannot be stopped from outside: check [`LeaseWatch::is_lost`] between
    /// steps and stop when it says so. The output is recorded even if the lease was lost meanwhile
    /// (the nodes still holding this claim record it, and the returned completion says how many).
    ///
    /// # Errors
    ///
    /// As [`crate::Dedup::once_with`], except that a lost lease does not stop the job.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn run(dedup: dedup_client::blocking::Dedup) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = dedup.once("export:7", |lease| {
    ///     let mut rows = 0u64;
    ///     for _batch in 0..10 {
    ///         if lease.is_lost() {
    ///             return Err(std::io::Error::other("lease lost"));
    ///         }
    ///         rows += 100; // ... one batch of work ...
    ///     }
    ///     Ok(rows)
    /// })?;
    /// println!("{:?}", outcome.output());
    /// # Ok(()) }
    /// ```
    pub fn once_with<T, E, F>(&self, id: &str, options: ClaimOptions, job: F) -> Result<Once<T>, OnceError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&LeaseWatch) -> Result<T, E>,
    {
        let mut lease = match self.block_on(self.inner.claim_with(id, options))? {
            crate::Claim::Acquired(lease) => lease,
            other => return Ok(once::settle(other)?),
        };
        lease.keep_alive();
        let output = job(&lease.watch());
        self.block_on(once::record(lease, output))
    }

    /// The nodes' addresses; see [`crate::Dedup::nodes`].
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.inner.nodes()
    }

    /// How many nodes must agree.
    pub fn quorum(&self) -> usize {
        self.inner.quorum()
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Dedup").field(&self.inner).finish()
    }
}

/// A blocking [`crate::Lease`]: the same lease, with blocking methods.
///
/// Dropping it without completing or releasing it releases it (blocking briefly, at most the
/// node timeout).
pub struct Lease {
    inner: Option<crate::Lease>,
    runtime: Arc<Runtime>,
}

impl Lease {
    fn inner(&self) -> &crate::Lease {
        self.inner.as_ref().expect("present until consumed")
    }

    fn take(&mut self) -> crate::Lease {
        self.inner.take().expect("present until consumed")
    }

    /// The id this lease is for.
    pub fn key(&self) -> &str {
        self.inner().key()
    }

    /// The fencing token in fenced mode; see [`crate::Lease::token`].
    pub fn token(&self) -> Option<u64> {
        self.inner().token()
    }

    /// How much longer the lease is known to hold; see [`crate::Lease::validity`].
    pub fn validity(&self) -> Duration {
        self.inner().validity()
    }

    /// When the lease stops being known to hold, unless extended.
    pub fn valid_until(&self) -> Instant {
        self.inner().valid_until()
    }

    /// Whether the lease can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.inner().is_lost()
    }

    /// A cloneable view of the lease; see [`LeaseWatch`].
    pub fn watch(&self) -> LeaseWatch {
        self.inner().watch()
    }

    /// Keeps the lease alive on the client's runtime; see [`crate::Lease::keep_alive`].
    ///
    /// ```no_run
    /// # fn run(mut lease: dedup_client::blocking::Lease) -> Result<(), dedup_client::Error> {
    /// lease.keep_alive();
    /// while !lease.is_lost() {
    ///     // ... a step of long work ...
    /// #   break;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn keep_alive(&mut self) -> &mut Lease {
        if let Some(inner) = self.inner.as_mut() {
            inner.keep_alive();
        }
        self
    }

    /// Extends the lease; see [`crate::Lease::extend`].
    ///
    /// # Errors
    ///
    /// As [`crate::Lease::extend`].
    pub fn extend(&self) -> Result<Duration, Error> {
        self.runtime.get().block_on(self.inner().extend())
    }

    /// Releases the claim on every node; see [`crate::Lease::release`].
    pub fn release(mut self) -> Released {
        let inner = self.take();
        self.runtime.get().block_on(inner.release())
    }

    /// Marks the id done on every node; see [`crate::Lease::complete`].
    ///
    /// # Errors
    ///
    /// As [`crate::Lease::complete`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn run(lease: dedup_client::blocking::Lease) -> Result<(), dedup_client::Error> {
    /// let completion = lease.complete(Some(b"42"))?;
    /// assert!(completion.acked() > 0);
    /// # Ok(()) }
    /// ```
    pub fn complete(mut self, result: Option<&[u8]>) -> Result<Completion, Error> {
        let inner = self.take();
        self.runtime.get().block_on(inner.complete(result))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside async code blocking is not allowed: the async lease releases in the
            // background on drop.
            drop(inner);
        } else {
            self.runtime.get().block_on(inner.release());
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(inner) => f.debug_tuple("blocking::Lease").field(inner).finish(),
            None => f.write_str("blocking::Lease(<consumed>)"),
        }
    }
}
