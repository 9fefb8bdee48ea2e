//! Settings: one tree, read from `DIR/gridhub.toml` (or `--config FILE`), then `GRIDHUB_*`
//! environment variables, then command-line flags. Unknown keys stop start-up with a message
//! naming the key; secrets are `SecretString` and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use policy::WorkingCalendar;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The config file written by `gridhub init` inside the data directory.
pub const CONFIG_FILE: &str = "gridhub.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory holding the config, keyring, PKI and (by default) the SQLite database.
    pub data_dir: PathBuf,
    /// Address the HTTPS listener binds.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// `postgres://…` selects PostgreSQL; absent means the embedded SQLite file.
    #[serde(default)]
    pub database_url: Option<SecretString>,
    /// Name of this hub instance (used in token issuer and, later, ledger origin).
    #[serde(default = "defaults::instance")]
    pub instance: String,
    /// Largest accepted request body.
    #[serde(default = "defaults::body_limit_bytes")]
    pub body_limit_bytes: usize,
    /// Most bytes of a refused (or otherwise unread) request body the hub reads and discards so
    /// that a client still sending it can read the answer (lingering close); absent means four
    /// times `body_limit_bytes`. See `body_linger_cap`.
    #[serde(default)]
    pub body_linger_bytes: Option<u64>,
    /// Longest time spent discarding such a body; 0 closes at once (clients still sending
    /// then see a reset instead of the answer).
    #[serde(default = "defaults::body_linger_secs")]
    pub body_linger_secs: u64,
    /// Lifetime of issued access tokens.
    #[serde(default = "defaults::token_ttl_secs")]
    pub token_ttl_secs: u64,
    /// A console session ends after this long without a request (60–86 400 s; default 30
    /// minutes)…
    #[serde(default = "defaults::console_idle_secs")]
    pub console_idle_secs: u64,
    /// …and this long after its login whatever happens (300–604 800 s; default 12 hours).
    #[serde(default = "defaults::console_session_secs")]
    pub console_session_secs: u64,
    /// Whole-request timeout.
    #[serde(default = "defaults::request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// How long graceful shutdown waits for in-flight requests.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// How often a signed checkpoint of the audit ledger is issued (also on demand).
    #[serde(default = "defaults::checkpoint_interval_secs")]
    pub checkpoint_interval_secs: u64,
    /// Log format: `pretty` or `json`.
    #[serde(default = "defaults::log_format")]
    pub log_format: LogFormat,
    /// PEM bundle of external CAs whose client certificates are trusted (besides the hub CA).
    /// Clients with such certificates are registered with `certificate_pem`.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Failed logins allowed per username, and per client address, in a 15-minute window.
    #[serde(default = "defaults::login_failures_per_user")]
    pub login_failures_per_user: u32,
    #[serde(default = "defaults::login_failures_per_address")]
    pub login_failures_per_address: u32,
    /// Extra holidays and make-up working days (调休) of the State Council's yearly schedule,
    /// as a TOML file (`holidays = [...]`, `workdays = [...]`); absent means plain
    /// Monday–Friday. Read once at start-up into `working_calendar`.
    #[serde(default)]
    pub calendar_file: Option<PathBuf>,
    /// Most candidate rows one pull or lookup reads while filling its page (row filters and
    /// jurisdiction may keep few of them); a page cut short by it says `complete: false` and
    /// carries the cursor to go on from.
    #[serde(default = "defaults::pull_scan_budget_rows")]
    pub pull_scan_budget_rows: u32,
    /// The working days that grant answer and case deadlines are counted in.
    /// Invariant: the calendar `calendar_file` holds (plain Monday–Friday without one);
    /// `Settings::load` is the only constructor and sets it.
    #[serde(skip)]
    pub working_calendar: WorkingCalendar,
    /// Webhook delivery (issue 21): retries, dead letters, extra trusted CAs.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// The NATS JetStream publisher (issue 21); off unless `[nats]` is given.
    #[serde(default)]
    pub nats: Option<NatsSettings>,
    /// The bearer token a Prometheus scraper sends to `GET /metrics` (at least 32 characters);
    /// without one `/metrics` answers 404. Also from `GRIDHUB_METRICS_TOKEN`.
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    /// How often the retention sweep erases the records whose retention date has passed
    /// (`crate::retention`); 0 turns the hub's own sweep off (run `gridhub retention run` from a
    /// timer instead).
    #[serde(default = "defaults::retention_sweep_secs")]
    pub retention_sweep_secs: u64,
    /// Data-key wraps under one KEK version after which the hub rotates it by itself
    /// (`crate::keys`); well below AES-GCM's random-nonce bound of 2^32.
    #[serde(default = "defaults::kek_rotate_after_wraps")]
    pub kek_rotate_after_wraps: i64,
    /// Data keys the background rewrap moves per second at most (0: no limit).
    #[serde(default = "defaults::rewrap_rate")]
    pub rewrap_rate: u32,
    /// Seconds after a rotation before the old KEK version may be retired: every replica has
    /// learnt of the rotation by then (each re-reads the key states every 5 s).
    #[serde(default = "defaults::kek_retire_grace_secs")]
    pub kek_retire_grace_secs: u64,
}

