//! `skiff get`, `apply`, `delete`, `describe`, `rollout` and `trace`: kubectl's everyday commands,
//! talking to skiff's API server through skiff-client.
//!
//! Like kubectl, each command first asks the server what it serves
//! ([`skiff_client::Discovery`]), resolves the kind the user typed (`po`,
//! `deploy`, `deployments.apps`) or the manifest's `apiVersion`/`kind`
//! against that list, then works through an `Api<DynamicObject>` of that
//! resource. Objects are shown as the server's JSON (the client's `raw`
//! verbs), so every field prints as stored. Output follows kubectl's: the same table
//! columns, `pod/web created`, `Error from server (NotFound): pods "web" not
//! found`, and exit code 1 on any error.
//! See <https://kubernetes.io/docs/reference/kubectl/>.
//!
//! # Layout
//! - [`server`]: which server to talk to.
//! - [`resolve`]: how kubectl names served resources and objects
//!   (`deployment.apps/web`), and manifest kinds → served resources;
//!   [`targets`] reads `TYPE[,TYPE…] NAME…` and `TYPE/NAME…` arguments.
//! - [`get`], [`apply`], [`delete`], [`describe`]: one command each.
//! - [`logs`], [`exec`]: a pod's `log` and `exec` subresources, over skiff-client.
//! - [`rollout`]: `rollout status|history|undo|pause|resume|restart` for
//!   Deployments.
//! - [`trace`]: `trace pod NAME`, a pod's journey from its record and Events.
//! - [`follow`]: one object followed by watch, for `rollout status` and
//!   `delete --wait`.
//! - [`table`]: aligning the columns of the server's Tables (each kind's
//!   columns are defined once, server-side, in `skiff_api::printers`);
//!   [`age`]: the CLI's clock, for `describe`.
//! - [`yaml`], [`json`]: `-o yaml` and `-o json` byte for byte as kubectl
//!   writes them; [`jsonpath`]: `-o jsonpath=…`, `-o custom-columns=…` and
//!   `--sort-by`.
//! - [`manifest`]: reading YAML/JSON files, directories and standard input.
//! - `fixtures` (tests only): an in-process cluster with hollow kubelets and
//!   a command line run over it, for the commands' end-to-end tests.
//!
//! # Where to start
//! [`run`] connects and dispatches; [`get::run`] shows the whole round trip.
//! The golden files in `testdata/` are kubectl 1.32's own output for the
//! objects beside them.
//!
//! # Caveats
//! `apply` is client-side apply: it keeps kubectl's last-applied annotation
//! and merges the manifest into the live object (lists of named items, such
//! as containers, merge by name), not server-side apply. No `edit`,
//! contexts or Go templates; `describe` has kubectl's sections for
//! pods, nodes, services and deployments only.

pub(crate) mod age;
pub(crate) mod apply;
pub(crate) mod delete;
pub(crate) mod describe;
pub(crate) mod exec;
#[cfg(test)]
pub(crate) mod fixtures;
pub(crate) mod follow;
pub(crate) mod get;
pub(crate) mod json;
pub(crate) mod jsonpath;
pub(crate) mod logs;
pub(crate) mod manifest;

pub(crate) mod resolve;
pub(crate) mod rollout;
pub(crate) mod server;
pub(crate) mod table;
pub(crate) mod trace;
pub(crate) mod yaml;

use std::io::Write;

use skiff_api::status::ApiError;
use skiff_client::{Api, Client, ClientConfig, Discovery, DynamicObject, Served};

use crate::cli::{
    ApplyArgs, DeleteArgs, DescribeArgs, GetArgs, LogsArgs, RolloutCommand, TraceCommand,
};

/// What went wrong, printed as kubectl prints it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Nothing answers at the server address.
    #[error("cannot reach the API server at {server}: is `skiff up` running?")]
    Unreachable {
        /// The address tried.
        server: String,
    },
    /// The server refused the request with a Kubernetes Status.
    #[error("Error from server ({}): {}", .0.reason.as_str(), .0.message)]
    Server(ApiError),
    /// The server serves no resource by the name typed.
    #[error("error: the server doesn't have a resource type \"{0}\"")]
    UnknownResource(String),
    /// The command line or a manifest asks for something impossible.
    #[error("error: {0}")]
    Usage(String),
    /// Errors were printed as they happened; the command still fails.
    #[error("")]
    Reported,
}

impl Error {
    /// The error a failed client call stands for: an unreachable server, or
    /// the Kubernetes Status the server sent.
    pub(crate) fn from_client(err: skiff_client::Error, server: &str) -> Error {
        use skiff_client::Error as Client;
        let unreachable = || Error::Unreachable {
            server: server.to_string(),
        };
        match err {
            Client::Api(status) => Error::Server(status),
            Client::Connect(_) => unreachable(),
            Client::Rpc(status) if status.code() == tonic::Code::Unavailable => unreachable(),
            Client::Rpc(status) => Error::Server(ApiError::internal(status.message())),
            other => Error::Usage(other.to_string()),
        }
    }
}

