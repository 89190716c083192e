//! The remote cache: the local store's objects, action records, code manifests and pipeline refs, shared through an
//! object store (S3, Google Cloud Storage, Azure Blob Storage, or a shared folder) with the `object_store` crate.
//!
//! ```text
//! <url>/cas/<blake3>              objects, named by the hash of their bytes (as in the local store)
//! <url>/ac/<key>.json             action records (the local record, byte for byte)
//! <url>/code/<digest>.json        code manifests
//! <url>/refs/<pipeline>.json      pipeline refs (for `alinea pull`, `alinea remote gc --keep`, `status --remote`)
//! ```
//!
//! A remote ref also carries the outputs of every record it names (see [`RemoteRef`]), so that `status --remote`
//! learns a whole pipeline from the ref and a listing of `ac/` (about 2 + N/1000 requests) instead of one read
//! per record.
//!
//! The rules are REAPI's (Bazel's remote cache):
//! - an object is inserted with `PutMode::Create` (`AlreadyExists` is success: the name is its content); large
//!   objects go up as a multipart upload, which the store shows under its final name only once completed, so an
//!   interrupted upload is never visible; the bytes are hashed while they are read and the upload is abandoned if
//!   they do not match their name;
//! - a record goes up last, after every object it names is confirmed present on the remote;
//! - a remote hit is used only when every object of its record is present (one batched, parallel existence check)
//!   and each object downloaded hashes to its name; a remote object that does not is deleted from the remote
//!   (so the recompute can insert the right bytes), reported, and the stage recomputed.
//!
//! object_store is async: a small tokio runtime lives inside [`Remote`], and every method here blocks, so no
//! async reaches the engine's API. Credentials come from each backend's environment (`from_env` builders); none is
//! ever printed (errors name the variables, never their values) or written into a record.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    WriteMultipart,
};

use super::exec::{Fetch, RemoteCache};
use super::key::CodeManifest;
use super::store::{ActionRecord, OutputRef, PipelineRef, Store, is_digest};

/// Objects at least this large are uploaded in parts (S3's minimum part size is 5 MiB).
pub const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Size of one part of a multipart upload, and of the buffer a small upload is read into.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once (bounds its memory to this many parts).
const PARTS_IN_FLIGHT: usize = 4;
/// Requests in flight at once in a batched existence check or transfer.
pub const PARALLEL_REQUESTS: usize = 32;
/// Above this many objects an existence check lists `cas/` (1000 names per request) instead of one HEAD each.
pub const LIST_THRESHOLD: usize = 256;
/// `remote gc` never deletes an object younger than this: a push in progress uploads its objects before its
/// record, and those objects must not vanish before the record that names them arrives.
pub const GC_GRACE: Duration = Duration::from_secs(3600);

/// An error of the remote cache. Messages name the remote by its URL without credentials.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL is not one alinea can use.
    #[error(
        "remote `{url}`: {message} (expected s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] \
         or file:///ABSOLUTE/PATH)"
    )]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The remote has no ref for this pipeline.
    #[error("remote {url}: no pipeline `{name}` (pipelines there: {known})")]
    NoPipeline {
        /// The remote.
        url: String,
        /// The pipeline asked for.
        name: String,
        /// The pipelines it has.
        known: String,
    },
    /// No credentials were found for the backend.
    #[error("remote {url}: no credentials found; set {what}")]
    Credentials {
        /// The remote.
        url: String,
        /// The variables (or files) to set, never their values.
        what: String,
    },
    /// The bucket or container does not exist.
    #[error(
        "remote {url}: {} `{bucket}` does not exist (create it, or fix the URL): {source}",
        bucket_noun(url)
    )]
    NoBucket {
        /// The remote.
        url: String,
        /// The bucket.
        bucket: String,
        /// What the backend said.
        #[source]
        source: object_store::Error,
    },
    /// The backend refused or failed a request.
    #[error("remote {url}: {what}: {source}")]
    Backend {
        /// The remote.
        url: String,
        /// What was being done.
        what: String,
        /// What the backend said.
        #[source]
        source: object_store::Error,
    },
    /// A remote object does not hash to its name; it was deleted from the remote.
    #[error(
        "remote {url}: object {digest} failed its hash (got {actual}); deleted from the remote, not used"
    )]
    Corrupt {
        /// The remote.
        url: String,
        /// The name (expected digest).
        digest: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A local object changed or vanished before its upload ended.
    #[error("{path}: local object does not hash to its name {digest} (got {actual}); not uploaded")]
    LocalCorrupt {
        /// The local object.
        path: PathBuf,
        /// Its name.
        digest: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// A remote record or ref is not valid JSON of the expected shape.
    #[error("remote {url}: {path} is not a valid {what}: {source}")]
    BadRecord {
        /// The remote.
        url: String,
        /// The object.
        path: String,
        /// Record or ref.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A record names an object by something that is not a digest.
    #[error("remote {url}: {path}: `{value}` is not a blake3 digest")]
    BadDigest {
        /// The remote.
        url: String,
        /// The record.
        path: String,
        /// The value.
        value: String,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] super::error::StoreError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RemoteError {
    fn io(path: &FsPath) -> impl FnOnce(std::io::Error) -> RemoteError + '_ {
        move |source| RemoteError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the remote could not be reached at all (network, DNS, refused connection, timeout), as opposed to a
    /// refusal or bad data: a run then goes on from the local cache.
    pub fn is_unreachable(&self) -> bool {
        match self {
            RemoteError::Backend { source, .. } => {
                matches!(source, object_store::Error::Generic { .. }) && {
                    let text = format!("{source:?}").to_lowercase();
                    [
                        "connect",
                        "dns",
                        "timed out",
                        "timeout",
                        "error sending request",
                    ]
                    .iter()
                    .any(|w| text.contains(w))
                }
            }
            _ => false,
        }
    }
}

/// How a run uses the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteMode {
    /// Pull hits and push what the run computed.
    Write,
    /// Pull hits, push nothing.
    Read,
    /// Ignore the remote.
    Off,
}

impl std::str::FromStr for RemoteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "write" => Ok(RemoteMode::Write),
            "read" => Ok(RemoteMode::Read),
            "off" => Ok(RemoteMode::Off),
            other => Err(format!(
                "`{other}` is not a remote mode; expected write (pull and push), read (pull only) or off"
            )),
        }
    }
}

