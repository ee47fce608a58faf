//! `~/.claude.json`, Claude Code's global state, shared with the user and with
//! every other session: read, changed and written back whole, atomically
//! (temp file + rename) and under an exclusive `flock` on a sibling lock file,
//! so parallel sessions never lose each other's keys and the user's own
//! settings are never clobbered.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};

/// The largest `~/.claude.json` forgehand will read.
const MAX_CONFIG: usize = 64 * 1024 * 1024;

/// Where Claude Code keeps its global state for this home.
pub fn path(home: &Path) -> PathBuf {
    home.join(".claude.json")
}

/// The lock file forgehand holds while it changes `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".forgehand.lock");
    path.with_file_name(name)
}

/// Read the file (an absent one is empty), let `change` edit its top-level
/// object, and write it back. Blocking: call it off the async threads.
/// A file that is not a JSON object is an error, never overwritten.
pub fn update(path: &Path, change: impl FnOnce(&mut Map<String, Value>)) -> anyhow::Result<()> {
    let lock_file = lock_path(path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_file)
        .with_context(|| format!("opening {}", lock_file.display()))?;
    let _held = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", lock_file.display()))?;

    // The sandboxed agent can write the file: no link, no pipe, no endless one.
    let read = crate::untrusted::read_capped(path, MAX_CONFIG).and_then(|read| {
        if read.truncated {
            Err(crate::untrusted::UntrustedError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(format!("larger than {MAX_CONFIG} bytes")),
            })
        } else {
            Ok(read.bytes)
        }
    });
    let (mut config, mode) = match read {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => (Map::new(), None),
        Ok(bytes) => {
            let value: Value = serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not valid JSON; not touching it", path.display())
            })?;
            let Value::Object(map) = value else {
                anyhow::bail!("{} is not a JSON object; not touching it", path.display());
            };
            let mode = std::fs::metadata(path)
                .ok()
                .map(|m| m.permissions().mode() & 0o7777);
            (map, mode)
        }
        Err(e) if e.is_missing() => (Map::new(), None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    change(&mut config);
    let mut text = serde_json::to_string_pretty(&Value::Object(config))?;
    text.push('\n');
    write_atomically(path, text.as_bytes(), mode.unwrap_or(0o600))
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".forgehand-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
