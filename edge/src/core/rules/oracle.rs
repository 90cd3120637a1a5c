//! Differential test against path-to-regexp 6.1.0 and routing-utils (see testdata/oracle.mjs).
