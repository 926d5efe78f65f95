//! Output: how results reach the user (tables; stdout through `outln!`).

pub(crate) mod table;
