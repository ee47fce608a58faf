//! Reading and validating project files (stub).
use std::path::Path;

use super::Project;

#[derive(Debug)]
pub struct ConfigError;

pub struct CheckReport;

pub fn load_file(_path: &Path) -> Result<Project, ConfigError> {
    unimplemented!()
}

pub fn load_dir(_dir: &Path) -> Result<Vec<Project>, CheckReport> {
    unimplemented!()
}
