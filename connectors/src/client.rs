//! The `Client`: typed calls to the hub over mTLS with a shared, single-flight token, sealed
//! answers unsealed, and every disclosure's receipt verified (signature, inclusion in a
//! checkpoint consistent with every checkpoint verified before) before a page is returned.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde_json::{Map, Value};

use crate::config::{Clock, Config};
use crate::error::{Error, Result};
use crate::keys::LedgerKeys;
use crate::model::{
    ExplainBody, Explanation, GrantRequest, GrantStatus, LookupBody, Page, PullRequest, RawPage,
    Receipt, TokenAnswer,
};
use crate::state::StateFile;
use crate::token::{Fetched, Tokens};
use crate::transport::{self, Hub, checked, error_of, segment};
use crate::trust::{SharedTrust, Trust, WitnessRule};
use crate::unseal::Unsealer;
use crate::verify::{self, InclusionProof, SignedCheckpoint};

/// The media type of sealed answers.
const AGE: &str = "application/age";

/// A Gridhub client for one department system. Cheap to clone; clones share the token, the
/// trusted checkpoint and the counters, so many tasks can use one client.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    hub: Hub,
    token_url: String,
    tokens: Tokens,
    trust: SharedTrust,
    unsealer: Option<Unsealer>,
    clock: Arc<dyn Clock>,
}

/// A cosignature the hub accepted.
#[derive(Debug, Clone)]
pub struct Witnessed {
    /// The size of the cosigned checkpoint.
    pub size: u64,
    /// The witness key's name.
    pub key_name: String,
    /// The cosignature's timestamp (POSIX seconds).
    pub timestamp: u64,
    /// The checkpoint that was verified and cosigned.
    pub checkpoint: SignedCheckpoint,
}

#[derive(serde::Deserialize)]
struct CosignatureAccepted {
    size: u64,
    key_name: String,
    timestamp: u64,
}

impl Client {
    /// A client from `config`. Fails on an unusable certificate, key, URL or age identity;
    /// nothing is sent to the hub yet.
    pub fn new(config: Config) -> Result<Client> {
        let hub = Hub::new(&config)?;
        let unsealer = config
            .age_identity
            .as_deref()
            .map(Unsealer::parse)
            .transpose()?;
        let witnesses = config
            .witnesses
            .as_ref()
            .map(|(vkeys, required)| WitnessRule::parse(vkeys, *required))
            .transpose()?;
        let token_url = config
            .token_url
            .clone()
            .unwrap_or_else(|| hub.url("/v1/oauth/token"));
        Ok(Client {
            inner: Arc::new(Inner {
                token_url,
                tokens: Tokens::new(Arc::clone(&config.clock), config.refresh_ahead),
                trust: Arc::new(Trust::new(
                    config.state_file.map(StateFile::new),
                    config.ledger_vkey,
                    witnesses,
                )),
                unsealer,
                clock: Arc::clone(&config.clock),
                hub,
            }),
        })
    }

    /// How many access tokens this client (and its clones) received.
    pub fn token_fetches(&self) -> u64 {
        self.inner.tokens.fetches()
    }

    /// How many token requests failed (the old token stayed in use while valid).
    pub fn token_failures(&self) -> u64 {
        self.inner.tokens.failures()
    }

