//! Per-claim options, the client-wide settings they default to, and their range checks.

use std::time::Duration;

use crate::error::ConfigError;
use crate::quorum;

/// Default lease: how long a claim is held before it expires on its own.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default retention: how long a completion marker (`DONE`) is kept, so that late duplicates
/// still see it. Webhook senders retry for up to three days; 96 hours covers that.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(96 * 3600);
/// Default time to wait for one node's reply.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(50);
/// Default number of extra claim rounds after the first one finds no quorum.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default upper bound of the random pause before a retry.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Default bound on setting up a connection to a node.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest fingerprint the module accepts.
pub(crate) const MAX_FINGERPRINT_BYTES: usize = 64;

/// Options for one claim, each falling back to the client's setting when `None`.
///
/// Build it with a struct literal or with the setters:
///
/// ```
/// use std::time::Duration;
/// use dedup_client::ClaimOptions;
///
/// let a = ClaimOptions {
///     fingerprint: Some(b"sha256-of-the-payload".to_vec()),
///     lease: Some(Duration::from_secs(5)),
///     ..Default::default()
/// };
/// let b = ClaimOptions::new().fingerprint(*b"sha256-of-the-payload").lease(Duration::from_secs(5));
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    /// A digest of the payload (1 to 64 bytes), stored with the claim. A later claim of the same
    /// id with a different fingerprint gets [`crate::Claim::Mismatch`] instead of a replay, so a
    /// reused id with a different payload is noticed. A claim without fingerprint never
    /// mismatches.
    pub fingerprint: Option<Vec<u8>>,
    /// The lease for this claim, instead of [`crate::Builder::lease`].
    pub lease: Option<Duration>,
    /// How long this id's completion marker is kept, instead of [`crate::Builder::retention`].
    pub retention: Option<Duration>,
}

impl ClaimOptions {
    /// Options that use every client setting.
    pub fn new() -> ClaimOptions {
        ClaimOptions::default()
    }

    /// Sets [`ClaimOptions::fingerprint`]: a digest of the payload, 1 to 64 bytes.
    ///
    /// ```
    /// # fn sha256(_: &[u8]) -> [u8; 32] { [7; 32] }
    /// # let body = b"{}";
    /// let options = dedup_client::ClaimOptions::new().fingerprint(sha256(body));
    /// assert_eq!(options.fingerprint.map(|f| f.len()), Some(32));
    /// ```
    pub fn fingerprint(mut self, fingerprint: impl Into<Vec<u8>>) -> ClaimOptions {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    /// Sets [`ClaimOptions::lease`].
    pub fn lease(mut self, lease: Duration) -> ClaimOptions {
        self.lease = Some(lease);
        self
    }

    /// Sets [`ClaimOptions::retention`].
    pub fn retention(mut self, retention: Duration) -> ClaimOptions {
        self.retention = Some(retention);
        self
    }

    /// Checks the options and fills in the client's settings.
    pub(crate) fn resolve(&self, settings: &Settings) -> Result<Resolved, ConfigError> {
        if let Some(fp) = &self.fingerprint {
            if !(1..=MAX_FINGERPRINT_BYTES).contains(&fp.len()) {
                return Err(ConfigError::InvalidFingerprint { len: fp.len() });
            }
        }
        Ok(Resolved {
            fingerprint: self.fingerprint.clone(),
            lease: self.lease.map_or(Ok(settings.lease), check_lease)?,
            retention: self.retention.map_or(Ok(settings.retention), check_retention)?,
        })
    }
}

/// Claim options after checking, with defaults filled in.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) fingerprint: Option<Vec<u8>>,
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
}

/// The client-wide settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
    pub(crate) fencing: bool,
    pub(crate) node_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) connect_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            lease: DEFAULT_LEASE,
            retention: DEFAULT_RETENTION,
            fencing: false,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Settings {
    /// Checks every setting; durations sent to Redis are cut to whole milliseconds.
    pub(crate) fn check(self) -> Result<Settings, ConfigError> {
        Ok(Settings {
            lease: check_lease(self.lease)?,
            retention: check_retention(self.retention)?,
            node_timeout: positive("node_timeout", self.node_timeout)?,
            connect_timeout: positive("connect_timeout", self.connect_timeout)?,
            ..self
        })
    }
}

