//! Peak resident memory and throughput of storing and reading a large blob (`ALINEA_BENCH_BLOB_MB`, default 2048).
//!
//! Each phase resets the process's peak RSS (`/proc/self/clear_refs` ← 5) and reads `VmHWM` after it, so every
//! figure is that phase's own high-water mark. Phases: `put_file` copying into the store (hash while copying),
//! `put_file` of a scratch file (hash, then rename: no copy), re-storing a blob the store holds (verify, drop),
//! `verified_path` (one streaming hash), `materialize` (hard link), and the peer: the path every blob took before,
//! `put_bytes(std::fs::read(..))` then `get_bytes`. Linux only (it reads `/proc`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use alinea_engine::Store;

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("write /proc/self/clear_refs");
}

/// Runs `f` and prints its wall time, throughput over `bytes`, and the peak RSS it reached.
fn phase<T>(name: &str, bytes: u64, f: impl FnOnce() -> T) -> (T, u64) {
    reset_peak();
    let base = status_kb("VmRSS:");
    let t = Instant::now();
    let out = f();
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:");
    println!(
        "{name:<44} {secs:>7.2} s {:>8.0} MB/s   peak RSS {:>7.1} MB (+{:.1} MB over the {:.1} MB before)",
        bytes as f64 / 1e6 / secs,
        peak as f64 / 1024.0,
        peak.saturating_sub(base) as f64 / 1024.0,
        base as f64 / 1024.0
    );
    (out, peak)
}

/// Writes `mb` MiB of pseudo-random bytes (xorshift; incompressible, so no filesystem shortcut applies).
fn write_blob(path: &Path, mb: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
}

fn main() {
    let mb: u64 = std::env::var("ALINEA_BENCH_BLOB_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let bytes = mb << 20;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = dir.path().join("blob.bin");
    print!("writing a {mb} MiB blob ... ");
    std::io::stdout().flush().unwrap();
    write_blob(&source, mb);
    println!("done");
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", loadavg.trim());

    let store = Store::open(dir.path().join("store")).unwrap();
    let ((digest, size), copy_peak) = phase("put_file (copy into the store)", bytes, || {
        store.put_file(&source, false).unwrap()
    });
    assert_eq!(size, bytes);
    phase("put_file again (already stored: verify)", bytes, || {
        store.put_file(&source, false).unwrap()
    });
    let (_, verify_peak) = phase("verified_path (streaming hash)", bytes, || {
        store.verified_path(&digest).unwrap()
    });
    let linked = dir.path().join("linked.bin");
    let (linked_ok, _) = phase("materialize (hard link after verifying)", bytes, || {
        store.materialize(&digest, &linked).unwrap()
    });
    println!(
        "  materialized by {}",
        if linked_ok { "hard link" } else { "copy" }
    );

    // A stage's scratch file is renamed into a store that does not hold it yet.
    let fresh = Store::open(dir.path().join("store-rename")).unwrap();
    let scratch = fresh.work_dir("bench");
    std::fs::create_dir_all(&scratch).unwrap();
    let in_scratch = scratch.join("model.safetensors");
    std::fs::copy(&source, &in_scratch).unwrap();
    let ((renamed, _), rename_peak) = phase("put_file (scratch file: hash, rename)", bytes, || {
        fresh.put_file(&in_scratch, true).unwrap()
    });
    assert_eq!(renamed, digest);
    drop(fresh);
    std::fs::remove_dir_all(dir.path().join("store-rename")).unwrap();

    // The peer: what every blob did before (a fresh store, so the write really happens).
    let peer = Store::open(dir.path().join("store-peer")).unwrap();
    let (_, peer_put_peak) = phase("peer: put_bytes(fs::read(..))", bytes, || {
        let data = std::fs::read(&source).unwrap();
        peer.put_bytes(&data).unwrap()
    });
    let (_, peer_get_peak) = phase("peer: get_bytes", bytes, || {
        peer.get_bytes(&digest).unwrap().len()
    });
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", loadavg.trim());
    println!(
        "peak RSS, peer / by path: store (copy) {:.1}x, store (rename) {:.1}x, read {:.1}x",
        peer_put_peak as f64 / copy_peak as f64,
        peer_put_peak as f64 / rename_peak as f64,
        peer_get_peak as f64 / verify_peak as f64
    );
}
