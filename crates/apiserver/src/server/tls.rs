//! TLS for the API server's port, from the files kube-apiserver's flags name:
//! `--tls-cert-file`, `--tls-private-key-file` and, optionally,
//! `--client-ca-file`.
//!
//! The server offers HTTP/2 and HTTP/1.1 by ALPN (kubectl and gRPC clients
//! pick HTTP/2; WebSocket upgrades need HTTP/1.1). With a client CA, a client
//! certificate signed by it is verified when one is presented; clients
//! without one are still served, as kube-apiserver serves them to its other
//! authenticators.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The files a TLS API server is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert-file`: the serving certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// `--tls-private-key-file`: its private key.
    pub key_file: PathBuf,
    /// `--client-ca-file`: the CA that signs client certificates.
    pub client_ca_file: Option<PathBuf>,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

fn error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The rustls configuration `files` describe, offering h2 and http/1.1.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    // ring builds with nothing but a C compiler; its provider lacks the
    // post-quantum key exchanges, which kubectl does not need.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| error(&files.key_file, format!("no private key: {e}")))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| error(&files.cert_file, e))?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| error(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| error(path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        error(
            &files.key_file,
            format!("does not match the certificate: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path`; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(path, e))?;
    if certs.is_empty() {
        return Err(error(path, "no certificate in the file"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_the_files_skiff_up_writes() {
        let dir = tempfile::tempdir().unwrap();
        let files = super::super::pki::ensure(dir.path(), &["127.0.0.1".into()]).unwrap();
        let config = server_config(&TlsFiles {
            cert_file: files.cert,
            key_file: files.key,
            client_ca_file: Some(files.ca_cert),
        })
        .unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_key_that_does_not_match_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::super::pki::ensure(&dir.path().join("a"), &["a".into()]).unwrap();
        let b = super::super::pki::ensure(&dir.path().join("b"), &["b".into()]).unwrap();
        let err = server_config(&TlsFiles {
            cert_file: a.cert,
            key_file: b.key.clone(),
            client_ca_file: None,
        })
        .unwrap_err();
        assert_eq!(err.path, b.key);
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = server_config(&TlsFiles {
            cert_file: "/nonexistent/apiserver.crt".into(),
            key_file: "/nonexistent/apiserver.key".into(),
            client_ca_file: None,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/apiserver.crt"),
            "{err}"
        );
    }
}
