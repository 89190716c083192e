//! Input files: listing, content hashing, and the stat cache that keeps unchanged corpora from being re-read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::{StageError, StoreError};

/// Every regular file at or below `path`, sorted, so that the digest of a directory input is order-independent.
pub fn walk_files(path: &Path) -> Result<Vec<PathBuf>, StageError> {
    let meta = std::fs::metadata(path).map_err(StageError::io(path))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(StageError::io(&dir))? {
            let entry = entry.map_err(StageError::io(&dir))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(StageError::io(&p))?;
            if ft.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Size and modification time of a file, to notice that it changed between two moments of a run.
pub(crate) fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.len(), m.modified().ok()?)))
}

/// Bytes read per step when hashing or copying a file: big enough for blake3 to hash each chunk on all rayon
/// threads, small enough that hashing a 14 GB model costs a few MiB of memory.
pub const STREAM_CHUNK: usize = 4 << 20;

/// blake3 of a file's bytes, read in [`STREAM_CHUNK`]s (each hashed on all rayon threads). Streaming rather than
/// memory-mapping keeps the resident set at one chunk: a mapped multi-gigabyte object would count whole.
pub fn hash_file(path: &Path) -> Result<String, std::io::Error> {
    let mut file = std::fs::File::open(path)?;
    Ok(hash_stream(&mut file, None::<&mut std::fs::File>)?.0)
}

/// Hashes `reader` to its end, writing every chunk to `sink` too when given; returns (blake3 hex, bytes read).
pub fn hash_stream(
    reader: &mut impl std::io::Read,
    mut sink: Option<&mut impl std::io::Write>,
) -> Result<(String, u64), std::io::Error> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut total = 0u64;
    loop {
        // Fill the buffer as far as the reader allows, so every chunk but the last is full (parallel hashing
        // pays only on large updates).
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        if filled >= 128 * 1024 {
            hasher.update_rayon(chunk);
        } else {
            hasher.update(chunk);
        }
        if let Some(w) = sink.as_mut() {
            w.write_all(chunk)?;
        }
        total += filled as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), total))
}

/// What a file looked like when its digest was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    digest: String,
}

/// What [`StatCache::audit`] found.
#[derive(Debug, Default)]
pub struct StatAudit {
    /// Entries whose file was unchanged and hashed again.
    pub checked: u64,
    /// Of those, the ones whose recorded digest is wrong.
    pub wrong: Vec<PathBuf>,
    /// Entries whose file changed or vanished since.
    pub stale: Vec<PathBuf>,
}

/// Maps absolute paths to (size, mtime, inode) → digest, persisted in the store as `statcache.json`.
///
/// Like git's index, an entry whose mtime is too close to the moment it was hashed is not trusted ("racy" files:
/// a write in the same clock tick would not change the mtime), so such files are re-hashed next time.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatCache {
    entries: BTreeMap<PathBuf, StatEntry>,
    #[serde(skip)]
    dirty: bool,
}

const RACY_WINDOW_NS: i128 = 2_000_000_000;

fn stat(path: &Path) -> std::io::Result<(u64, i128, u64)> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta.modified()?;
    let mtime_ns = match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok((meta.len(), mtime_ns, inode))
}

