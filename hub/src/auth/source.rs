//! The network address a request came from, as a task-local for the request (set by the
//! request middleware from the `Connection`), so that every refusal entry can name it without
//! threading it through every service. Only the IP address: the port changes per connection.

use std::net::IpAddr;

tokio::task_local! {
    pub static REQUEST_SOURCE: IpAddr;
}

/// The address of the current request; `None` outside a request (CLI, background tasks).
pub fn current_source() -> Option<IpAddr> {
    REQUEST_SOURCE.try_with(|ip| *ip).ok()
}
