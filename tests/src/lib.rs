//! Integration and UI tests live under `tests/tests`.
