//! The remote cache against real endpoints: moto's S3 server (PyPI `moto[server]`) and Azurite's blob service
//! (npm `azurite`), both started here on 127.0.0.1 (`.ci/run` installs them), and a `file://` folder. Two local
//! stores sharing one bucket play two machines. Each REAPI rule is checked on its own, on S3 and on Azure: results
//! served from the remote byte-identical, a flipped byte in a remote object refused and recomputed, an object
//! deleted under a live record recomputed, SIGKILL during a push never leaving a record whose objects are missing,
//! two concurrent runs against one bucket, idempotent and multipart uploads, bounded existence checks, failed stages
//! never pushed; then credentials, a missing bucket, an unreachable remote and `remote gc`.
//!
//! Google Cloud Storage has no emulator here that speaks the XML API object_store uses for uploads and listings
//! (fake-gcs-server answers its PUT with "invalid uploadType"; gcp-storage-emulator does not implement the listing):
//! the `gs://` client is object_store's, configured like the other two, and untested against a server.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alinea_engine::Store;
use alinea_engine::remote::Remote;
use common::*;
use object_store::ObjectStore;

const ACCESS_KEY: &str = "testing-key-id";
const SECRET_KEY: &str = "testing-secret-never-printed";
/// Azurite's one account and its published key (the emulator accepts nothing else).
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An emulator started by this test binary. It dies with the binary: its shell wrapper kills it when our end of
/// its stdin closes.
struct Server {
    port: u16,
    _child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `command` (a shell line with `{port}` in it) in the background and waits for its port.
fn serve(what: &str, command: &str, install: &str) -> Server {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("alinea-{what}-{port}.log"));
    let command = command.replace("{port}", &port.to_string());
    let script = format!(
        "{command} >{log} 2>&1 & pid=$!; read _; kill $pid",
        log = log.display()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{what} did not start on 127.0.0.1:{port}: these tests need it ({install}, which .ci/run does). \
             Its output:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        port,
        _child: child,
    }
}

fn moto() -> &'static Server {
    static MOTO: OnceLock<Server> = OnceLock::new();
    MOTO.get_or_init(|| {
        serve(
            "moto",
            "if command -v moto_server >/dev/null 2>&1; then exec moto_server -H 127.0.0.1 -p {port}; \
             else exec python3 -m moto.server -H 127.0.0.1 -p {port}; fi",
            "`pip install 'moto[server]'`",
        )
    })
}

fn azurite() -> &'static Server {
    static AZURITE: OnceLock<Server> = OnceLock::new();
    AZURITE.get_or_init(|| {
        // In memory, started in the temp folder: it leaves no files in the checkout.
        serve(
            "azurite",
            &format!(
                "cd {} && exec azurite-blob --blobHost 127.0.0.1 --blobPort {{port}} --inMemoryPersistence \
                 --skipApiVersionCheck",
                std::env::temp_dir().display()
            ),
            "`npm install -g azurite`",
        )
    })
}

/// The two object stores every REAPI rule is checked on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    S3,
    Azure,
}

impl Backend {
    fn scheme(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Azure => "az",
        }
    }

    /// The secret an `alinea` of this backend holds, which must never reach an output or the remote.
    fn secret(self) -> &'static str {
        match self {
            Backend::S3 => SECRET_KEY,
            Backend::Azure => AZURE_KEY,
        }
    }

    /// A new, empty bucket (S3) or container (Azure) named `name`; its URL with the `alinea` prefix.
    fn bucket(self, name: &str) -> String {
        match self {
            Backend::S3 => create_s3_bucket(name),
            Backend::Azure => create_azure_container(name),
        }
        format!("{}://{name}/alinea", self.scheme())
    }

    /// The environment an `alinea` uses to reach this backend: the variables a user of it would set.
    fn env(self) -> Vec<(&'static str, String)> {
        match self {
            Backend::S3 => vec![
                (
                    "AWS_ENDPOINT_URL",
                    format!("http://127.0.0.1:{}", moto().port),
                ),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
                ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
                ("AWS_REGION", "us-east-1".into()),
            ],
            Backend::Azure => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                (
                    "AZURITE_BLOB_STORAGE_URL",
                    format!("http://127.0.0.1:{}", azurite().port),
                ),
                ("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT.into()),
                ("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY.into()),
            ],
        }
    }

    /// object_store's client options for [`Remote::open_with`] (no environment involved).
    fn options(self) -> Vec<(&'static str, String)> {
        match self {
            Backend::S3 => vec![
                ("aws_endpoint", format!("http://127.0.0.1:{}", moto().port)),
                ("allow_http", "true".into()),
                ("aws_access_key_id", ACCESS_KEY.into()),
                ("aws_secret_access_key", SECRET_KEY.into()),
                ("aws_region", "us-east-1".into()),
            ],
            Backend::Azure => vec![
                (
                    "azure_storage_endpoint",
                    format!("http://127.0.0.1:{}/{AZURE_ACCOUNT}", azurite().port),
                ),
                ("allow_http", "true".into()),
                ("azure_storage_account_name", AZURE_ACCOUNT.into()),
                ("azure_storage_account_key", AZURE_KEY.into()),
            ],
        }
    }
}