/// What [`Remote::push_record`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct PushCount {
    /// Objects uploaded.
    pub objects_uploaded: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Objects already on the remote.
    pub objects_present: u64,
    /// Records written (0 when the remote already held one for the key).
    pub records_written: u64,
}

impl std::ops::AddAssign for PushCount {
    fn add_assign(&mut self, o: PushCount) {
        self.objects_uploaded += o.objects_uploaded;
        self.bytes_uploaded += o.bytes_uploaded;
        self.objects_present += o.objects_present;
        self.records_written += o.records_written;
    }
}

/// What `alinea remote gc` removed (or would remove).
#[derive(Debug, Default, serde::Serialize)]
pub struct RemoteGcReport {
    /// Pipelines whose refs were kept.
    pub kept_pipelines: Vec<String>,
    /// Objects kept.
    pub objects_kept: u64,
    /// Objects removed.
    pub objects_removed: u64,
    /// Objects not reached but younger than the grace period (a push may be in progress).
    pub objects_too_young: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Refs of pipelines not kept, removed.
    pub refs_removed: Vec<String>,
}

/// A remote cache. Cheap to share between threads; every method blocks.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// The URL without credentials, for messages.
    url: String,
    runtime: tokio::runtime::Runtime,
    requests: AtomicU64,
    /// What this process learnt of the remote's records (see [`Known`]).
    known: std::sync::Mutex<Known>,
}

/// Remote records whose content this process knows for certain. A remote record never changes once written
/// (`PutMode::Create`) and is deleted only by `remote gc` together with the refs that reach it, so what was seen
/// once stays true for the refs written from it.
#[derive(Debug, Default)]
struct Known {
    /// Key -> outputs of the record as the remote holds it (written by this process, or read from the remote).
    outputs: BTreeMap<String, Vec<OutputRef>>,
    /// Keys whose record and every object this process confirmed on the remote (it uploaded them itself, or
    /// fetched them intact): pushing them again would only repeat the checks.
    complete: BTreeSet<String>,
}

/// A pipeline ref as the remote holds it: the local ref's fields, plus the outputs of each record it names, as
/// that record is on the remote. `status --remote` needs every record's output digests (they key the stages
/// below); with them here it reads one ref instead of one record per stage (10k stages: 10,003 requests before,
/// about 13 now). Written by `push` after every record and object it names is on the remote. Readers that
/// expect a plain [`PipelineRef`] ignore the extra field.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RemoteRef {
    /// The pipeline's stages and file, as in the local ref.
    #[serde(flatten)]
    pub pipeline: PipelineRef,
    /// Action key -> the outputs of its record on the remote. Empty in refs written by earlier versions.
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<OutputRef>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// The URL as it may be shown: no user, password or query (where signed URLs keep their secrets).
/// What the backend of `url` calls a bucket: a container on Azure.
fn bucket_noun(url: &str) -> &'static str {
    match url.split("://").next() {
        Some("az" | "azure" | "abfs" | "abfss") => "container",
        _ => "bucket",
    }
}

fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string().trim_end_matches('/').to_string()
}

/// Whether any of `vars` is set (non-empty) in the environment.
fn any_env(vars: &[&str]) -> bool {
    vars.iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Fails fast when the environment holds no credentials for a cloud backend, rather than letting the client fall
/// back to the instance metadata service (minutes of retries off the cloud). On a cloud instance whose role is the
/// credential, `ALINEA_REMOTE_INSTANCE_CREDENTIALS=1` allows that fallback.
fn check_credentials(scheme: &str, url: &str) -> Result<(), RemoteError> {
    if any_env(&["ALINEA_REMOTE_INSTANCE_CREDENTIALS"]) {
        return Ok(());
    }
    let (found, what) = match scheme {
        "s3" => (
            any_env(&[
                "AWS_ACCESS_KEY_ID",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_SKIP_SIGNATURE",
            ]),
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION; AWS_ENDPOINT_URL for a non-AWS endpoint), \
             or AWS_WEB_IDENTITY_TOKEN_FILE, or ALINEA_REMOTE_INSTANCE_CREDENTIALS=1 on an instance with a role",
        ),
        "gs" => {
            let adc = std::env::var_os("HOME").is_some_and(|h| {
                PathBuf::from(h)
                    .join(".config/gcloud/application_default_credentials.json")
                    .is_file()
            });
            (
                adc || any_env(&[
                    "GOOGLE_SERVICE_ACCOUNT",
                    "GOOGLE_SERVICE_ACCOUNT_PATH",
                    "GOOGLE_SERVICE_ACCOUNT_KEY",
                    "GOOGLE_APPLICATION_CREDENTIALS",
                ]),
                "GOOGLE_APPLICATION_CREDENTIALS (a service account key file), or run `gcloud auth \
                 application-default login`, or ALINEA_REMOTE_INSTANCE_CREDENTIALS=1 on a GCE instance",
            )
        }
        _ => (
            any_env(&[
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_SAS_KEY",
                "AZURE_STORAGE_TOKEN",
                "AZURE_CLIENT_SECRET",
                "AZURE_FEDERATED_TOKEN_FILE",
                "AZURE_STORAGE_USE_EMULATOR",
                "AZURE_USE_AZURE_CLI",
            ]) && (any_env(&["AZURE_STORAGE_ACCOUNT_NAME"])
                || any_env(&["AZURE_STORAGE_USE_EMULATOR"])),
            "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY, or \
             AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID), or ALINEA_REMOTE_INSTANCE_CREDENTIALS=1 with a \
             managed identity",
        ),
    };
    if found {
        Ok(())
    } else {
        Err(RemoteError::Credentials {
            url: url.to_string(),
            what: what.to_string(),
        })
    }
}

