//! Engine benchmarks (run with `cargo bench --bench engine`): no-op rerun of a 10-stage pipeline and of the demo
//! (wall and CPU time, and the fsyncs it makes, counted with `strace` when it is installed), hashing throughput of
//! a 1 GB input (cold and through the stat cache), and ingestion throughput on OPUS-100 text.
//! Figures are printed, not asserted: they go in the notes.
//!
//! The demo's store is kept in the target directory (`bench-demo-store`) so that its LoRA training runs once, not
//! at every bench run; `ALINEA_BENCH_ONLY=noop` runs the no-op figures alone.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use alinea_engine::files::{StatCache, hash_file};

fn alinea(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alinea"));
    c.arg("--store")
        .arg(store)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_json(store: &Path, args: &[&str]) -> serde_json::Value {
    let out = alinea(store)
        .arg("--json")
        .args(args)
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn noop_rerun(dir: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let pipeline = dir.join("ten.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nroot = \"{root}\"\n\
             [stages.opus]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"datasets/opus-100\" }}\nlangs = [\"be\", \"li\"]\n\
             [stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\", \"li\"]\n\
             [stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus\" }}\nmatrix = {{ per_lang = [100, 200, 400, 800] }}\n\
             [stages.dev]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nmatrix = {{ per_lang = [50, 100, 200, 400] }}\n"
        ),
    )
    .unwrap();
    let store = dir.join("store-noop");
    let p = pipeline.to_str().unwrap();
    let first = run_json(&store, &["run", p]);
    assert_eq!(first["stages"].as_array().unwrap().len(), 10);
    run_json(&store, &["run", p]);
    let mut walls = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let out = alinea(&store).args(["--json", "run", p]).output().unwrap();
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(out.status.success());
    }
    println!(
        "no-op rerun, 10-stage pipeline: median {:.1} ms wall (process start to exit, 20 runs; min {:.1} ms)",
        median(walls.clone()),
        walls.iter().cloned().fold(f64::MAX, f64::min)
    );
}

/// CPU seconds (user + system) of the children reaped so far.
fn children_cpu() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is a valid selector.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage that outlives the call.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    }
    #[cfg(not(unix))]
    0.0
}

/// Calls of `fsync`/`fdatasync` and renames (each a file written into the store) made by one run, from
/// `strace -f -c`; `None` when strace is not installed or not permitted.
fn syscall_counts(store: &Path, args: &[&str]) -> Option<(u64, u64)> {
    let out = store.with_extension("strace.txt");
    let status = Command::new("strace")
        .args([
            "-f",
            "-c",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "-o",
        ])
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_alinea"))
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out).ok()?;
    let calls = |names: &[&str]| -> u64 {
        text.lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                let name = *cols.last()?;
                // % time, seconds, usecs/call, calls, [errors,] syscall
                names
                    .contains(&name)
                    .then(|| cols.get(3)?.parse::<u64>().ok())?
            })
            .sum()
    };
    Some((
        calls(&["fsync", "fdatasync"]),
        calls(&["rename", "renameat", "renameat2"]),
    ))
}

/// No-op rerun of the demo (25 stages, LoRA training included) on a fully cached store: the median of 20 runs,
/// process start to exit, with the CPU time and the fsyncs of one run.
fn noop_rerun_demo() {
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-demo-store");
    let args = ["--json", "run", "pipelines/demo.toml"];
    let t = Instant::now();
    let first = run_json(&store, &["run", "pipelines/demo.toml"]);
    let ran = first["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "ran")
        .count();
    eprintln!(
        "demo store {}: {ran} stages ran in {:.1} s to fill it",
        store.display(),
        t.elapsed().as_secs_f64()
    );
    // Once more: objects written by the first run are verified and their stamps recorded (one stat-cache write).
    run_json(&store, &["run", "pipelines/demo.toml"]);
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let c0 = children_cpu();
        let t = Instant::now();
        let out = alinea(&store).args(args).output().unwrap();
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        cpus.push((children_cpu() - c0) * 1000.0);
        assert!(out.status.success());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            report["stages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "cached"),
            "a no-op rerun ran something"
        );
    }
    let syscalls = match syscall_counts(&store, &args) {
        Some((fsyncs, renames)) => format!("{fsyncs} fsyncs, {renames} files renamed into place"),
        None => "fsyncs not counted (strace unavailable)".into(),
    };
    println!(
        "no-op rerun, demo (25 stages): median {:.1} ms wall, {:.1} ms CPU (process start to exit, 20 runs; min {:.1} ms wall); {syscalls}",
        median(walls.clone()),
        median(cpus),
        walls.iter().cloned().fold(f64::MAX, f64::min)
    );
}

