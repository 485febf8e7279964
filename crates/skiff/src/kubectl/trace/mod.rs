//! `skiff trace pod NAME`: a pod's journey through the cluster, in order —
//! stored by the API server (under which key, at which revision), created by
//! its owner's controller, bound by the scheduler, its containers started by
//! the kubelet of its node, ready, ended — from what the API already holds:
//! the pod and the Events written about it and, by its owner, about it.
//!
//! It is the short form of the walkthrough in docs/walkthrough.md: each line
//! is one component's step, named as that component names it.
//!
//! # Layout
//! - this file: reads the pod, its Events and its owner's, and prints.
//! - [`journey`]: the pure part: objects in, ordered steps and the table out.
//!
//! # Caveats
//! Events expire (an hour by default) and object times have whole seconds,
//! so an old pod's journey is partial and steps within one second are
//! ordered by the pod's life rather than by the clock. Only a pod's own
//! Events and those its controlling owner wrote naming it are shown.

pub(crate) mod journey;
#[cfg(test)]
mod tests;

use std::io::Write;

use serde_json::Value;
use skiff_client::ListParams;

use super::logs::pod_name;
use super::{emit, namespace_or_default, Error, Session};
use crate::cli::{TraceCommand, TracePodArgs};

/// Runs `skiff trace …` against the configured server.
pub(crate) async fn run(command: TraceCommand) -> Result<(), Error> {
    let TraceCommand::Pod(args) = &command;
    let session = Session::connect(args.server.server.as_deref()).await?;
    execute(&session, &command, &mut std::io::stdout()).await
}

/// Runs `skiff trace …` over `session`, writing to `out`.
pub(crate) async fn execute(
    session: &Session,
    command: &TraceCommand,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let TraceCommand::Pod(args) = command;
    let pod = read_pod(session, args).await?;
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let mut events = events_about(session, namespace, uid).await?;
    if let Some(owner) = controller_of(&pod) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let owner_uid = owner["uid"].as_str().unwrap_or_default();
        let by_owner = events_about(session, namespace, owner_uid).await?;
        events.extend(
            by_owner
                .into_iter()
                .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(name))),
        );
    }
    let steps = journey::journey(&pod, &events);
    emit(
        out,
        &format!("{}\n{}", header(&pod), journey::render(&steps)),
    );
    Ok(())
}

/// The pod named on the command line, as the server's JSON.
async fn read_pod(session: &Session, args: &TracePodArgs) -> Result<Value, Error> {
    let namespace = namespace_or_default(&args.namespace);
    let name = pod_name(&args.pod)?;
    let pods = session.api(&session.resource("pods")?, &namespace);
    let pod = pods.get(&name).await.map_err(|e| session.error(e))?;
    serde_json::to_value(pod).map_err(|e| Error::Usage(format!("the pod's JSON: {e}")))
}

/// The Events in `namespace` whose involved object has the uid `uid`.
async fn events_about(session: &Session, namespace: &str, uid: &str) -> Result<Vec<Value>, Error> {
    let events = session.api(&session.resource("events")?, namespace);
    let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    let list = events.list(&params).await.map_err(|e| session.error(e))?;
    list.items
        .into_iter()
        .map(|e| serde_json::to_value(e).map_err(|e| Error::Usage(format!("an Event's JSON: {e}"))))
        .collect()
}

/// The pod's controlling owner reference.
fn controller_of(pod: &Value) -> Option<&Value> {
    let owners = pod["metadata"]["ownerReferences"].as_array()?;
    owners.iter().find(|o| o["controller"] == true)
}

/// Who the pod is, where it runs, and where it is stored.
fn header(pod: &Value) -> String {
    let meta = &pod["metadata"];
    let (namespace, name) = (
        meta["namespace"].as_str().unwrap_or("default"),
        meta["name"].as_str().unwrap_or_default(),
    );
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("(no node yet)");
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    let key = skiff_api::resources::lookup("pods")
        .map(|pods| pods.key(namespace, name))
        .unwrap_or_default();
    let mut text = format!(
        "Pod {namespace}/{name} on {node}: {phase}\n\
         Stored at {key}, last written at revision {} (its resourceVersion).\n",
        meta["resourceVersion"].as_str().unwrap_or("?"),
    );
    if let Some(owner) = controller_of(pod) {
        text.push_str(&format!(
            "Controlled by {} {}.\n",
            owner["kind"].as_str().unwrap_or_default(),
            owner["name"].as_str().unwrap_or_default()
        ));
    }
    text
}