/// Short retries and timeouts: a remote that does not answer must not stall a run for minutes (the defaults retry
/// for three), since the local cache can carry on.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

const CLIENT_TIMEOUTS: [(ClientConfigKey, &str); 2] = [
    (ClientConfigKey::ConnectTimeout, "5 seconds"),
    (ClientConfigKey::Timeout, "300 seconds"),
];

fn build_store(
    parsed: &url::Url,
    shown: &str,
    options: &[(&str, &str)],
) -> Result<(Arc<dyn ObjectStore>, Path), RemoteError> {
    let unknown = |key: &str| RemoteError::BadUrl {
        url: shown.to_string(),
        message: format!("unknown client option `{key}`"),
    };
    let bad = |message: String| RemoteError::BadUrl {
        url: shown.to_string(),
        message,
    };
    let built = |e: object_store::Error| RemoteError::Backend {
        url: shown.to_string(),
        what: "configuring the client".into(),
        source: e,
    };
    let scheme = parsed.scheme();
    let prefix = || Path::from(parsed.path().trim_matches('/'));
    match scheme {
        "file" => {
            let dir = parsed
                .to_file_path()
                .map_err(|()| bad("not an absolute local path".into()))?;
            std::fs::create_dir_all(&dir).map_err(RemoteError::io(&dir))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(built)?;
            Ok((Arc::new(fs), Path::default()))
        }
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" => {
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(bad("no bucket named".into()));
            }
            let family = match scheme {
                "s3" | "s3a" => "s3",
                "gs" => "gs",
                _ => "az",
            };
            if options.is_empty() {
                check_credentials(family, shown)?;
            }
            // The bucket part only: the path below it is our prefix.
            let bucket_url = format!("{scheme}://{}", parsed.host_str().unwrap_or_default());
            let store: Arc<dyn ObjectStore> = match family {
                "s3" => {
                    let mut b = object_store::aws::AmazonS3Builder::from_env()
                        .with_url(bucket_url)
                        .with_retry(retry_config())
                        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
                    for (k, v) in CLIENT_TIMEOUTS {
                        b = b.with_config(object_store::aws::AmazonS3ConfigKey::Client(k), v);
                    }
                    for (k, v) in options {
                        b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                    }
                    Arc::new(b.build().map_err(built)?)
                }
                "gs" => {
                    let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_url(bucket_url)
                        .with_retry(retry_config());
                    for (k, v) in CLIENT_TIMEOUTS {
                        b = b.with_config(object_store::gcp::GoogleConfigKey::Client(k), v);
                    }
                    for (k, v) in options {
                        b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                    }
                    Arc::new(b.build().map_err(built)?)
                }
                _ => {
                    let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                        .with_url(bucket_url)
                        .with_retry(retry_config());
                    for (k, v) in CLIENT_TIMEOUTS {
                        b = b.with_config(object_store::azure::AzureConfigKey::Client(k), v);
                    }
                    for (k, v) in options {
                        b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                    }
                    Arc::new(b.build().map_err(built)?)
                }
            };
            Ok((store, prefix()))
        }
        other => Err(bad(format!("unsupported scheme `{other}`"))),
    }
}

fn blake3_hex(h: &blake3::Hasher) -> String {
    h.finalize().to_hex().to_string()
}

impl Remote {
    /// Opens the remote at `url` (credentials from the backend's environment). Sends no request: see
    /// [`Remote::check`].
    pub fn open(url: &str) -> Result<Remote, RemoteError> {
        Remote::open_with(url, &[])
    }