/// The commands of this module, as parsed by clap.
pub enum Verb {
    /// `skiff get`.
    Get(GetArgs),
    /// `skiff apply`.
    Apply(ApplyArgs),
    /// `skiff delete`.
    Delete(DeleteArgs),
    /// `skiff describe`.
    Describe(DescribeArgs),
    /// `skiff logs`.
    Logs(LogsArgs),
    /// `skiff rollout …`.
    Rollout(RolloutCommand),
    /// `skiff trace …`.
    Trace(TraceCommand),
}

/// Runs one command; on failure prints the error as kubectl does and exits with 1.
pub fn run(verb: Verb) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match verb {
            Verb::Get(args) => get::run(args).await,
            Verb::Apply(args) => apply::run(args).await,
            Verb::Delete(args) => delete::run(args).await,
            Verb::Describe(args) => describe::run(args).await,
            Verb::Logs(args) => logs::run(args).await,
            Verb::Rollout(command) => rollout::run(command).await,
            Verb::Trace(command) => trace::run(command).await,
        }
    });
    drop(runtime);
    match result {
        Ok(()) => Ok(()),
        Err(err) => {
            if !matches!(err, Error::Reported) {
                eprintln!("{err}");
            }
            std::process::exit(1);
        }
    }
}

/// A connection to the API server and what it serves.
pub(crate) struct Session {
    /// The client.
    pub client: Client,
    /// The server's URL, for messages.
    pub server: String,
    /// The resources the server serves.
    pub discovery: Discovery,
}

impl Session {
    /// Connects to the server the flag (or config, or default) names and
    /// reads discovery; connecting gives up after the client's default 5 s.
    pub async fn connect(flag: Option<&str>) -> Result<Session, Error> {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let server = server::server_url(flag, home.as_deref())?;
        let client = Client::connect_with(server.as_str(), &ClientConfig::default())
            .await
            .map_err(|e| Error::from_client(e, &server))?;
        Session::over(client, server).await
    }

    /// A session over a client already connected to `server` (the address,
    /// for messages): reads discovery.
    pub async fn over(client: Client, server: String) -> Result<Session, Error> {
        let discovery = client
            .discover()
            .await
            .map_err(|e| Error::from_client(e, &server))?;
        Ok(Session {
            client,
            server,
            discovery,
        })
    }

    /// The resource a typed name means.
    pub fn resource(&self, typed: &str) -> Result<Served, Error> {
        self.discovery
            .resolve(typed)
            .cloned()
            .ok_or_else(|| Error::UnknownResource(typed.to_string()))
    }

    /// The objects of `resource` in `namespace`; every namespace's when it
    /// is empty, and the namespace is ignored for a cluster-scoped resource.
    pub fn api(&self, resource: &Served, namespace: &str) -> Api<DynamicObject> {
        let client = self.client.clone();
        if resource.namespaced() && !namespace.is_empty() {
            Api::namespaced_with(client, namespace, &resource.resource)
        } else {
            Api::all_with(client, &resource.resource)
        }
    }

    /// The error a failed client call stands for.
    pub fn error(&self, err: skiff_client::Error) -> Error {
        Error::from_client(err, &self.server)
    }
}

