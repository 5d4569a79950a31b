//! Managed cluster tests.