/// Whole milliseconds that fit a Redis integer.
fn millis(name: &'static str, expected: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    let ms = u64::try_from(value.as_millis())
        .ok()
        .filter(|ms| (1..=i64::MAX as u64).contains(ms))
        .ok_or(ConfigError::InvalidDuration { name, expected, value })?;
    Ok(Duration::from_millis(ms))
}

/// A lease must leave some validity after the drift allowance: more than about 2 ms.
pub(crate) fn check_lease(lease: Duration) -> Result<Duration, ConfigError> {
    const EXPECTED: &str = "whole milliseconds, longer than the 1 % + 2 ms drift allowance";
    let lease = millis("lease", EXPECTED, lease)?;
    if quorum::validity(lease, Duration::ZERO).is_zero() {
        return Err(ConfigError::InvalidDuration { name: "lease", expected: EXPECTED, value: lease });
    }
    Ok(lease)
}

fn check_retention(retention: Duration) -> Result<Duration, ConfigError> {
    millis("retention", "at least 1 ms", retention)
}

fn positive(name: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        Err(ConfigError::InvalidDuration { name, expected: "more than zero", value })
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::default().check().unwrap();
        assert_eq!(s.lease, Duration::from_secs(30));
        assert_eq!(s.retention, Duration::from_secs(96 * 3600));
        assert_eq!(s.node_timeout, Duration::from_millis(50));
        assert_eq!((s.retries, s.retry_delay), (3, Duration::from_millis(200)));
        assert!(!s.fencing);
    }

    #[test]
    fn leases_must_leave_validity_and_are_cut_to_whole_milliseconds() {
        assert!(check_lease(Duration::from_millis(2)).is_err());
        assert!(check_lease(Duration::from_micros(900)).is_err());
        assert!(check_lease(Duration::ZERO).is_err());
        assert_eq!(check_lease(Duration::from_millis(3)).unwrap(), Duration::from_millis(3));
        assert_eq!(check_lease(Duration::from_micros(1_500_700)).unwrap(), Duration::from_millis(1_500));
        assert!(check_lease(Duration::from_secs(u64::MAX)).is_err(), "beyond a Redis integer");
    }

    #[test]
    fn settings_reject_zero_timeouts_and_retention() {
        let zero = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            s.check().unwrap_err()
        };
        assert!(matches!(zero(|s| s.node_timeout = Duration::ZERO), ConfigError::InvalidDuration { name: "node_timeout", .. }));
        assert!(matches!(zero(|s| s.connect_timeout = Duration::ZERO), ConfigError::InvalidDuration { name: "connect_timeout", .. }));
        assert!(matches!(zero(|s| s.retention = Duration::from_micros(10)), ConfigError::InvalidDuration { name: "retention", .. }));
    }

    #[test]
    fn claim_options_fall_back_to_settings_and_check_fingerprints() {
        let settings = Settings::default();
        let r = ClaimOptions::new().resolve(&settings).unwrap();
        assert_eq!((r.lease, r.retention, r.fingerprint), (settings.lease, settings.retention, None));

        let r = ClaimOptions::new()
            .lease(Duration::from_millis(700))
            .retention(Duration::from_secs(9))
            .fingerprint(vec![7; 64])
            .resolve(&settings)
            .unwrap();
        assert_eq!((r.lease, r.retention), (Duration::from_millis(700), Duration::from_secs(9)));

        for len in [0, 65] {
            let err = ClaimOptions::new().fingerprint(vec![1; len]).resolve(&settings).unwrap_err();
            assert_eq!(err, ConfigError::InvalidFingerprint { len });
        }
        assert!(ClaimOptions::new().lease(Duration::from_millis(1)).resolve(&settings).is_err());
    }
}
