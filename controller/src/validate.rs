//! Loading and validating desired-state documents.
