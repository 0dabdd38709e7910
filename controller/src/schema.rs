//! JSON Schema and Kubernetes CRD generation for the document types.
