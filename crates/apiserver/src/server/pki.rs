//! The cluster's certificates: a CA, and the API server's serving
//! certificate signed by it, as kubeadm keeps them.
//!
//! [`ensure`] keeps them in one directory (`skiff up` uses `<data-dir>/pki`),
//! with kubeadm's file names: `ca.crt`, `ca.key`, `apiserver.crt`,
//! `apiserver.key`. The CA is created once and kept: clients trust it (the
//! kubeconfig carries it), so it outlives any serving certificate. The serving
//! certificate is reused on restart while it names every host asked for and
//! has more than [`RENEW_BEFORE`] left; otherwise a new one is issued by the
//! same CA, and clients notice nothing.
//!
//! Keys are ECDSA P-256. The CA is valid for ten years and the serving
//! certificate for one, kubeadm's lifetimes.
//!
//! # Caveats
//! Private keys are written with mode 0600; nothing encrypts them.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A serving certificate with less than this left is issued again.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The files a TLS server and its clients need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingFiles {
    /// The CA certificate clients trust (`ca.crt`).
    pub ca_cert: PathBuf,
    /// The serving certificate (`apiserver.crt`).
    pub cert: PathBuf,
    /// The serving certificate's private key (`apiserver.key`).
    pub key: PathBuf,
}

/// Why the certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A certificate could not be generated.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A client certificate and its key, in PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFiles {
    /// The certificate (`<name>.crt`).
    pub cert: PathBuf,
    /// Its private key (`<name>.key`).
    pub key: PathBuf,
}

/// Makes sure `dir` (where [`ensure`] keeps the CA) holds a client
/// certificate `<name>.crt` for the user `user` in the groups `groups`
/// (its subject's CommonName and Organizations, as Kubernetes reads them),
/// issued by the CA; kept while it has more than [`RENEW_BEFORE`] left.
pub fn ensure_client(
    dir: &Path,
    name: &str,
    user: &str,
    groups: &[&str],
) -> Result<ClientFiles, PkiError> {
    let files = ClientFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    if files.key.exists() && cert_fits(&files.cert, &[])? {
        return Ok(files);
    }
    let issuer = ca_issuer(dir)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, user);
    for group in groups {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *group);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVING_LIFETIME);
    let cert = params.signed_by(&key, &issuer)?;
    write(&files.key, &key.serialize_pem(), true)?;
    write(&files.cert, &cert.pem(), false)?;
    Ok(files)
}

/// The CA kept in `dir`, ready to sign.
fn ca_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    let ca_key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| invalid(&key_path, e))?;
    Issuer::from_ca_cert_pem(&read(&cert_path)?, ca_key).map_err(|e| invalid(&cert_path, e))
}

/// Makes sure `dir` holds a CA and a serving certificate naming every one of
/// `hosts` (IP addresses or DNS names); creates what is missing.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<ServingFiles, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = ServingFiles {
        ca_cert: dir.join("ca.crt"),
        cert: dir.join("apiserver.crt"),
        key: dir.join("apiserver.key"),
    };
    let ca_key_path = dir.join("ca.key");
    if !files.ca_cert.exists() || !ca_key_path.exists() {
        let (cert, key) = new_ca()?;
        write(&ca_key_path, &key, true)?;
        write(&files.ca_cert, &cert, false)?;
        tracing::info!(path = %files.ca_cert.display(), "created the cluster CA");
    }
    if files.key.exists() && cert_fits(&files.cert, hosts)? {
        return Ok(files);
    }
    let (cert, key) = new_serving(hosts, &ca_issuer(dir)?)?;
    write(&files.key, &key, true)?;
    write(&files.cert, &cert, false)?;
    tracing::info!(path = %files.cert.display(), hosts = ?hosts, "issued the API server's serving certificate");
    Ok(files)
}

/// A new CA: its certificate and key, in PEM.
fn new_ca() -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "skiff-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_LIFETIME);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new serving certificate for `hosts`, signed by `issuer`.
fn new_serving(
    hosts: &[String],
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "skiff-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVING_LIFETIME);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Valid from an hour ago (clocks differ a little) for `lifetime`.
fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + lifetime;
}

