//! Tests of the translation module.
