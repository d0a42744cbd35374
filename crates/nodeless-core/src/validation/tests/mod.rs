//! Behaviour tests for validation, one file per family of rules.
