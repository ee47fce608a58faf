//! The `local` forge backend (`forge.kind = "local"`): a folder of markdown plan
//! files stands in for the forge's issues. `plan` parses that folder.

pub mod plan;

pub use plan::{Plan, PlanError, load_plans, parse_plan};