    /// [`Remote::open`], with backend options (object_store's keys, e.g. `aws_endpoint`, `allow_http`) that
    /// override the environment. With options, credentials are expected among them or in the environment, and not
    /// checked up front.
    pub fn open_with(url: &str, options: &[(&str, &str)]) -> Result<Remote, RemoteError> {
        let parsed = url::Url::parse(url).map_err(|e| RemoteError::BadUrl {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let shown = display_url(&parsed);
        let (store, prefix) = build_store(&parsed, &shown, options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("alinea-remote")
            .enable_all()
            .build()
            .map_err(RemoteError::io(FsPath::new("tokio runtime")))?;
        Ok(Remote {
            store,
            prefix,
            url: shown,
            runtime,
            requests: AtomicU64::new(0),
            known: Default::default(),
        })
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    fn path(&self, parts: &[&str]) -> Path {
        let mut p = self.prefix.clone();
        for part in parts {
            p = p.clone().join(*part);
        }
        p
    }

    fn object(&self, digest: &str) -> Path {
        self.path(&["cas", digest])
    }

    fn backend(
        &self,
        what: impl Into<String>,
    ) -> impl FnOnce(object_store::Error) -> RemoteError + '_ {
        let what = what.into();
        move |source| self.classify(what, source)
    }

    fn classify(&self, what: String, source: object_store::Error) -> RemoteError {
        let text = source.to_string();
        if text.contains("NoSuchBucket")
            || text.contains("ContainerNotFound")
            || text.contains("bucket does not exist")
        {
            let bucket = self
                .url
                .split("://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .unwrap_or_default()
                .to_string();
            return RemoteError::NoBucket {
                url: self.url.clone(),
                bucket,
                source,
            };
        }
        if matches!(
            source,
            object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. }
        ) || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
        {
            let what = match self.url.split(':').next() {
                Some("s3") => "valid AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for this bucket",
                Some("gs") => "GOOGLE_APPLICATION_CREDENTIALS to a key with access to this bucket",
                _ => "AZURE_STORAGE_ACCOUNT_NAME and a key or token with access to this container",
            };
            return RemoteError::Credentials {
                url: self.url.clone(),
                what: format!("{what} (the remote refused them: {source})"),
            };
        }
        RemoteError::Backend {
            url: self.url.clone(),
            what,
            source,
        }
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// One request that proves the remote answers and the credentials and bucket are right.
    pub fn check(&self) -> Result<(), RemoteError> {
        self.count(1);
        let prefix = self.path(&["refs"]);
        self.block(self.store.list_with_delimiter(Some(&prefix)))
            .map(|_| ())
            .map_err(self.backend("listing refs/"))
    }

    /// The digests among `objects` (digest, size) that the remote lacks (or holds with another size). Bounded
    /// request count: up to [`LIST_THRESHOLD`] objects, one HEAD each, [`PARALLEL_REQUESTS`] at a time; more,
    /// one listing of `cas/` (1000 names per request).
    pub fn missing(&self, objects: &[(String, u64)]) -> Result<Vec<String>, RemoteError> {
        let wanted: BTreeMap<&str, u64> = objects.iter().map(|(d, n)| (d.as_str(), *n)).collect();
        if wanted.len() > LIST_THRESHOLD {
            let present = self.list_sizes("cas")?;
            return Ok(wanted
                .iter()
                .filter(|(d, n)| present.get(**d).map(|(s, _)| s) != Some(n))
                .map(|(d, _)| d.to_string())
                .collect());
        }
        self.count(wanted.len() as u64);
        let checks = futures::stream::iter(wanted.iter().map(|(d, n)| {
            let path = self.object(d);
            async move {
                match self.store.head(&path).await {
                    Ok(meta) => Ok((d.to_string(), meta.size == *n)),
                    Err(object_store::Error::NotFound { .. }) => Ok((d.to_string(), false)),
                    Err(e) => Err(e),
                }
            }
        }))
        .buffer_unordered(PARALLEL_REQUESTS)
        .try_collect::<Vec<_>>();
        let mut missing: Vec<String> = self
            .block(checks)
            .map_err(self.backend("checking which objects exist"))?
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(d, _)| d)
            .collect();
        missing.sort();
        Ok(missing)
    }

    /// Name → (size, last modified) of everything under `dir/`, counting one request per page of 1000.
    fn list_sizes(
        &self,
        dir: &str,
    ) -> Result<BTreeMap<String, (u64, chrono_free::Modified)>, RemoteError> {
        let prefix = self.path(&[dir]);
        let listed = self.block(self.store.list(Some(&prefix)).try_collect::<Vec<_>>());
        let listed = listed.map_err(self.backend(format!("listing {dir}/")))?;
        // S3 and Azure list 1000 names per request, GCS 1000 by default: one request per page.
        self.count((listed.len() as u64).div_ceil(1000).max(1));
        Ok(listed
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some((name, (m.size, chrono_free::Modified::of(&m))))
            })
            .collect())
    }

    /// Uploads the local object `digest` unless the remote has it. The bytes are hashed as they are read; a
    /// mismatch abandons the upload. Returns the bytes sent (0 when it was there).
    pub fn upload(&self, local: &Store, digest: &str) -> Result<u64, RemoteError> {
        let path = local.object_path(digest);
        let mut file = std::fs::File::open(&path).map_err(RemoteError::io(&path))?;
        let size = file.metadata().map_err(RemoteError::io(&path))?.len();
        let location = self.object(digest);
        let mismatch = |actual: String| RemoteError::LocalCorrupt {
            path: path.clone(),
            digest: digest.to_string(),
            actual,
        };
        let mut hasher = blake3::Hasher::new();
        if size < MULTIPART_THRESHOLD {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).map_err(RemoteError::io(&path))?;
            hasher.update(&buf);
            let actual = blake3_hex(&hasher);
            if actual != digest {
                return Err(mismatch(actual));
            }
            self.count(1);
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            return match self.block(self.store.put_opts(&location, PutPayload::from(buf), opts)) {
                Ok(_) => Ok(size),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(0),
                Err(e) => Err(self.classify(format!("uploading {digest}"), e)),
            };
        }
        // Large: parts stream from the file, at most PARTS_IN_FLIGHT in memory. The store shows the object only
        // when the upload completes, which happens after the digest matched.
        self.block(async {
            self.count(2);
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(self.backend(format!("starting the upload of {digest}")))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; PART_SIZE];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(RemoteError::Io {
                            path: path.clone(),
                            source: e,
                        });
                    }
                };
                hasher.update(&buf[..n]);
                if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    return Err(self.classify(format!("uploading {digest}"), e));
                }
                self.count(1);
                writer.write(&buf[..n]);
            }
            let actual = blake3_hex(&hasher);
            if actual != digest {
                let _ = writer.abort().await;
                return Err(mismatch(actual));
            }
            writer
                .finish()
                .await
                .map_err(self.backend(format!("completing the upload of {digest}")))?;
            Ok(size)
        })
    }

    /// Downloads object `digest` into the local store, hashing while it streams to a temp file; renamed into
    /// `objects/` only when the digest matches. A remote object that fails its hash is deleted from the remote
    /// and reported as [`RemoteError::Corrupt`].
    pub fn download(&self, local: &Store, digest: &str) -> Result<u64, RemoteError> {
        let tmp_dir = local.root().join("tmp");
        let mut tmp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(RemoteError::io(&tmp_dir))?;
        let location = self.object(digest);
        let mut hasher = blake3::Hasher::new();
        let size = self.block(async {
            self.count(1);
            let got = self
                .store
                .get(&location)
                .await
                .map_err(self.backend(format!("downloading {digest}")))?;
            let mut stream = got.into_stream();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(self.backend(format!("downloading {digest}")))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                tmp.write_all(&chunk).map_err(RemoteError::io(tmp.path()))?;
            }
            Ok::<u64, RemoteError>(size)
        })?;
        let actual = blake3_hex(&hasher);
        if actual != digest {
            self.count(1);
            let _ = self.block(self.store.delete(&location));
            return Err(RemoteError::Corrupt {
                url: self.url.clone(),
                digest: digest.to_string(),
                actual,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(RemoteError::io(tmp.path()))?;
        let dest = local.object_path(digest);
        let dir = dest.parent().expect("object paths have a parent");
        std::fs::create_dir_all(dir).map_err(RemoteError::io(dir))?;
        tmp.persist(&dest).map_err(|e| RemoteError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(size)
    }

    fn get_json<T: for<'de> serde::Deserialize<'de>>(
        &self,
        location: &Path,
        what: &'static str,
    ) -> Result<Option<T>, RemoteError> {
        self.block(self.read_json(location, what))
    }

    async fn read_json<T: for<'de> serde::Deserialize<'de>>(
        &self,
        location: &Path,
        what: &'static str,
    ) -> Result<Option<T>, RemoteError> {
        self.count(1);
        let bytes = match self.store.get(location).await {
            Ok(got) => got.bytes().await.map(Some),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
        let Some(bytes) = bytes.map_err(self.backend(format!("reading {location}")))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RemoteError::BadRecord {
                url: self.url.clone(),
                path: location.to_string(),
                what,
                source,
            })
    }

    fn put_json(
        &self,
        location: &Path,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<bool, RemoteError> {
        self.count(1);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.block(self.store.put_opts(location, PutPayload::from(bytes), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.classify(format!("writing {location}"), e)),
        }
    }

    /// The remote record of action `key`, checked like a local one (its key and output names are digests).
    pub fn get_record(&self, key: &str) -> Result<Option<ActionRecord>, RemoteError> {
        self.block(self.read_record(key))
    }

    /// The remote records of `keys`, in order: [`PARALLEL_REQUESTS`] requests in flight, one per key.
    pub fn get_records(&self, keys: &[String]) -> Result<Vec<Option<ActionRecord>>, RemoteError> {
        let reads = futures::stream::iter(keys.iter().map(|k| self.read_record(k)))
            .buffered(PARALLEL_REQUESTS)
            .try_collect::<Vec<_>>();
        self.block(reads)
    }

    async fn read_record(&self, key: &str) -> Result<Option<ActionRecord>, RemoteError> {
        if !is_digest(key) {
            return Ok(None);
        }
        let location = self.path(&["ac", &format!("{key}.json")]);
        let rec: Option<ActionRecord> = self.read_json(&location, "action record").await?;
        if let Some(r) = &rec {
            for value in std::iter::once(&r.key).chain(r.outputs.iter().map(|o| &o.digest)) {
                if !is_digest(value) {
                    return Err(RemoteError::BadDigest {
                        url: self.url.clone(),
                        path: location.to_string(),
                        value: value.clone(),
                    });
                }
            }
            self.know(key, &r.outputs, false);
        }
        Ok(rec)
    }

    /// Remembers the outputs of the remote record `key`, and whether its objects were all confirmed present.
    fn know(&self, key: &str, outputs: &[OutputRef], complete: bool) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.outputs.insert(key.to_string(), outputs.to_vec());
        if complete {
            known.complete.insert(key.to_string());
        }
    }

    fn known_complete(&self, key: &str) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.complete.contains(key)
    }

    fn known_outputs(&self, key: &str) -> Option<Vec<OutputRef>> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.outputs.get(key).cloned()
    }

    /// Pushes one record: its objects that the remote lacks (batched check, parallel uploads), its code
    /// manifest, then the record itself, last. A record already there is kept (`PutMode::Create`): two machines
    /// pushing the same key both leave a record whose objects are all present.
    pub fn push_record(
        &self,
        local: &Store,
        record: &ActionRecord,
    ) -> Result<PushCount, RemoteError> {
        let objects: Vec<(String, u64)> = record
            .outputs
            .iter()
            .map(|o| (o.digest.clone(), o.bytes))
            .collect();
        let missing = self.missing(&objects)?;
        let mut count = PushCount {
            objects_present: (objects.len() - missing.len()) as u64,
            ..PushCount::default()
        };
        let sent = self.upload_all(local, &missing)?;
        count.objects_uploaded += missing.len() as u64;
        count.bytes_uploaded += sent;
        // Every object is now on the remote (uploaded or confirmed): only now may the record name them.
        if let Some(manifest) = local.get_code(&record.components.fingerprint) {
            let digest = record
                .components
                .fingerprint
                .split('+')
                .next()
                .unwrap_or_default();
            let location = self.path(&["code", &format!("{digest}.json")]);
            let bytes = serde_json::to_vec(&manifest).expect("code manifests serialize");
            self.put_json(&location, bytes, PutMode::Create)?;
        }
        let location = self.path(&["ac", &format!("{}.json", record.key)]);
        let bytes = serde_json::to_vec_pretty(record).expect("records serialize");
        if self.put_json(&location, bytes, PutMode::Create)? {
            count.records_written = 1;
            self.know(&record.key, &record.outputs, true);
        }
        Ok(count)
    }

    /// Uploads `digests` from the local store, [`PARALLEL_REQUESTS`] at a time (rayon threads, each blocking on the
    /// shared runtime). Returns the bytes sent.
    fn upload_all(&self, local: &Store, digests: &[String]) -> Result<u64, RemoteError> {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(digests.len().clamp(1, PARALLEL_REQUESTS))
            .build()
            .map_err(|e| RemoteError::Io {
                path: PathBuf::from("upload threads"),
                source: std::io::Error::other(e),
            })?;
        pool.install(|| {
            digests
                .par_iter()
                .map(|d| self.upload(local, d))
                .try_reduce(|| 0, |a, b| Ok(a + b))
        })
    }

    /// Brings the record of `key` and its objects into the local store when the remote has all of them intact.
    /// Objects already local (and intact) are not downloaded. The local record is written last.
    pub fn fetch_record(&self, local: &Store, key: &str) -> Result<Fetch, RemoteError> {
        let Some(record) = self.get_record(key)? else {
            return Ok(Fetch::Miss);
        };
        let need: Vec<(String, u64)> = record
            .outputs
            .iter()
            .filter(|o| {
                let p = local.object_path(&o.digest);
                !(std::fs::metadata(&p).is_ok_and(|m| m.len() == o.bytes)
                    && super::files::hash_file(&p).is_ok_and(|d| d == o.digest))
            })
            .map(|o| (o.digest.clone(), o.bytes))
            .collect();
        let absent = self.missing(&need)?;
        if !absent.is_empty() {
            return Ok(Fetch::Unusable(format!(
                "remote record names {} object(s) the remote lacks ({}…)",
                absent.len(),
                super::key::short(&absent[0])
            )));
        }
        for (digest, _) in &need {
            match self.download(local, digest) {
                Ok(_) => {}
                Err(RemoteError::Corrupt { digest, .. }) => {
                    return Ok(Fetch::Unusable(format!(
                        "remote object {} failed its hash (deleted from the remote, not used)",
                        super::key::short(&digest)
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        let manifest_digest = record
            .components
            .fingerprint
            .split('+')
            .next()
            .unwrap_or_default();
        if local.get_code(&record.components.fingerprint).is_none() && !manifest_digest.is_empty() {
            let location = self.path(&["code", &format!("{manifest_digest}.json")]);
            if let Ok(Some(manifest)) = self.get_json::<CodeManifest>(&location, "code manifest") {
                local.put_code(&record.components.fingerprint, &manifest)?;
            }
        }
        local.put_action(&record)?;
        self.know(&record.key, &record.outputs, true);
        Ok(Fetch::Hit(Box::new(record)))
    }

    /// Whether the remote holds a usable record for `key` (every object present), without downloading it.
    pub fn peek_record(&self, key: &str) -> Result<Option<ActionRecord>, RemoteError> {
        let Some(record) = self.get_record(key)? else {
            return Ok(None);
        };
        let objects: Vec<(String, u64)> = record
            .outputs
            .iter()
            .map(|o| (o.digest.clone(), o.bytes))
            .collect();
        Ok(self.missing(&objects)?.is_empty().then_some(record))
    }

    /// The remote ref of pipeline `name`.
    pub fn get_ref(&self, name: &str) -> Result<Option<PipelineRef>, RemoteError> {
        Ok(self.get_remote_ref(name)?.map(|r| r.pipeline))
    }

    /// The remote ref of pipeline `name`, with the outputs of the records it names.
    pub fn get_remote_ref(&self, name: &str) -> Result<Option<RemoteRef>, RemoteError> {
        self.get_json(
            &self.path(&["refs", &format!("{name}.json")]),
            "pipeline ref",
        )
    }

    /// Outputs of the remote records of pipeline `name`'s remote ref that are still on the remote (one read of the
    /// ref, one listing of `ac/`): what `status --remote` would otherwise read record by record. Empty when the
    /// remote has no ref for it.
    pub fn pipeline_outputs(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, Vec<OutputRef>>, RemoteError> {
        let Some(rref) = self.get_remote_ref(name)? else {
            return Ok(BTreeMap::new());
        };
        if rref.outputs.is_empty() {
            return Ok(BTreeMap::new());
        }
        // A record removed since the ref was written (by `remote gc` of another pipeline's view, or by hand)
        // must not count as present.
        let listed = self.list_sizes("ac")?;
        Ok(rref
            .outputs
            .into_iter()
            .filter(|(key, _)| listed.contains_key(&format!("{key}.json")))
            .collect())
    }

    /// Writes the remote ref of pipeline `name` (after its records: push calls it last).
    pub fn put_ref(&self, name: &str, pref: &RemoteRef) -> Result<(), RemoteError> {
        let bytes = serde_json::to_vec_pretty(pref).expect("refs serialize");
        self.put_json(
            &self.path(&["refs", &format!("{name}.json")]),
            bytes,
            PutMode::Overwrite,
        )?;
        Ok(())
    }

    /// Names of the pipelines with a ref on the remote.
    pub fn ref_names(&self) -> Result<Vec<String>, RemoteError> {
        Ok(self
            .list_sizes("refs")?
            .into_keys()
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect())
    }

    /// Removes from the remote every object, record, code manifest and ref that the refs of the `keep` pipelines
    /// do not reach. Objects younger than [`GC_GRACE`] stay (a push may be uploading them before its record).
    pub fn gc(&self, keep: &[String], dry_run: bool) -> Result<RemoteGcReport, RemoteError> {
        let mut report = RemoteGcReport::default();
        let mut live_keys = BTreeSet::new();
        let mut live_objects = BTreeSet::new();
        let mut live_code = BTreeSet::new();
        for name in keep {
            let Some(pref) = self.get_ref(name)? else {
                return Err(RemoteError::NoPipeline {
                    url: self.url.clone(),
                    name: name.to_string(),
                    known: self.ref_names()?.join(", "),
                });
            };
            report.kept_pipelines.push(name.clone());
            for sref in pref.stages.values() {
                live_keys.insert(format!("{}.json", sref.key));
                if let Some(rec) = self.get_record(&sref.key)? {
                    live_objects.extend(rec.outputs.iter().map(|o| o.digest.clone()));
                    let digest = rec
                        .components
                        .fingerprint
                        .split('+')
                        .next()
                        .unwrap_or_default();
                    live_code.insert(format!("{digest}.json"));
                }
            }
        }
        let now = chrono_free::Modified::now();
        let mut doomed: Vec<Path> = Vec::new();
        for (name, (size, modified)) in self.list_sizes("cas")? {
            if live_objects.contains(&name) {
                report.objects_kept += 1;
            } else if now.since(&modified) < GC_GRACE {
                report.objects_too_young += 1;
            } else {
                report.objects_removed += 1;
                report.bytes_freed += size;
                doomed.push(self.object(&name));
            }
        }
        for (name, _) in self.list_sizes("ac")? {
            if !live_keys.contains(&name) {
                report.records_removed += 1;
                doomed.push(self.path(&["ac", &name]));
            }
        }
        for (name, _) in self.list_sizes("code")? {
            if !live_code.contains(&name) {
                doomed.push(self.path(&["code", &name]));
            }
        }
        for name in self.ref_names()? {
            if !keep.contains(&name) {
                doomed.push(self.path(&["refs", &format!("{name}.json")]));
                report.refs_removed.push(name);
            }
        }
        if !dry_run {
            self.count(doomed.len() as u64);
            let deletes = futures::stream::iter(doomed.iter().map(|p| async move {
                match self.store.delete(p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }))
            .buffer_unordered(PARALLEL_REQUESTS)
            .try_collect::<Vec<()>>();
            self.block(deletes)
                .map_err(self.backend("deleting unreached objects"))?;
        }
        Ok(report)
    }

    /// Pushes the given stages of the local ref `pipeline` (all when `stages` is empty), then the ref itself.
    pub fn push_pipeline(
        &self,
        local: &Store,
        pipeline: &str,
        stages: &[String],
    ) -> Result<PushCount, RemoteError> {
        let pref =
            local
                .get_ref(pipeline)?
                .ok_or_else(|| super::error::StoreError::UnknownStage {
                    name: pipeline.to_string(),
                    scope: format!("store {}", local.root().display()),
                    known: "(no such pipeline has run with this store)".into(),
                })?;
        for s in stages {
            if !pref.stages.contains_key(s) {
                return Err(super::error::StoreError::UnknownStage {
                    name: s.clone(),
                    scope: format!("pipeline `{pipeline}`"),
                    known: pref.stages.keys().cloned().collect::<Vec<_>>().join(", "),
                }
                .into());
            }
        }
        let mut count = PushCount::default();
        let mut pushed = BTreeMap::new();
        for (name, sref) in &pref.stages {
            if !stages.is_empty() && !stages.contains(name) {
                continue;
            }
            let Some(rec) = local.get_action(&sref.key)? else {
                continue;
            };
            // A record this process uploaded (a run pushes each stage as it ends) or fetched intact is on the
            // remote with its objects: pushing it again would only repeat the checks (10k stages: 30k requests).
            if !self.known_complete(&sref.key) {
                count += self.push_record(local, &rec)?;
            }
            pushed.insert(name.clone(), sref.clone());
        }
        // The ref names only what is now on the remote: the stages pushed, plus those the remote ref had.
        let old = self.get_remote_ref(pipeline)?.unwrap_or_default();
        let mut remote_ref = RemoteRef {
            pipeline: old.pipeline,
            outputs: BTreeMap::new(),
        };
        remote_ref.pipeline.file = pref.file.clone();
        remote_ref.pipeline.stages.extend(pushed);
        remote_ref.outputs = self.ref_outputs(&remote_ref.pipeline, old.outputs)?;
        self.put_ref(pipeline, &remote_ref)?;
        Ok(count)
    }

    /// The outputs of each record `pref` names, as the remote holds it: known to this process, carried over from
    /// the previous remote ref (records never change while a ref reaches them), or else read (once per key: the
    /// remote may hold another machine's record for a key this machine computed too).
    fn ref_outputs(
        &self,
        pref: &PipelineRef,
        mut previous: BTreeMap<String, Vec<OutputRef>>,
    ) -> Result<BTreeMap<String, Vec<OutputRef>>, RemoteError> {
        let mut outputs = BTreeMap::new();
        let mut unknown = Vec::new();
        for sref in pref.stages.values() {
            if let Some(o) = self.known_outputs(&sref.key) {
                outputs.insert(sref.key.clone(), o);
            } else if let Some(o) = previous.remove(&sref.key) {
                outputs.insert(sref.key.clone(), o);
            } else {
                unknown.push(sref.key.clone());
            }
        }
        for (key, rec) in unknown.iter().zip(self.get_records(&unknown)?) {
            if let Some(rec) = rec {
                outputs.insert(key.clone(), rec.outputs);
            }
        }
        Ok(outputs)
    }

    /// Brings every stage of the remote ref `pipeline` into the local store and writes the local ref. Returns
    /// (stages fetched, stages the remote could not serve, with why).
    pub fn pull_pipeline(
        &self,
        local: &Store,
        pipeline: &str,
    ) -> Result<(usize, Vec<(String, String)>), RemoteError> {
        let Some(pref) = self.get_ref(pipeline)? else {
            return Err(RemoteError::NoPipeline {
                url: self.url.clone(),
                name: pipeline.to_string(),
                known: self.ref_names()?.join(", "),
            });
        };
        let mut fetched = 0;
        let mut failed = Vec::new();
        let mut local_ref = local.get_ref(pipeline)?.unwrap_or_default();
        local_ref.file = pref.file.clone();
        for (name, sref) in &pref.stages {
            match self.fetch_record(local, &sref.key)? {
                Fetch::Hit(_) => {
                    fetched += 1;
                    local_ref.stages.insert(name.clone(), sref.clone());
                }
                Fetch::Miss => failed.push((name.clone(), "no record on the remote".to_string())),
                Fetch::Unusable(why) => failed.push((name.clone(), why)),
            }
        }
        local.put_ref(pipeline, &local_ref)?;
        Ok((fetched, failed))
    }
}

impl RemoteCache for Remote {
    fn fetch(&self, local: &Store, key: &str) -> Result<Fetch, String> {
        self.fetch_record(local, key).map_err(|e| e.to_string())
    }

    fn push(&self, local: &Store, record: &ActionRecord) -> Result<(), String> {
        self.push_record(local, record)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn record(&self, key: &str) -> Result<Option<ActionRecord>, String> {
        self.get_record(key).map_err(|e| e.to_string())
    }

    fn records(&self, keys: &[String]) -> Result<Vec<Option<ActionRecord>>, String> {
        self.get_records(keys).map_err(|e| e.to_string())
    }

    fn pipeline_outputs(&self, pipeline: &str) -> Result<BTreeMap<String, Vec<OutputRef>>, String> {
        Remote::pipeline_outputs(self, pipeline).map_err(|e| e.to_string())
    }

    fn ensure_objects(&self, local: &Store, objects: &[(String, u64)]) -> Result<usize, String> {
        let lacking = Remote::missing(self, objects).map_err(|e| e.to_string())?;
        self.upload_all(local, &lacking)
            .map_err(|e| e.to_string())?;
        Ok(lacking.len())
    }

    fn download(&self, local: &Store, digest: &str) -> Result<(), String> {
        Remote::download(self, local, digest)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn missing(&self, objects: &[(String, u64)]) -> Result<Vec<String>, String> {
        Remote::missing(self, objects).map_err(|e| e.to_string())
    }

    fn describe(&self) -> &str {
        &self.url
    }
}

/// Modification times of remote objects without a date library: object_store gives a `chrono` timestamp, of
/// which only the seconds since the epoch are needed.
mod chrono_free {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Seconds since the Unix epoch.
    #[derive(Debug, Clone, Copy)]
    pub struct Modified(i64);

    impl Modified {
        pub fn of(meta: &object_store::ObjectMeta) -> Modified {
            Modified(meta.last_modified.timestamp())
        }

        pub fn now() -> Modified {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Modified(secs)
        }

        pub fn since(&self, then: &Modified) -> Duration {
            Duration::from_secs(self.0.saturating_sub(then.0).max(0) as u64)
        }
    }
}
