//! The nodeless scheduler (placeholder: being written).