impl StatCache {
    /// Loads the cache file, or starts empty when it is absent or unreadable (it is only an accelerator).
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the cache back if it changed.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec(self).expect("stat cache serializes");
        super::store::write_atomic(path, &bytes)
    }

    /// Drops what is known about `path` (its content no longer matches the recorded digest).
    pub fn forget(&mut self, path: &Path) {
        if let Ok(abs) = std::fs::canonicalize(path) {
            self.dirty |= self.entries.remove(&abs).is_some();
        }
    }

    /// Whether something changed since [`StatCache::load`] (so [`StatCache::save`] would write).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Checks every entry against its file: an entry whose file is unchanged (same size, mtime, inode) is
    /// hashed again and must match; an entry whose file changed or vanished is stale (harmless: the next read
    /// re-hashes it). Files are hashed in parallel.
    pub fn audit(&self) -> StatAudit {
        use rayon::prelude::*;
        let verdicts: Vec<(&PathBuf, Option<bool>)> = self
            .entries
            .par_iter()
            .map(|(path, e)| {
                let unchanged = stat(path).is_ok_and(|(size, mtime_ns, inode)| {
                    (size, mtime_ns, inode) == (e.size, e.mtime_ns, e.inode)
                });
                let verdict = unchanged
                    .then(|| hash_file(path).ok().map(|d| d == e.digest))
                    .flatten();
                (path, verdict)
            })
            .collect();
        let mut audit = StatAudit::default();
        for (path, verdict) in verdicts {
            match verdict {
                Some(true) => audit.checked += 1,
                Some(false) => {
                    audit.checked += 1;
                    audit.wrong.push(path.clone());
                }
                None => audit.stale.push(path.clone()),
            }
        }
        audit
    }

    /// Drops the entries of `paths` (as canonical paths, as the cache names them). Returns how many it dropped.
    pub fn drop_entries<'a>(&mut self, paths: impl Iterator<Item = &'a PathBuf>) -> u64 {
        let mut n = 0;
        for p in paths {
            if self.entries.remove(p).is_some() {
                n += 1;
            }
        }
        self.dirty |= n > 0;
        n
    }

    /// The digest of `path`, from the cache when size, mtime and inode are unchanged, else by reading the file.
    pub fn digest(&mut self, path: &Path) -> std::io::Result<String> {
        let abs = std::fs::canonicalize(path)?;
        let (size, mtime_ns, inode) = stat(&abs)?;
        if let Some(e) = self.entries.get(&abs)
            && e.size == size
            && e.mtime_ns == mtime_ns
            && e.inode == inode
        {
            return Ok(e.digest.clone());
        }
        let digest = hash_file(&abs)?;
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        // Only a change of what is recorded makes the cache dirty, so a rerun that learns nothing writes nothing.
        if now_ns - mtime_ns > RACY_WINDOW_NS {
            let entry = StatEntry {
                size,
                mtime_ns,
                inode,
                digest: digest.clone(),
            };
            if self.entries.get(&abs) != Some(&entry) {
                self.entries.insert(abs, entry);
                self.dirty = true;
            }
        } else if self.entries.remove(&abs).is_some() {
            self.dirty = true;
        }
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    fn blake3_hex(b: &[u8]) -> String {
        blake3::hash(b).to_hex().to_string()
    }

    /// Writes `content` to `f` and sets its mtime to `mtime` (same inode: `fs::write` truncates in place).
    fn write_with_mtime(f: &Path, content: &str, mtime: SystemTime) {
        std::fs::write(f, content).unwrap();
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn stat_cache_detects_content_change_with_same_size() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        // Back-dated well outside the racy window, so the first digest is cached.
        let old = SystemTime::now() - Duration::from_secs(60);
        write_with_mtime(&f, "hello", old);
        let mut cache = StatCache::default();
        assert_eq!(cache.digest(&f).unwrap(), blake3_hex(b"hello"));

        // A same-size edit that keeps size, mtime and inode is, by design, not seen: the cached digest comes back.
        // This proves the cache was hit (a re-hash would give jello's digest).
        write_with_mtime(&f, "jello", old);
        assert_eq!(
            cache.digest(&f).unwrap(),
            blake3_hex(b"hello"),
            "the stat cache was not consulted"
        );

        // The same-size edit with a new mtime (still outside the racy window) is a miss: the file is re-hashed.
        write_with_mtime(&f, "jello", old + Duration::from_secs(1));
        assert_eq!(cache.digest(&f).unwrap(), blake3_hex(b"jello"));
        // And the new digest is what is cached now.
        write_with_mtime(&f, "mello", old + Duration::from_secs(1));
        assert_eq!(cache.digest(&f).unwrap(), blake3_hex(b"jello"));
    }

    #[test]
    fn stat_cache_does_not_trust_files_modified_within_the_racy_window() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        let now = SystemTime::now();
        write_with_mtime(&f, "hello", now);
        let mut cache = StatCache::default();
        assert_eq!(cache.digest(&f).unwrap(), blake3_hex(b"hello"));
        // Same size, same mtime, same inode: were the entry kept, this would return hello's digest.
        write_with_mtime(&f, "jello", now);
        assert_eq!(cache.digest(&f).unwrap(), blake3_hex(b"jello"));
    }
}
