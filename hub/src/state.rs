//! Shared application state handed to every handler.

use std::sync::Arc;

use policy::Catalog;

use crate::auth::tokens::TokenIssuer;
use crate::config::Settings;
use crate::storage::Store;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub tokens: Arc<TokenIssuer>,
    pub catalog: &'static Catalog,
}
