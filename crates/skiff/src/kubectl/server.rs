//! Which API server the commands talk to.
//!
//! The address is the first of: `--server` (or `SKIFF_SERVER`, which clap
//! reads into the same flag), `server` in `~/.skiff/config` (written by
//! `skiff up`), and `http://127.0.0.1:6443`, where `skiff up` listens by default.
//!
//! # Caveats
//! Plain-text gRPC only: no TLS, no credentials. The config file is read for
//! its `server` key alone, as JSON or as a TOML `server = "…"` line.

use std::path::Path;

use super::Error;

/// Where `skiff up` serves the API unless told otherwise.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";

/// The server URL to use: the flag (or environment), else the config file
/// under `home`, else [`DEFAULT_SERVER`]; a bare `host:port` gets `http://`.
pub(crate) fn server_url(flag: Option<&str>, home: Option<&Path>) -> Result<String, Error> {
    let chosen = match flag.filter(|s| !s.trim().is_empty()) {
        Some(flag) => flag.trim().to_string(),
        None => home
            .and_then(|home| std::fs::read_to_string(home.join(".skiff").join("config")).ok())
            .and_then(|text| server_from_config(&text))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    if chosen.starts_with("https://") {
        return Err(Error::Usage(format!(
            "the server {chosen} asks for TLS, which skiff's API does not serve; use http://"
        )));
    }
    if chosen.starts_with("http://") {
        Ok(chosen)
    } else {
        Ok(format!("http://{chosen}"))
    }
}

/// The `server` value of a config file, written as JSON (`{"server": "…"}`)
/// or TOML (`server = "…"`, at the top or in a table).
pub(crate) fn server_from_config(text: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        return json
            .get("server")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
    }
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "server" {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.split_once('"'))
            .map(|(v, _)| v)
            .or_else(|| {
                value
                    .strip_prefix('\'')
                    .and_then(|v| v.split_once('\''))
                    .map(|(v, _)| v)
            })?;
        Some(value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_config_file_then_the_default() {
        let home = std::env::temp_dir().join(format!("skiff-home-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".skiff")).unwrap();
        assert_eq!(
            server_url(None, Some(&home)).unwrap(),
            "http://127.0.0.1:6443"
        );
        std::fs::write(
            home.join(".skiff/config"),
            "# written by skiff up\nserver = \"http://10.0.0.1:7000\"\n",
        )
        .unwrap();
        assert_eq!(
            server_url(None, Some(&home)).unwrap(),
            "http://10.0.0.1:7000"
        );
        assert_eq!(
            server_url(Some("127.0.0.1:1"), Some(&home)).unwrap(),
            "http://127.0.0.1:1"
        );
        std::fs::remove_dir_all(&home).unwrap();
        assert!(server_url(Some("https://x:1"), None).is_err());
    }

    #[test]
    fn config_files_may_be_json_or_toml() {
        assert_eq!(
            server_from_config(r#"{"server": "http://a:1", "dataDir": "/d"}"#).as_deref(),
            Some("http://a:1")
        );
        assert_eq!(
            server_from_config("[cluster]\nserver = 'http://b:2' # local\n").as_deref(),
            Some("http://b:2")
        );
        assert_eq!(server_from_config("servers = \"x\"\n"), None);
        assert_eq!(server_from_config("{}"), None);
    }
}
