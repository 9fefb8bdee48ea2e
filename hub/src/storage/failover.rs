//! PostgreSQL given as several hosts, one of them the primary (issue 22): libpq's multi-host URL
//! `postgres://user:pw@h1:5432,h2:5432/db?target_session_attrs=read-write`, as a failover
//! manager such as `pg_auto_failover` expects its clients to use. sqlx understands one host per
//! URL, so the list is parsed here into one `PgConnectOptions` per host, and the pool follows
//! the primary by itself: a supervisor task checks the primary every `PROBE_EVERY` on a
//! connection of its own and, once it is lost (unreachable, in recovery or read-only), looks
//! for the host that accepts writes now and points the pool there (`Pool::set_connect_options`).
//!
//! Invariant: with several hosts, the pool hands out only connections to a server that accepted
//! writes when the connection was opened (`after_connect`), and none opened before the primary
//! was last lost or changed (`Stale`): those are closed when next taken, so a connection to a
//! demoted or dead node serves nothing after the supervisor noticed. While no host accepts
//! writes, taking a connection times out and requests are answered 503 `storage_unavailable`.
//! With one host nothing here runs: the URL goes to sqlx as it is, as before.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::StoreError;

/// How often the supervisor checks that the primary is still one, and how often it looks for a
/// new one while there is none.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Longest wait for one host's answer (connect and check); a host that does not answer in time
/// is taken as lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A connection that sat idle longer is pinged before it is handed out (a server restart or a
/// dropped link shows there); younger ones are not, as sqlx's default would (a round trip per
/// statement).
const IDLE_PING_AFTER: Duration = Duration::from_secs(10);
/// Whether a server accepts writes: not a standby, and sessions are not read-only by default
/// (what libpq's `target_session_attrs=read-write` asks).
const WRITABLE: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'";

/// Why a multi-host database URL was refused. Never quotes the URL, whose user part may carry a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("a database URL with several hosts must start with `postgres://` or `postgresql://`")]
    Scheme,
    #[error("host {position} of the database URL is empty")]
    EmptyHost { position: usize },
    #[error("host {position} of the database URL opens `[` and does not close it")]
    UnclosedBracket { position: usize },
    /// The port's text is not quoted: in a URL whose password holds an unencoded `/`, what
    /// looks like a port may be part of the password.
    #[error("host {position} of the database URL has a bad port (a number up to 65535)")]
    BadPort { position: usize },
    #[error(
        "`{0}` in the query of a database URL with several hosts would apply to every host: put \
         each host in the host list"
    )]
    HostParameter(String),
    #[error(
        "`target_session_attrs={0}` does not fit the hub, which writes: give `read-write` or \
         `primary`, or leave it out"
    )]
    SessionAttrs(String),
    #[error("host {position} of the database URL: {source}")]
    Host {
        position: usize,
        #[source]
        source: sqlx::Error,
    },
}

/// No host of the list accepts writes (at start-up).
#[derive(Debug, thiserror::Error)]
#[error("no host of the database URL accepts writes ({0})")]
struct NoPrimary(String);

/// One host of the list.
#[derive(Clone)]
struct Host {
    /// `host:port`, for logs (never the URL: it may carry a password).
    label: String,
    options: PgConnectOptions,
}

/// A parsed `database_url`. Invariant: `hosts` is not empty; with one host it holds what sqlx
/// parsed from the whole URL.
pub(super) struct Hosts {
    hosts: Vec<Host>,
}

impl Hosts {
    /// Parse `url`. A URL whose host part has no comma goes to sqlx unchanged.
    pub(super) fn parse(url: &str) -> Result<Hosts, StoreError> {
        let config = |e: UrlError| StoreError::Connect(sqlx::Error::Configuration(Box::new(e)));
        match split(url) {
            Some(parts) if parts.hosts.contains(',') => Ok(Hosts {
                hosts: parts.per_host().map_err(config)?,
            }),
            _ => {
                let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
                Ok(Hosts {
                    hosts: vec![Host::new(options)],
                })
            }
        }
    }

