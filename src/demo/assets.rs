//! What `forgehand demo` writes: a tiny project with a real test suite, three
//! plans that exercise CI failure, review and the plain path, the project file,
//! and the scripted agent (embedded, so the demo works wherever the binary is).

use std::path::Path;

/// The scripted agent shipped in `scripts/`.
pub const FAKE_AGENT: &str = include_str!("../../scripts/fake-agent");

/// The demo project's name: sessions are `dev-demo-<plan>`.
pub const PROJECT: &str = "demo";

/// The plan whose first attempt fails CI.
pub const CI_PLAN: &str = "add-farewell";
/// The plan whose first review requests changes.
pub const REVIEW_PLAN: &str = "document-greeting";
/// The plan that goes straight through.
pub const PLAIN_PLAN: &str = "add-changelog";

pub const PLANS: [&str; 3] = [CI_PLAN, REVIEW_PLAN, PLAIN_PLAN];

/// The change the demo's reviewer asks for on `REVIEW_PLAN`'s first head.
pub const REVIEW_REQUEST: &str = "Please also say in the note which plan it belongs to.";

/// Files of the throw-away repository, (path, contents, executable).
pub const REPO_FILES: [(&str, &str, bool); 3] = [
    (
        "README.md",
        "# greeter\n\nA tiny project for `forgehand demo`. Run the tests with `sh test.sh`.\n",
        false,
    ),
    (
        "greet.sh",
        "#!/bin/sh\n# Prints a greeting for the name given.\necho \"Hello, ${1:-world}!\"\n",
        true,
    ),
    (
        "test.sh",
        r#"#!/bin/sh
# The greeter's test suite: the greeting works and no work note is left
# half-done (a line marked BROKEN).
status=0
if [ "$(sh greet.sh Ada)" != "Hello, Ada!" ]; then
    echo "FAIL greet.sh: expected 'Hello, Ada!', got '$(sh greet.sh Ada)'"
    status=1
fi
for note in work/*.txt; do
    [ -e "$note" ] || continue
    if grep -n BROKEN "$note"; then
        echo "FAIL $note: a change is marked BROKEN"
        status=1
    else
        echo "ok   $note"
    fi
done
[ "$status" = 0 ] && echo "all tests passed"
exit "$status"
"#,
        true,
    ),
];

/// The plan files, (key, text).
pub fn plans() -> [(&'static str, String); 3] {
    [
        (
            CI_PLAN,
            "---\nlabels: [priority]\n---\n# Add a farewell note\n\n\
             Add a note about saying goodbye. The first attempt leaves a change\n\
             marked BROKEN, so CI fails once and the agent fixes it.\n\n\
             fake-agent: break-first\n"
                .to_string(),
        ),
        (
            REVIEW_PLAN,
            "# Document the greeting\n\n\
             Write a note on how the greeting is formed. The demo's reviewer asks\n\
             for one change before approving.\n"
                .to_string(),
        ),
        (
            PLAIN_PLAN,
            "# Start a changelog\n\nAdd a first changelog note. Nothing special here.\n"
                .to_string(),
        ),
    ]
}

/// The project file, pointing at the demo's folders.
pub fn project_toml(root: &Path) -> String {
    let path = |name: &str| toml_string(&root.join(name).display().to_string());
    format!(
        r#"# Written by `forgehand demo`: a local project, no forge needed.
name = "{PROJECT}"
repo = "demo/greeter"
primary_branch = "main"
clone_url = {repo}
poll_interval = "2s"

[forge]
kind = "local"
url = {plans}

[agent]
command = {agent}
ready_pattern = "❯"
max_sessions = 3
idle_timeout = "5m"
# The agent runs in a sandbox that hides this folder; it may read its script.
sandbox_ro = [{agent_file}]

[ci]
command = "sh test.sh"
timeout = "60s"
max_fix_attempts = 3

[review]
required_approvals = 1
max_rounds = 3
timeout = "10m"
"#,
        repo = path("repo"),
        plans = path("plans"),
        agent = toml_string(&format!(
            "python3 {}",
            shell_quote(&root.join("fake-agent").display().to_string())
        )),
        agent_file = path("fake-agent"),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One word for `sh`: the agent command is a shell command line.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
