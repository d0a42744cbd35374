//! The query and path parameters of the operations, with upstream's names, types and
//! (abridged where long) descriptions. kubectl looks for `fieldValidation` on PATCH.

use super::paths::Flavor;
use serde_json::{json, Value};

#[derive(Clone, Copy)]
pub(crate) enum ParamType {
    String,
    Integer,
    Boolean,
}

#[derive(Clone, Copy)]
pub(crate) struct QueryParam {
    pub name: &'static str,
    ty: ParamType,
    description: &'static str,
}

const fn q(name: &'static str, ty: ParamType, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
    }
}

use ParamType::{Boolean as Bool, Integer as Int, String as Str};

pub(crate) const PRETTY: QueryParam = q("pretty", Str, "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).");
pub(crate) const DRY_RUN: QueryParam = q("dryRun", Str, "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed");
pub(crate) const FIELD_MANAGER: QueryParam = q("fieldManager", Str, "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.");
pub(crate) const FIELD_MANAGER_PATCH: QueryParam = q("fieldManager", Str, "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).");
pub(crate) const FIELD_VALIDATION: QueryParam = q("fieldValidation", Str, "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.");
pub(crate) const FORCE: QueryParam = q("force", Bool, "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.");
pub(crate) const ALLOW_WATCH_BOOKMARKS: QueryParam = q("allowWatchBookmarks", Bool, "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.");
pub(crate) const CONTINUE: QueryParam = q("continue", Str, "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.");
pub(crate) const FIELD_SELECTOR: QueryParam = q(
    "fieldSelector",
    Str,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
pub(crate) const LABEL_SELECTOR: QueryParam = q(
    "labelSelector",
    Str,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
pub(crate) const LIMIT: QueryParam = q("limit", Int, "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.");
pub(crate) const RESOURCE_VERSION: QueryParam = q("resourceVersion", Str, "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
pub(crate) const RESOURCE_VERSION_MATCH: QueryParam = q("resourceVersionMatch", Str, "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
pub(crate) const SEND_INITIAL_EVENTS: QueryParam = q("sendInitialEvents", Bool, "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent.");
pub(crate) const TIMEOUT_SECONDS: QueryParam = q("timeoutSeconds", Int, "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.");
pub(crate) const WATCH: QueryParam = q("watch", Bool, "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.");
pub(crate) const GRACE_PERIOD_SECONDS: QueryParam = q("gracePeriodSeconds", Int, "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.");
pub(crate) const IGNORE_STORE_READ_ERROR: QueryParam = q("ignoreStoreReadErrorWithClusterBreakingPotential", Bool, "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it");
pub(crate) const ORPHAN_DEPENDENTS: QueryParam = q("orphanDependents", Bool, "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.");
pub(crate) const PROPAGATION_POLICY: QueryParam = q("propagationPolicy", Str, "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.");

/// Query parameters of list and watch calls.
pub(crate) const LIST: &[QueryParam] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
pub(crate) const CREATE: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
pub(crate) const PATCH: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER_PATCH, FIELD_VALIDATION, FORCE];
pub(crate) const DELETE: &[QueryParam] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
pub(crate) const DELETE_COLLECTION: &[QueryParam] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

fn type_name(ty: ParamType) -> &'static str {
    match ty {
        Str => "string",
        Int => "integer",
        Bool => "boolean",
    }
}

/// A parameter object: Swagger 2.0 puts the type beside the name, OpenAPI 3 in `schema`.
fn parameter(
    flavor: Flavor,
    name: &str,
    location: &str,
    ty: ParamType,
    description: &str,
    required: bool,
) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description});
    let p_map = p.as_object_mut().expect("json! object");
    if required {
        p_map.insert("required".into(), true.into());
    }
    match flavor {
        Flavor::V2 => {
            p_map.insert("type".into(), type_name(ty).into());
            p_map.insert("uniqueItems".into(), true.into());
        }
        Flavor::V3 => {
            p_map.insert(
                "schema".into(),
                json!({"type": type_name(ty), "uniqueItems": true}),
            );
        }
    }
    p
}

pub(crate) fn query(flavor: Flavor, p: &QueryParam) -> Value {
    parameter(flavor, p.name, "query", p.ty, p.description, false)
}

pub(crate) fn name_path(flavor: Flavor, kind: &str) -> Value {
    parameter(
        flavor,
        "name",
        "path",
        Str,
        &format!("name of the {kind}"),
        true,
    )
}

pub(crate) fn namespace_path(flavor: Flavor) -> Value {
    parameter(
        flavor,
        "namespace",
        "path",
        Str,
        "object name and auth scope, such as for teams and projects",
        true,
    )
}
