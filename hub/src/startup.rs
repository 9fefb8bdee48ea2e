//! Building and running the application: open the database, unlock the vault, load TLS, bind
//! the listener. `Application::build` binds (port 0 works, for tests) before `run` serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::Access;
use crate::auth::login_limiter::LoginLimiter;
use crate::auth::permissions::Permissions;
use crate::auth::refusals::Refusals;
use crate::auth::tokens::TokenIssuer;
use crate::cases::Cases;
use crate::config::Settings;
use crate::decisions::Decisions;
use crate::disclosure::Disclosures;
use crate::grants::Grants;
use crate::identity::Identity;
use crate::ledger::Ledger;
use crate::ledger::note::NoteSigner;
use crate::oversight::Oversight;
use crate::routes;
use crate::server::Transport;
use crate::state::AppState;
use crate::storage::Store;
use crate::time::{Clock, SystemClock};
use crate::tls;
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    transport: Transport,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As `build`, with the clock that the code handed one follows (tests move it; see
    /// `crate::time::Clock`).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let vault = Vault::unlock(&AgeFileStore::in_dir(&settings.data_dir))
            .context("cannot unlock the keyring")?
            .with_client_ca(&settings.pki_dir())
            .context("cannot load the hub CA")?;
        let catalog = policy::Catalog::default_catalog();
        let scopes = catalog.categories().iter().map(|c| c.name.as_str());
        for scope in scopes.chain([crate::vault::CASE_TEXTS]) {
            vault
                .active_kek_version(scope)
                .with_context(|| format!("keyring has no key for `{scope}`"))?;
        }
        let location = settings.database()?;
        let store = Store::open(&location)
            .await
            .context("cannot open the database")?;
        let pki = settings.pki_dir();
        let hub_ca = pki.join(tls::pki::CA_CERT);
        let mut client_cas = vec![hub_ca.as_path()];
        if let Some(external) = &settings.client_ca_file {
            client_cas.push(external.as_path());
        }
        let tls = tls::server_config(
            &pki.join(tls::pki::SERVER_CERT),
            &pki.join(tls::pki::SERVER_KEY),
            tls::client_roots(&client_cas)?,
        )?;
        let tokens = TokenIssuer::new(
            &vault,
            token_issuer(&settings.instance),
            settings.token_ttl_secs,
        )
        .map_err(|e| anyhow::anyhow!("cannot set up token signing: {e}"))?
        .with_clock(Arc::clone(&clock));
        let ledger = open_ledger(&vault, store.clone(), &settings.instance).await?;
        ledger.spawn_checkpointer(Duration::from_secs(settings.checkpoint_interval_secs));
        if settings.retention_sweep_secs > 0 {
            crate::retention::spawn_sweeper(
                store.clone(),
                ledger.clone(),
                Arc::clone(&clock),
                Duration::from_secs(settings.retention_sweep_secs),
            );
        }
        store
            .seed_roles(&shipped_role_rows(), crate::time::now_ms())
            .await
            .context("cannot seed the shipped roles")?;
        let permissions = Arc::new(
            Permissions::load(store.clone())
                .await
                .context("cannot load role permissions")?,
        );
        let login_limiter = LoginLimiter::new(
            settings.login_failures_per_user,
            settings.login_failures_per_address,
            crate::auth::login_limiter::WINDOW,
        );
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let vault = Arc::new(vault);
        // Which KEK version does what is the database's (another replica may have rotated).
        let keys = Arc::new(crate::keys::Keys::new(
            store.clone(),
            Arc::clone(&vault),
            AgeFileStore::in_dir(&settings.data_dir),
            ledger.clone(),
            Arc::clone(&clock),
            crate::keys::policy_of(&settings),
        ));
        keys.sync()
            .await
            .map_err(|e| anyhow::anyhow!("cannot follow the key versions' states: {e}"))?;
        Arc::clone(&keys).spawn_worker();
        let decisions = Decisions::load(store.clone(), Arc::clone(&vault))
            .await
            .map_err(|e| anyhow::anyhow!("cannot build the decision index: {e}"))?;
        let decisions = Arc::new(decisions);
        let tokens = Arc::new(tokens);
        let refusals = Arc::new(Refusals::new(Arc::clone(&clock), ledger.clone()));
        Arc::clone(&refusals).spawn_flusher();
        let access = Access::new(ledger.clone(), Arc::clone(&permissions), refusals);
        let cases = Arc::new(Cases::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
            settings.working_calendar.clone(),
        ));
        let grants = Arc::new(Grants::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
            Arc::clone(&tokens),
            settings.working_calendar.clone(),
        ));
        Arc::clone(&grants).spawn_expiry_sweep();
        let disclosures = Arc::new(Disclosures::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
            settings.pull_scan_budget_rows,
        ));
        let oversight = Arc::new(
            Oversight::new(
                access.clone(),
                store.clone(),
                Arc::clone(&vault),
                Arc::clone(&decisions),
            )
            .with_rotate_after_wraps(settings.kek_rotate_after_wraps),
        );
        let records = Arc::new(crate::records::Records::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
            Duration::from_secs(settings.request_timeout_secs),
        ));
        let catalog_service = Arc::new(crate::catalog::CatalogService::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
            AgeFileStore::in_dir(&settings.data_dir),
        ));
        let statistics = Arc::new(crate::statistics::Statistics::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&decisions),
        ));
        let identity = Arc::new(Identity::new(
            access.clone(),
            store.clone(),
            Arc::clone(&vault),
        ));
        let webhooks =
            build_webhooks(&settings, &access, &store, &vault, &clock, &oversight).await?;
        Arc::clone(&webhooks).spawn_worker();
        let state = AppState {
            settings: Arc::new(settings),
            store,
            vault,
            decisions,
            tokens,
            catalog: catalog_service,
            statistics,
            access,
            disclosures,
            oversight,
            grants,
            cases,
            records,
            identity,
            metrics: Arc::new(crate::metrics::Metrics::new(&ledger)),
            permissions,
            ledger,
            login_limiter: Arc::new(login_limiter),
            known_clients: Arc::default(),
            clock,
            webhooks,
            keys,
        };
        Ok(Application {
            listener,
            addr,
            state,
            transport: Transport::Tls(tls),
        })
    }

    /// Serve plain HTTP instead of HTTPS (development only; no client certificates, so no
    /// department access). Logged loudly at start.
    pub fn insecure_http(mut self) -> Application {
        self.transport = Transport::InsecureHttp;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` completes, then drain and close the database.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let grace = Duration::from_secs(self.state.settings.shutdown_grace_secs);
        let store = self.state.store.clone();
        let refusals = Arc::clone(self.state.access.refusals());
        match self.transport {
            Transport::Tls(_) => tracing::info!(
                addr = %self.addr,
                database = store.backend_name(),
                "gridhub listening on https://{}", self.addr
            ),
            Transport::InsecureHttp => {
                for _ in 0..3 {
                    tracing::warn!(
                        addr = %self.addr,
                        "INSECURE: serving plain HTTP on http://{} — no TLS, no client \
                         certificates, tokens and data travel in clear. Development only.",
                        self.addr
                    );
                }
            }
        }
        let linger = crate::server::Linger {
            cap: self.state.settings.body_linger_cap(),
            deadline: Duration::from_secs(self.state.settings.body_linger_secs),
        };
        let app = routes::router(self.state);
        crate::server::serve(self.listener, self.transport, app, linger, shutdown, grace).await;
        // The counted refusals of the open windows, before the database closes.
        refusals.flush_all().await;
        store.close().await;
        tracing::info!("stopped");
    }
}

/// The shipped roles as storage rows (object, action, grids).
pub fn shipped_role_rows() -> Vec<crate::storage::RoleSeed> {
    crate::auth::permissions::shipped_roles()
        .into_iter()
        .map(|(name, description, perms)| {
            (
                name,
                description,
                perms
                    .into_iter()
                    .map(|p| (p.object, p.action, p.grids))
                    .collect(),
            )
        })
        .collect()
}

/// The ledger's origin line in checkpoints, also its signing key's name.
/// The `iss` of this hub's tokens and signed documents.
pub fn token_issuer(instance: &str) -> String {
    format!("gridhub/{instance}")
}

pub fn ledger_origin(instance: &str) -> String {
    format!("gridhub/{instance}")
}

/// Open the ledger of this hub with its signing key from the vault.
pub async fn open_ledger(vault: &Vault, store: Store, instance: &str) -> anyhow::Result<Ledger> {
    let origin = ledger_origin(instance);
    let key = vault
        .ledger_key()
        .context("the keyring has no ledger signing key")?;
    let signer = NoteSigner::new(&origin, key).map_err(|e| anyhow::anyhow!("ledger key: {e}"))?;
    let previous = vault
        .previous_ledger_key()
        .map(|k| NoteSigner::new(&origin, k))
        .transpose()
        .map_err(|e| anyhow::anyhow!("previous ledger key: {e}"))?;
    let signer = crate::keys::ledger_key::complete_interrupted(
        &store,
        previous,
        signer,
        crate::time::now_ms(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot complete an interrupted ledger-key rotation: {e}"))?;
    Ledger::open(store, signer, origin)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the audit ledger: {e}"))
}

/// The webhook service (issue 21): its HTTPS client, retry policy and, with `[nats]`, the
/// JetStream publisher (a NATS that cannot be reached stops start-up, naming it).
async fn build_webhooks(
    settings: &Settings,
    access: &Access,
    store: &Store,
    vault: &Arc<Vault>,
    clock: &Arc<dyn Clock>,
    oversight: &Arc<Oversight>,
) -> anyhow::Result<Arc<crate::webhooks::Webhooks>> {
    let w = &settings.webhooks;
    let http = crate::webhooks::http_client(
        w.ca_file.as_deref(),
        Duration::from_secs(w.timeout_secs.max(1)),
    )?;
    let nats = match &settings.nats {
        Some(n) => Some(crate::webhooks::nats::Publisher::connect(n, &settings.instance).await?),
        None => None,
    };
    Ok(Arc::new(crate::webhooks::Webhooks::new(
        access.clone(),
        store.clone(),
        Arc::clone(vault),
        Arc::clone(clock),
        http,
        crate::webhooks::Backoff {
            base: Duration::from_secs(w.backoff_base_secs),
            cap: Duration::from_secs(w.backoff_cap_secs),
            max_attempts: w.max_attempts.max(1),
        },
        Duration::from_secs(w.poll_secs.max(1)),
        nats,
        Arc::clone(oversight),
    )))
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: `run_until` announces "listening" before the accept loop polls
/// it, and a SIGTERM sent as soon as that line appeared (a supervisor, a test) used to find no
/// handler and kill the process without draining (seen once in CI as exit status 15).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            let (mut term, mut interrupt) = match (term, interrupt) {
                (Ok(term), Ok(interrupt)) => (term, interrupt),
                _ => {
                    tracing::warn!("cannot install the SIGTERM/SIGINT handlers; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
