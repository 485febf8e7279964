//! `skiff rollout history`: the revisions of a Deployment, one per owned
//! ReplicaSet, with the `kubernetes.io/change-cause` annotation that
//! `kubectl annotate` or `--record` left on each — as kubectl's
//! `DeploymentHistoryViewer`; with `--revision N`, that revision's pod
//! template as `kubectl describe` writes one (tab-separated, unaligned, as
//! kubectl prints it there).
//!
//! # Caveats
//! The template shows labels, annotations, containers (image, ports,
//! command, arguments, environment, mounts), volume names, node selectors and
//! tolerations; volume sources, probes and resources are left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use skiff_controllers::deployment::revision;

use super::Named;
use crate::kubectl::{emit, Error, Session};

/// The annotation that says why a revision was made.
pub(crate) const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// Prints `named`'s history, or the template of `revision` when above 0.
pub(crate) async fn run(
    session: &Session,
    named: &Named,
    revision: i64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let deployment = named.get(session).await?;
    let owned = named.owned_sets(session, &deployment).await?;
    let text = view(&owned, revision).map_err(Error::Usage)?;
    let heading = if revision > 0 {
        format!("with revision #{revision}")
    } else {
        String::new()
    };
    emit(out, &format!("{} {heading}\n{text}\n", named.object_name()));
    Ok(())
}

/// What kubectl shows for these ReplicaSets: the REVISION/CHANGE-CAUSE
/// table, or with `revision` above 0 that revision's template.
pub(crate) fn view(owned: &[ReplicaSet], revision: i64) -> Result<String, String> {
    let mut history: BTreeMap<i64, PodTemplateSpec> = BTreeMap::new();
    for rs in owned {
        let number = revision::revision(rs);
        if number == 0 {
            continue;
        }
        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        if let Some(cause) = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHANGE_CAUSE))
        {
            template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert(CHANGE_CAUSE.into(), cause.clone());
        }
        history.insert(number, template);
    }
    if history.is_empty() {
        return Ok("No rollout history found.".into());
    }
    if revision > 0 {
        let template = history
            .get(&revision)
            .ok_or("unable to find the specified revision")?;
        return Ok(describe_template(template));
    }
    let rows: Vec<(String, String)> = history
        .iter()
        .map(|(number, template)| {
            let cause = template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(CHANGE_CAUSE))
                .filter(|c| !c.is_empty())
                .map_or("<none>", String::as_str);
            (number.to_string(), cause.to_string())
        })
        .collect();
    // kubectl's tabwriter: the first column as wide as its widest cell + 2.
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(8) + 2;
    let mut text = format!("{:<width$}CHANGE-CAUSE\n", "REVISION");
    for (number, cause) in rows {
        let _ = writeln!(text, "{number:<width$}{cause}");
    }
    Ok(text)
}

/// A pod template as kubectl's `DescribePodTemplate` writes it.
pub(crate) fn describe_template(template: &PodTemplateSpec) -> String {
    let mut out = String::from("Pod Template:\n");
    let meta = template.metadata.clone().unwrap_or_default();
    map_lines(&mut out, "  Labels", meta.labels.as_ref(), "=");
    if meta.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        map_lines(&mut out, "  Annotations", meta.annotations.as_ref(), ": ");
    }
    let spec = template.spec.clone().unwrap_or_default();
    if let Some(account) = spec.service_account_name.as_ref().filter(|a| !a.is_empty()) {
        let _ = writeln!(out, "  Service Account:\t{account}");
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        containers(&mut out, "Init Containers", init);
    }
    containers(&mut out, "Containers", &spec.containers);
    match spec.volumes.as_ref().filter(|v| !v.is_empty()) {
        None => out.push_str("  Volumes:\t<none>\n"),
        Some(volumes) => {
            out.push_str("  Volumes:\n");
            for volume in volumes {
                let _ = writeln!(out, "   {}:", volume.name);
            }
        }
    }
    map_lines(
        &mut out,
        "  Node-Selectors",
        spec.node_selector.as_ref(),
        "=",
    );
    let tolerations: Vec<String> = spec
        .tolerations
        .iter()
        .flatten()
        .map(|t| {
            let mut text = t.key.clone().unwrap_or_default();
            if let Some(value) = t.value.as_ref().filter(|v| !v.is_empty()) {
                let _ = write!(text, "={value}");
            }
            if let Some(effect) = t.effect.as_ref().filter(|e| !e.is_empty()) {
                let _ = write!(text, ":{effect}");
            }
            if t.operator.as_deref() == Some("Exists") && t.value.is_none() {
                text.push_str(" op=Exists");
            }
            if let Some(seconds) = t.toleration_seconds {
                let _ = write!(text, " for {seconds}s");
            }
            text
        })
        .collect();
    list_lines(&mut out, "  Tolerations", &tolerations);
    out
}

/// `TITLE:\tk=v` then one `\tk=v` line per further key, sorted; `<none>`
/// when empty — kubectl's `printLabelsMultiline`.
fn map_lines(out: &mut String, title: &str, map: Option<&BTreeMap<String, String>>, join: &str) {
    let items: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}{join}{v}"))
        .collect();
    list_lines(out, title, &items);
}