    /// The last checkpoint this client verified, if any.
    pub fn trusted_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner.trust.last()
    }

    /// The pinned ledger key and the chain of keys followed from it (`None` until the first
    /// verification pins it).
    pub fn ledger_keys(&self) -> Option<LedgerKeys> {
        self.inner.trust.ledger_keys()
    }

    /// Fetch the hub's current checkpoint, verify its signature (by a key of the chain followed
    /// from the pinned key; after a rotation, the hub's key transitions are followed first) and
    /// its consistency with the trusted one (and the state file's), and trust it.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint> {
        self.inner.trust.advance(&self.inner.hub).await
    }

    /// One page of `category` records (`GET /v1/data/{category}`), verified.
    pub async fn pull(&self, category: &str, request: PullRequest) -> Result<Page> {
        let url = self
            .inner
            .hub
            .url(&format!("/v1/data/{}", segment(category)));
        let body = self
            .disclosure(|http| http.get(&url).query(&request))
            .await?;
        self.verified(body).await
    }

    /// Every page of a pull, from `request.cursor` (a saved `next_cursor`, to resume) to the
    /// end, each verified. The stream ends after the last page or the first error.
    pub fn pull_all<'a>(
        &'a self,
        category: &'a str,
        request: PullRequest,
    ) -> impl Stream<Item = Result<Page>> + 'a {
        futures::stream::try_unfold(Some(request), move |next| async move {
            let Some(request) = next else {
                return Ok(None);
            };
            let page = self.pull(category, request.clone()).await?;
            let next = page.next_cursor.clone().map(|cursor| PullRequest {
                cursor: Some(cursor),
                ..request
            });
            Ok(Some((page, next)))
        })
    }

    /// Look subjects up by one indexed field (`POST /v1/data/{category}/lookup`), verified.
    pub async fn lookup(
        &self,
        category: &str,
        purpose: &str,
        case: Option<&str>,
        key: &Map<String, Value>,
    ) -> Result<Page> {
        let url = self
            .inner
            .hub
            .url(&format!("/v1/data/{}/lookup", segment(category)));
        let body = LookupBody { purpose, case, key };
        let answer = self.disclosure(|http| http.post(&url).json(&body)).await?;
        self.verified(answer).await
    }

    /// Why this department gets what it gets (`POST /v1/decisions/explain`).
    pub async fn explain(
        &self,
        category: &str,
        purpose: &str,
        case: Option<&str>,
        record: Option<&str>,
    ) -> Result<Explanation> {
        let url = self.inner.hub.url("/v1/decisions/explain");
        let body = ExplainBody {
            category,
            purpose,
            case,
            record,
        };
        let resp = self.authorized(|http| http.post(&url).json(&body)).await?;
        transport::parse(&resp.bytes().await?)
    }

    /// Ask for a grant (`POST /v1/grants`); a DPO approves it.
    pub async fn request_grant(&self, request: &GrantRequest) -> Result<GrantStatus> {
        let url = self.inner.hub.url("/v1/grants");
        let resp = self
            .authorized(|http| http.post(&url).json(request))
            .await?;
        transport::parse(&resp.bytes().await?)
    }

    /// A grant of this department and its status (`GET /v1/grants/{id}`).
    pub async fn grant(&self, id: &str) -> Result<GrantStatus> {
        let url = self.inner.hub.url(&format!("/v1/grants/{}", segment(id)));
        let resp = self.authorized(|http| http.get(&url)).await?;
        transport::parse(&resp.bytes().await?)
    }

    /// Verify a receipt: its signature by the ledger key its `key_id` names (a key of the chain
    /// followed from the pinned key), and its entry's inclusion in a checkpoint consistent with
    /// the trusted one. Returns that checkpoint.
    pub async fn verify_receipt(&self, receipt: &Receipt) -> Result<SignedCheckpoint> {
        let hub = &self.inner.hub;
        let trust = &self.inner.trust;
        let key = trust.receipt_key(hub, receipt).await?;
        let leaf = verify::receipt_leaf(&key, receipt)?;
        let checkpoint = trust.advance(hub).await?;
        if checkpoint.size() <= receipt.index {
            return Err(Error::ProofFailed(format!(
                "the hub's checkpoint of size {} does not cover entry {}",
                checkpoint.size(),
                receipt.index
            )));
        }
        let proof: InclusionProof = hub
            .get_json(
                "/v1/audit/proofs/inclusion",
                &[("index", receipt.index), ("size", checkpoint.size())],
            )
            .await?;
        verify::check_inclusion(receipt.index, &leaf, &checkpoint, &proof)?;
        Ok(checkpoint)
    }

    /// Act as a witness: verify the hub's current checkpoint fully (signature, consistency
    /// with the trusted checkpoint and the state file), cosign its text with `cosigner`
    /// (C2SP tlog-cosignature/v1) and hand the cosignature in (`POST /v1/audit/cosignatures`).
    /// The client must have `cosigner`'s key registered as its witness key.
    pub async fn witness(&self, cosigner: &tlog::cosignature::Cosigner) -> Result<Witnessed> {
        let checkpoint = self.checkpoint().await?;
        let now = self.inner.clock.now_ms() / 1000;
        let line = cosigner
            .cosign(checkpoint.text(), now)
            .map_err(|e| Error::Config(format!("cannot cosign: {e}")))?;
        let url = self.inner.hub.url("/v1/audit/cosignatures");
        let body = serde_json::json!({"checkpoint": checkpoint.text(), "cosignature": line});
        let resp = self.authorized(|http| http.post(&url).json(&body)).await?;
        let accepted: CosignatureAccepted = transport::parse(&resp.bytes().await?)?;
        Ok(Witnessed {
            size: accepted.size,
            key_name: accepted.key_name,
            timestamp: accepted.timestamp,
            checkpoint,
        })
    }

    async fn verified(&self, body: Vec<u8>) -> Result<Page> {
        let raw: RawPage = transport::parse(&body)?;
        let checkpoint = self.verify_receipt(&raw.receipt).await?;
        Ok(Page {
            records: raw.records,
            next_cursor: raw.next_cursor,
            complete: raw.complete,
            receipt: raw.receipt,
            checkpoint_size: checkpoint.size(),
        })
    }

    /// A disclosure request: sealed when an age identity is configured; returns the JSON body
    /// (unsealed, read to the end and authenticated before it is parsed).
    async fn disclosure<F>(&self, build: F) -> Result<Vec<u8>>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let sealed = self.inner.unsealer.is_some();
        let resp = self
            .authorized(|http| {
                let request = build(http);
                if sealed {
                    request.header(reqwest::header::ACCEPT, AGE)
                } else {
                    request.header(reqwest::header::ACCEPT, "application/json")
                }
            })
            .await?;
        let is_age = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().starts_with(AGE));
        let body = resp.bytes().await?;
        match (is_age, &self.inner.unsealer) {
            (true, Some(unsealer)) => unsealer.open(&body),
            (true, None) => Err(Error::Unseal(
                "a sealed answer but no age identity".to_owned(),
            )),
            (false, Some(_)) => Err(Error::Unseal(
                "a sealed answer was asked for but the hub sent it in the clear".to_owned(),
            )),
            (false, None) => Ok(body.to_vec()),
        }
    }

    /// Send a request with the current token; on `401 unauthenticated`, refresh once
    /// (single flight) and retry once.
    async fn authorized<F>(&self, build: F) -> Result<reqwest::Response>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let inner = &self.inner;
        let send = |token: &str| {
            build(&inner.hub.http)
                .bearer_auth(token)
                .timeout(inner.hub.timeout)
                .send()
        };
        let token = inner.tokens.token(|| self.fetch_token()).await?;
        let resp = send(&token.value).await?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return checked(resp).await;
        }
        let refused = error_of(resp).await;
        if !refused.is_unauthenticated() {
            return Err(refused);
        }
        let token = inner
            .tokens
            .after_refusal(token.generation, || self.fetch_token())
            .await?;
        checked(send(&token.value).await?).await
    }

    /// `POST /v1/oauth/token` (`client_credentials`) over the client certificate.
    async fn fetch_token(&self) -> Result<Fetched> {
        let resp = self
            .inner
            .hub
            .http
            .post(&self.inner.token_url)
            .form(&[("grant_type", "client_credentials")])
            .timeout(self.inner.hub.timeout)
            .send()
            .await?;
        let answer: TokenAnswer = transport::parse(&checked(resp).await?.bytes().await?)?;
        Ok(Fetched {
            value: answer.access_token,
            expires_in: Duration::from_secs(answer.expires_in),
        })
    }
}
