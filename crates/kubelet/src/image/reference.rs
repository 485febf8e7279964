//! Image references in their full form, as containerd stores image names.
//!
//! Docker's normalisation: a name without a registry is on `docker.io`, a
//! single-component name on Docker Hub is under `library/`, and a name without
//! a tag or digest means `:latest`. So `busybox` is
//! `docker.io/library/busybox:latest`, the name a pod spec's `image: busybox`
//! and an imported tarball must agree on.

/// The full form of an image reference: registry, repository and tag (or digest).
pub fn normalize(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) => (first, rest.to_string()),
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let last = path.rsplit('/').next().unwrap_or_default();
    match digest {
        Some(digest) => format!("{domain}/{path}@{digest}"),
        None if last.contains(':') => format!("{domain}/{path}"),
        None => format!("{domain}/{path}:latest"),
    }
}

/// Whether a reference's first component names a registry rather than a
/// repository: it has a dot or a port, or is `localhost`.
fn is_domain(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn a_bare_name_is_an_official_image_on_docker_hub_at_latest() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
    }

    #[test]
    fn a_tag_is_kept() {
        assert_eq!(normalize("busybox:1.36"), "docker.io/library/busybox:1.36");
    }

    #[test]
    fn a_user_repository_is_not_under_library() {
        assert_eq!(normalize("skiff/pause"), "docker.io/skiff/pause:latest");
    }

    #[test]
    fn a_registry_with_a_port_is_kept_and_its_port_is_not_a_tag() {
        assert_eq!(
            normalize("registry.local:5000/team/app"),
            "registry.local:5000/team/app:latest"
        );
    }

    #[test]
    fn a_digest_reference_gets_no_tag() {
        assert_eq!(
            normalize("busybox@sha256:abc"),
            "docker.io/library/busybox@sha256:abc"
        );
    }

    #[test]
    fn full_names_are_already_normal() {
        for name in ["docker.io/library/busybox:latest", "localhost/app:v1"] {
            assert_eq!(normalize(name), name);
        }
        assert_eq!(
            normalize("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }
}