fn list_lines(out: &mut String, title: &str, items: &[String]) {
    let _ = write!(out, "{title}:\t");
    if items.is_empty() {
        out.push_str("<none>\n");
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        let _ = writeln!(out, "{item}");
    }
}

/// The containers section of a template (no status: nothing runs yet).
fn containers(out: &mut String, title: &str, containers: &[Container]) {
    let _ = writeln!(out, "  {title}:");
    for c in containers {
        let _ = writeln!(out, "   {}:", c.name);
        let _ = writeln!(out, "    Image:\t{}", c.image.as_deref().unwrap_or(""));
        let ports: Vec<_> = c.ports.iter().flatten().collect();
        let protocol = |p: &Option<String>| p.clone().unwrap_or_else(|| "TCP".into());
        let listed = |f: &dyn Fn(&k8s_openapi::api::core::v1::ContainerPort) -> String| {
            ports.iter().map(|p| f(p)).collect::<Vec<_>>().join(", ")
        };
        let plural = if ports.len() > 1 { "s" } else { "" };
        if ports.is_empty() {
            out.push_str("    Port:\t<none>\n    Host Port:\t<none>\n");
        } else {
            let container = listed(&|p| format!("{}/{}", p.container_port, protocol(&p.protocol)));
            let host =
                listed(&|p| format!("{}/{}", p.host_port.unwrap_or(0), protocol(&p.protocol)));
            let _ = writeln!(out, "    Port{plural}:\t{container}");
            let _ = writeln!(out, "    Host Port{plural}:\t{host}");
        }
        for (name, words) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
                let _ = writeln!(out, "    {name}:");
                for word in words {
                    let _ = writeln!(out, "      {word}");
                }
            }
        }
        match c.env.as_ref().filter(|e| !e.is_empty()) {
            None => out.push_str("    Environment:\t<none>\n"),
            Some(env) => {
                out.push_str("    Environment:\n");
                for var in env {
                    let value = match (&var.value, &var.value_from) {
                        (Some(value), _) => value.clone(),
                        (None, Some(_)) => "<set from a reference>".into(),
                        (None, None) => String::new(),
                    };
                    let _ = writeln!(out, "      {}:\t{value}", var.name);
                }
            }
        }
        match c.volume_mounts.as_ref().filter(|m| !m.is_empty()) {
            None => out.push_str("    Mounts:\t<none>\n"),
            Some(mounts) => {
                out.push_str("    Mounts:\n");
                for m in mounts {
                    let mode = if m.read_only == Some(true) {
                        "ro"
                    } else {
                        "rw"
                    };
                    let _ = writeln!(out, "      {} from {} ({mode})", m.mount_path, m.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::ContainerPort;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::kubectl::fixtures;

    /// A ReplicaSet of `revision` running `image`, with a change-cause.
    fn set(revision: &str, image: &str, cause: Option<&str>) -> ReplicaSet {
        let mut template = fixtures::with_hash(fixtures::template("web", image), "5d9f8");
        template.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            ..Default::default()
        }]);
        let mut annotations = BTreeMap::from([(revision::REVISION.to_string(), revision.into())]);
        if let Some(cause) = cause {
            annotations.insert(CHANGE_CAUSE.into(), cause.into());
        }
        ReplicaSet {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                template: Some(template),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn revisions_are_listed_in_order_with_their_change_cause() {
        let owned = [
            set("10", "nginx:1.26", None),
            set(
                "2",
                "nginx:1.25",
                Some("kubectl set image deployment/web web=nginx:1.25"),
            ),
            set("1", "nginx:1.24", Some("")),
        ];
        assert_eq!(
            view(&owned, 0).unwrap(),
            "REVISION  CHANGE-CAUSE\n\
             1         <none>\n\
             2         kubectl set image deployment/web web=nginx:1.25\n\
             10        <none>\n"
        );
    }

    #[test]
    fn no_replica_sets_is_no_history() {
        assert_eq!(view(&[], 0).unwrap(), "No rollout history found.");
        assert_eq!(
            view(&[set("", "x", None)], 0).unwrap(),
            "No rollout history found."
        );
    }

    #[test]
    fn one_revision_shows_its_template_as_kubectl_describes_it() {
        let owned = [
            set("1", "nginx:1.24", None),
            set("2", "nginx:1.25", Some("bump")),
        ];
        assert_eq!(
            view(&owned, 2).unwrap(),
            "Pod Template:\n\
             \x20 Labels:\tapp=web\n\
             \tpod-template-hash=5d9f8\n\
             \x20 Annotations:\tkubernetes.io/change-cause: bump\n\
             \x20 Containers:\n\
             \x20  main:\n\
             \x20   Image:\tnginx:1.25\n\
             \x20   Port:\t80/TCP\n\
             \x20   Host Port:\t0/TCP\n\
             \x20   Environment:\t<none>\n\
             \x20   Mounts:\t<none>\n\
             \x20 Volumes:\t<none>\n\
             \x20 Node-Selectors:\t<none>\n\
             \x20 Tolerations:\t<none>\n"
        );
        assert_eq!(
            view(&owned, 3),
            Err("unable to find the specified revision".into())
        );
    }
}
