//! `state/forgehand.lock`: one daemon per state directory. The lock is an
//! `flock` held for the daemon's life, so the kernel drops it when the process
//! dies however it dies (even `kill -9`); the file holds the holder's PID so a
//! second daemon can say who is running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

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
                return Err(LockError::Held {
                    pid: holder_pid(&mut file),
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
        // The previous holder may have died leaving its PID behind: overwrite
        // it in place, then cut what is left, so a reader never sees it empty.
        let pid = format!("{}\n", std::process::id());
        locked
            .seek(SeekFrom::Start(0))
            .and_then(|_| locked.write_all(pid.as_bytes()))
            .and_then(|_| locked.set_len(pid.len() as u64))
            .and_then(|_| locked.sync_all())
            .with_context(|| format!("writing our PID into {}", path.display()))?;
        Ok(DaemonLock { _file: locked })
    }
}

/// How long a refused daemon waits for a holder that has just taken the lock
/// to write its PID.
const PID_WAIT: Duration = Duration::from_secs(1);

fn holder_pid(file: &mut File) -> String {
    let deadline = Instant::now() + PID_WAIT;
    loop {
        let mut pid = String::new();
        let _ = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut pid));
        let pid = pid.trim();
        if !pid.is_empty() {
            return pid.to_string();
        }
        if Instant::now() >= deadline {
            return "unknown".to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a daemon holds the lock at `path` right now. Only asks (a shared
/// lock, given back at once): the file is neither created nor written.
pub fn is_held(path: &Path) -> anyhow::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(false),
        Err((_, Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(anyhow::anyhow!("locking {}: {errno}", path.display())),
    }
}