fn create_s3_bucket(name: &str) {
    // Bucket creation on moto needs no signature.
    let port = moto().port;
    let resp = http(
        port,
        &format!(
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

/// Azurite wants every request signed with the account's shared key (object_store has no call that creates a
/// container): the Blob service's SharedKey scheme, for the one request "Create Container".
fn create_azure_container(name: &str) {
    let port = azurite().port;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT{}x-ms-date:{date}\nx-ms-version:{version}\n/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{name}\nrestype:container",
        "\n".repeat(12)
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &b64.decode(AZURE_KEY).unwrap());
    let signature = b64.encode(ring::hmac::sign(&key, string_to_sign.as_bytes()));
    let resp = http(
        port,
        &format!(
            "PUT /{AZURE_ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
             Authorization: SharedKey {AZURE_ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
}

fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// A client on one bucket, for what the tests do behind alinea's back: damage or delete an object, list keys,
/// read them.
struct Bucket {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(backend: Backend, name: &str) -> Bucket {
        let store: Arc<dyn ObjectStore> = match backend {
            Backend::S3 => Arc::new(
                object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(format!("http://127.0.0.1:{}", moto().port))
                    .with_allow_http(true)
                    .with_bucket_name(name)
                    .with_region("us-east-1")
                    .with_access_key_id(ACCESS_KEY)
                    .with_secret_access_key(SECRET_KEY)
                    .build()
                    .unwrap(),
            ),
            Backend::Azure => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::new()
                    .with_endpoint(format!(
                        "http://127.0.0.1:{}/{AZURE_ACCOUNT}",
                        azurite().port
                    ))
                    .with_allow_http(true)
                    .with_account(AZURE_ACCOUNT)
                    .with_access_key(AZURE_KEY)
                    .with_container_name(name)
                    .build()
                    .unwrap(),
            ),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket { store, rt }
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let p = object_store::path::Path::from(prefix);
        self.rt
            .block_on(self.store.list(Some(&p)).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect()
    }

    fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(key);
        self.rt
            .block_on(async { self.store.get(&p).await.unwrap().bytes().await.unwrap() })
            .to_vec()
    }

    fn put(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(key);
        self.rt.block_on(self.store.put(&p, bytes.into())).unwrap();
    }

    fn delete(&self, key: &str) {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(key);
        self.rt.block_on(self.store.delete(&p)).unwrap();
    }
}

/// `alinea` with `backend`'s endpoint and credentials in its environment.
fn remote_alinea(backend: Backend, store: &Path) -> assert_cmd::Command {
    let mut cmd = alinea(store);
    cmd.envs(backend.env())
        .env_remove("ALINEA_REMOTE")
        .env_remove("ALINEA_REMOTE_MODE");
    cmd
}

/// [`remote_alinea`] as a plain `std::process::Command`, to spawn and kill.
fn remote_command(backend: Backend, store: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("alinea"));
    cmd.arg("--store")
        .arg(store)
        .current_dir(repo())
        .envs(backend.env())
        .env_remove("ALINEA_STORE")
        .env_remove("ALINEA_REMOTE")
        .env_remove("ALINEA_REMOTE_MODE");
    cmd
}

fn run_json(cmd: &mut assert_cmd::Command, args: &[&str]) -> serde_json::Value {
    let out = cmd.arg("--json").args(args).output().expect("spawn alinea");
    assert!(
        out.status.success(),
        "alinea {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A small real pipeline: OPUS-100 (be, li) ingested, sampled, word-aligned both ways, gold pairs, MT
/// instructions, and a tiny BLOOM model folder (blob outputs).
fn pipeline(dir: &Path) -> String {
    write(
        dir,
        "remote.toml",
        &format!(
            "[pipeline]\nname = \"remote\"\nroot = \"{}\"\n\
             [stages.opus]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"datasets/opus-100\" }}\nlangs = [\"be\", \"li\"]\nsplits = [\"train\"]\n\
             [stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus\" }}\nper_lang = 150\nseed = 1\n\
             [stages.align]\nkind = \"align.ibm2\"\ninputs = {{ pairs = \"sample\" }}\n\
             [stages.gold]\nkind = \"align.pairs\"\ninputs = {{ alignments = \"align\" }}\n\
             [stages.mt]\nkind = \"instruct.mt\"\ninputs = {{ pairs = \"sample\" }}\n\
             [stages.tiny]\nkind = \"model.tiny\"\ninputs = {{ texts = \"sample\" }}\nvocab_size = 300\n",
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// Every output object (digest → bytes) of a run report, read from `store`.
fn output_bytes(report: &serde_json::Value, store: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for s in report["stages"].as_array().unwrap() {
        for o in s["outputs"].as_array().unwrap() {
            let d = o["digest"].as_str().unwrap().to_string();
            let bytes = std::fs::read(store.join("objects").join(&d[..2]).join(&d)).unwrap();
            out.push((s["name"].as_str().unwrap().to_string(), d, bytes));
        }
    }
    out
}

fn all_status(report: &serde_json::Value) -> Vec<String> {
    statuses(report).into_iter().map(|(_, s, _)| s).collect()
}

fn digest_of_output(report: &serde_json::Value, stage: &str) -> String {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap()["outputs"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every record on the remote names only objects the remote holds (REAPI: a record arrives last).
fn assert_remote_consistent(backend: Backend, bucket: &str) {
    let objects: std::collections::BTreeSet<String> = keys(backend, bucket, "alinea/cas/")
        .into_iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect();
    for key in keys(backend, bucket, "alinea/ac/") {
        let rec: serde_json::Value = serde_json::from_slice(&get(backend, bucket, &key)).unwrap();
        for o in rec["outputs"].as_array().unwrap() {
            let d = o["digest"].as_str().unwrap();
            assert!(
                objects.contains(d),
                "remote record {key} names object {d}, which the remote lacks"
            );
            let body = get(backend, bucket, &format!("alinea/cas/{d}"));
            assert_eq!(
                blake3::hash(&body).to_hex().as_str(),
                d,
                "remote object {d} corrupt"
            );
        }
    }
}

fn keys(backend: Backend, bucket: &str, prefix: &str) -> Vec<String> {
    Bucket::new(backend, bucket).keys(prefix)
}

fn get(backend: Backend, bucket: &str, key: &str) -> Vec<u8> {
    Bucket::new(backend, bucket).get(key)
}

fn a_second_machine_is_served_every_stage_from_the_bucket_byte_identical(backend: Backend) {
    let url = backend.bucket("two-machines");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );

    let first = run_json(
        &mut remote_alinea(backend, &a),
        &["run", &p, "--remote", &url],
    );
    assert!(all_status(&first).iter().all(|s| s == "ran"), "{first}");
    assert_remote_consistent(backend, "two-machines");

    let second = run_json(
        &mut remote_alinea(backend, &b),
        &["run", &p, "--remote", &url],
    );
    for s in second["stages"].as_array().unwrap() {
        assert_eq!(s["status"], "cached", "{s}");
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("pulled from {url}")),
            "{s}"
        );
    }
    assert_eq!(output_bytes(&first, &a), output_bytes(&second, &b));
    // The second store is now a complete local cache: `verify` re-hashes every object it received.
    let v = json(&b, &["verify"]);
    assert_eq!(v["corrupt"].as_array().unwrap().len(), 0, "{v}");

    // A third machine asks before running: every stage is on the remote; then pulls the pipeline by name.
    let st = run_json(
        &mut remote_alinea(backend, &c),
        &["status", &p, "--remote", &url],
    );
    for s in st.as_array().unwrap() {
        assert_eq!(s["state"], "remote", "{s}");
    }
    let pulled = run_json(
        &mut remote_alinea(backend, &c),
        &["pull", "remote", "--remote", &url],
    );
    assert_eq!(pulled["fetched"], 6, "{pulled}");
    let st = run_json(
        &mut remote_alinea(backend, &c),
        &["status", &p, "--remote", &url],
    );
    for s in st.as_array().unwrap() {
        assert_eq!(s["state"], "local", "{s}");
    }
    // Credentials never reach a record, a ref or the output.
    let out = remote_alinea(backend, &c)
        .args(["status", &p, "--remote", &url])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(backend.secret()));
    for key in keys(backend, "two-machines", "alinea/") {
        let body = get(backend, "two-machines", &key);
        assert!(
            !String::from_utf8_lossy(&body).contains(backend.secret()),
            "{key} holds a credential"
        );
    }
}

fn a_flipped_byte_in_a_remote_object_is_refused_and_the_stage_recomputed(backend: Backend) {
    let url = backend.bucket("flipped");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = run_json(
        &mut remote_alinea(backend, &a),
        &["run", &p, "--remote", &url],
    );
    let digest = digest_of_output(&first, "align");
    let key = format!("alinea/cas/{digest}");
    let mut body = get(backend, "flipped", &key);
    let mid = body.len() / 2;
    body[mid] ^= 0xFF;
    Bucket::new(backend, "flipped").put(&key, body);

    let second = run_json(
        &mut remote_alinea(backend, &b),
        &["run", &p, "--remote", &url],
    );
    assert_eq!(status_of(&second, "align"), "ran");
    assert!(
        reason_of(&second, "align").contains("failed its hash"),
        "{}",
        reason_of(&second, "align")
    );
    assert_eq!(status_of(&second, "sample"), "cached");
    assert_eq!(output_bytes(&first, &a), output_bytes(&second, &b));
    // The bad object was deleted and the recompute pushed the right bytes back.
    assert_remote_consistent(backend, "flipped");
}

fn an_object_deleted_under_a_live_record_is_recomputed_transparently(backend: Backend) {
    let url = backend.bucket("deleted");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = run_json(
        &mut remote_alinea(backend, &a),
        &["run", &p, "--remote", &url],
    );
    let digest = digest_of_output(&first, "gold");
    Bucket::new(backend, "deleted").delete(&format!("alinea/cas/{digest}"));

    // status sees it before anything runs: the record is there, its object is not.
    let st = run_json(
        &mut remote_alinea(backend, &b),
        &["status", &p, "--remote", &url],
    );
    let gold = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "gold")
        .unwrap();
    assert_eq!(gold["state"], "missing", "{st}");

    let second = run_json(
        &mut remote_alinea(backend, &b),
        &["run", &p, "--remote", &url],
    );
    assert_eq!(status_of(&second, "gold"), "ran");
    assert!(
        reason_of(&second, "gold").contains("lacks"),
        "{}",
        reason_of(&second, "gold")
    );
    assert_eq!(output_bytes(&first, &a), output_bytes(&second, &b));
    assert_remote_consistent(backend, "deleted");
}

fn sigkill_during_a_push_never_leaves_a_record_whose_objects_are_missing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let a = dir.path().join("a");
    // Computed locally, nothing pushed.
    run_json(&mut remote_alinea(backend, &a), &["run", &p]);
    let mut killed_mid_push = 0;
    for (i, delay_ms) in [5u64, 30, 80, 150, 300].into_iter().enumerate() {
        let name = format!("killed-{i}");
        let url = backend.bucket(&name);
        let mut child: Child = remote_command(backend, &a)
            .args(["push", "--remote", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_push += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_remote_consistent(backend, &name);
    }
    assert!(
        killed_mid_push > 0,
        "every push finished before its kill: the test proved nothing"
    );
    // A push after the kills completes, and the remote is whole.
    let url = format!("{}://killed-0/alinea", backend.scheme());
    run_json(&mut remote_alinea(backend, &a), &["push", "--remote", &url]);
    assert_eq!(keys(backend, "killed-0", "alinea/ac/").len(), 6);
    assert_remote_consistent(backend, "killed-0");
}

fn two_concurrent_runs_on_two_stores_against_one_bucket_both_end_consistent(backend: Backend) {
    let url = backend.bucket("concurrent");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let spawn = |store: &Path| {
        remote_command(backend, store)
            .args(["--json", "run", &p, "--remote", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (
        ca.wait_with_output().unwrap(),
        cb.wait_with_output().unwrap(),
    );
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "{}",
        String::from_utf8_lossy(&ob.stderr)
    );
    let ra: serde_json::Value = serde_json::from_slice(&oa.stdout).unwrap();
    let rb: serde_json::Value = serde_json::from_slice(&ob.stdout).unwrap();
    assert_eq!(output_bytes(&ra, &a), output_bytes(&rb, &b));
    assert_remote_consistent(backend, "concurrent");
    assert_eq!(keys(backend, "concurrent", "alinea/ac/").len(), 6);
    // A third store is served all of it.
    let c = dir.path().join("c");
    let third = run_json(
        &mut remote_alinea(backend, &c),
        &["run", &p, "--remote", &url],
    );
    assert!(all_status(&third).iter().all(|s| s == "cached"), "{third}");
    assert_eq!(output_bytes(&ra, &a), output_bytes(&third, &c));
}

#[test]
fn a_file_remote_shares_a_cache_and_remote_gc_keeps_what_kept_pipelines_reach() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared cache");
    let url = format!("file://{}", shared.display()).replace(' ', "%20");
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Configured through the environment this time, pushed explicitly (read mode pushes nothing on its own).
    let first = run_json(
        remote_alinea(Backend::S3, &a)
            .env("ALINEA_REMOTE", &url)
            .env("ALINEA_REMOTE_MODE", "read"),
        &["run", &p],
    );
    assert!(
        !shared.join("ac").exists() || std::fs::read_dir(shared.join("ac")).unwrap().count() == 0
    );
    let pushed = run_json(
        remote_alinea(Backend::S3, &a).env("ALINEA_REMOTE", &url),
        &["push"],
    );
    assert_eq!(pushed["pushed"]["records_written"], 6, "{pushed}");
    // Idempotent: a second push uploads nothing.
    let again = run_json(
        remote_alinea(Backend::S3, &a).env("ALINEA_REMOTE", &url),
        &["push"],
    );
    assert_eq!(again["pushed"]["objects_uploaded"], 0, "{again}");
    assert_eq!(again["pushed"]["records_written"], 0, "{again}");

    let second = run_json(
        remote_alinea(Backend::S3, &b).env("ALINEA_REMOTE", &url),
        &["run", &p],
    );
    assert!(
        all_status(&second).iter().all(|s| s == "cached"),
        "{second}"
    );
    assert_eq!(output_bytes(&first, &a), output_bytes(&second, &b));

    // gc keeping the pipeline removes nothing it reaches; an unreached object older than the grace period goes.
    let stray = blake3::hash(b"stray").to_hex().to_string();
    let stray_path = shared.join("cas").join(&stray);
    std::fs::write(&stray_path, b"stray").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stray_path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let young = blake3::hash(b"young").to_hex().to_string();
    std::fs::write(shared.join("cas").join(&young), b"young").unwrap();
    let dry = run_json(
        &mut remote_alinea(Backend::S3, &a),
        &[
            "remote",
            "gc",
            "--keep",
            "remote",
            "--dry-run",
            "--remote",
            &url,
        ],
    );
    assert_eq!(dry["objects_removed"], 1, "{dry}");
    assert!(stray_path.exists());
    let gc = run_json(
        &mut remote_alinea(Backend::S3, &a),
        &["remote", "gc", "--keep", "remote", "--remote", &url],
    );
    assert_eq!(gc["objects_removed"], 1, "{gc}");
    assert_eq!(gc["objects_too_young"], 1, "{gc}");
    assert!(!stray_path.exists());
    let c = dir.path().join("c");
    let third = run_json(
        remote_alinea(Backend::S3, &c).env("ALINEA_REMOTE", &url),
        &["run", &p],
    );
    assert!(all_status(&third).iter().all(|s| s == "cached"), "{third}");
}

#[test]
fn missing_credentials_a_missing_bucket_and_an_unreachable_remote_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let a = dir.path().join("a");
    let out = alinea(&a)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("ALINEA_REMOTE_INSTANCE_CREDENTIALS")
        .args(["run", &p, "--remote", "s3://lab-cache/alinea"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no credentials found") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );

    let out = remote_alinea(Backend::S3, &a)
        .args(["run", &p, "--remote", "s3://no-such-bucket/x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("bucket `no-such-bucket` does not exist"),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY), "{err}");

    // Azure: no account named, then a container that does not exist, each one error naming what to do.
    let out = alinea(&a)
        .env_remove("AZURE_STORAGE_ACCOUNT_NAME")
        .env_remove("AZURE_STORAGE_USE_EMULATOR")
        .env_remove("ALINEA_REMOTE_INSTANCE_CREDENTIALS")
        .args(["run", &p, "--remote", "az://lab-cache/alinea"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no credentials found") && err.contains("AZURE_STORAGE_ACCOUNT_NAME"),
        "{err}"
    );
    let out = remote_alinea(Backend::Azure, &a)
        .args(["run", &p, "--remote", "az://no-such-container/x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("container `no-such-container` does not exist"),
        "{err}"
    );
    assert!(!err.contains(AZURE_KEY), "{err}");

    let out = remote_alinea(Backend::S3, &a)
        .args(["run", &p, "--remote", "ftp://host/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Nothing listens on this port: the run works from the local cache and says so.
    let dead = free_port();
    let mut cmd = remote_alinea(Backend::S3, &a);
    cmd.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{dead}"));
    let out = cmd
        .args(["--json", "run", &p, "--remote", "s3://any/x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("unreachable") && err.contains("local cache only"),
        "{err}"
    );
}

/// The engine's remote API directly: idempotent insert, multipart for a large object (hashed while streamed,
/// checked again on download), and a bounded request count for existence checks of 10k objects.
fn uploads_are_idempotent_large_ones_multipart_and_existence_checks_bounded(backend: Backend) {
    let url = backend.bucket("engine-api");
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(dir.path().join("local")).unwrap();
    let other = Store::open(dir.path().join("other")).unwrap();
    let big: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let big_digest = local.put_bytes(&big).unwrap();
    let small_digest = local.put_bytes(b"small object").unwrap();
    for remote_url in [format!("file://{}", dir.path().join("r").display()), url] {
        let options = backend.options();
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let remote = if remote_url.starts_with("file://") {
            Remote::open(&remote_url).unwrap()
        } else {
            Remote::open_with(&remote_url, &options).unwrap()
        };
        assert_eq!(
            remote.upload(&local, &big_digest).unwrap(),
            big.len() as u64
        );
        assert_eq!(remote.upload(&local, &small_digest).unwrap(), 12);
        // AlreadyExists is success, and sends nothing more.
        assert_eq!(
            remote.upload(&local, &small_digest).unwrap(),
            0,
            "{remote_url}"
        );
        assert_eq!(
            remote.download(&other, &big_digest).unwrap(),
            big.len() as u64
        );
        assert_eq!(std::fs::read(other.object_path(&big_digest)).unwrap(), big);
        std::fs::remove_file(other.object_path(&big_digest)).unwrap();

        // 10k objects, all absent but two: one listing instead of 10k HEAD requests.
        let mut wanted: Vec<(String, u64)> = (0..10_000u32)
            .map(|i| (blake3::hash(&i.to_le_bytes()).to_hex().to_string(), 1))
            .collect();
        wanted.push((big_digest.clone(), big.len() as u64));
        wanted.push((small_digest.clone(), 12));
        let before = remote.requests();
        let missing = remote.missing(&wanted).unwrap();
        assert_eq!(missing.len(), 10_000);
        assert!(!missing.contains(&big_digest) && !missing.contains(&small_digest));
        let requests = remote.requests() - before;
        eprintln!(
            "{remote_url}: existence check of {} objects: {requests} request(s)",
            wanted.len()
        );
        assert!(requests <= 2, "{requests} requests");
    }
    // The multipart upload left exactly one object, under its final name.
    let big_keys: Vec<String> = keys(backend, "engine-api", "alinea/cas/");
    assert_eq!(big_keys.len(), 2, "{big_keys:?}");
}

fn a_failed_stage_is_never_pushed_and_the_ref_names_only_pushed_records(backend: Backend) {
    let url = backend.bucket("failed");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let failing = format!(
        "{}[stages.bad]\nkind = \"debug.fail\"\ninputs = {{ table = \"sample\" }}\nmode = \"error\"\n",
        std::fs::read_to_string(&p).unwrap()
    );
    let p = write(dir.path(), "failing.toml", &failing);
    let a = dir.path().join("a");
    let out = remote_alinea(backend, &a)
        .args([
            "--json",
            "run",
            p.to_str().unwrap(),
            "--keep-going",
            "--remote",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status_of(&report, "bad"), "failed");
    // The six stages that completed are on the remote; the failed one left no record there.
    assert_eq!(keys(backend, "failed", "alinea/ac/").len(), 6);
    let remote_ref: serde_json::Value =
        serde_json::from_slice(&get(backend, "failed", "alinea/refs/remote.json")).unwrap();
    assert!(remote_ref["stages"].get("bad").is_none(), "{remote_ref}");
    assert_eq!(remote_ref["stages"].as_object().unwrap().len(), 6);
    assert_remote_consistent(backend, "failed");
}

/// Existence checks of 10k objects that are all present: listing pages of 1000 names, not 10k HEAD requests.
#[test]
fn checking_ten_thousand_present_objects_takes_a_bounded_number_of_requests() {
    let dir = tempfile::tempdir().unwrap();
    let cas = dir.path().join("r").join("cas");
    std::fs::create_dir_all(&cas).unwrap();
    let objects: Vec<(String, u64)> = (0..10_000u32)
        .map(|i| {
            let bytes = i.to_le_bytes();
            let d = blake3::hash(&bytes).to_hex().to_string();
            std::fs::write(cas.join(&d), bytes).unwrap();
            (d, 4)
        })
        .collect();
    let remote = Remote::open(&format!("file://{}", dir.path().join("r").display())).unwrap();
    let missing = remote.missing(&objects).unwrap();
    assert!(missing.is_empty(), "{} missing", missing.len());
    eprintln!(
        "existence check of 10000 present objects: {} requests",
        remote.requests()
    );
    assert_eq!(remote.requests(), 10, "one listing page per 1000 names");
    // A wrong size counts as missing.
    let mut wrong = objects[..300].to_vec();
    wrong[7].1 = 5;
    assert_eq!(remote.missing(&wrong).unwrap(), vec![wrong[7].0.clone()]);
}

#[test]
fn the_pipeline_file_names_its_remote_in_a_store_table() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let text = std::fs::read_to_string(pipeline(dir.path())).unwrap();
    let with_store = format!("[store]\nremote = \"file://{}\"\n{text}", shared.display());
    let p = write(dir.path(), "with_store.toml", &with_store);
    let p = p.to_str().unwrap();
    let first = run_json(
        &mut remote_alinea(Backend::S3, &dir.path().join("a")),
        &["run", p],
    );
    assert!(all_status(&first).iter().all(|s| s == "ran"), "{first}");
    let second = run_json(
        &mut remote_alinea(Backend::S3, &dir.path().join("b")),
        &["run", p],
    );
    assert!(
        all_status(&second).iter().all(|s| s == "cached"),
        "{second}"
    );
    // `--remote-mode off` wins over the file: the third store computes everything itself.
    let third = run_json(
        &mut remote_alinea(Backend::S3, &dir.path().join("c")),
        &["run", p, "--remote-mode", "off"],
    );
    assert!(all_status(&third).iter().all(|s| s == "ran"), "{third}");

    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("[store]\nremote_mode = \"sometimes\"\n{text}"),
    );
    let out = remote_alinea(Backend::S3, &dir.path().join("a"))
        .args(["run", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:2:") && err.contains("store.remote_mode must be one of"),
        "{err}"
    );
}

/// The request count `alinea status --remote` prints, and how many stages it found on the remote.
fn status_requests(backend: Backend, store: &Path, p: &str, url: &str) -> (u64, usize) {
    let out = remote_alinea(backend, store)
        .args(["status", p, "--remote", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = text.lines().last().unwrap();
    let number_before = |word: &str| -> u64 {
        let head = summary.split(word).next().unwrap();
        head.rsplit(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .unwrap_or_else(|| panic!("no count before `{word}` in {summary:?}"))
            .parse()
            .unwrap()
    };
    (number_before(" requests)"), number_before(" on ") as usize)
}

fn status_reads_the_remote_ref_not_one_record_per_stage(backend: Backend) {
    let url = backend.bucket("status-ref");
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = run_json(
        &mut remote_alinea(backend, &a),
        &["run", &p, "--remote", &url],
    );
    let stages = first["stages"].as_array().unwrap().len();

    // The remote ref carries each record's outputs exactly as the record on the remote names them.
    let bucket = Bucket::new(backend, "status-ref");
    let ref_key = "alinea/refs/remote.json";
    let with_outputs = bucket.get(ref_key);
    let rref: serde_json::Value = serde_json::from_slice(&with_outputs).unwrap();
    for (name, sref) in rref["stages"].as_object().unwrap() {
        let key = sref["key"].as_str().unwrap();
        let rec: serde_json::Value =
            serde_json::from_slice(&bucket.get(&format!("alinea/ac/{key}.json"))).unwrap();
        assert_eq!(rref["outputs"][key], rec["outputs"], "stage {name}");
    }

    // From an empty store: every stage found on the remote with the ref and one listing of `ac/`, ...
    let (with_ref, found) = status_requests(backend, &b, &p, &url);
    assert_eq!(found, stages);
    // ... where a ref without outputs (as earlier versions wrote it) costs one read per record instead.
    let mut plain = rref.clone();
    plain.as_object_mut().unwrap().remove("outputs");
    bucket.put(ref_key, serde_json::to_vec(&plain).unwrap());
    let (per_record, found) = status_requests(backend, &b, &p, &url);
    assert_eq!(found, stages);
    assert_eq!(
        per_record - with_ref,
        stages as u64 - 1,
        "{per_record} vs {with_ref}"
    );

    // A record deleted under the ref is not taken from the ref: that stage and those below it are missing.
    bucket.put(ref_key, with_outputs);
    let gold_key = rref["stages"]["gold"]["key"].as_str().unwrap();
    bucket.delete(&format!("alinea/ac/{gold_key}.json"));
    let st = run_json(
        &mut remote_alinea(backend, &b),
        &["status", &p, "--remote", &url],
    );
    for s in st.as_array().unwrap() {
        let want = if s["name"] == "gold" {
            "missing"
        } else {
            "remote"
        };
        assert_eq!(s["state"], want, "{st}");
    }
}

/// Each REAPI rule above, on every backend.
macro_rules! on_every_backend {
    ($($rule:ident),* $(,)?) => {
        mod s3 {
            $(#[test] fn $rule() { super::$rule(super::Backend::S3) })*
        }
        mod azure {
            $(#[test] fn $rule() { super::$rule(super::Backend::Azure) })*
        }
    };
}

on_every_backend!(
    a_second_machine_is_served_every_stage_from_the_bucket_byte_identical,
    a_flipped_byte_in_a_remote_object_is_refused_and_the_stage_recomputed,
    an_object_deleted_under_a_live_record_is_recomputed_transparently,
    sigkill_during_a_push_never_leaves_a_record_whose_objects_are_missing,
    two_concurrent_runs_on_two_stores_against_one_bucket_both_end_consistent,
    uploads_are_idempotent_large_ones_multipart_and_existence_checks_bounded,
    a_failed_stage_is_never_pushed_and_the_ref_names_only_pushed_records,
    status_reads_the_remote_ref_not_one_record_per_stage,
);
