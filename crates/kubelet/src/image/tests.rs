//! The builder and the reader agree: what [`build_oci_tarball`] writes,
//! [`ImageLayout::read`] reads back, with the right name, digests and files.

use std::io::Read;

use super::digest::{chain_ids, sha256_digest};
use super::layout::ImageLayout;
use super::oci::{Platform, MEDIA_TYPE_LAYER, MEDIA_TYPE_MANIFEST};
use super::*;

fn tiny_image() -> ImageBuild {
    ImageBuild {
        name: "tiny".into(),
        rootfs: busybox_rootfs(b"#!not really busybox".to_vec()),
        entrypoint: vec![],
        cmd: vec!["sh".into()],
        env: vec!["PATH=/bin".into()],
    }
}

fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *contents).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn a_built_image_reads_back_under_its_normalised_name() {
    let tarball = build_oci_tarball(&tiny_image()).unwrap();
    let image = ImageLayout::read(&tarball, &Platform::current()).unwrap();
    assert_eq!(image.name, "docker.io/library/tiny:latest");
    assert_eq!(image.manifest_descriptor.media_type, MEDIA_TYPE_MANIFEST);
    assert_eq!(image.manifest.layers.len(), 1);
    assert_eq!(image.manifest.layers[0].media_type, MEDIA_TYPE_LAYER);
    let run = image.config.config.clone().unwrap();
    assert_eq!(run.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(run.env, Some(vec!["PATH=/bin".to_string()]));
}

#[test]
fn an_uncompressed_layers_diff_id_is_its_digest() {
    let tarball = build_oci_tarball(&tiny_image()).unwrap();
    let image = ImageLayout::read(&tarball, &Platform::current()).unwrap();
    let layer = &image.manifest.layers[0];
    assert_eq!(image.config.rootfs.diff_ids, vec![layer.digest.clone()]);
    assert_eq!(
        sha256_digest(image.blob(&layer.digest).unwrap()),
        layer.digest
    );
    assert_eq!(
        chain_ids(&image.config.rootfs.diff_ids),
        vec![layer.digest.clone()]
    );
}

#[test]
fn the_layer_holds_busybox_and_a_symlink_per_applet() {
    let tarball = build_oci_tarball(&tiny_image()).unwrap();
    let image = ImageLayout::read(&tarball, &Platform::current()).unwrap();
    let layer = image.blob(&image.manifest.layers[0].digest).unwrap();
    let mut archive = tar::Archive::new(layer);
    let mut busybox = Vec::new();
    let mut links = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if path == "bin/busybox" {
            assert_eq!(entry.header().mode().unwrap(), 0o755);
            entry.read_to_end(&mut busybox).unwrap();
        } else if entry.header().entry_type().is_symlink() {
            links.push(path);
        }
    }
    assert_eq!(busybox, b"#!not really busybox");
    for applet in ["sh", "sleep", "echo", "cat", "wget", "nc", "httpd"] {
        assert!(links.contains(&format!("bin/{applet}")), "no {applet}");
    }
}

#[test]
fn building_twice_gives_the_same_bytes() {
    assert_eq!(
        build_oci_tarball(&tiny_image()).unwrap(),
        build_oci_tarball(&tiny_image()).unwrap()
    );
}

#[test]
fn a_tarball_without_index_json_is_not_a_layout() {
    let error =
        ImageLayout::read(&tar_with(&[("oci-layout", b"{}")]), &Platform::current()).unwrap_err();
    assert_eq!(error.to_string(), "not an OCI image layout: no index.json");
}

#[test]
fn bytes_that_are_not_a_tar_archive_are_not_a_layout() {
    for (bytes, says) in [
        (&b"this is not a tarball at all"[..], "not a tar archive"),
        (&[0x1f, 0x8b, 8, 0][..], "gzip-compressed"),
    ] {
        let error = ImageLayout::read(bytes, &Platform::current()).unwrap_err();
        assert!(matches!(error, ImageError::NotALayout(_)), "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[test]
fn a_docker_archive_is_refused_with_a_message_saying_so() {
    let error = ImageLayout::read(&tar_with(&[("manifest.json", b"[]")]), &Platform::current())
        .unwrap_err();
    assert!(error.to_string().contains("docker-archive"), "{error}");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_rejected() {
    let name = format!("blobs/sha256/{}", "0".repeat(64));
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    let tarball = tar_with(&[("index.json", index), (&name, b"tampered")]);
    let error = ImageLayout::read(&tarball, &Platform::current()).unwrap_err();
    assert!(
        matches!(error, ImageError::DigestMismatch { .. }),
        "{error}"
    );
}

#[test]
fn a_manifest_naming_a_missing_blob_is_rejected() {
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MEDIA_TYPE_MANIFEST}","digest":"sha256:{}","size":2,"annotations":{{"org.opencontainers.image.ref.name":"x"}}}}]}}"#,
        "1".repeat(64)
    );
    let error = ImageLayout::read(
        &tar_with(&[("index.json", index.as_bytes())]),
        &Platform::current(),
    )
    .unwrap_err();
    assert!(matches!(error, ImageError::MissingBlob(_)), "{error}");
}
