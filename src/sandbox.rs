//! The sandbox agents (and the local backend's CI) run in (DESIGN §6).
//!
//! With bubblewrap (`[agent] sandbox = "bwrap"`, the default) the program gets
//! its own PID and IPC namespaces, so it sees neither the daemon nor other
//! agents, and a file system that is read-only everywhere except its
//! worktree, its session folder, a private `/tmp` and the agent's own config.
//! Hidden outright (an empty tmpfs over them): `$HOME` (except what the
//! adapter or `sandbox_ro`/`sandbox_rw` name),
//! the state folder (other sessions, the database, the clones), the projects
//! folder, the local backend's plans and the tmux sockets; a file among them
//! (a GitHub App's private key) is covered with an empty one. The network
//! stays: the agent calls its model.
//!
//! Paths keep their names inside: a worktree is bound at its own path, so the
//! `FORGEHAND_*` variables and Claude Code's per-folder records mean the same
//! inside as outside. Mounts apply in order, so every bind comes after the
//! tmpfs that hides its surroundings.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `[agent] sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxKind {
    /// bubblewrap: see the module comment.
    Bwrap,
    /// The agent runs as the daemon's user with nothing between them.
    None,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Bwrap => "bwrap",
            SandboxKind::None => "none",
        }
    }
}

/// The program bubblewrap installs as, and the Debian package that has it.
pub const BWRAP: &str = "bwrap";
pub const BWRAP_PACKAGE: &str = "bubblewrap";

/// What one project's sandboxes hide and let through, fixed at start.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub kind: SandboxKind,
    /// The bubblewrap program, found on `PATH` at start.
    pub program: PathBuf,
    /// The daemon's home: hidden, but for `read_only`/`writable` inside it.
    pub home: Option<PathBuf>,
    /// Never to be seen: the state, projects and plans folders, tmux sockets,
    /// a GitHub App's private key file.
    pub hidden: Vec<PathBuf>,
    /// Readable where they would be hidden (`sandbox_ro`).
    pub read_only: Vec<PathBuf>,
    /// Writable (`sandbox_rw`).
    pub writable: Vec<PathBuf>,
}

/// One sandboxed program's own places.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Where the program starts; writable.
    pub cwd: PathBuf,
    /// Also writable: the session folder, the agent's config.
    pub writable: Vec<PathBuf>,
    /// Also readable: forgehand's clone of the project (the agent fetches
    /// from it).
    pub read_only: Vec<PathBuf>,
    /// Files inside a writable folder that the program may read but neither
    /// change nor replace: forgehand writes them outside the sandbox, and a
    /// symbolic link put in their place would redirect forgehand's writes.
    pub protected: Vec<PathBuf>,
}

impl Sandbox {
    /// No sandbox at all.
    pub fn none() -> Sandbox {
        Sandbox {
            kind: SandboxKind::None,
            program: PathBuf::new(),
            home: None,
            hidden: Vec::new(),
            read_only: Vec::new(),
            writable: Vec::new(),
        }
    }

    /// The words to put before the program's own command line: `bwrap …
    /// --` for bubblewrap, nothing without a sandbox.
    pub fn wrap(&self, cell: &Cell) -> Vec<OsString> {
        if self.kind == SandboxKind::None {
            return Vec::new();
        }
        let mut args = Args::default();
        args.path(&self.program);
        args.flag("--ro-bind", ["/", "/"]);
        args.flag("--dev", ["/dev"]);
        args.flag("--proc", ["/proc"]);
        args.flag("--tmpfs", ["/tmp"]);
        if let Some(home) = self.home.as_deref().filter(|h| h != &Path::new("/")) {
            args.hide(home);
        }
        for dir in &self.hidden {
            args.hide(dir);
        }
        for path in self.read_only.iter().chain(&cell.read_only) {
            args.bind("--ro-bind-try", path);
        }
        for path in self.writable.iter().chain(&cell.writable) {
            args.bind("--bind-try", path);
        }
        args.bind("--bind", &cell.cwd);
        for file in &cell.protected {
            args.bind("--ro-bind-try", file);
        }
        args.words([
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--chdir",
        ]);
        args.path(&cell.cwd);
        args.word("--");
        args.0
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn word(&mut self, w: impl Into<OsString>) {
        self.0.push(w.into());
    }

    fn words<const N: usize>(&mut self, words: [&str; N]) {
        self.0.extend(words.into_iter().map(OsString::from));
    }

    fn path(&mut self, p: &Path) {
        self.0.push(p.as_os_str().to_owned());
    }

    fn flag<const N: usize>(&mut self, flag: &str, values: [&str; N]) {
        self.word(flag);
        self.words(values);
    }

    /// An empty tmpfs over a folder, `/dev/null` over a file, when it exists
    /// (either mount would create it).
    fn hide(&mut self, path: &Path) {
        if path.is_dir() {
            let dir = real(path);
            self.word("--tmpfs");
            self.path(&dir);
        } else if path.exists() {
            let file = real(path);
            self.word("--ro-bind");
            self.path(Path::new("/dev/null"));
            self.path(&file);
        }
    }

    /// `path` bound at its own (real) name.
    fn bind(&mut self, flag: &str, path: &Path) {
        let path = real(path);
        self.word(flag);
        self.path(&path);
        self.path(&path);
    }
}

/// The path with symbolic links resolved when it exists: bubblewrap binds the
/// link's target, and a mount point must be the real path.
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Where bubblewrap is, looking through `path_var` (a `PATH` value); the
/// usual system folders when there is none.
pub fn find_bwrap(path_var: Option<&str>) -> Option<PathBuf> {
    find_program(BWRAP, path_var)
}

/// Where the executable `name` is, looking through `path_var` as
/// `find_bwrap` does; a name with a `/` is taken as a path.
pub fn find_program(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let search = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    std::env::split_paths(search)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What to say when bubblewrap is needed and missing.
pub fn missing_bwrap_message() -> String {
    format!(
        "the agent sandbox needs bubblewrap ({BWRAP}), which is not installed: install the \
         package {BWRAP_PACKAGE} (`sudo apt install {BWRAP_PACKAGE}`), or set \
         `sandbox = \"none\"` in [agent] to run agents unconfined"
    )
}
