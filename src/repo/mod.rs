//! Read models and reference data, below the use cases (the log itself is
//! `store/`).

pub mod audit;
pub mod dump;