fn hashing(dir: &Path) {
    let file = dir.join("one-gb.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for i in 0..1024u32 {
            let mut b = block.clone();
            b[..4].copy_from_slice(&i.to_le_bytes());
            f.write_all(&b).unwrap();
        }
    }
    // Let the racy-mtime window pass so the stat cache trusts the entry.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let t = Instant::now();
    let d1 = hash_file(&file).unwrap();
    let in_cache = t.elapsed().as_secs_f64();
    let evicted = evict_from_page_cache(&file);
    let t = Instant::now();
    let d0 = hash_file(&file).unwrap();
    let from_disk = t.elapsed().as_secs_f64();
    assert_eq!(d0, d1);
    let mut cache = StatCache::default();
    let d2 = cache.digest(&file).unwrap();
    assert_eq!(d1, d2);
    let t = Instant::now();
    for _ in 0..1000 {
        cache.digest(&file).unwrap();
    }
    let warm = t.elapsed().as_secs_f64() / 1000.0;
    println!(
        "hashing 1 GiB: {:.2} s = {:.0} MB/s with the file in the page cache; {:.2} s = {:.0} MB/s read from disk{} (blake3, mmap + rayon, {} threads); through the stat cache: {:.1} µs per lookup",
        in_cache,
        1073.741824 / in_cache,
        from_disk,
        1073.741824 / from_disk,
        if evicted {
            ""
        } else {
            " (eviction refused: this figure may be warm)"
        },
        rayon::current_num_threads(),
        warm * 1e6
    );
    std::fs::remove_file(&file).unwrap();
}

/// Drops a file's pages from the page cache (fsync, then POSIX_FADV_DONTNEED), so the next read comes from disk
/// without needing root to drop every cache.
fn evict_from_page_cache(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: a valid open descriptor; offset 0 and length 0 mean the whole file.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

fn ingestion(dir: &Path) {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/opus-100/opus-100-corpus/v1.0");
    assert!(
        shared.exists(),
        "ingestion bench needs {}",
        shared.display()
    );
    // be-en train (67,312 pairs) repeated 8 times in an OPUS-100 layout.
    let root = dir.join("opus");
    let pair = root.join("supervised/be-en");
    std::fs::create_dir_all(&pair).unwrap();
    let mut bytes = 0u64;
    for lang in ["be", "en"] {
        let text = std::fs::read(shared.join(format!("supervised/be-en/opus.be-en-train.{lang}")))
            .unwrap();
        let big: Vec<u8> = text.repeat(8);
        bytes += big.len() as u64;
        std::fs::write(pair.join(format!("opus.be-en-train.{lang}")), big).unwrap();
    }
    let pipeline = dir.join("ingest.toml");
    std::fs::write(&pipeline, format!("[stages.opus]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"{}\" }}\nlangs = [\"be\"]\nsplits = [\"train\"]\n", root.display())).unwrap();
    let store = dir.join("store-ingest");
    let t = Instant::now();
    let report = run_json(&store, &["run", pipeline.to_str().unwrap()]);
    let wall = t.elapsed().as_secs_f64();
    let stage_ms = report["stages"][0]["duration_ms"].as_f64().unwrap();
    println!(
        "ingestion: {:.1} MB of OPUS-100 text ({} pairs) in {:.2} s stage time ({:.0} MB/s; incl. hashing, parsing, Parquet encoding), {:.2} s process wall",
        bytes as f64 / 1e6,
        report["stages"][0]["rows"],
        stage_ms / 1000.0,
        bytes as f64 / 1e6 / (stage_ms / 1000.0),
        wall
    );
    query(&store);
}

/// `alinea query` over the ingested table (538,496 rows): an aggregation, a string filter with a sort, and a
/// self-join, median process wall of 3 (the query engine is built at opt-level 1 in release; see Cargo.toml).
fn query(store: &Path) {
    for (what, sql) in [
        (
            "group-by",
            "SELECT lang, count(*) AS n, avg(length(src)) AS src_len, max(length(tgt)) AS tgt_max FROM opus GROUP BY lang",
        ),
        (
            "filter+sort",
            "SELECT pair_id, src FROM opus WHERE src LIKE '%the%' AND length(tgt) > 40 ORDER BY length(src) DESC LIMIT 20",
        ),
        (
            "self-join",
            "SELECT count(*) FROM opus a JOIN opus b ON a.src = b.src WHERE a.pair_id < b.pair_id",
        ),
    ] {
        let times: Vec<f64> = (0..3)
            .map(|_| {
                let t = Instant::now();
                let out = alinea(store).args(["query", sql]).output().unwrap();
                assert!(
                    out.status.success(),
                    "{sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                t.elapsed().as_secs_f64()
            })
            .collect();
        println!(
            "query {what} over 538,496 rows: {:.2} s median process wall",
            median(times)
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let dir = tempfile::tempdir().unwrap();
    noop_rerun(dir.path());
    noop_rerun_demo();
    if std::env::var("ALINEA_BENCH_ONLY").as_deref() == Ok("noop") {
        return;
    }
    hashing(dir.path());
    ingestion(dir.path());
}
