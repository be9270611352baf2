//! EKS tokens.
