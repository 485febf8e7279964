//! `~/.skiff/kubeconfig`: where kubectl, client-go and kube-rs find a skiff
//! cluster's REST API, and the CA to trust it by.
//!
//! `skiff up` writes it once its API server listens, next to `~/.skiff/config`
//! (skiff's own clients), and prints `export KUBECONFIG=…`. It is kubectl's
//! config file format with one cluster, one context and one user, all named
//! `skiff`:
//!
//! ```yaml
//! apiVersion: v1
//! kind: Config
//! clusters:
//! - name: skiff
//!   cluster:
//!     server: https://127.0.0.1:6443
//!     certificate-authority-data: <the cluster CA, PEM in base64>
//! contexts:
//! - name: skiff
//!   context:
//!     cluster: skiff
//!     user: skiff
//! current-context: skiff
//! users:
//! - name: skiff
//!   user:
//!     client-certificate-data: <the admin's certificate, PEM in base64>
//!     client-key-data: <its private key, PEM in base64>
//! ```
//!
//! The user is kubeadm's `kubernetes-admin` in the group `system:masters`,
//! a client certificate issued by the cluster CA (`<data-dir>/pki/admin.crt`).
//!
//! # Caveats
//! The API server verifies the certificate when it is presented but does not
//! yet require one, nor authorize by it. The file is replaced whole on each start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;

/// Where the kubeconfig lives under `home`: `.skiff/kubeconfig`.
pub fn path(home: &Path) -> PathBuf {
    home.join(".skiff").join("kubeconfig")
}

/// The PEM files a kubeconfig embeds.
pub struct Credentials<'a> {
    /// The CA certificate that signs the server's.
    pub ca_cert: &'a Path,
    /// The user's client certificate.
    pub client_cert: &'a Path,
    /// Its private key.
    pub client_key: &'a Path,
}

/// The kubeconfig's text for a REST API at `server` (an https URL) trusted
/// by the PEM certificate `ca_pem`, for the user with the PEM certificate
/// and key `client_pem`, `key_pem`.
pub fn text(server: &str, ca_pem: &[u8], client_pem: &[u8], key_pem: &[u8]) -> String {
    let b64 = |pem: &[u8]| base64::engine::general_purpose::STANDARD.encode(pem);
    let (ca, cert, key) = (b64(ca_pem), b64(client_pem), b64(key_pem));
    // JSON strings are YAML strings.
    let server = serde_json::Value::String(server.to_string());
    format!(
        "# Where kubectl, client-go and kube-rs find this skiff cluster (written by `skiff up`).\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: skiff\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         contexts:\n\
         - name: skiff\n  context:\n    cluster: skiff\n    user: skiff\n\
         current-context: skiff\n\
         users:\n\
         - name: skiff\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n"
    )
}

/// Writes `<home>/.skiff/kubeconfig` for `server` with `credentials`;
/// answers its path.
pub fn write(home: &Path, server: &str, credentials: &Credentials<'_>) -> anyhow::Result<PathBuf> {
    let read =
        |file: &Path| std::fs::read(file).with_context(|| format!("reading {}", file.display()));
    let (ca, cert, key) = (
        read(credentials.ca_cert)?,
        read(credentials.client_cert)?,
        read(credentials.client_key)?,
    );
    let path = path(home);
    replace_file(&path, &text(server, &ca, &cert, &key))?;
    Ok(path)
}

/// Replaces the file at `path` whole with `text` (a temporary file in the
/// same directory, then a rename), creating the directory.
pub fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("a file path has a name")?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_names_the_server_and_carries_the_ca() {
        let text = text(
            "https://127.0.0.1:6443",
            b"-----BEGIN CERTIFICATE-----\n",
            b"CERT",
            b"KEY",
        );
        let config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let cluster = &config["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:6443");
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster["certificate-authority-data"].as_str().unwrap())
            .unwrap();
        assert_eq!(ca, b"-----BEGIN CERTIFICATE-----\n");
        assert_eq!(config["current-context"], "skiff");
        assert_eq!(config["contexts"][0]["context"]["cluster"], "skiff");
        assert_eq!(
            config["contexts"][0]["context"]["user"],
            config["users"][0]["name"]
        );
    }

    #[test]
    fn writing_replaces_the_file_whole() {
        let home = tempfile::tempdir().unwrap();
        let ca = home.path().join("ca.crt");
        std::fs::write(&ca, "CA").unwrap();
        let credentials = Credentials {
            ca_cert: &ca,
            client_cert: &ca,
            client_key: &ca,
        };
        let first = write(home.path(), "https://127.0.0.1:1", &credentials).unwrap();
        let second = write(home.path(), "https://127.0.0.1:2", &credentials).unwrap();
        assert_eq!(first, second);
        let text = std::fs::read_to_string(&second).unwrap();
        assert!(text.contains("https://127.0.0.1:2") && !text.contains("https://127.0.0.1:1\""));
        let leftovers: Vec<_> = std::fs::read_dir(home.path().join(".skiff"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
