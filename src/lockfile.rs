//! `state/forgehand.lock`: one daemon per state directory. The lock is an
//! `flock` held for the daemon's life, so the kernel drops it when the process
//! dies however it dies (even `kill -9`); the file holds the holder's PID so a
//! second daemon can say who is running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Held for the daemon's life; dropping it releases the lock.
pub struct DaemonLock {
    _file: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another forgehand (PID {pid}) holds {path}; stop it first or use another --state")]
    Held { pid: String, path: String },
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

impl DaemonLock {
    pub fn acquire(path: &Path) -> Result<DaemonLock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                return Err(LockError::Held {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid
                    },
                    path: path.display().to_string(),
                });
            }
            Err((_, errno)) => {
                return Err(LockError::Io(anyhow::anyhow!(
                    "locking {}: {errno}",
                    path.display()
                )));
            }
        };
        // The previous holder may have died leaving its PID behind: replace it.
        locked
            .set_len(0)
            .and_then(|_| locked.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(&mut *locked, "{}", std::process::id()))
            .and_then(|_| locked.sync_all())
            .with_context(|| format!("writing our PID into {}", path.display()))?;
        Ok(DaemonLock { _file: locked })
    }
}
