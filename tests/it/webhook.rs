//! The webhook listener over real HTTP: signatures, delivery de-duplication
//! (also across a restart on the same database, and by body hash without a
//! delivery id), body limit, the timeouts and connection cap that bound hostile
//! clients, and the nudges derived from Forgejo, Gitea and GitHub payloads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use forgehand::forge::{CommitSha, IssueNumber, Nudge, PrNumber};
use forgehand::store::{Db, DeliveryKey, Store};
use forgehand::webhook::{HookTarget, Limits, WebhookConfig, serve, sign};
use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const SECRET: &str = "s3cret";
/// Another project's secret, on the same listener.
const OTHER: &str = "0ther-s3cret";

/// The projects the listener serves: `widgets` and `cat` share a secret,
/// `gadgets` has its own.
fn targets() -> Vec<HookTarget> {
    let t = |project: &str, repo: &str, secret: &str| HookTarget {
        project: project.into(),
        repo: repo.into(),
        secret: secret.into(),
    };
    vec![
        t("widgets", "acme/widgets", SECRET),
        t("cat", "octo/cat", SECRET),
        t("gadgets", "acme/gadgets", OTHER),
    ]
}

fn issue(project: &str, n: u64) -> (String, Nudge) {
    (project.into(), Nudge::Issue(IssueNumber(n)))
}

fn pull(project: &str, n: u64) -> (String, Nudge) {
    (project.into(), Nudge::Pull(PrNumber(n)))
}

/// One listener on 127.0.0.1:0 over the store at `db`; stops when dropped.
struct Listener {
    base: String,
    addr: std::net::SocketAddr,
    nudges: UnboundedReceiver<(String, Nudge)>,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Listener {
    async fn start(db: &Path) -> Listener {
        Listener::with_limits(db, Limits::default()).await
    }

    async fn with_limits(db: &Path, limits: Limits) -> Listener {
        let store = Arc::new(Store::open(db).unwrap());
        let (tx, nudges) = unbounded_channel();
        let cfg = WebhookConfig {
            limits,
            ..WebhookConfig::new(targets())
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, cfg, store, tx));
        Listener {
            base: format!("http://{addr}"),
            addr,
            nudges,
            client: reqwest::Client::new(),
            server,
        }
    }

    async fn post(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> StatusCode {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        req.send().await.unwrap().status()
    }

    /// A Forgejo delivery signed with `SECRET`.
    async fn forgejo(&self, event: &str, delivery: &str, body: &serde_json::Value) -> StatusCode {
        let body = body.to_string().into_bytes();
        let headers = [
            ("X-Forgejo-Signature", sign(SECRET.as_bytes(), &body)),
            ("X-Forgejo-Event", event.to_string()),
            ("X-Forgejo-Delivery", delivery.to_string()),
        ];
        self.post("/hooks/forgejo", &headers, body).await
    }

    /// The next nudge, failing the test if none arrives in time.
    async fn next(&mut self) -> (String, Nudge) {
        tokio::time::timeout(Duration::from_secs(5), self.nudges.recv())
            .await
            .expect("a nudge within 5 s")
            .expect("channel open")
    }

    /// No nudge is waiting. Each handler sends before it answers, so once a
    /// response is in, its nudge (if any) is already on the channel.
    fn none(&mut self) {
        assert_eq!(self.nudges.try_recv().ok(), None);
    }
}

fn issue_payload(n: u64) -> serde_json::Value {
    json!({
        "action": "labeled",
        "issue": { "number": n, "title": "t" },
        "repository": { "full_name": "acme/widgets" }
    })
}

#[tokio::test]
async fn forgejo_issue_event_nudges_the_issue() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    assert_eq!(
        l.forgejo("issues", "d-1", &issue_payload(7)).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("widgets", 7));
    l.none();
}

