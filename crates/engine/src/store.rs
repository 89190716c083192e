//! The content-addressed store.
//!
//! ```text
//! <store>/objects/<2 hex>/<blake3>        tables (Parquet) and blobs, named by the hash of their bytes
//! <store>/actions/<2 hex>/<key>.json      action key -> output digests + provenance
//! <store>/code/<fingerprint>.json        what a code fingerprint covered (files, dependencies, toolchain): one per
//!                                          build of a kind's code, shared by its records, read to explain staleness
//! <store>/refs/<pipeline>.json            what each stage of a pipeline last resolved to (for show/status/gc)
//! <store>/refs/HEAD                       name of the pipeline run last
//! <store>/work/<key>/                     scratch space of a running stage (checkpoints survive a crash;
//!                                          attempt.json names the pipeline stage, so gc keeps the newest)
//! <store>/tmp/                            temp files, renamed into place once complete and fsynced
//! <store>/statcache.json                  (size, mtime, inode) -> digest of input files and of verified objects
//! <store>/quarantine/<blake3>[.N]         corrupt objects, moved aside when found (never silently deleted)
//! <store>/logs/<key>.slurm.log            log of the Slurm job(s) that ran an action
//! <store>/LOCK                            held by the run that writes
//! ```
//! Every file appears under its final name only through `rename` after `fsync`, so a run killed at any instant
//! leaves at worst a stray temp file, never a partial object or record.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::key::{CodeManifest, KeyComponents};

/// What kind of bytes an object holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A Parquet table.
    Table,
    /// Opaque bytes.
    Blob,
}

/// A named output of a stage, pointing at an object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputRef {
    /// The output's name within its stage.
    pub name: String,
    /// blake3 of the object's bytes.
    pub digest: String,
    /// Table or blob.
    pub kind: ObjectKind,
    /// Size of the object in bytes (checked on cache hits, cheaply).
    pub bytes: u64,
    /// Row count, for tables.
    pub rows: Option<u64>,
}

/// A file that filled a path input, as hashed before the stage ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputFile {
    /// Path as resolved when the stage ran.
    pub path: PathBuf,
    /// blake3 of its bytes.
    pub digest: String,
    /// Size and modification time when it was hashed, to notice a change during the run (not persisted).
    #[serde(skip)]
    pub stamp: Option<(u64, std::time::SystemTime)>,
}

/// The provenance of one stage result: stored beside the objects, never inside their hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The action key.
    pub key: String,
    /// Name of the stage that produced it (the same result may be shared by several stages).
    pub stage: String,
    /// What the key was made of.
    pub components: KeyComponents,
    /// Files read through path inputs, per slot.
    #[serde(default)]
    pub input_files: BTreeMap<String, Vec<InputFile>>,
    /// Upstream stages that filled table inputs, per slot.
    #[serde(default)]
    pub input_stages: BTreeMap<String, Vec<String>>,
    /// The outputs.
    pub outputs: Vec<OutputRef>,
    /// Logs of the run, stored as objects (kept by `gc` with the record; not outputs, so never read downstream).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<OutputRef>,
    /// Counters reported by the stage.
    pub stats: super::stage::Stats,
    /// Seconds since the Unix epoch when the stage started.
    pub started_at: u64,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
    /// Worker threads available to the stage.
    pub threads: usize,
    /// Version of alinea that ran it.
    pub alinea_version: String,
    /// The cluster job that ran it, when a cluster executor did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<ClusterJob>,
}

/// A Slurm job that ran a stage: its id, node, and log (kept in `<store>/logs/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterJob {
    /// `SLURM_JOB_ID`.
    pub id: String,
    /// `SLURMD_NODENAME`.
    pub node: String,
    /// The job's log (stdout and stderr).
    pub log: PathBuf,
}

/// Where each stage of a pipeline last pointed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipelineRef {
    /// The pipeline file.
    pub file: PathBuf,
    /// Stage name -> action key, in pipeline order.
    pub stages: BTreeMap<String, StageRef>,
}

/// One stage's entry in a [`PipelineRef`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRef {
    /// The stage kind.
    pub kind: String,
    /// The action key of its latest result.
    pub key: String,
}

/// A handle on a store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The command that repairs this store, named in corruption errors.
    repair: String,
}

/// Holds the store's write lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(StoreError::io(dir))?;
    tmp.write_all(bytes).map_err(StoreError::io(tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(StoreError::io(tmp.path()))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir);
    Ok(())
}

/// [`write_atomic`], unless `path` already holds exactly `bytes`. Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(path, bytes)?;
    Ok(true)
}

