//! Kubernetes streaming protocols (placeholder: being written).
