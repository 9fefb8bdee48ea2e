//! Who is calling: password login, access tokens, and the `Principal` every protected handler
//! takes as an argument. A handler without a `Principal` parameter is public by construction.

mod access;
mod connection;
pub mod known_clients;
pub mod login;
pub mod login_limiter;
pub mod password;
pub mod permissions;
mod principal;
pub mod refusals;
pub mod role_administrators;
pub mod source;
pub mod tokens;

pub use access::Access;
pub use connection::Connection;
pub use principal::{Authenticator, Caller, DepartmentCaller, Principal, Role};
