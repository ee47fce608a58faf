//! Files in places the agent can write (its worktree, its session folder, its
//! own config) are hostile input. Reading one never follows a symbolic link,
//! never blocks (a FIFO or a device is refused, not opened for a read that
//! would wait forever) and never takes more than a cap. Writing one never
//! follows a link either: the file is written beside its place under a fresh
//! name and renamed over it, so a link planted there is replaced, not used.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

/// Why an untrusted file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{path} is {what}, not a regular file; it was not read")]
    NotRegular { path: String, what: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl UntrustedError {
    pub fn is_missing(&self) -> bool {
        matches!(self, UntrustedError::Missing(_))
    }
}

/// What was read: at most the cap, and whether there was more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

impl Capped {
    /// The text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Opens `path` for reading if it is a regular file, without following a
/// link in its last component and without blocking.
pub fn open_regular(path: &Path) -> Result<File, UntrustedError> {
    let shown = path.display().to_string();
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(UntrustedError::Missing(shown)),
        Err(Errno::ELOOP) => {
            return Err(UntrustedError::NotRegular {
                path: shown,
                what: "a symbolic link",
            });
        }
        Err(e) => {
            return Err(UntrustedError::Io {
                path: shown,
                source: e.into(),
            });
        }
    };
    regular(fd, shown)
}

/// `fd` as a file, if it is a regular one.
fn regular(fd: OwnedFd, shown: String) -> Result<File, UntrustedError> {
    let stat = fstat(fd.as_fd()).map_err(|e| UntrustedError::Io {
        path: shown.clone(),
        source: e.into(),
    })?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let what = match kind {
        SFlag::S_IFREG => return Ok(File::from(fd)),
        SFlag::S_IFIFO => "a named pipe",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFSOCK => "a socket",
        _ => "not a file",
    };
    Err(UntrustedError::NotRegular { path: shown, what })
}

/// Reads at most `max` bytes of the regular file at `path`.
pub fn read_capped(path: &Path, max: usize) -> Result<Capped, UntrustedError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| UntrustedError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
    let truncated = bytes.len() > max;
    bytes.truncate(max);
    Ok(Capped { bytes, truncated })
}

/// Like [`read_capped`], on a blocking thread.
pub async fn read_capped_async(
    path: impl AsRef<Path>,
    max: usize,
) -> Result<Capped, UntrustedError> {
    let path = path.as_ref().to_path_buf();
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || read_capped(&path, max))
        .await
        .map_err(|e| UntrustedError::Io {
            path: shown,
            source: std::io::Error::other(e),
        })?
}

/// Reads at most `max` bytes of `base/rel`, following no link at any step
/// below `base`.
pub fn read_capped_in(base: &Path, rel: &Path, max: usize) -> Result<Capped, UntrustedError> {
    let shown = base.join(rel).display().to_string();
    let (dir, name) = walk(base, rel, false).map_err(|e| io_or_missing(e, &shown))?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = openat(dir.as_fd(), name.as_os_str(), flags, Mode::empty())
        .map_err(|e| io_or_missing(e, &shown))?;
    let file = regular(fd, shown.clone())?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| UntrustedError::Io {
            path: shown,
            source: e,
        })?;
    let truncated = bytes.len() > max;
    bytes.truncate(max);
    Ok(Capped { bytes, truncated })
}

fn io_or_missing(e: Errno, shown: &str) -> UntrustedError {
    match e {
        Errno::ENOENT => UntrustedError::Missing(shown.to_string()),
        Errno::ELOOP | Errno::ENOTDIR => UntrustedError::NotRegular {
            path: shown.to_string(),
            what: "reached through a symbolic link",
        },
        e => UntrustedError::Io {
            path: shown.to_string(),
            source: e.into(),
        },
    }
}

/// Writes `bytes` to `base/rel` (mode `mode`), creating missing folders below
/// `base`, following no link at any step: what the agent put at any of these
/// names is replaced or refused, never written through.
pub fn write_in(base: &Path, rel: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let shown = base.join(rel).display().to_string();
    let (dir, name) = walk(base, rel, true).map_err(|e| anyhow::anyhow!("writing {shown}: {e}"))?;
    let temp: OsString = format!(
        ".forgehand-{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
    .into();
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        dir.as_fd(),
        temp.as_os_str(),
        flags,
        Mode::from_bits_truncate(mode),
    )
    .map_err(|e| anyhow::anyhow!("writing {shown}: {e}"))?;
    let mut file = File::from(fd);
    let written = file.write_all(bytes).and_then(|()| file.sync_data());
    let placed = written.map_err(anyhow::Error::from).and_then(|()| {
        renameat(dir.as_fd(), temp.as_os_str(), dir.as_fd(), name.as_os_str())
            .map_err(anyhow::Error::from)
    });
    if let Err(e) = placed {
        let _ = nix::unistd::unlinkat(
            dir.as_fd(),
            temp.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        anyhow::bail!("writing {shown}: {e}");
    }
    Ok(())
}

/// Opens every folder of `rel` below `base` without following links
/// (creating missing ones when `create`), returning the last folder and the
/// file name.
fn walk(base: &Path, rel: &Path, create: bool) -> Result<(OwnedFd, OsString), Errno> {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open(base, dir_flags, Mode::empty())?;
    let mut parts: Vec<OsString> = Vec::new();
    for part in rel.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::CurDir => {}
            // Only plain names below `base`.
            _ => return Err(Errno::EINVAL),
        }
    }
    let name = parts.pop().ok_or(Errno::EINVAL)?;
    for part in parts {
        let next = match openat(dir.as_fd(), part.as_os_str(), dir_flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(
                    dir.as_fd(),
                    part.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                openat(dir.as_fd(), part.as_os_str(), dir_flags, Mode::empty())?
            }
            other => other?,
        };
        dir = next;
    }
    Ok((dir, name))
}

/// Cuts `text` to at most `max` bytes (on a character boundary), adding a
/// line saying so when it was cut or `truncated` says the source was longer.
pub fn cap_text(text: &str, max: usize, truncated: bool) -> String {
    if text.len() <= max && !truncated {
        return text.to_string();
    }
    let note = "\n\n[forgehand: cut here; the text was longer than allowed]";
    let room = max.saturating_sub(note.len());
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &text[..end])
}