/// The namespace a command works in: `-n`, else `default`.
pub(crate) fn namespace_or_default(namespace: &Option<String>) -> String {
    namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// Writes command output to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes command output to `out` (standard output, or a test's buffer); a
/// closed pipe is not an error.
pub(crate) fn emit(out: &mut dyn Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One resource type typed on the command line, with the names asked for
/// (none: every object of the type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The type as typed: `po`, `deployments.apps`.
    pub typed: String,
    /// The object names; empty for all.
    pub names: Vec<String>,
}

/// The targets of `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME…` arguments, in the
/// order typed, as kubectl's resource builder reads them: every name of
/// every type in the first form, and consecutive `TYPE/NAME`s of one type
/// together in the second.
pub(crate) fn targets(first: &str, rest: &[String]) -> Result<Vec<Target>, Error> {
    let args: Vec<&str> = std::iter::once(first)
        .chain(rest.iter().map(String::as_str))
        .collect();
    let slashed = args.iter().filter(|a| a.contains('/')).count();
    if slashed == 0 {
        let mut types: Vec<&str> = Vec::new();
        for typed in first.split(',') {
            if !types.contains(&typed) {
                types.push(typed);
            }
        }
        return Ok(types
            .into_iter()
            .map(|typed| Target {
                typed: typed.to_string(),
                names: rest.to_vec(),
            })
            .collect());
    }
    if slashed != args.len() {
        return Err(Error::Usage(
            "there is no need to specify a resource type as a separate argument when passing \
             arguments in resource/name form (e.g. 'skiff get resource/<resource_name>' instead \
             of 'skiff get resource resource/<resource_name>'"
                .into(),
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for arg in args {
        let parts: Vec<&str> = arg.split('/').collect();
        let [typed, name] = parts[..] else {
            return Err(Error::Usage(
                "arguments in resource/name form may not have more than one slash".into(),
            ));
        };
        if typed.is_empty() || name.is_empty() || typed.contains(',') {
            return Err(Error::Usage(
                "arguments in resource/name form must have a single resource and name".into(),
            ));
        }
        match targets.last_mut() {
            Some(last) if last.typed == typed => last.names.push(name.to_string()),
            _ => targets.push(Target {
                typed: typed.to_string(),
                names: vec![name.to_string()],
            }),
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn target(typed: &str, names: &[&str]) -> Target {
        Target {
            typed: typed.into(),
            names: strings(names),
        }
    }

    #[test]
    fn types_and_names_come_separately_or_as_type_slash_name() {
        assert_eq!(
            targets("pods", &strings(&["a", "b"])).unwrap(),
            [target("pods", &["a", "b"])]
        );
        assert_eq!(
            targets("po,svc,po", &strings(&["web"])).unwrap(),
            [target("po", &["web"]), target("svc", &["web"])]
        );
        assert_eq!(
            targets("po/a", &strings(&["po/b", "svc/k", "po/c"])).unwrap(),
            [
                target("po", &["a", "b"]),
                target("svc", &["k"]),
                target("po", &["c"])
            ]
        );
    }

    #[test]
    fn malformed_type_slash_name_arguments_fail_with_kubectls_words() {
        let message =
            |first: &str, rest: &[&str]| targets(first, &strings(rest)).unwrap_err().to_string();
        assert!(message("pods", &["po/b"]).starts_with(
            "error: there is no need to specify a resource type as a separate argument"
        ));
        assert_eq!(
            message("po/", &[]),
            "error: arguments in resource/name form must have a single resource and name"
        );
        assert_eq!(
            message("po,svc/a", &[]),
            "error: arguments in resource/name form must have a single resource and name"
        );
        assert_eq!(
            message("po/a/b", &[]),
            "error: arguments in resource/name form may not have more than one slash"
        );
    }

    #[test]
    fn flags_parse_as_kubectls() {
        use clap::Parser;

        use crate::cli::{Cli, Command, GetOutput};

        let cli = Cli::try_parse_from([
            "skiff", "get", "po", "web", "-n", "prod", "-o", "yaml", "-w", "-l", "app=web",
        ])
        .unwrap();
        let Command::Get(args) = cli.command else {
            panic!("not get")
        };
        assert_eq!(
            (args.kind.as_str(), args.names.as_slice()),
            ("po", &["web".to_string()][..])
        );
        assert_eq!(args.namespace.as_deref(), Some("prod"));
        assert_eq!(args.output, Some(GetOutput::Yaml));
        assert!(args.watch && !args.all_namespaces);
        assert_eq!(args.selector.as_deref(), Some("app=web"));
        let cli = Cli::try_parse_from([
            "skiff",
            "get",
            "po,svc",
            "-o",
            "jsonpath={.items[*].metadata.name}",
            "--no-headers",
            "-L",
            "app,tier",
            "-L",
            "env",
            "--show-labels",
        ])
        .unwrap();
        let Command::Get(args) = cli.command else {
            panic!("not get")
        };
        assert_eq!(
            args.output,
            Some(GetOutput::JsonPath("{.items[*].metadata.name}".into()))
        );
        assert_eq!(args.label_columns, ["app", "tier", "env"]);
        assert!(args.no_headers && args.show_labels);

        let cli = Cli::try_parse_from(["skiff", "apply", "-f", "a.yaml", "-f", "dir"]).unwrap();
        let Command::Apply(args) = cli.command else {
            panic!("not apply")
        };
        assert_eq!(args.files.len(), 2);
        let err = Cli::try_parse_from(["skiff", "apply"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = Cli::try_parse_from(["skiff", "get", "po", "-o", "table"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string()
                .contains("unable to match a printer suitable for the output format \"table\""),
            "{err}"
        );
    }

    #[test]
    fn server_errors_read_as_kubectls() {
        let pods = skiff_api::resources::lookup("pods").unwrap();
        let refused = skiff_client::Error::Api(ApiError::not_found(pods, "web"));
        assert_eq!(
            Error::from_client(refused, "http://x").to_string(),
            "Error from server (NotFound): pods \"web\" not found"
        );
        let down = skiff_client::Error::Rpc(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(
            Error::from_client(down, "http://127.0.0.1:1").to_string(),
            "cannot reach the API server at http://127.0.0.1:1: is `skiff up` running?"
        );
        let broken = skiff_client::Error::Rpc(tonic::Status::internal("stream reset"));
        assert_eq!(
            Error::from_client(broken, "http://x").to_string(),
            "Error from server (InternalError): Internal error occurred: stream reset"
        );
    }
}
