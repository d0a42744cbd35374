//! The sans-IO core of nodeless.
//!
//! Everything here is pure logic over Kubernetes objects held as JSON values: the resource
//! model, field errors and `Status`, label and field selectors, the three patch formats,
//! decoding through the typed k8s-openapi structs (which finds unknown fields and type
//! errors), defaulting, validation, and `Table` printing. No module here does I/O, so each
//! is tested as plain functions.

pub mod admission;
pub mod billing;
pub mod convert;
pub mod defaults;
pub mod field;
pub mod instance_spec;
pub mod meta;
pub mod patch;
pub mod proto;
pub mod resource;
pub mod schema;
pub mod selector;
pub mod status;
pub mod table;
pub mod typed;
pub mod validation;

pub use field::{ErrorList, FieldError};
pub use resource::ResourceType;
pub use status::StatusError;