/// `[webhooks]`: how the delivery worker retries. Attempt `n` (from 0) that fails is retried
/// after a random delay in [0, min(cap, base × 2^n)] (exponential backoff, full jitter); a row
/// is dead after `max_attempts` attempts (the defaults span about a day).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default = "defaults::webhook_backoff_base_secs")]
    pub backoff_base_secs: u64,
    #[serde(default = "defaults::webhook_backoff_cap_secs")]
    pub backoff_cap_secs: u64,
    #[serde(default = "defaults::webhook_max_attempts")]
    pub max_attempts: u32,
    /// Seconds one attempt may take (connect, send, answer).
    #[serde(default = "defaults::webhook_timeout_secs")]
    pub timeout_secs: u64,
    /// How often the worker looks for due rows and the sweep for due events.
    #[serde(default = "defaults::webhook_poll_secs")]
    pub poll_secs: u64,
    /// PEM bundle of CAs trusted for endpoints besides the system roots (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            backoff_base_secs: defaults::webhook_backoff_base_secs(),
            backoff_cap_secs: defaults::webhook_backoff_cap_secs(),
            max_attempts: defaults::webhook_max_attempts(),
            timeout_secs: defaults::webhook_timeout_secs(),
            poll_secs: defaults::webhook_poll_secs(),
            ca_file: None,
        }
    }
}

/// `[nats]`: publish case events and checkpoints to JetStream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream, created if absent with subjects `gridhub.<instance>.>`.
    #[serde(default = "defaults::nats_stream")]
    pub stream: String,
    /// The subjects' prefix instead of `gridhub.<instance>` (hubs sharing a NATS, tests).
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

mod defaults {
    use super::LogFormat;
    use std::net::{Ipv4Addr, SocketAddr};

    pub fn webhook_backoff_base_secs() -> u64 {
        60
    }
    pub fn retention_sweep_secs() -> u64 {
        3600
    }
    pub fn kek_rotate_after_wraps() -> i64 {
        crate::keys::DEFAULT_ROTATE_AFTER_WRAPS
    }
    pub fn rewrap_rate() -> u32 {
        5_000
    }
    pub fn kek_retire_grace_secs() -> u64 {
        60
    }
    pub fn webhook_backoff_cap_secs() -> u64 {
        8 * 3600
    }
    pub fn webhook_max_attempts() -> u32 {
        12
    }
    pub fn webhook_timeout_secs() -> u64 {
        10
    }
    pub fn webhook_poll_secs() -> u64 {
        5
    }
    pub fn nats_stream() -> String {
        "GRIDHUB".to_owned()
    }
    pub fn listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 8443))
    }
    pub fn instance() -> String {
        "gridhub-dev".to_owned()
    }
    pub fn body_limit_bytes() -> usize {
        8 * 1024 * 1024
    }
    pub fn body_linger_secs() -> u64 {
        5
    }
    pub fn token_ttl_secs() -> u64 {
        300
    }
    pub fn console_idle_secs() -> u64 {
        30 * 60
    }
    pub fn console_session_secs() -> u64 {
        12 * 3600
    }
    pub fn request_timeout_secs() -> u64 {
        30
    }
    pub fn shutdown_grace_secs() -> u64 {
        10
    }
    pub fn checkpoint_interval_secs() -> u64 {
        10
    }
    pub fn login_failures_per_user() -> u32 {
        5
    }
    pub fn login_failures_per_address() -> u32 {
        20
    }
    pub fn pull_scan_budget_rows() -> u32 {
        20_000
    }
    pub fn log_format() -> LogFormat {
        LogFormat::Pretty
    }
}

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("data directory `{0}` has no {CONFIG_FILE}; run `gridhub init --data-dir {0}` first")]
    NotInitialised(String),
}

