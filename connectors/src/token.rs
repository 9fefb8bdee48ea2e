//! Access tokens shared by every task using one `Client`: fetched and refreshed by one task at
//! a time (single flight). Invariant: the token in use is replaced only by a token that was
//! actually received; a failed refresh leaves the old one in use while it has not expired.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Clock;
use crate::error::{Error, Result};

/// A token as received, with when to refresh it and when it expires (by the SDK's clock).
#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) value: String,
    /// Invariant: strictly increasing over the tokens a `Tokens` holds.
    pub(crate) generation: u64,
    refresh_at_ms: u64,
    expires_at_ms: u64,
}

/// A freshly fetched token: its text and lifetime (`expires_in`).
pub(crate) struct Fetched {
    pub(crate) value: String,
    pub(crate) expires_in: Duration,
}

/// The shared token state.
#[derive(Debug)]
pub(crate) struct Tokens {
    current: RwLock<Option<Arc<Token>>>,
    /// Held by the one task that refreshes.
    refresh: tokio::sync::Mutex<()>,
    /// Refresh attempts finished (success or failure): a waiter that sees it move knows an
    /// attempt ran while it waited and does not repeat it.
    attempts: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    clock: Arc<dyn Clock>,
    refresh_ahead: Duration,
}

impl Tokens {
    pub(crate) fn new(clock: Arc<dyn Clock>, refresh_ahead: Duration) -> Tokens {
        Tokens {
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            clock,
            refresh_ahead,
        }
    }

    /// Tokens received so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Token requests that failed.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn held(&self) -> Option<Arc<Token>> {
        self.current.read().map_or(None, |t| t.clone())
    }

    fn fresh(&self, token: &Token) -> bool {
        self.clock.now_ms() < token.refresh_at_ms
    }

    fn unexpired(&self, token: &Token) -> bool {
        self.clock.now_ms() < token.expires_at_ms
    }

    /// The token to use: the held one while it is fresh; otherwise one task refreshes (the
    /// others wait and take its result). A failed refresh falls back to the held token while
    /// it has not expired.
    pub(crate) async fn token<F, Fut>(&self, fetch: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched>>,
    {
        if let Some(t) = self.held().filter(|t| self.fresh(t)) {
            return Ok(t);
        }
        let attempts_before = self.attempts.load(Ordering::SeqCst);
        let _flight = self.refresh.lock().await;
        let held = self.held();
        if let Some(t) = held.as_ref().filter(|t| self.fresh(t)) {
            return Ok(Arc::clone(t));
        }
        if self.attempts.load(Ordering::SeqCst) != attempts_before
            && let Some(t) = held.as_ref().filter(|t| self.unexpired(t))
        {
            // An attempt failed while this task waited: do not hammer the token endpoint.
            return Ok(Arc::clone(t));
        }
        match self.run(fetch).await {
            Ok(t) => Ok(t),
            Err(e) => match held.filter(|t| self.unexpired(t)) {
                Some(old) => Ok(old),
                None => Err(e),
            },
        }
    }

    /// The hub refused the token of generation `refused`: refresh once, unless another task
    /// already replaced that token.
    pub(crate) async fn after_refusal<F, Fut>(&self, refused: u64, fetch: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched>>,
    {
        let _flight = self.refresh.lock().await;
        if let Some(t) = self.held().filter(|t| t.generation != refused) {
            return Ok(t);
        }
        self.run(fetch).await
    }

    /// Fetch and install a new token. Called with the refresh lock held.
    async fn run<F, Fut>(&self, fetch: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched>>,
    {
        let started = self.clock.now_ms();
        let result = fetch().await;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let fetched = match result {
            Ok(f) => f,
            Err(e) => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        let life = u64::try_from(fetched.expires_in.as_millis()).unwrap_or(u64::MAX);
        let ahead = u64::try_from(self.refresh_ahead.as_millis())
            .unwrap_or(u64::MAX)
            .min(life / 2);
        // Lifetimes count from when the request was sent: the hub's clock started then at the
        // latest.
        let expires_at_ms = started.saturating_add(life);
        let mut current = self
            .current
            .write()
            .map_err(|_| Error::Config("token state poisoned".to_owned()))?;
        let generation = current.as_ref().map_or(1, |t| t.generation + 1);
        let token = Arc::new(Token {
            value: fetched.value,
            generation,
            refresh_at_ms: expires_at_ms.saturating_sub(ahead),
            expires_at_ms,
        });
        *current = Some(Arc::clone(&token));
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Debug, Default)]
    struct TestClock(AtomicU64);
    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn ok(v: &str) -> impl Future<Output = Result<Fetched>> {
        let value = v.to_owned();
        async move {
            Ok(Fetched {
                value,
                expires_in: Duration::from_secs(300),
            })
        }
    }

    async fn fail() -> Result<Fetched> {
        Err(Error::Transport("lost".into()))
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_old_token_until_it_expires() {
        let clock = Arc::new(TestClock::default());
        let tokens = Tokens::new(clock.clone(), Duration::from_secs(60));
        assert_eq!(tokens.token(|| ok("a")).await.unwrap().value, "a");
        clock.0.store(250_000, Ordering::SeqCst); // within the refresh window
        assert_eq!(tokens.token(fail).await.unwrap().value, "a");
        assert_eq!((tokens.fetches(), tokens.failures()), (1, 1));
        assert_eq!(tokens.token(|| ok("b")).await.unwrap().value, "b");
        clock.0.store(600_000, Ordering::SeqCst); // b expired too
        assert!(tokens.token(fail).await.is_err());
        assert_eq!(tokens.token(|| ok("c")).await.unwrap().generation, 3);
    }

    #[tokio::test]
    async fn a_refusal_refreshes_only_the_refused_generation() {
        let tokens = Tokens::new(Arc::new(TestClock::default()), Duration::from_secs(60));
        let first = tokens.token(|| ok("a")).await.unwrap();
        let second = tokens
            .after_refusal(first.generation, || ok("b"))
            .await
            .unwrap();
        assert_eq!(second.value, "b");
        // A late refusal of generation 1 does not refresh again.
        let again = tokens
            .after_refusal(first.generation, || ok("c"))
            .await
            .unwrap();
        assert_eq!(again.value, "b");
        assert_eq!(tokens.fetches(), 2);
    }
}