    /// Open the pool `pool` describes on the primary. With one host: sqlx's own pool with the
    /// idle ping, exactly as before issue 22. With several: the primary is looked for (for at
    /// most the pool's acquire timeout), fresh connections must accept writes, and a supervisor
    /// task follows the primary until the pool is closed.
    pub(super) async fn connect(self, pool: PgPoolOptions) -> Result<PgPool, StoreError> {
        let mut hosts = self.hosts;
        if hosts.len() == 1
            && let Some(host) = hosts.pop()
        {
            return pool
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > IDLE_PING_AFTER {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(host.options)
                .await
                .map_err(StoreError::Connect);
        }
        let hosts: Arc<[Host]> = hosts.into();
        let (primary, probe) = first_primary(&hosts, pool.get_acquire_timeout()).await?;
        tracing::info!(
            primary = hosts.get(primary).map_or("", |h| h.label.as_str()),
            hosts = hosts.len(),
            "database: several hosts given; the hub follows their primary"
        );
        let stale = Arc::new(Stale::new());
        let marks = Arc::clone(&stale);
        let options = hosts
            .get(primary)
            .map(|h| h.options.clone())
            .ok_or_else(|| StoreError::Connect(sqlx::Error::PoolClosed))?;
        let pool = pool
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if writable(conn).await? {
                        Ok(())
                    } else {
                        Err(not_primary())
                    }
                })
            })
            .before_acquire(move |conn, meta| {
                let stale = marks.opened_before(meta.age);
                Box::pin(async move {
                    if stale {
                        return Ok(false);
                    }
                    if meta.idle_for > IDLE_PING_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        tokio::spawn(supervise(pool.clone(), hosts, stale, primary, probe));
        Ok(pool)
    }
}

impl Host {
    fn new(options: PgConnectOptions) -> Host {
        let label = format!("{}:{}", options.get_host(), options.get_port());
        Host { label, options }
    }
}

/// A URL cut into the pieces the host list is spliced between.
struct Parts<'a> {
    scheme: &'a str,
    /// `user:password`, still percent-encoded, if given.
    userinfo: Option<&'a str>,
    hosts: &'a str,
    /// The path, without the query.
    path: &'a str,
    query: Option<&'a str>,
}

/// Split `scheme://[userinfo@]hosts[/path][?query]`; None if there is no `://`. The user part
/// ends at the last `@` before the path (a password's own `@` must be percent-encoded anyway).
fn split(url: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end)?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    Some(Parts {
        scheme,
        userinfo,
        hosts,
        path,
        query,
    })
}

impl Parts<'_> {
    /// One `PgConnectOptions` per host, each from the URL with that host alone (so sqlx decodes
    /// the user, password, database and parameters as it always does).
    fn per_host(&self) -> Result<Vec<Host>, UrlError> {
        if !matches!(self.scheme, "postgres" | "postgresql") {
            return Err(UrlError::Scheme);
        }
        let query = self.query_for_sqlx()?;
        let userinfo = self.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        self.hosts
            .split(',')
            .enumerate()
            .map(|(i, host)| {
                let position = i + 1;
                let host = host_and_port(host, position)?;
                let url = format!("{}://{userinfo}{host}{}{query}", self.scheme, self.path);
                PgConnectOptions::from_str(&url)
                    .map(Host::new)
                    .map_err(|source| UrlError::Host { position, source })
            })
            .collect()
    }

    /// The query without `target_session_attrs` (checked here: the hub always wants the
    /// primary), as `?…` or empty. `host`, `hostaddr` and `port` would override every host of
    /// the list, so they are refused.
    fn query_for_sqlx(&self) -> Result<String, UrlError> {
        let Some(query) = self.query else {
            return Ok(String::new());
        };
        let mut kept = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "target_session_attrs" => match value.as_ref() {
                    "read-write" | "primary" => {}
                    _ => return Err(UrlError::SessionAttrs(value.into_owned())),
                },
                "host" | "hostaddr" | "port" => {
                    return Err(UrlError::HostParameter(key.into_owned()));
                }
                _ => {
                    kept.append_pair(&key, &value);
                }
            }
        }
        let kept = kept.finish();
        Ok(if kept.is_empty() {
            kept
        } else {
            format!("?{kept}")
        })
    }
}

