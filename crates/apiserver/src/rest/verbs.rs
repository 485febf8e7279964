//! The verbs of a resource request, each onto its [`Registry`] method.
//!
//! | verb             | path                      | registry                         |
//! |------------------|---------------------------|----------------------------------|
//! | get              | `…/<name>`, `…/status`    | [`Registry::get`]                |
//! | list             | `…/<resource>`            | [`Registry::list`]               |
//! | create           | `…/<resource>`            | [`Registry::create`]             |
//! | create           | `…/pods/<name>/binding`   | [`Registry::create_subresource`] |
//! | update           | `…/<name>[/status\|/finalize]` | [`Registry::update`]        |
//! | patch            | `…/<name>[/status]`       | [`Registry::patch`]              |
//! | delete           | `…/<name>`                | [`Registry::delete`]             |
//! | deletecollection | `…/<resource>`            | [`Registry::delete_collection`]  |
//! | get/update/patch | `…/<name>/scale`          | `Registry::*_scale`              |
//! | get              | `…/pods/<name>/log`       | the node proxy (`log.rs`)        |
//!
//! Watches are `watch.rs`'s. Gets and lists answer Tables and
//! PartialObjectMetadata when asked (see `negotiation.rs`).
//!
//! # Where to start
//! [`serve`], one `match` from verb and subresource to a handler.
//!
//! # Caveats
//! pods/exec, pods/attach and pods/portforward are not served over REST yet (405). A delete answers 200 also when the object stays a while.

use serde_json::{json, Value};
use skiff_api::printers::{self, IncludeObject};
use skiff_api::status::ApiError;

use super::negotiation::{self, Output};
use super::request_info::Verb;
use super::response::{self, method_not_allowed, partial_metadata};
use super::{watch, Call, RestBody};

type Answer = Result<http::Response<RestBody>, ApiError>;

/// Serves one resource request.
pub(crate) async fn serve(call: Call) -> Answer {
    let output = negotiation::output(call.accept.as_deref())?;
    let named = !call.info.name.is_empty();
    match (call.verb, call.info.subresource.as_str()) {
        // A collection is created in, not replaced or patched; an object is
        // replaced or patched, not created in.
        (Verb::Create, "") if named => Err(method_not_allowed()),
        (Verb::Update | Verb::Patch, _) if !named => Err(method_not_allowed()),
        (Verb::Get, "" | "status") => get(&call, output).await,
        (Verb::List, "") => list(&call, output).await,
        (Verb::Watch, "") => watch::serve(&call, output).await,
        (Verb::Create, "") => create(&call, output).await,
        (Verb::Create, "binding") => create_subresource(&call, output).await,
        (Verb::Update, "" | "status" | "finalize") => update(&call, output).await,
        (Verb::Patch, "" | "status") => patch(&call, output).await,
        (Verb::Delete, "") => delete(&call, output).await,
        (Verb::DeleteCollection, "") => delete_collection(&call, output).await,
        (Verb::Get | Verb::Update | Verb::Patch, "scale") => scale(&call, output).await,
        (Verb::Get, "log") => super::log::serve(&call).await,
        _ => Err(method_not_allowed()),
    }
}

/// Writes answer in JSON or YAML; a Table or metadata is only for reads.
fn write_output(output: Output) -> Output {
    match output {
        Output::Yaml => Output::Yaml,
        _ => Output::Json,
    }
}

/// The answer to a write: the object stored (or the Status) and its warnings.
fn written(call: &Call, code: u16, reply: &crate::registry::Reply, output: Output) -> Answer {
    answer(
        call,
        code,
        &reply.object,
        write_output(output),
        &reply.warnings,
    )
}

fn answer(call: &Call, code: u16, value: &Value, output: Output, warnings: &[String]) -> Answer {
    Ok(response::object(
        code,
        value,
        output,
        call.query.pretty(),
        warnings,
    ))
}

async fn get(call: &Call, output: Output) -> Answer {
    let object = call
        .registry
        .get(
            call.resource,
            &call.info.namespace,
            &call.info.name,
            call.query.get("resourceVersion"),
        )
        .await?;
    let value = match output {
        Output::Table => table(call, std::slice::from_ref(&object), &json!({}))?,
        Output::Metadata => partial_metadata(&object),
        _ => object,
    };
    answer(call, 200, &value, output, &[])
}