#[tokio::test]
async fn gitea_headers_and_pull_and_status_events() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let gitea = |event: &str, delivery: &str, body: &[u8]| {
        vec![
            ("X-Gitea-Signature", sign(SECRET.as_bytes(), body)),
            ("X-Gitea-Event", event.to_string()),
            ("X-Gitea-Delivery", delivery.to_string()),
        ]
    };
    let pr = json!({
        "action": "synchronized",
        "number": 12,
        "pull_request": { "number": 12 },
        "repository": { "full_name": "acme/widgets" }
    })
    .to_string()
    .into_bytes();
    let status = l
        .post(
            "/hooks/forgejo",
            &gitea("pull_request", "g-1", &pr),
            pr.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(l.next().await, pull("widgets", 12));

    let review = json!({
        "action": "reviewed",
        "pull_request": { "number": 12 },
        "repository": { "full_name": "acme/widgets" }
    })
    .to_string()
    .into_bytes();
    let headers = gitea("pull_request_review_approved", "g-2", &review);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, review).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, pull("widgets", 12));

    let ci = json!({ "sha": "abc123", "state": "success", "repository": { "full_name": "acme/widgets" } })
        .to_string()
        .into_bytes();
    let headers = gitea("status", "g-3", &ci);
    assert_eq!(l.post("/hooks/forgejo", &headers, ci).await, StatusCode::OK);
    assert_eq!(
        l.next().await,
        (
            "widgets".to_string(),
            Nudge::Commit(CommitSha("abc123".into()))
        )
    );

    // A comment on a pull request arrives as an issue comment.
    let comment = json!({
        "action": "created",
        "is_pull": true,
        "issue": { "number": 12 },
        "repository": { "full_name": "acme/widgets" }
    })
    .to_string()
    .into_bytes();
    let headers = gitea("issue_comment", "g-4", &comment);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, comment).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, pull("widgets", 12));
    l.none();
}

#[tokio::test]
async fn github_signature_and_events() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let github = |event: &str, delivery: &str, body: &[u8]| {
        vec![
            (
                "X-Hub-Signature-256",
                format!("sha256={}", sign(SECRET.as_bytes(), body)),
            ),
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
        ]
    };
    let body = json!({
        "action": "closed",
        "number": 3,
        "pull_request": { "number": 3 },
        "repository": { "full_name": "octo/cat" }
    })
    .to_string()
    .into_bytes();
    let headers = github("pull_request", "h-1", &body);
    assert_eq!(
        l.post("/hooks/github", &headers, body).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, pull("cat", 3));

    let body = issue_payload(9).to_string().into_bytes();
    let headers = github("issues", "h-2", &body);
    assert_eq!(
        l.post("/hooks/github", &headers, body.clone()).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("widgets", 9));

    // Without the `sha256=` prefix GitHub's header is not what we expect.
    let mut bare = github("issues", "h-3", &body);
    bare[0].1 = sign(SECRET.as_bytes(), &body);
    assert_eq!(
        l.post("/hooks/github", &bare, body).await,
        StatusCode::UNAUTHORIZED
    );
    l.none();
}

#[tokio::test]
async fn bad_signatures_are_refused_and_do_nothing() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let body = issue_payload(7).to_string().into_bytes();
    let other = issue_payload(8).to_string().into_bytes();
    let with_sig = |sig: Option<String>, delivery: &str| {
        let mut h = vec![
            ("X-Forgejo-Event", "issues".to_string()),
            ("X-Forgejo-Delivery", delivery.to_string()),
        ];
        if let Some(sig) = sig {
            h.push(("X-Forgejo-Signature", sig));
        }
        h
    };
    let cases = [
        ("missing", None),
        ("garbage", Some("not-hex".to_string())),
        ("wrong key", Some(sign(b"other secret", &body))),
        ("another body", Some(sign(SECRET.as_bytes(), &other))),
    ];
    for (i, (what, sig)) in cases.into_iter().enumerate() {
        let status = l
            .post(
                "/hooks/forgejo",
                &with_sig(sig, &format!("b-{i}")),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    }
    l.none();
    // The refused deliveries were not recorded: the genuine one still goes through.
    assert_eq!(
        l.forgejo("issues", "b-3", &issue_payload(7)).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("widgets", 7));
}