/// The settings that `GRIDHUB_<KEY>` may set. Other `GRIDHUB_*` variables (test helpers, the
/// log filter) are not settings and are left alone.
const ENV_KEYS: [&str; 24] = [
    "kek_rotate_after_wraps",
    "rewrap_rate",
    "kek_retire_grace_secs",
    "metrics_token",
    "retention_sweep_secs",
    "calendar_file",
    "console_idle_secs",
    "console_session_secs",
    "pull_scan_budget_rows",
    "client_ca_file",
    "login_failures_per_user",
    "login_failures_per_address",
    "checkpoint_interval_secs",
    "data_dir",
    "listen",
    "database_url",
    "instance",
    "body_limit_bytes",
    "body_linger_bytes",
    "body_linger_secs",
    "token_ttl_secs",
    "request_timeout_secs",
    "shutdown_grace_secs",
    "log_format",
];

/// Where the database lives.
#[derive(Debug, Clone)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl Settings {
    /// Load settings: `config_file` (or `DIR/gridhub.toml`), then `GRIDHUB_*` env, then flags.
    pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<Settings, ConfigError> {
        let file = match (config_file, &overrides.data_dir) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(dir)) => dir.join(CONFIG_FILE),
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "give --data-dir DIR or --config FILE".to_owned(),
                ));
            }
        };
        if !file.exists() {
            let shown = overrides
                .data_dir
                .as_deref()
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            return Err(ConfigError::NotInitialised(shown));
        }
        let mut figment = Figment::new().merge(Toml::file(&file));
        if let Some(dir) = file.parent() {
            // A config file's data_dir defaults to the directory it sits in.
            figment = Figment::from(Serialized::default("data_dir", dir)).merge(figment);
        }
        let mut settings: Settings = figment
            .merge(Env::prefixed("GRIDHUB_").only(&ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        settings.check()?;
        if let Some(path) = &settings.calendar_file {
            settings.working_calendar = read_calendar(path)?;
        }
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "`body_limit_bytes` must be at least 1024".to_owned(),
            ));
        }
        if self.body_linger_secs > 60 {
            return Err(ConfigError::Invalid(
                "`body_linger_secs` must be at most 60".to_owned(),
            ));
        }
        if !(30..=3600).contains(&self.token_ttl_secs) {
            return Err(ConfigError::Invalid(
                "`token_ttl_secs` must be between 30 and 3600".to_owned(),
            ));
        }
        if !(60..=86_400).contains(&self.console_idle_secs) {
            return Err(ConfigError::Invalid(
                "`console_idle_secs` must be between 60 and 86400".to_owned(),
            ));
        }
        if !(300..=604_800).contains(&self.console_session_secs) {
            return Err(ConfigError::Invalid(
                "`console_session_secs` must be between 300 and 604800".to_owned(),
            ));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().chars().count() < 32)
        {
            return Err(ConfigError::Invalid(
                "`metrics_token` must be at least 32 characters".to_owned(),
            ));
        }
        if !(1..=3600).contains(&self.checkpoint_interval_secs) {
            return Err(ConfigError::Invalid(
                "`checkpoint_interval_secs` must be between 1 and 3600".to_owned(),
            ));
        }
        if !(500..=1_000_000).contains(&self.pull_scan_budget_rows) {
            return Err(ConfigError::Invalid(
                "`pull_scan_budget_rows` must be between 500 and 1000000".to_owned(),
            ));
        }
        self.database()?;
        Ok(())
    }

    /// The database this hub uses; PostgreSQL when `database_url` says so.
    pub fn database(&self) -> Result<DatabaseLocation, ConfigError> {
        match &self.database_url {
            None => Ok(DatabaseLocation::Sqlite(self.data_dir.join("gridhub.db"))),
            Some(url) => {
                let raw = url.expose_secret();
                if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
                    Ok(DatabaseLocation::Postgres(url.clone()))
                } else if let Some(path) = raw.strip_prefix("sqlite://") {
                    Ok(DatabaseLocation::Sqlite(PathBuf::from(path)))
                } else {
                    Err(ConfigError::Invalid(
                        "`database_url` must start with postgres:// or sqlite://".to_owned(),
                    ))
                }
            }
        }
    }

    /// Most bytes of one request body the hub reads when the answer did not need all of it:
    /// `body_linger_bytes`, or four times `body_limit_bytes` (a 10 MB upload against the default
    /// 8 MiB limit is read to its end, so its client reads the 413).
    pub fn body_linger_cap(&self) -> u64 {
        self.body_linger_bytes
            .unwrap_or_else(|| (self.body_limit_bytes as u64).saturating_mul(4))
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }
}

