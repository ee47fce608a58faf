//! Lock files git leaves behind when it is killed mid-write: a daemon that
//! stops while a fetch or a config write runs kills its git, which gets no
//! chance to clean up. Left there, such a lock refuses every later write
//! to the clone ("could not lock config file config: File exists").
//! forgehand's clones are its own and one daemon at a time runs on a state
//! folder, so at start every lock in them is such a leftover.

use std::path::{Path, PathBuf};

/// Removes every `*.lock` file of the bare repository `repo_dir` (loose
/// objects' folders are not looked in: git writes no locks there) and
/// returns those removed.
pub fn clear_stale_locks(repo_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let mut folders = vec![repo_dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() && !is_loose_objects(&folder, &name) {
                folders.push(path);
            } else if kind.is_file() && name.ends_with(".lock") {
                std::fs::remove_file(&path)?;
                removed.push(path);
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// `objects/ab`: a folder of loose objects.
fn is_loose_objects(parent: &Path, name: &str) -> bool {
    parent.file_name().is_some_and(|p| p == "objects")
        && name.len() == 2
        && name.bytes().all(|b| b.is_ascii_hexdigit())
}