/// Check one entry of the host list: `name`, `name:port`, `[v6]` or `[v6]:port`; returns it as
/// it goes into a one-host URL.
fn host_and_port(entry: &str, position: usize) -> Result<&str, UrlError> {
    let (name, port) = match entry.strip_prefix('[') {
        Some(v6) => {
            let (name, rest) = v6
                .split_once(']')
                .ok_or(UrlError::UnclosedBracket { position })?;
            match rest.strip_prefix(':') {
                Some(port) => (name, Some(port)),
                None if rest.is_empty() => (name, None),
                None => return Err(UrlError::BadPort { position }),
            }
        }
        None => match entry.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (entry, None),
        },
    };
    if name.is_empty() {
        return Err(UrlError::EmptyHost { position });
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(UrlError::BadPort { position });
    }
    Ok(entry)
}

/// Connections opened before the primary was last lost or changed are not handed out again.
struct Stale {
    base: Instant,
    /// Nanoseconds after `base` of the last mark, plus one; 0 before any mark.
    /// Invariant: only grows.
    mark: AtomicU64,
}

impl Stale {
    fn new() -> Stale {
        Stale {
            base: Instant::now(),
            mark: AtomicU64::new(0),
        }
    }

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    /// From now on, every connection open now is stale.
    fn mark(&self) {
        let now = Stale::nanos(self.base.elapsed()).saturating_add(1);
        self.mark.fetch_max(now, Ordering::SeqCst);
    }

    /// Whether a connection of age `age` was opened before the last mark.
    fn opened_before(&self, age: Duration) -> bool {
        let opened = Stale::nanos(self.base.elapsed().saturating_sub(age));
        opened < self.mark.load(Ordering::SeqCst)
    }
}

/// The error `after_connect` gives for a server that does not accept writes; sqlx logs it,
/// drops the connection and tries again (with backoff, until the acquire timeout).
fn not_primary() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(
        "not the primary: the server is in recovery or read-only",
    ))
}

async fn writable(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(WRITABLE).fetch_one(conn).await
}

/// A connection to `host` if it accepts writes now; otherwise why not.
async fn probe(host: &Host) -> Result<PgConnection, String> {
    let check = async {
        let mut conn = PgConnection::connect_with(&host.options).await?;
        if writable(&mut conn).await? {
            Ok(conn)
        } else {
            let _ = conn.close().await;
            Err(not_primary())
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("{}: {e}", host.label)),
        Err(_) => Err(format!(
            "{}: no answer within {PROBE_TIMEOUT:?}",
            host.label
        )),
    }
}

/// All hosts at once; the first in the list's order that accepts writes, with its connection.
/// Connections to other writable hosts (there should be none) are closed.
async fn find_primary(hosts: &[Host]) -> Result<(usize, PgConnection), String> {
    let answers = futures::future::join_all(hosts.iter().map(probe)).await;
    let mut found = None;
    let mut problems = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        match (answer, &found) {
            (Ok(conn), None) => found = Some((i, conn)),
            (Ok(conn), Some(_)) => {
                tracing::warn!(
                    host = hosts.get(i).map_or("", |h| h.label.as_str()),
                    "a second database host accepts writes; the hub keeps to the first"
                );
                let _ = conn.close().await;
            }
            (Err(problem), _) => problems.push(problem),
        }
    }
    found.ok_or_else(|| problems.join("; "))
}

/// `find_primary` again every `PROBE_EVERY` until `within` has passed.
async fn first_primary(
    hosts: &[Host],
    within: Duration,
) -> Result<(usize, PgConnection), StoreError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match find_primary(hosts).await {
            Ok(found) => return Ok(found),
            Err(problems) if tokio::time::Instant::now() + PROBE_EVERY >= deadline => {
                return Err(StoreError::Connect(sqlx::Error::Io(std::io::Error::other(
                    NoPrimary(problems),
                ))));
            }
            Err(_) => tokio::time::sleep(PROBE_EVERY).await,
        }
    }
}