/// The working calendar in `path`; any problem stops start-up naming the key, the file and
/// the line.
fn read_calendar(path: &Path) -> Result<WorkingCalendar, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!("`calendar_file`: cannot read `{shown}`: {e}"))
    })?;
    WorkingCalendar::parse(&text)
        .map_err(|e| ConfigError::Invalid(format!("`calendar_file` (`{shown}`): {e}")))
}

/// The config file `gridhub init` writes: only what differs from the defaults, commented.
pub fn initial_config_text(instance: &str) -> String {
    format!(
        "# Gridhub configuration. Every key can also be set as GRIDHUB_<KEY> in the environment.\n\
         instance = \"{instance}\"\n\
         listen = \"127.0.0.1:8443\"\n\
         # database_url = \"postgres://gridhub@127.0.0.1:5432/gridhub\"  # default: gridhub.db here\n\
         body_limit_bytes = 8388608\n\
         token_ttl_secs = 300\n\
         request_timeout_secs = 30\n\
         shutdown_grace_secs = 10\n\
         checkpoint_interval_secs = 10\n\
         log_format = \"pretty\"\n\
         # Holidays and make-up working days (调休); without it, Monday–Friday. Example:\n\
         # deploy/config/calendar-2026.toml in the source tree.\n\
         # calendar_file = \"/etc/gridhub/calendar.toml\"\n"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn unknown_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "listen = \"127.0.0.1:1\"\nlisten_port = 3\n",
        )
        .unwrap();
        let err = Settings::load(
            None,
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn initial_config_loads_with_flag_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), initial_config_text("t")).unwrap();
        let s = Settings::load(
            None,
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                listen: Some("127.0.0.1:0".parse().unwrap()),
                database_url: None,
            },
        )
        .unwrap();
        assert_eq!(s.listen.port(), 0);
        assert_eq!(s.instance, "t");
        assert!(matches!(s.database().unwrap(), DatabaseLocation::Sqlite(_)));
    }

    #[test]
    fn missing_config_says_to_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::load(
            None,
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("gridhub init"));
    }

    fn load_with(config: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let calendar = dir.path().join("calendar.toml");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            config.replace("CAL", &calendar.display().to_string()),
        )
        .unwrap();
        std::fs::write(
            &calendar,
            "holidays = [\"2026-10-01\",\n  \"2026-10-32\"]\n",
        )
        .unwrap();
        Settings::load(
            None,
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_linger_cap_defaults_to_four_limits_and_its_deadline_is_at_most_a_minute() {
        let s = load_with("body_limit_bytes = 1048576\n").unwrap();
        assert_eq!(s.body_linger_cap(), 4 * 1024 * 1024);
        assert_eq!(s.body_linger_secs, 5);
        let s = load_with("body_linger_bytes = 4096\nbody_linger_secs = 60\n").unwrap();
        assert_eq!(s.body_linger_cap(), 4096);
        let err = load_with("body_linger_secs = 61\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`body_linger_secs`"), "{err}");
    }

    #[test]
    fn the_calendar_file_is_read_at_load_and_a_bad_one_names_key_file_and_line() {
        let err = load_with("calendar_file = \"CAL\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`calendar_file` (`")
                && err
                    .ends_with("calendar.toml`): line 2: `2026-10-32` is not a date (YYYY-MM-DD)"),
            "{err}"
        );
        let err = load_with("calendar_file = \"CAL.missing\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`calendar_file`: cannot read `"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let calendar = dir.path().join("calendar.toml");
        std::fs::write(
            &calendar,
            "holidays = [\"2026-10-01\"]\nworkdays = [\"2026-10-10\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            format!("calendar_file = \"{}\"\n", calendar.display()),
        )
        .unwrap();
        let overrides = || Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let s = Settings::load(None, overrides()).unwrap();
        use time::macros::date;
        assert!(!s.working_calendar.is_working_day(date!(2026 - 10 - 01)));
        assert!(s.working_calendar.is_working_day(date!(2026 - 10 - 10)));
        // Without the file: plain Monday–Friday.
        std::fs::write(dir.path().join(CONFIG_FILE), "").unwrap();
        let s = Settings::load(None, overrides()).unwrap();
        assert_eq!(s.working_calendar, WorkingCalendar::weekdays());
    }
}
