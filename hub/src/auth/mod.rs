//! Who is calling: password login, access tokens, and the `Principal` every protected handler
//! takes as an argument. A handler without a `Principal` parameter is public by construction.

pub mod password;
mod principal;
pub mod tokens;

pub use principal::{Principal, Role};
