//! The CNI documents, as pure functions: the network configuration handed to
//! each plugin on stdin, and the result or error a plugin prints on stdout
//! (<https://www.cni.dev/docs/spec/>).

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{CniError, NetworkConfig};

/// The CNI spec version skiff speaks; Debian's plugins (1.1) support it.
pub const CNI_VERSION: &str = "0.4.0";

/// The bridge plugin's configuration: a Linux bridge on the node that is the
/// pods' gateway, with host-local IPAM handing out the node's podCIDR.
pub fn bridge_config(network: &NetworkConfig) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": network.name,
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": true,
        // No NAT: pods reach pods on the bridge; traffic leaving the node
        // needs a route the operator sets up.
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{ "subnet": network.pod_cidr }]],
            "routes": [{ "dst": "0.0.0.0/0" }],
            "dataDir": network.ipam_data_dir,
        },
    })
}

/// The loopback plugin's configuration: brings `lo` up in the pod.
pub fn loopback_config(network: &NetworkConfig) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": network.name,
        "type": "loopback",
    })
}

#[derive(Deserialize)]
struct AddResult {
    #[serde(default)]
    ips: Vec<IpConfig>,
}

#[derive(Deserialize)]
struct IpConfig {
    address: String,
}

#[derive(Deserialize)]
struct ErrorResult {
    code: u32,
    msg: String,
    #[serde(default)]
    details: String,
}

/// The pod's IP from an ADD result: the first address, without its prefix length.
pub fn parse_add_result(stdout: &[u8]) -> Result<IpAddr, CniError> {
    let result: AddResult =
        serde_json::from_slice(stdout).map_err(|e| CniError::Result(e.to_string()))?;
    let address = result
        .ips
        .first()
        .ok_or_else(|| CniError::Result("the result has no IP".to_string()))?;
    let ip = address.address.split('/').next().unwrap_or_default();
    ip.parse()
        .map_err(|_| CniError::Result(format!("bad address {:?}", address.address)))
}

/// The message of a plugin that failed: its error document when it printed
/// one, else what it wrote to stderr.
pub fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResult>(stdout) {
        Ok(error) if error.details.is_empty() => format!("{} (code {})", error.msg, error.code),
        Ok(error) => format!("{}: {} (code {})", error.msg, error.details, error.code),
        Err(_) => String::from_utf8_lossy(stderr).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn network() -> NetworkConfig {
        NetworkConfig {
            name: "skiff".into(),
            bridge: "skiff0".into(),
            pod_cidr: "10.244.1.0/24".into(),
            plugin_dir: PathBuf::from("/usr/lib/cni"),
            ipam_data_dir: PathBuf::from("/var/lib/skiff/ipam"),
        }
    }

    #[test]
    fn the_bridge_hands_out_the_pod_cidr_and_is_the_gateway() {
        let config = bridge_config(&network());
        assert_eq!(config["type"], "bridge");
        assert_eq!(config["bridge"], "skiff0");
        assert_eq!(config["isGateway"], true);
        assert_eq!(config["ipam"]["type"], "host-local");
        assert_eq!(config["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
        assert_eq!(config["ipam"]["dataDir"], "/var/lib/skiff/ipam");
    }

    #[test]
    fn loopback_names_the_same_network() {
        let config = loopback_config(&network());
        assert_eq!(config["type"], "loopback");
        assert_eq!(config["name"], "skiff");
        assert_eq!(config["cniVersion"], CNI_VERSION);
    }

    #[test]
    fn the_pod_ip_is_the_first_address_without_its_prefix() {
        let stdout = br#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],
            "ips":[{"version":"4","interface":0,"address":"10.244.1.5/24","gateway":"10.244.1.1"}],
            "dns":{}}"#;
        assert_eq!(
            parse_add_result(stdout).unwrap(),
            "10.244.1.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_result_without_ips_is_an_error() {
        let error = parse_add_result(br#"{"cniVersion":"0.4.0"}"#).unwrap_err();
        assert!(error.to_string().contains("no IP"), "{error}");
    }

    #[test]
    fn a_plugin_error_document_becomes_its_message() {
        let stdout = br#"{"cniVersion":"0.4.0","code":11,"msg":"failed to allocate","details":"range full"}"#;
        assert_eq!(
            failure_message(stdout, b""),
            "failed to allocate: range full (code 11)"
        );
        assert_eq!(failure_message(b"", b" panic \n"), "panic");
    }
}