fn sync_dir(dir: &Path) {
    // Durability of the rename itself; failure is not fatal (some filesystems refuse to open directories).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn digest_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::BadRecord {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The digest part of a code fingerprint (`<digest>+v<N>`).
fn code_digest(fingerprint: &str) -> &str {
    fingerprint.split('+').next().unwrap_or(fingerprint)
}

/// Whether `name` is `len` lowercase hex characters.
fn is_hex(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` is a digest as the store writes them: 64 lowercase hex characters (blake3).
pub fn is_digest(name: &str) -> bool {
    is_hex(name, 64)
}

fn check_digest(
    path: &Path,
    field: impl FnOnce() -> String,
    value: &str,
) -> Result<(), StoreError> {
    if is_digest(value) {
        Ok(())
    } else {
        Err(StoreError::BadDigest {
            path: path.to_path_buf(),
            field: field(),
            value: value.to_string(),
        })
    }
}

/// The two-character shard of a digest; a non-digest (never written by the store) maps to a shard that never
/// exists instead of panicking on the slice.
fn shard(digest: &str) -> &str {
    match digest.get(..2) {
        Some(s) if is_digest(digest) => s,
        _ => "not-a-digest",
    }
}

impl ActionRecord {
    fn validate(&self, path: &Path) -> Result<(), StoreError> {
        check_digest(path, || "key".into(), &self.key)?;
        for (i, o) in self.outputs.iter().enumerate() {
            check_digest(path, || format!("outputs[{i}].digest"), &o.digest)?;
        }
        for (i, o) in self.logs.iter().enumerate() {
            check_digest(path, || format!("logs[{i}].digest"), &o.digest)?;
        }
        Ok(())
    }
}

impl PipelineRef {
    fn validate(&self, path: &Path) -> Result<(), StoreError> {
        for (name, s) in &self.stages {
            check_digest(path, || format!("stages.{name}.key"), &s.key)?;
        }
        Ok(())
    }
}

/// Result of [`Store::verify`]: every part of the store, checked.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Objects checked.
    pub objects_checked: u64,
    /// Objects whose bytes do not match their name.
    pub corrupt: Vec<String>,
    /// Objects named by an action record but absent.
    pub missing: Vec<String>,
    /// Action records checked.
    pub records_checked: u64,
    /// Action records that cannot be parsed (paths).
    pub bad_records: Vec<String>,
    /// Pipeline refs checked.
    pub refs_checked: u64,
    /// Pipeline refs that cannot be read (paths).
    pub bad_refs: Vec<String>,
    /// Ref entries naming an action with no record: `pipeline.stage -> key`.
    pub dangling: Vec<String>,
    /// Stat-cache entries checked (files unchanged since they were hashed, hashed again).
    pub stat_entries_checked: u64,
    /// Stat-cache entries whose digest is not what their unchanged file hashes to (paths): trusted, they would
    /// make runs use a wrong key.
    pub wrong_stat_entries: Vec<String>,
    /// Stat-cache entries for files that changed or vanished since (harmless: re-hashed when next read).
    pub stale_stat_entries: u64,
    /// Whether `statcache.json` exists but cannot be parsed (harmless for runs, which start it afresh).
    pub bad_stat_cache: bool,
    /// Code manifests that cannot be parsed (paths).
    pub bad_code_manifests: Vec<String>,
    /// Scratch directories of interrupted attempts (kept by `gc` for the newest attempt of each stage).
    pub scratch_dirs: u64,
    /// Leftover temp files from interrupted runs (harmless; removed by `gc`).
    pub stray_temp_files: u64,
    /// Files in `quarantine/` (kept for inspection, never deleted by alinea).
    pub quarantined_files: u64,
}

impl VerifyReport {
    /// Whether the store is consistent.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.bad_records.is_empty()
            && self.bad_refs.is_empty()
            && self.dangling.is_empty()
            && self.wrong_stat_entries.is_empty()
            && !self.bad_stat_cache
            && self.bad_code_manifests.is_empty()
    }
}

/// What [`Store::repair`] did.
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// Corrupt objects moved to `quarantine/`.
    pub quarantined: Vec<String>,
    /// Action records removed: unreadable, or naming an object that is absent (their stages recompute).
    pub records_removed: Vec<String>,
    /// Unreadable refs moved aside: (ref file, where it went).
    pub refs_set_aside: Vec<(String, String)>,
    /// Ref entries dropped because their record is gone: `pipeline.stage`.
    pub ref_entries_dropped: Vec<String>,
    /// Stat-cache entries dropped (wrong or stale); their files are hashed afresh when next read.
    pub stat_entries_dropped: u64,
    /// Unreadable code manifests removed (they only explain changes).
    pub code_manifests_removed: u64,
}

/// Result of [`Store::gc`].
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Objects kept because a pipeline ref reaches them.
    pub objects_kept: u64,
    /// Objects removed (or that would be, with `--dry-run`).
    pub objects_removed: Vec<String>,
    /// Action records removed.
    pub records_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// The pipeline name of a ref file (`refs/<name>.json`).
fn ref_name(path: &Path) -> String {
    path.file_stem()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The file in a scratch directory naming the pipeline stage that attempts its action.
const ATTEMPT_FILE: &str = "attempt.json";

impl Store {
    /// Opens (and creates if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for sub in ["objects", "actions", "refs", "tmp", "work"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(StoreError::io(&p))?;
        }
        let repair = format!("alinea verify --repair --store {}", root.display());
        Ok(Store { root, repair })
    }

    /// Sets the command that corruption errors name to repair this store (the CLI drops `--store` when the store
    /// is the default one).
    pub fn set_repair_command(&mut self, command: impl Into<String>) {
        self.repair = command.into();
    }

    /// The command that repairs this store.
    pub fn repair_command(&self) -> &str {
        &self.repair
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the write lock. Without `wait`, fails at once if another run holds it; with it, `on_wait` is called
    /// once before blocking so the user learns why nothing happens.
    pub fn lock(&self, wait: bool, on_wait: impl FnOnce(&Path)) -> Result<StoreLock, StoreError> {
        let path = self.root.join("LOCK");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                on_wait(&path);
                file.lock().map_err(StoreError::io(&path))?;
                Ok(StoreLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Path of the object named `digest`.
    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.root.join("objects").join(shard(digest)).join(digest)
    }

    fn action_path(&self, key: &str) -> PathBuf {
        self.root
            .join("actions")
            .join(shard(key))
            .join(format!("{key}.json"))
    }

    /// Moves a corrupt object out of `objects/` into `quarantine/` (keeping earlier quarantined copies), so the
    /// next lookup finds it missing and its stage recomputes it. Returns where it went, or `None` if it could not
    /// be moved (absent, or a read-only store).
    pub fn quarantine(&self, digest: &str) -> Option<PathBuf> {
        let from = self.object_path(digest);
        let dir = self.root.join("quarantine");
        std::fs::create_dir_all(&dir).ok()?;
        let mut to = dir.join(digest);
        let mut n = 1;
        while to.exists() {
            to = dir.join(format!("{digest}.{n}"));
            n += 1;
        }
        std::fs::rename(&from, &to).ok()?;
        sync_dir(from.parent()?);
        Some(to)
    }

    fn corrupt(&self, digest: &str, actual: String) -> StoreError {
        let path = self.object_path(digest);
        StoreError::Corrupt {
            quarantined: self.quarantine(digest),
            path,
            expected: digest.to_string(),
            actual,
            repair: self.repair.clone(),
        }
    }

    /// Scratch directory for the stage run of action `key`; it survives interrupted runs, so long stages can
    /// resume from checkpoints kept there.
    pub fn work_dir(&self, key: &str) -> PathBuf {
        self.root.join("work").join(key)
    }

    /// Stores bytes under their digest (a no-op when an identical object exists) and returns the digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = digest_of(bytes);
        let path = self.object_path(&digest);
        if std::fs::metadata(&path)
            .map(|m| m.len() == bytes.len() as u64)
            .unwrap_or(false)
        {
            // Same size is not same content: an object damaged in place would otherwise survive its recompute.
            match super::files::hash_file(&path) {
                Ok(actual) if actual == digest => return Ok(digest),
                _ => {
                    self.quarantine(&digest);
                }
            }
        }
        let tmp_dir = self.root.join("tmp");
        let mut tmp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(StoreError::io(&tmp_dir))?;
        tmp.write_all(bytes).map_err(StoreError::io(tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(StoreError::io(tmp.path()))?;
        let dir = path.parent().expect("object path has a parent");
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        tmp.persist(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(dir);
        Ok(digest)
    }

    /// Stores the file at `path` under its digest without holding it in memory, and returns (digest, size).
    ///
    /// With `take`, a file on the store's own filesystem (a stage's scratch space) is hashed in one streaming
    /// read and then renamed into `objects/`: no copy at all. Otherwise (or across filesystems) it is copied into
    /// `tmp/` in fixed-size chunks, hashed as it streams past, fsynced and renamed. Either way memory stays at
    /// one chunk whatever the size, and the object appears under its name only once complete.
    pub fn put_file(&self, path: &Path, take: bool) -> Result<(String, u64), StoreError> {
        if take && let Some(stored) = self.put_file_by_rename(path)? {
            return Ok(stored);
        }
        let tmp_dir = self.root.join("tmp");
        let mut tmp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(StoreError::io(&tmp_dir))?;
        let mut source = File::open(path).map_err(StoreError::io(path))?;
        let (digest, size) = super::files::hash_stream(&mut source, Some(tmp.as_file_mut()))
            .map_err(StoreError::io(path))?;
        if self.holds_verified(&digest, size) {
            return Ok((digest, size));
        }
        tmp.as_file()
            .sync_all()
            .map_err(StoreError::io(tmp.path()))?;
        let dest = self.object_path(&digest);
        let dir = dest.parent().expect("object path has a parent");
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        sync_dir(dir);
        Ok((digest, size))
    }

    /// [`Store::put_file`] by renaming: `None` when the file cannot be renamed into the store (another
    /// filesystem), so the caller copies it instead.
    fn put_file_by_rename(&self, path: &Path) -> Result<Option<(String, u64)>, StoreError> {
        let mut file = File::open(path).map_err(StoreError::io(path))?;
        let (digest, size) = super::files::hash_stream(&mut file, None::<&mut File>)
            .map_err(StoreError::io(path))?;
        if self.holds_verified(&digest, size) {
            std::fs::remove_file(path).map_err(StoreError::io(path))?;
            return Ok(Some((digest, size)));
        }
        file.sync_all().map_err(StoreError::io(path))?;
        drop(file);
        let dest = self.object_path(&digest);
        let dir = dest.parent().expect("object path has a parent");
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        match std::fs::rename(path, &dest) {
            Ok(()) => {
                sync_dir(dir);
                Ok(Some((digest, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => Ok(None),
            Err(e) => Err(StoreError::Io {
                path: dest,
                source: e,
            }),
        }
    }

    /// Whether the store already holds object `digest` of `size` bytes with that content; a same-size object with
    /// other bytes (damaged in place) is quarantined so the caller's fresh copy replaces it.
    fn holds_verified(&self, digest: &str, size: u64) -> bool {
        let path = self.object_path(digest);
        if !std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            return false;
        }
        match super::files::hash_file(&path) {
            Ok(actual) if actual == digest => true,
            _ => {
                self.quarantine(digest);
                false
            }
        }
    }

    /// The path of object `digest` after checking, in one streaming read, that its bytes hash to its name: how
    /// readers of large blobs get at them without loading them (a corrupt object is quarantined and reported).
    pub fn verified_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let path = self.object_path(digest);
        let actual = match super::files::hash_file(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    digest: digest.to_string(),
                    path,
                });
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        if actual != digest {
            return Err(self.corrupt(digest, actual));
        }
        Ok(path)
    }

    /// Puts a verified copy of object `digest` at `dest`: a hard link where the filesystem allows (no bytes
    /// move; the object is made read-only first so that a tool writing into its input fails instead of damaging
    /// the store), else a copy (`std::fs::copy`, which shares extents through `copy_file_range` where the
    /// filesystem supports it). Returns whether it linked.
    pub fn materialize(&self, digest: &str, dest: &Path) -> Result<bool, StoreError> {
        let object = self.verified_path(digest)?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        }
        match std::fs::remove_file(dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io {
                    path: dest.to_path_buf(),
                    source: e,
                });
            }
        }
        if let Ok(meta) = std::fs::metadata(&object) {
            let mut perms = meta.permissions();
            if !perms.readonly() {
                perms.set_readonly(true);
                let _ = std::fs::set_permissions(&object, perms);
            }
        }
        if std::fs::hard_link(&object, dest).is_ok() {
            return Ok(true);
        }
        std::fs::copy(&object, dest).map_err(StoreError::io(dest))?;
        // A copy inherits the read-only bit; the stage owns its copy.
        if let Ok(meta) = std::fs::metadata(dest) {
            let mut perms = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)] // the copy is the stage's own file
            perms.set_readonly(false);
            let _ = std::fs::set_permissions(dest, perms);
        }
        Ok(false)
    }

    /// Reads an object and checks that its bytes hash to its name.
    pub fn get_bytes(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.object_path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    digest: digest.to_string(),
                    path,
                });
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(self.corrupt(digest, actual));
        }
        Ok(bytes)
    }

    /// Whether every output of a record is present with the recorded size (a cheap check; content is verified
    /// when an object is read). See [`Store::outputs_verified`] for what cache hits use.
    pub fn outputs_present(&self, record: &ActionRecord) -> bool {
        record.outputs.iter().all(|o| {
            std::fs::metadata(self.object_path(&o.digest))
                .map(|m| m.len() == o.bytes)
                .unwrap_or(false)
        })
    }

    /// Whether every output of a record is present with its recorded content, as a cache hit requires.
    ///
    /// Rule: an object is trusted without reading it when its (size, mtime, inode) stamp is the one recorded in
    /// the stat cache when its bytes were last hashed and found to match its name (racy stamps, younger than 2 s
    /// when hashed, are never recorded). Any other object is re-hashed now: in place damage that changes the
    /// mtime (any write) is caught before a stale result is served; damage that keeps the stamp (bit rot) is
    /// caught when the object is read, which always re-hashes. A corrupt object is quarantined, so the
    /// caller recomputes it.
    pub fn outputs_verified(
        &self,
        record: &ActionRecord,
        stat_cache: &std::sync::Mutex<super::files::StatCache>,
    ) -> bool {
        let mut ok = true;
        for o in &record.outputs {
            let path = self.object_path(&o.digest);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == o.bytes => {}
                Ok(_) => {
                    // Truncated or grown: corrupt, kept aside rather than overwritten by the recompute.
                    self.quarantine(&o.digest);
                    ok = false;
                    continue;
                }
                Err(_) => {
                    ok = false;
                    continue;
                }
            }
            let actual = stat_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .digest(&path);
            match actual {
                Ok(d) if d == o.digest => {}
                Ok(_) => {
                    stat_cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .forget(&path);
                    self.quarantine(&o.digest);
                    ok = false;
                }
                Err(_) => ok = false,
            }
        }
        ok
    }

    /// The record of action `key`, if any. A record whose key or output digests are not digests is an error
    /// naming the file.
    pub fn get_action(&self, key: &str) -> Result<Option<ActionRecord>, StoreError> {
        let path = self.action_path(key);
        let rec: Option<ActionRecord> = read_json(&path)?;
        if let Some(r) = &rec {
            r.validate(&path)?;
        }
        Ok(rec)
    }

    fn code_path(&self, fingerprint: &str) -> Option<PathBuf> {
        let digest = code_digest(fingerprint);
        is_hex(digest, 32).then(|| self.root.join("code").join(format!("{digest}.json")))
    }

    /// Stores what the code fingerprint `fingerprint` covered, once: the manifest is a function of the digest.
    pub fn put_code(&self, fingerprint: &str, manifest: &CodeManifest) -> Result<(), StoreError> {
        let Some(path) = self.code_path(fingerprint) else {
            return Ok(());
        };
        if path.is_file() {
            return Ok(());
        }
        let bytes = serde_json::to_vec(manifest).expect("code manifests serialize");
        write_atomic(&path, &bytes)
    }

    /// What the code fingerprint `fingerprint` covered, if this store recorded it. Used only to explain a change,
    /// so an absent or unreadable manifest is `None` (the explanation falls back to the two digests).
    pub fn get_code(&self, fingerprint: &str) -> Option<CodeManifest> {
        let bytes = std::fs::read(self.code_path(fingerprint)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records a completed action (after all its objects are stored).
    pub fn put_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record).expect("records serialize");
        write_atomic(&self.action_path(&record.key), &bytes)
    }

    fn ref_path(&self, pipeline: &str) -> PathBuf {
        self.root.join("refs").join(format!("{pipeline}.json"))
    }

    /// The last recorded state of pipeline `name`. A ref naming an action by something that is not a digest is an
    /// error naming the file.
    pub fn get_ref(&self, name: &str) -> Result<Option<PipelineRef>, StoreError> {
        self.read_ref(&self.ref_path(name))
    }

    /// Reads and validates one ref file; an unreadable one is [`StoreError::BadRef`], naming the repair.
    fn read_ref(&self, path: &Path) -> Result<Option<PipelineRef>, StoreError> {
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::BadRef {
            path: path.to_path_buf(),
            source,
            repair: self.repair.clone(),
        };
        let pref = match read_json::<PipelineRef>(path) {
            Ok(p) => p,
            Err(StoreError::BadRecord { source, .. }) => return Err(bad(Box::new(source))),
            Err(e) => return Err(e),
        };
        if let Some(r) = &pref {
            r.validate(path).map_err(|e| bad(Box::new(e)))?;
        }
        Ok(pref)
    }

    /// The ref of pipeline `name` for a run that will rewrite it: an unreadable ref is set aside into
    /// `quarantine/refs/` (named in the returned note) and counts as absent, so one damaged file does not block the
    /// pipeline; its stages are found again by their keys. Call with the write lock held.
    pub fn get_ref_or_set_aside(
        &self,
        name: &str,
    ) -> Result<(Option<PipelineRef>, Option<String>), StoreError> {
        match self.get_ref(name) {
            Err(e @ StoreError::BadRef { .. }) => {
                let path = self.ref_path(name);
                let note = match self.set_aside(&path, "refs") {
                    Some(to) => format!("{e}; moved it to {}", to.display()),
                    None => e.to_string(),
                };
                Ok((None, Some(note)))
            }
            other => other.map(|r| (r, None)),
        }
    }

    /// Moves a damaged store file into `quarantine/<sub>/`, keeping earlier copies. Returns where it went.
    fn set_aside(&self, path: &Path, sub: &str) -> Option<PathBuf> {
        let dir = self.root.join("quarantine").join(sub);
        std::fs::create_dir_all(&dir).ok()?;
        let name = path.file_name()?.to_string_lossy().to_string();
        let mut to = dir.join(&name);
        let mut n = 1;
        while to.exists() {
            to = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        std::fs::rename(path, &to).ok()?;
        sync_dir(path.parent()?);
        Some(to)
    }

    /// Records the state of pipeline `name` and makes it the default for `show`, `log`, `query` and `export`.
    /// Writes nothing when both files already say so (a no-op rerun writes nothing). Returns whether it wrote.
    pub fn put_ref(&self, name: &str, pref: &PipelineRef) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec_pretty(pref).expect("refs serialize");
        let mut wrote = write_if_changed(&self.ref_path(name), &bytes)?;
        wrote |= write_if_changed(&self.root.join("refs").join("HEAD"), name.as_bytes())?;
        Ok(wrote)
    }

    /// Name of the pipeline run last, if any.
    pub fn head(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join("refs").join("HEAD"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Every pipeline ref, by name.
    /// Every pipeline ref, by name. One unreadable ref is an error ([`StoreError::BadRef`]): callers such as `gc`
    /// must not act on a partial view of what is kept.
    pub fn refs(&self) -> Result<BTreeMap<String, PipelineRef>, StoreError> {
        let mut out = BTreeMap::new();
        for path in self.ref_files()? {
            if let Some(r) = self.read_ref(&path)? {
                out.insert(ref_name(&path), r);
            }
        }
        Ok(out)
    }

    fn ref_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join("refs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
            let path = entry.map_err(StoreError::io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Finds the record of stage `name` in pipeline `pipeline` (default: the one run last).
    pub fn resolve_stage(
        &self,
        name: &str,
        pipeline: Option<&str>,
    ) -> Result<ActionRecord, StoreError> {
        let pipeline = pipeline.map(str::to_string).or_else(|| self.head());
        let Some(pipeline) = pipeline else {
            return Err(StoreError::UnknownStage {
                name: name.into(),
                scope: format!("store {}", self.root.display()),
                known: "(none: nothing has run with this store yet)".into(),
            });
        };
        let pref = self.get_ref(&pipeline)?.unwrap_or_default();
        let Some(sref) = pref.stages.get(name) else {
            return Err(StoreError::UnknownStage {
                name: name.into(),
                scope: format!("pipeline `{pipeline}`"),
                known: pref.stages.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        self.get_action(&sref.key)?
            .ok_or_else(|| StoreError::Missing {
                digest: sref.key.clone(),
                path: self.action_path(&sref.key),
            })
    }

    fn object_files(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let mut out = Vec::new();
        let objects = self.root.join("objects");
        for shard in std::fs::read_dir(&objects).map_err(StoreError::io(&objects))? {
            let shard = shard.map_err(StoreError::io(&objects))?.path();
            if !shard.is_dir() {
                continue;
            }
            for obj in std::fs::read_dir(&shard).map_err(StoreError::io(&shard))? {
                let p = obj.map_err(StoreError::io(&shard))?.path();
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if is_digest(&name) {
                    out.push((name, p));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn action_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        let actions = self.root.join("actions");
        for shard in std::fs::read_dir(&actions).map_err(StoreError::io(&actions))? {
            let shard = shard.map_err(StoreError::io(&actions))?.path();
            if !shard.is_dir() {
                continue;
            }
            for rec in std::fs::read_dir(&shard).map_err(StoreError::io(&shard))? {
                let p = rec.map_err(StoreError::io(&shard))?.path();
                if p.extension().is_some_and(|e| e == "json") {
                    out.push(p);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Checks every part of the store: re-hashes every object, reads every action record, ref, code manifest
    /// and stat-cache entry, and counts scratch and temp files.
    ///
    /// It takes no lock, so it can run beside a run or `gc` without waiting for them; it stays exact because
    /// writers only ever add an object before the record naming it and a record before the ref naming it, and
    /// `gc` removes in the opposite order. So a problem seen mid-scan is confirmed against the store as it is
    /// at the end (an object hashed after `gc` removed it, or a record written after the objects were listed,
    /// is not a problem).
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let present = self.verify_objects(&mut report)?;
        self.verify_records(&present, &mut report)?;
        self.verify_refs(&mut report)?;
        self.verify_stat_cache(&mut report);
        self.verify_code_manifests(&mut report);
        let count = |sub: &str| {
            std::fs::read_dir(self.root.join(sub))
                .map(|rd| rd.count() as u64)
                .unwrap_or(0)
        };
        report.stray_temp_files = count("tmp");
        report.scratch_dirs = count("work");
        report.quarantined_files = walk_count(&self.root.join("quarantine"));
        Ok(report)
    }

    /// Hashes every object; returns the digests present. An object that vanished while being read was removed
    /// by `gc` (it named nothing live), not damaged.
    fn verify_objects(&self, report: &mut VerifyReport) -> Result<BTreeSet<String>, StoreError> {
        use rayon::prelude::*;
        let objects = self.object_files()?;
        report.objects_checked = objects.len() as u64;
        let results: Vec<(String, Option<bool>)> = objects
            .into_par_iter()
            .map(|(digest, path)| {
                let ok = match super::files::hash_file(&path) {
                    Ok(actual) => Some(actual == digest),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(_) => Some(false),
                };
                (digest, ok)
            })
            .collect();
        let mut present = BTreeSet::new();
        for (digest, ok) in results {
            match ok {
                Some(true) => {
                    present.insert(digest);
                }
                Some(false) => report.corrupt.push(digest),
                None => {}
            }
        }
        Ok(present)
    }

    /// Reads every record; an output absent from `present` is missing only if it is still absent now and its
    /// record still names it (a concurrent run stores objects before their record).
    fn verify_records(
        &self,
        present: &BTreeSet<String>,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let mut missing = BTreeSet::new();
        for path in self.action_files()? {
            match read_json::<ActionRecord>(&path) {
                Ok(Some(rec)) if rec.validate(&path).is_ok() => {
                    report.records_checked += 1;
                    for o in rec.outputs.into_iter().chain(rec.logs) {
                        if !present.contains(&o.digest) && !report.corrupt.contains(&o.digest) {
                            missing.insert((o.digest, path.clone()));
                        }
                    }
                }
                // Removed by `gc` since the listing.
                Ok(None) => {}
                _ => {
                    report.records_checked += 1;
                    report.bad_records.push(path.display().to_string());
                }
            }
        }
        for (digest, record) in missing {
            if !self.object_path(&digest).is_file()
                && record.is_file()
                && !report.missing.contains(&digest)
            {
                report.missing.push(digest);
            }
        }
        Ok(())
    }

    /// Reads every ref; an entry whose record is absent is dangling if the ref still says so at the end.
    fn verify_refs(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        for path in self.ref_files()? {
            report.refs_checked += 1;
            let pref = match self.read_ref(&path) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(_) => {
                    report.bad_refs.push(path.display().to_string());
                    continue;
                }
            };
            let name = ref_name(&path);
            for (stage, sref) in &pref.stages {
                if self.action_path(&sref.key).is_file() {
                    continue;
                }
                let still = self
                    .read_ref(&path)
                    .ok()
                    .flatten()
                    .and_then(|now| now.stages.get(stage).map(|s| s.key == sref.key))
                    .unwrap_or(false);
                if still && !self.action_path(&sref.key).is_file() {
                    report
                        .dangling
                        .push(format!("{name}.{stage} -> {}", sref.key));
                }
            }
        }
        Ok(())
    }

    fn stat_cache_path(&self) -> PathBuf {
        self.root.join("statcache.json")
    }

    fn verify_stat_cache(&self, report: &mut VerifyReport) {
        let path = self.stat_cache_path();
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let Ok(cache) = serde_json::from_slice::<super::files::StatCache>(&bytes) else {
            report.bad_stat_cache = true;
            return;
        };
        let audit = cache.audit();
        report.stat_entries_checked = audit.checked;
        report.wrong_stat_entries = audit
            .wrong
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        report.stale_stat_entries = audit.stale.len() as u64;
    }

    fn verify_code_manifests(&self, report: &mut VerifyReport) {
        let Ok(rd) = std::fs::read_dir(self.root.join("code")) else {
            return;
        };
        let mut bad: Vec<String> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| match std::fs::read(p) {
                Ok(b) => serde_json::from_slice::<CodeManifest>(&b).is_err(),
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            })
            .map(|p| p.display().to_string())
            .collect();
        bad.sort();
        report.bad_code_manifests = bad;
    }

    /// Repairs what a [`VerifyReport`] found, so that the next `verify` calls the store clean in one pass:
    /// corrupt objects go to `quarantine/`; unreadable records, and records naming an object now absent, are
    /// removed (their stages recompute); unreadable refs are set aside into `quarantine/refs/`; ref entries
    /// whose record is gone are dropped; wrong and stale stat-cache entries are dropped (their files are hashed
    /// afresh); unreadable code manifests are removed. Call with the write lock held.
    pub fn repair(&self, report: &VerifyReport) -> Result<RepairReport, StoreError> {
        let mut done = RepairReport::default();
        for digest in &report.corrupt {
            if self.quarantine(digest).is_none() && self.object_path(digest).exists() {
                return Err(StoreError::Io {
                    source: std::io::Error::other("could not move the object to quarantine/"),
                    path: self.object_path(digest),
                });
            }
            done.quarantined.push(digest.clone());
        }
        for record in &report.bad_records {
            remove_if_present(Path::new(record))?;
            done.records_removed.push(record.clone());
        }
        for path in self.action_files()? {
            let Ok(Some(rec)) = read_json::<ActionRecord>(&path) else {
                continue;
            };
            if rec
                .outputs
                .iter()
                .chain(&rec.logs)
                .any(|o| !self.object_path(&o.digest).is_file())
            {
                remove_if_present(&path)?;
                done.records_removed.push(path.display().to_string());
            }
        }
        for r in &report.bad_refs {
            if let Some(to) = self.set_aside(Path::new(r), "refs") {
                done.refs_set_aside
                    .push((r.clone(), to.display().to_string()));
            }
        }
        for path in self.ref_files()? {
            let Ok(Some(mut pref)) = self.read_ref(&path) else {
                continue;
            };
            let name = ref_name(&path);
            let before: Vec<String> = pref.stages.keys().cloned().collect();
            pref.stages
                .retain(|_, s| self.action_path(&s.key).is_file());
            if pref.stages.len() != before.len() {
                for stage in before.iter().filter(|s| !pref.stages.contains_key(*s)) {
                    done.ref_entries_dropped.push(format!("{name}.{stage}"));
                }
                let bytes = serde_json::to_vec_pretty(&pref).expect("refs serialize");
                write_atomic(&path, &bytes)?;
            }
        }
        self.repair_stat_cache(report, &mut done)?;
        for m in &report.bad_code_manifests {
            remove_if_present(Path::new(m))?;
            done.code_manifests_removed += 1;
        }
        Ok(done)
    }

    fn repair_stat_cache(
        &self,
        report: &VerifyReport,
        done: &mut RepairReport,
    ) -> Result<(), StoreError> {
        let path = self.stat_cache_path();
        if report.bad_stat_cache {
            return remove_if_present(&path);
        }
        if report.wrong_stat_entries.is_empty() && report.stale_stat_entries == 0 {
            return Ok(());
        }
        let mut cache = super::files::StatCache::load(&path);
        let audit = cache.audit();
        done.stat_entries_dropped = cache.drop_entries(audit.wrong.iter().chain(&audit.stale));
        cache.save(&path)
    }

    /// Records in a stage's scratch space which pipeline stage is attempting action `key`, so that [`Store::gc`]
    /// can keep the checkpoints of an interrupted attempt.
    pub fn mark_attempt(&self, key: &str, pipeline: &str, stage: &str) -> Result<(), StoreError> {
        let dir = self.work_dir(key);
        std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let path = dir.join(ATTEMPT_FILE);
        let body = serde_json::json!({ "pipeline": pipeline, "stage": stage });
        std::fs::write(&path, body.to_string()).map_err(StoreError::io(&path))
    }

    /// Scratch directories to keep: per pipeline stage, the newest interrupted attempt (its checkpoints let the
    /// next run resume); older attempts of the same stage were superseded.
    fn resumable_attempts(&self) -> BTreeSet<String> {
        let mut newest: BTreeMap<(String, String), (std::time::SystemTime, String)> =
            BTreeMap::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("work")) else {
            return BTreeSet::new();
        };
        for e in rd.flatten() {
            let marker = e.path().join(ATTEMPT_FILE);
            let (Ok(text), Ok(meta)) =
                (std::fs::read_to_string(&marker), std::fs::metadata(&marker))
            else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let (Some(pipeline), Some(stage)) = (v["pipeline"].as_str(), v["stage"].as_str())
            else {
                continue;
            };
            let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            let key = e.file_name().to_string_lossy().to_string();
            let slot = newest
                .entry((pipeline.to_string(), stage.to_string()))
                .or_insert((when, key.clone()));
            if when > slot.0 {
                *slot = (when, key);
            }
        }
        newest.into_values().map(|(_, key)| key).collect()
    }

    /// Removes objects and action records that no pipeline ref reaches, and scratch space other than the newest
    /// interrupted attempt of each pipeline stage. Call with the write lock held.
    ///
    /// Order is what keeps the store consistent when `gc` is killed at any instant: unreachable records go first
    /// (and that is made durable), objects after, so no surviving record ever names a removed object; then the
    /// explanations (code manifests), the stat-cache entries of removed files, and scratch space.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, StoreError> {
        self.gc_keeping(dry_run, &BTreeSet::new())
    }

    /// [`Store::gc`] with `also_keep` (action keys: the kept runs of [`crate::runs::kept_keys`]) as roots beside
    /// the pipelines' refs.
    pub fn gc_keeping(
        &self,
        dry_run: bool,
        also_keep: &BTreeSet<String>,
    ) -> Result<GcReport, StoreError> {
        let live = self.live_set(also_keep)?;
        let mut report = GcReport::default();
        let mut record_dirs = BTreeSet::new();
        for path in self.action_files()? {
            let key = path.file_stem().unwrap().to_string_lossy().to_string();
            if !live.keys.contains(&key) {
                report.records_removed += 1;
                if !dry_run {
                    remove_if_present(&path)?;
                    record_dirs.extend(path.parent().map(Path::to_path_buf));
                }
            }
        }
        record_dirs.iter().for_each(|d| sync_dir(d));
        let mut removed = Vec::new();
        for (digest, path) in self.object_files()? {
            if live.objects.contains(&digest) {
                report.objects_kept += 1;
                continue;
            }
            report.bytes_freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !dry_run {
                // The stat cache names files by canonical path; take it while the file still exists.
                removed.push(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()));
                remove_if_present(&path)?;
            }
            report.objects_removed.push(digest);
        }
        if !dry_run {
            self.gc_code_manifests(&live.code);
            self.gc_logs(&live.keys);
            self.gc_stat_cache(&removed)?;
            self.gc_scratch(&live.keys);
        }
        Ok(report)
    }

    /// What the refs and `also_keep` reach: action keys, their output objects, and their code manifests.
    fn live_set(&self, also_keep: &BTreeSet<String>) -> Result<LiveSet, StoreError> {
        let mut live = LiveSet::default();
        let ref_keys: BTreeSet<String> = self
            .refs()?
            .values()
            .flat_map(|pref| pref.stages.values().map(|s| s.key.clone()))
            .collect();
        for key in ref_keys.union(also_keep) {
            live.keys.insert(key.clone());
            if let Some(rec) = self.get_action(key)? {
                live.objects
                    .extend(rec.outputs.into_iter().chain(rec.logs).map(|o| o.digest));
                live.code
                    .insert(format!("{}.json", code_digest(&rec.components.fingerprint)));
            }
        }
        Ok(live)
    }

    /// Code manifests only explain changes against kept records; the others can go.
    fn gc_code_manifests(&self, live_code: &BTreeSet<String>) {
        if let Ok(rd) = std::fs::read_dir(self.root.join("code")) {
            for e in rd.flatten() {
                if !live_code.contains(&e.file_name().to_string_lossy().to_string()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Job logs of actions no ref reaches.
    fn gc_logs(&self, live_keys: &BTreeSet<String>) {
        if let Ok(rd) = std::fs::read_dir(self.root.join("logs")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let key = name.split('.').next().unwrap_or_default();
                if !live_keys.contains(key) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Drops the stat-cache entries of removed objects, so the cache does not grow with every object ever made.
    fn gc_stat_cache(&self, removed: &[PathBuf]) -> Result<(), StoreError> {
        if removed.is_empty() {
            return Ok(());
        }
        let path = self.stat_cache_path();
        let mut cache = super::files::StatCache::load(&path);
        cache.drop_entries(removed.iter());
        cache.save(&path)
    }

    /// Temp files, and scratch directories other than live keys' and the newest interrupted attempts'.
    fn gc_scratch(&self, live_keys: &BTreeSet<String>) {
        let resumable = self.resumable_attempts();
        for dir in ["tmp", "work"] {
            let p = self.root.join(dir);
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    let keep =
                        dir == "work" && (live_keys.contains(&name) || resumable.contains(&name));
                    if !keep {
                        let _ = if e.path().is_dir() {
                            std::fs::remove_dir_all(e.path())
                        } else {
                            std::fs::remove_file(e.path())
                        };
                    }
                }
            }
        }
    }
}

/// What the pipeline refs reach, and so what `gc` keeps.
#[derive(Default)]
struct LiveSet {
    keys: BTreeSet<String>,
    objects: BTreeSet<String>,
    code: BTreeSet<String>,
}

/// Removes a file; one already gone (removed by someone else meanwhile) is fine.
fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Regular files at or below `dir` (0 when it does not exist).
fn walk_count(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