/// Whether the certificate at `path` exists, names every one of `hosts` and
/// is not about to expire.
fn cert_fits(path: &Path, hosts: &[String]) -> Result<bool, PkiError> {
    if !path.exists() {
        return Ok(false);
    }
    let pem = read(path)?;
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map_err(|e: rustls_pki_types::pem::Error| invalid(path, e))?;
    let der: rustls_pki_types::CertificateDer<'_> = der;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| invalid(path, e))?;
    let remaining = cert.validity().time_to_expiration();
    if remaining.is_none_or(|left| left.whole_seconds() < RENEW_BEFORE.as_secs() as i64) {
        return Ok(false);
    }
    let names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(name_text)
            .collect(),
        _ => Vec::new(),
    };
    Ok(hosts
        .iter()
        .all(|host| names.iter().any(|name| name == host)))
}

/// A subject alternative name as text: a DNS name, or an IP address.
fn name_text(name: &x509_parser::extensions::GeneralName<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `text` to `path` through a temporary file and a rename; private
/// keys with mode 0600.
fn write(path: &Path, text: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

fn invalid(path: &Path, err: impl std::fmt::Display) -> PkiError {
    PkiError::Invalid {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn creates_a_ca_and_a_serving_certificate_then_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = hosts(&["127.0.0.1", "localhost", "node-a"]);
        let files = ensure(dir.path(), &wanted).unwrap();
        let ca = std::fs::read(&files.ca_cert).unwrap();
        let cert = std::fs::read(&files.cert).unwrap();
        assert!(cert_fits(&files.cert, &wanted).unwrap());

        let again = ensure(dir.path(), &wanted).unwrap();
        assert_eq!(again, files);
        assert_eq!(std::fs::read(&files.ca_cert).unwrap(), ca);
        assert_eq!(
            std::fs::read(&files.cert).unwrap(),
            cert,
            "a fitting certificate is kept"
        );
    }

    #[test]
    fn a_new_host_gets_a_new_serving_certificate_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure(dir.path(), &hosts(&["127.0.0.1"])).unwrap();
        let ca = std::fs::read(&files.ca_cert).unwrap();
        let cert = std::fs::read(&files.cert).unwrap();
        let more = hosts(&["127.0.0.1", "10.0.0.7"]);
        assert!(!cert_fits(&files.cert, &more).unwrap());

        ensure(dir.path(), &more).unwrap();
        assert_eq!(std::fs::read(&files.ca_cert).unwrap(), ca);
        assert_ne!(std::fs::read(&files.cert).unwrap(), cert);
        assert!(cert_fits(&files.cert, &more).unwrap());
    }

    #[test]
    fn a_client_certificate_names_its_user_and_groups_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &hosts(&["localhost"])).unwrap();
        let files =
            ensure_client(dir.path(), "admin", "kubernetes-admin", &["system:masters"]).unwrap();
        let pem = std::fs::read(&files.cert).unwrap();
        let der: rustls_pki_types::CertificateDer<'_> =
            rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let subject = cert.subject().to_string();
        assert!(subject.contains("CN=kubernetes-admin"), "{subject}");
        assert!(subject.contains("O=system:masters"), "{subject}");
        assert!(cert.issuer().to_string().contains("CN=skiff-ca"));

        ensure_client(dir.path(), "admin", "kubernetes-admin", &["system:masters"]).unwrap();
        assert_eq!(
            std::fs::read(&files.cert).unwrap(),
            pem,
            "kept on the next start"
        );
    }

    #[test]
    fn the_private_keys_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = ensure(dir.path(), &hosts(&["localhost"])).unwrap();
        for key in [files.key, dir.path().join("ca.key")] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn a_file_that_is_not_a_certificate_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("apiserver.crt"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("apiserver.key"), "not a key").unwrap();
        let err = ensure(dir.path(), &hosts(&["localhost"])).unwrap_err();
        assert!(err.to_string().contains("apiserver.crt"), "{err}");
    }
}