/// Whether `host` (the primary) still accepts writes: on the supervisor's connection, and if
/// that fails, once more on a fresh one (the probe's own connection may be all that broke).
async fn still_primary(conn: &mut Option<PgConnection>, host: &Host) -> Result<(), String> {
    if let Some(c) = conn.as_mut()
        && let Ok(Ok(true)) = tokio::time::timeout(PROBE_TIMEOUT, writable(c)).await
    {
        return Ok(());
    }
    *conn = None;
    *conn = Some(probe(host).await?);
    Ok(())
}

/// Follow the primary until the pool is closed (see the module doc).
async fn supervise(
    pool: PgPool,
    hosts: Arc<[Host]>,
    stale: Arc<Stale>,
    mut primary: usize,
    conn: PgConnection,
) {
    let mut closed = pool.close_event();
    let mut conn = Some(conn);
    loop {
        if closed
            .do_until(tokio::time::sleep(PROBE_EVERY))
            .await
            .is_err()
        {
            return;
        }
        let Some(current) = hosts.get(primary) else {
            return;
        };
        let Err(problem) = still_primary(&mut conn, current).await else {
            continue;
        };
        let lost = Instant::now();
        stale.mark();
        tracing::error!(
            primary = current.label,
            problem,
            "the database primary is lost: requests are refused (503) until a host accepts writes"
        );
        let (found, found_conn) = loop {
            match closed.do_until(find_primary(&hosts)).await {
                Err(_) => return,
                Ok(Ok(found)) => break found,
                Ok(Err(_)) => {}
            }
            if closed
                .do_until(tokio::time::sleep(PROBE_EVERY))
                .await
                .is_err()
            {
                return;
            }
        };
        let Some(next) = hosts.get(found) else {
            return;
        };
        pool.set_connect_options(next.options.clone());
        // INVARIANT (Stale): marked after the switch, so that every connection opened to the
        // old primary is older than the mark.
        stale.mark();
        primary = found;
        conn = Some(found_conn);
        tracing::warn!(
            primary = next.label,
            without_primary_ms = u64::try_from(lost.elapsed().as_millis()).unwrap_or(u64::MAX),
            "the hub follows the database primary"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hosts(url: &str) -> Vec<Host> {
        match Hosts::parse(url) {
            Ok(h) => h.hosts,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    fn refusal(url: &str) -> String {
        match Hosts::parse(url) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn two_hosts_become_two_options_with_the_same_user_database_and_parameters() {
        let found = hosts(
            "postgres://gridhub:s3cret@10.0.0.1:5433,db-2.example:6543/hub\
             ?target_session_attrs=read-write&sslmode=disable&application_name=gh",
        );
        let labels: Vec<&str> = found.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(labels, ["10.0.0.1:5433", "db-2.example:6543"]);
        for h in &found {
            assert_eq!(h.options.get_username(), "gridhub");
            assert_eq!(h.options.get_database(), Some("hub"));
            assert_eq!(h.options.get_application_name(), Some("gh"));
            assert!(matches!(
                h.options.get_ssl_mode(),
                sqlx::postgres::PgSslMode::Disable
            ));
        }
    }

    #[test]
    fn a_host_without_a_port_gets_the_default_and_ipv6_hosts_keep_their_brackets() {
        let found = hosts("postgresql://u@[::1]:5441,[fe80::2],db-3/hub");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].options.get_port(), 5441);
        assert_eq!(found[2].options.get_host(), "db-3");
        assert_eq!(found[2].options.get_port(), 5432);
        assert_eq!(found[1].options.get_port(), 5432);
    }

    #[test]
    fn one_host_goes_to_sqlx_unchanged() {
        let url = "postgres://u:pw@127.0.0.1:5433/hub?target_session_attrs=any";
        let found = hosts(url);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].label, "127.0.0.1:5433");
        // A comma in the password is not a host list.
        assert_eq!(hosts("postgres://u:a,b@h:1/db").len(), 1);
    }

    #[test]
    fn bad_host_lists_are_refused_with_the_host_named() {
        assert!(
            refusal("postgres://u@h1:5432,/db").contains("host 2 of the database URL is empty")
        );
        assert!(
            refusal("postgres://u@h1:54x2,h2/db")
                .contains("host 1 of the database URL has a bad port")
        );
        assert!(
            refusal("postgres://u@h1,:5432/db").contains("host 2 of the database URL is empty")
        );
        assert!(
            refusal("postgres://u@h1,[::1/db").contains("host 2 of the database URL opens `[`")
        );
        assert!(
            refusal("postgres://u@h1,[::1]5432/db")
                .contains("host 2 of the database URL has a bad port")
        );
        assert!(refusal("mysql://u@h1,h2/db").contains("postgres://"));
        assert!(refusal("postgres://u@h1,h2/db?target_session_attrs=any").contains("read-write"));
        assert!(refusal("postgres://u@h1,h2/db?host=h3").contains("`host`"));
        assert!(refusal("postgres://u@h1,h2/db?port=1").contains("`port`"));
        assert!(
            refusal("postgres://u@h1,h2:99999/db")
                .contains("host 2 of the database URL has a bad port")
        );
    }

    #[test]
    fn connections_opened_before_a_mark_are_stale_and_later_ones_are_not() {
        let stale = Stale::new();
        assert!(!stale.opened_before(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(2));
        stale.mark();
        assert!(stale.opened_before(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(!stale.opened_before(Duration::from_micros(500)));
    }

    proptest! {
        /// Any list of hosts and ports comes back in order, each with the URL's user and
        /// database.
        #[test]
        fn host_lists_parse_in_order(
            list in proptest::collection::vec(("[a-z][a-z0-9-]{0,12}", proptest::option::of(1u16..)), 2..5),
            user in "[a-z][a-z0-9_]{0,8}",
            db in "[a-z][a-z0-9_]{0,8}",
            password in "[A-Za-z0-9%!*]{0,12}",
        ) {
            let list_text: Vec<String> = list
                .iter()
                .map(|(h, p)| p.map_or_else(|| h.clone(), |p| format!("{h}:{p}")))
                .collect();
            let password = password.replace('%', "%25");
            let url = format!("postgres://{user}:{password}@{}/{db}", list_text.join(","));
            let found = hosts(&url);
            prop_assert_eq!(found.len(), list.len());
            for (h, (name, port)) in found.iter().zip(&list) {
                prop_assert_eq!(h.options.get_host(), name.as_str());
                prop_assert_eq!(h.options.get_port(), port.unwrap_or(5432));
                prop_assert_eq!(h.options.get_username(), user.as_str());
                prop_assert_eq!(h.options.get_database(), Some(db.as_str()));
            }
        }

        /// However a host list is broken, the refusal never quotes the password.
        #[test]
        fn refusals_never_quote_the_password(
            password in "[A-Za-z0-9]{10,16}",
            broken in prop_oneof![
                Just("h1:99999,h2"),
                Just("h1,:1"),
                Just("h1,"),
                Just("[::1,h2"),
                Just("h1:port,h2"),
            ],
            query in prop_oneof![
                Just(""),
                Just("?target_session_attrs=standby"),
                Just("?host=x"),
            ],
        ) {
            for url in [
                format!("postgres://gridhub:{password}@{broken}/db{query}"),
                // An unencoded `/` in the password: the "host list" is the user part.
                format!("postgres://gridhub:{password},x:{password}/y@h1/db"),
                format!("redis://gridhub:{password}@h1,h2/db"),
            ] {
                let text = refusal(&url);
                prop_assert!(!text.contains(&password), "{}", text);
            }
        }

        /// No input makes the parser panic.
        #[test]
        fn any_text_parses_or_is_refused(url in "\\PC{0,60}") {
            let _ = Hosts::parse(&url);
            let _ = Hosts::parse(&format!("postgres://{url}"));
        }
    }
}