async fn list(call: &Call, output: Output) -> Answer {
    let options = call.query.list_options()?;
    let list = call
        .registry
        .list(call.resource, &call.info.namespace, &options)
        .await?;
    let value = match output {
        Output::Table => {
            let items = list["items"].as_array().cloned().unwrap_or_default();
            table(call, &items, &list["metadata"])?
        }
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list["metadata"].clone(),
            "items": list["items"].as_array().into_iter().flatten().map(partial_metadata).collect::<Vec<_>>(),
        }),
        _ => list,
    };
    answer(call, 200, &value, output, &[])
}

/// The Table of `objects`, with a list's `metadata` (resourceVersion, continue).
fn table(call: &Call, objects: &[Value], metadata: &Value) -> Result<Value, ApiError> {
    let include: IncludeObject = call.query.include_object()?;
    let mut table = printers::table(
        call.resource.kind,
        objects,
        include,
        call.registry.unix_now(),
    );
    table["metadata"] = metadata.clone();
    Ok(table)
}

fn body_json(call: &Call) -> Result<Vec<u8>, ApiError> {
    negotiation::request_json(call.content_type.as_deref(), &call.body)
}

async fn create(call: &Call, output: Output) -> Answer {
    let options = call
        .query
        .write_options("CreateOptions", None, &call.user_agent)?;
    let reply = call
        .registry
        .create(
            call.resource,
            &call.info.namespace,
            &body_json(call)?,
            &options,
        )
        .await?;
    written(call, 201, &reply, output)
}

async fn create_subresource(call: &Call, output: Output) -> Answer {
    let options = call
        .query
        .write_options("CreateOptions", None, &call.user_agent)?;
    let reply = call
        .registry
        .create_subresource(
            call.resource,
            &call.info.namespace,
            &call.info.name,
            &call.info.subresource,
            &body_json(call)?,
            &options,
        )
        .await?;
    written(call, 201, &reply, output)
}

async fn update(call: &Call, output: Output) -> Answer {
    let options = call
        .query
        .write_options("UpdateOptions", None, &call.user_agent)?;
    let reply = call
        .registry
        .update(
            call.resource,
            &call.info.namespace,
            &call.info.name,
            &call.info.subresource,
            &body_json(call)?,
            &options,
        )
        .await?;
    written(call, 200, &reply, output)
}

async fn patch(call: &Call, output: Output) -> Answer {
    let (patch_type, patch) = negotiation::patch_type(call.content_type.as_deref(), &call.body)?;
    let options = call
        .query
        .write_options("PatchOptions", Some(patch_type), &call.user_agent)?;
    let reply = call
        .registry
        .patch(
            call.resource,
            &call.info.namespace,
            &call.info.name,
            &call.info.subresource,
            patch_type,
            &patch,
            &options,
        )
        .await?;
    written(call, 200, &reply, output)
}

async fn delete(call: &Call, output: Output) -> Answer {
    let options = call.query.delete_options(&body_json(call)?)?;
    let reply = call
        .registry
        .delete(
            call.resource,
            &call.info.namespace,
            &call.info.name,
            &options,
        )
        .await?;
    written(call, 200, &reply, output)
}

async fn delete_collection(call: &Call, output: Output) -> Answer {
    let selection = call.query.list_options()?;
    let options = call.query.delete_options(&body_json(call)?)?;
    let deleted = call
        .registry
        .delete_collection(call.resource, &call.info.namespace, &selection, &options)
        .await?;
    answer(call, 200, &deleted, write_output(output), &[])
}

async fn scale(call: &Call, output: Output) -> Answer {
    let (registry, resource, info) = (&call.registry, call.resource, &call.info);
    let output = write_output(output);
    let reply = match call.verb {
        Verb::Get => {
            let scale = registry
                .get_scale(resource, &info.namespace, &info.name)
                .await?;
            return answer(call, 200, &scale, output, &[]);
        }
        Verb::Update => {
            let options = call
                .query
                .write_options("UpdateOptions", None, &call.user_agent)?;
            registry
                .update_scale(
                    resource,
                    &info.namespace,
                    &info.name,
                    &body_json(call)?,
                    &options,
                )
                .await?
        }
        _ => {
            let (patch_type, patch) =
                negotiation::patch_type(call.content_type.as_deref(), &call.body)?;
            let options =
                call.query
                    .write_options("PatchOptions", Some(patch_type), &call.user_agent)?;
            registry
                .patch_scale(
                    resource,
                    &info.namespace,
                    &info.name,
                    patch_type,
                    &patch,
                    &options,
                )
                .await?
        }
    };
    answer(call, 200, &reply.object, output, &reply.warnings)
}
