//! `http://host:port` URLs, as etcd's URL flags and MemberAdd's peer URLs
//! take them.
//!
//! # Caveats
//! Only `http://` with an IP address (or `localhost`) and a port: no TLS, no
//! host names to resolve.

use std::net::SocketAddr;

/// A URL that is not `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub(crate) struct InvalidUrl {
    /// The URL as given.
    pub(crate) url: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// Parses `http://host:port` into a socket address.
pub(crate) fn parse(url: &str) -> Result<SocketAddr, InvalidUrl> {
    let invalid = |reason: &str| InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(invalid("TLS is not supported; use http://")),
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?}; use http://"
            )))
        }
        None => return Err(invalid("expected http://host:port")),
    };
    let host_port = rest.trim_end_matches('/');
    let host_port = host_port.replace("localhost:", "127.0.0.1:");
    host_port
        .parse()
        .map_err(|_| invalid("expected an IP address and a port, as http://127.0.0.1:2379"))
}