#[tokio::test]
async fn replayed_delivery_nudges_once_even_after_a_restart() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let mut l = Listener::start(&db).await;
    assert_eq!(
        l.forgejo("issues", "r-1", &issue_payload(7)).await,
        StatusCode::OK
    );
    l.next().await;
    assert_eq!(
        l.forgejo("issues", "r-1", &issue_payload(7)).await,
        StatusCode::OK
    );
    l.none();
    drop(l);

    let mut l = Listener::start(&db).await;
    assert_eq!(
        l.forgejo("issues", "r-1", &issue_payload(7)).await,
        StatusCode::OK
    );
    l.none();
    assert_eq!(
        l.forgejo("issues", "r-2", &issue_payload(7)).await,
        StatusCode::OK
    );
    l.next().await;
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let body = vec![b' '; forgehand::webhook::DEFAULT_MAX_BODY + 1];
    let headers = [
        ("X-Forgejo-Signature", sign(SECRET.as_bytes(), &body)),
        ("X-Forgejo-Event", "issues".to_string()),
        ("X-Forgejo-Delivery", "big".to_string()),
    ];
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    l.none();
}

#[tokio::test]
async fn unknown_events_and_malformed_payloads() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    assert_eq!(
        l.forgejo("wiki", "u-1", &issue_payload(7)).await,
        StatusCode::OK
    );
    l.none();

    let body = b"{not json".to_vec();
    let headers = [
        ("X-Forgejo-Signature", sign(SECRET.as_bytes(), &body)),
        ("X-Forgejo-Event", "issues".to_string()),
        ("X-Forgejo-Delivery", "u-2".to_string()),
    ];
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::BAD_REQUEST
    );
    l.none();
}

/// One listener for several projects: a delivery reaches the project whose
/// repository it names (whatever the case), and only when signed with that
/// project's secret.
#[tokio::test]
async fn deliveries_are_routed_by_repository_and_secret() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let signed = |secret: &str, event: &str, delivery: &str, body: &[u8]| {
        vec![
            ("X-Forgejo-Signature", sign(secret.as_bytes(), body)),
            ("X-Forgejo-Event", event.to_string()),
            ("X-Forgejo-Delivery", delivery.to_string()),
        ]
    };
    let about = |repo: &str| {
        json!({
            "action": "opened",
            "issue": { "number": 4 },
            "repository": { "full_name": repo }
        })
        .to_string()
        .into_bytes()
    };

    let body = about("ACME/Gadgets");
    let headers = signed(OTHER, "issues", "m-1", &body);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("gadgets", 4));

    // Signed with a secret forgehand holds, but for another project's repository.
    let body = about("acme/gadgets");
    let headers = signed(SECRET, "issues", "m-2", &body);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::UNAUTHORIZED
    );
    // A repository no project names.
    let body = about("acme/unknown");
    let headers = signed(SECRET, "issues", "m-3", &body);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::NOT_FOUND
    );
    l.none();

    // Neither refusal was recorded as a delivery.
    let body = about("acme/gadgets");
    let headers = signed(OTHER, "issues", "m-2", &body);
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("gadgets", 4));
    l.none();
}

#[test]
fn old_deliveries_are_forgotten() {
    let dir = TempDir::new().unwrap();
    let store = Db::open(&dir.path().join("db")).unwrap();
    let id = DeliveryKey::Id("forgejo:x".into());
    // The same text as a body hash is another delivery.
    let body = DeliveryKey::Body("forgejo:x".into());
    assert!(store.record_delivery(&id).unwrap());
    assert!(!store.record_delivery(&id).unwrap());
    assert!(store.record_delivery(&body).unwrap());
    assert!(!store.record_delivery(&body).unwrap());

    // A body hash is remembered for an hour, an id for a day.
    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1) + chrono::Duration::seconds(1);
    assert_eq!(store.prune_deliveries(now + hour).unwrap(), 1);
    assert!(!store.record_delivery(&id).unwrap());
    assert!(store.record_delivery(&body).unwrap());
    let day = chrono::Duration::hours(24) + chrono::Duration::seconds(1);
    assert_eq!(store.prune_deliveries(now + day).unwrap(), 2);
    assert!(store.record_delivery(&id).unwrap());
}

/// Delivery ids recorded before schema 5 (keyed by id alone) are still known
/// after the upgrade.
#[test]
fn delivery_ids_survive_the_schema_upgrade() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    {
        // The table as schema 3 made it, in a database at version 4: made by
        // the migrations themselves, so every table of that schema is there.
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        forgehand::store::migrate_up_to(&mut conn, 4).unwrap();
        conn.execute(
            "INSERT INTO webhook_deliveries VALUES ('forgejo:old', ?1)",
            [chrono::Utc::now().to_rfc3339()],
        )
        .unwrap();
    }
    let store = Db::open(&db).unwrap();
    assert!(
        !store
            .record_delivery(&DeliveryKey::Id("forgejo:old".into()))
            .unwrap()
    );
    assert!(
        store
            .record_delivery(&DeliveryKey::Id("forgejo:new".into()))
            .unwrap()
    );
}

