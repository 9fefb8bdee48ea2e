//! What a department system configures: the hub, its CA, the client certificate and key, an
//! optional age identity, the ledger's verifier key, the state file, and the clock. Parsed
//! when the `Client` is built, so a bad certificate or key fails there, not on first use.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time the SDK reads to refresh tokens ahead of their expiry (injectable for tests).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// SDK configuration. Build with `Config::new`, then the optional setters.
#[derive(Clone)]
pub struct Config {
    pub(crate) hub_url: String,
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) age_identity: Option<String>,
    pub(crate) ledger_vkey: Option<String>,
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) token_url: Option<String>,
    pub(crate) refresh_ahead: Duration,
    pub(crate) timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) witnesses: Option<(Vec<String>, usize)>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // INVARIANT (secrets): the client key and the age identity are never printed.
        f.debug_struct("Config")
            .field("hub_url", &self.hub_url)
            .field("age_identity", &self.age_identity.as_ref().map(|_| "<set>"))
            .field("ledger_vkey", &self.ledger_vkey)
            .field("state_file", &self.state_file)
            .field("token_url", &self.token_url)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("timeout", &self.timeout)
            .field("witnesses", &self.witnesses)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration for the hub at `hub_url` (e.g. `https://hub.example:8443`), trusting
    /// the CA in `ca_pem`, presenting the client certificate `cert_pem` with its key `key_pem`.
    pub fn new(
        hub_url: impl Into<String>,
        ca_pem: impl Into<String>,
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> Config {
        Config {
            hub_url: hub_url.into().trim_end_matches('/').to_owned(),
            ca_pem: ca_pem.into(),
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            age_identity: None,
            ledger_vkey: None,
            state_file: None,
            token_url: None,
            refresh_ahead: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            witnesses: None,
        }
    }

    /// The age x25519 identity (as `age-keygen` writes it) whose recipient is registered for this
    /// client: answers are then asked for sealed (`Accept: application/age`) and unsealed here.
    pub fn age_identity(mut self, identity: impl Into<String>) -> Config {
        self.age_identity = Some(identity.into());
        self
    }

    /// The ledger's C2SP verifier key, obtained out of band. Without it the key is fetched
    /// from `GET /v1/audit/public-key` and pinned in the state file on first use.
    pub fn ledger_vkey(mut self, vkey: impl Into<String>) -> Config {
        self.ledger_vkey = Some(vkey.into());
        self
    }

    /// The state file keeping the pinned key and the last verified checkpoint (shared safely
    /// by several processes). Without it they are kept in memory only.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Config {
        self.state_file = Some(path.into());
        self
    }

    /// The token endpoint, when not `{hub_url}/v1/oauth/token` (an mTLS endpoint alias).
    pub fn token_url(mut self, url: impl Into<String>) -> Config {
        self.token_url = Some(url.into());
        self
    }

    /// Refresh a token this long before it expires (default 60 s; at most half its life).
    pub fn refresh_ahead(mut self, ahead: Duration) -> Config {
        self.refresh_ahead = ahead;
        self
    }

    /// Timeout of each request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout;
        self
    }

    /// The clock used for token lifetimes (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Config {
        self.clock = clock;
        self
    }

    /// Accept only checkpoints cosigned by at least `required` of the witnesses whose C2SP
    /// tlog-cosignature/v1 verifier keys are `vkeys` (checkpoints are then fetched with
    /// `min_cosignatures`; a receipt is proved only once a witnessed checkpoint covers it).
    pub fn require_witnesses(mut self, vkeys: Vec<String>, required: usize) -> Config {
        self.witnesses = Some((vkeys, required));
        self
    }
}
