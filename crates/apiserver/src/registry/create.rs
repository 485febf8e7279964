//! Create, with generateName: the object is prepared by its kind's
//! [`Strategy`], defaulted, validated, its fields recorded for its field
//! manager (managedFields) and written with a txn "create if absent".

use serde_json::{json, Value};
use skiff_api::admission::{FieldError, FieldErrorKind};
use skiff_api::resources::{self, Resource};
use skiff_api::status::{ApiError, Reason};

use super::managed_fields::{self, Manager};
use super::strategy::{self, Strategy};
use super::write::Expect;
use super::{Registry, Reply, WriteOptions};
use crate::object::{decode, is_deleting, meta_mut, meta_str, set_resource_version};

/// How often a create tries another generated name or address.
const MAX_ATTEMPTS: usize = 8;

/// How a create is recorded: by its field manager (none: nothing is
/// recorded), as an `Update` or, with an `intent`, as an `Apply`.
pub(crate) struct NewWrite<'a> {
    pub(crate) dry_run: bool,
    pub(crate) manager: Option<&'a Manager>,
    pub(crate) intent: Option<&'a Value>,
}

/// The name a new object asks for: `metadata.name`, or a `generateName` prefix.
struct NewName {
    given: String,
    generate: String,
}

impl Registry {
    /// Creates an object of `resource` in `namespace` from a JSON body.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let decoded = decode(resource, body, options.field_validation)?;
        let manager = self.manager(resource, options, "");
        let write = NewWrite {
            dry_run: options.dry_run,
            manager: manager.as_ref(),
            intent: None,
        };
        let object = self
            .create_decoded(resource, namespace, decoded.object, &write)
            .await?;
        Ok(Reply {
            object,
            warnings: decoded.warnings,
        })
    }

    /// Creates a decoded object, recording its fields as `write` says.
    pub(crate) async fn create_decoded(
        &self,
        resource: &'static Resource,
        namespace: &str,
        mut object: Value,
        write: &NewWrite<'_>,
    ) -> Result<Value, ApiError> {
        let namespace = request_namespace(resource, namespace, meta_str(&object, "namespace"))?;
        let name = NewName {
            given: meta_str(&object, "name").to_string(),
            generate: meta_str(&object, "generateName").to_string(),
        };
        if name.given.is_empty() && name.generate.is_empty() {
            return Err(ApiError::invalid(
                resource,
                "",
                &[FieldError {
                    field: "metadata.name".into(),
                    kind: FieldErrorKind::Required,
                    detail: "name or generateName is required".into(),
                }],
            ));
        }
        if resource.namespaced {
            self.check_namespace(resource, &namespace, &name.given)
                .await?;
        }
        let strategy = strategy::for_kind(resource);
        self.prepare_for_create(resource, strategy, &namespace, &mut object);
        tracing::debug!(resource = resource.resource, namespace, "create");
        self.store_new(resource, strategy, &namespace, object, &name, write)
            .await
    }

    /// Sets the metadata the server owns, then lets the kind's strategy
    /// clear what clients may not set.
    fn prepare_for_create(
        &self,
        resource: &Resource,
        strategy: &dyn Strategy,
        namespace: &str,
        object: &mut Value,
    ) {
        let now = self.now();
        let uid = self.random.uuid();
        let meta = meta_mut(object);
        for server_owned in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            meta.remove(server_owned);
        }
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        if resource.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        strategy.prepare_for_create(resource, object);
    }

    /// Names, defaults, validates and allocates the new object, and writes it
    /// if its key is still free; a generated name or an address taken
    /// meanwhile is tried again.
    async fn store_new(
        &self,
        resource: &'static Resource,
        strategy: &dyn Strategy,
        namespace: &str,
        object: Value,
        name: &NewName,
        write: &NewWrite<'_>,
    ) -> Result<Value, ApiError> {
        for _attempt in 0..MAX_ATTEMPTS {
            let candidate_name = if name.given.is_empty() {
                format!("{}{}", name.generate, self.random.name_suffix())
            } else {
                name.given.clone()
            };
            let invalid =
                |errors: Vec<FieldError>| ApiError::invalid(resource, &candidate_name, &errors);
            let mut candidate = object.clone();
            meta_mut(&mut candidate).insert("name".into(), json!(candidate_name));
            strategy.default(resource, &mut candidate);
            let errors = strategy.validate(resource, &candidate);
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
            let taken = self.taken(strategy).await?;
            let allocation = strategy
                .allocate(&self.allocation_context(&taken), &mut candidate, None)
                .map_err(invalid)?;
            if let Some(manager) = write.manager {
                let ty = skiff_api::patch::schema::for_kind(resource.kind);
                managed_fields::record_create(&mut candidate, ty, manager, write.intent);
            }
            if write.dry_run {
                return Ok(candidate);
            }
            let key = resource.key(namespace, &candidate_name);
            if let Some(revision) = self
                .commit(&key, Some(&candidate), Expect::Absent, allocation)
                .await?
            {
                set_resource_version(&mut candidate, revision);
                return Ok(candidate);
            }
            if !name.given.is_empty() && self.read(&key).await?.is_some() {
                return Err(ApiError::already_exists(resource, &candidate_name));
            }
        }
        Err(ApiError::new(
            Reason::AlreadyExists,
            format!(
                "{} could not be created: every generated name or address tried was taken",
                resource.qualified_name()
            ),
        ))
    }

    /// The namespace `namespace` exists and is not terminating.
    async fn check_namespace(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let namespaces = resources::lookup("namespaces").expect("namespaces are served");
        let Some(ns) = self.read(&namespaces.key("", namespace)).await? else {
            return Err(ApiError::not_found(namespaces, namespace));
        };
        if is_deleting(&ns.object) || ns.object["status"]["phase"] == "Terminating" {
            return Err(ApiError::forbidden(
                resource,
                name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
        }
        Ok(())
    }
}

/// The namespace a new object goes to: the request's or the body's, which
/// must agree; none for a cluster-scoped resource.
fn request_namespace(resource: &Resource, request: &str, body: &str) -> Result<String, ApiError> {
    if !resource.namespaced {
        return Ok(String::new());
    }
    if !body.is_empty() && !request.is_empty() && body != request {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let namespace = if request.is_empty() { body } else { request };
    if namespace.is_empty() {
        return Err(ApiError::bad_request(
            "a namespace is required to create a namespaced object",
        ));
    }
    Ok(namespace.to_string())
}