/// A Forgejo delivery signed with `SECRET` but without a delivery id.
fn without_id(body: &serde_json::Value) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = body.to_string().into_bytes();
    let headers = vec![
        ("X-Forgejo-Signature", sign(SECRET.as_bytes(), &body)),
        ("X-Forgejo-Event", "issues".to_string()),
    ];
    (headers, body)
}

#[tokio::test]
async fn deliveries_without_an_id_are_recognised_by_their_body() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::start(&dir.path().join("db")).await;
    let (headers, body) = without_id(&issue_payload(7));
    for _ in 0..2 {
        let status = l.post("/hooks/forgejo", &headers, body.clone()).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(l.next().await, issue("widgets", 7));
    l.none();

    // Another body is another delivery.
    let (headers, body) = without_id(&issue_payload(8));
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::OK
    );
    assert_eq!(l.next().await, issue("widgets", 8));
    // A blank delivery id is no id.
    let (mut headers, body) = without_id(&issue_payload(7));
    headers.push(("X-Forgejo-Delivery", " ".to_string()));
    assert_eq!(
        l.post("/hooks/forgejo", &headers, body).await,
        StatusCode::OK
    );
    l.none();
}

/// Limits short enough for a test; `max_connections` as given.
fn short_limits(max_connections: usize) -> Limits {
    Limits {
        header_read: Duration::from_millis(300),
        body_read: Duration::from_millis(300),
        max_connections,
    }
}

/// Everything the server sends until it closes the connection, failing the
/// test if it does not close within `within`. A reset counts as closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut got)).await;
    match read.expect("the server closes the connection in time") {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading from the listener: {e}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_client_sending_its_headers_slowly_is_dropped() {
    let dir = TempDir::new().unwrap();
    let limits = short_limits(4);
    let l = Listener::with_limits(&dir.path().join("db"), limits).await;
    let mut slow = TcpStream::connect(l.addr).await.unwrap();
    let started = std::time::Instant::now();
    slow.write_all(b"POST /hooks/forgejo HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.is_empty(), "no answer to half a request: {answer}");
    assert!(started.elapsed() >= limits.header_read);

    // A client that opens a connection and sends nothing is dropped alike.
    let mut idle = TcpStream::connect(l.addr).await.unwrap();
    read_until_closed(&mut idle, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_408() {
    let dir = TempDir::new().unwrap();
    let mut l = Listener::with_limits(&dir.path().join("db"), short_limits(4)).await;
    let body = issue_payload(7).to_string().into_bytes();
    let head = format!(
        "POST /hooks/forgejo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
         X-Forgejo-Signature: {}\r\nX-Forgejo-Event: issues\r\n\r\n",
        body.len(),
        sign(SECRET.as_bytes(), &body)
    );
    let mut stream = TcpStream::connect(l.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // Half the body, and the rest never.
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    l.none();
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let dir = TempDir::new().unwrap();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let mut l = Listener::with_limits(&dir.path().join("db"), limits).await;
    // Two idle clients take both slots (the default header timeout outlasts the test).
    let idle = TcpStream::connect(l.addr).await.unwrap();
    let _idle = TcpStream::connect(l.addr).await.unwrap();

    // A third, complete request is not served while they hold them...
    let body = issue_payload(7).to_string().into_bytes();
    let request = format!(
        "POST /hooks/forgejo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\
         X-Forgejo-Signature: {}\r\nX-Forgejo-Event: issues\r\n\r\n{}",
        body.len(),
        sign(SECRET.as_bytes(), &body),
        String::from_utf8(body).unwrap()
    );
    let mut third = TcpStream::connect(l.addr).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the limit: {early:?}");
    l.none();

    // ...and is as soon as one of them leaves.
    drop(idle);
    let answer = read_until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(l.next().await, issue("widgets", 7));
}
