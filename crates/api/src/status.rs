//! Errors as Kubernetes `Status` objects.
