//! A seeded, in-process mutation fuzzer for the readers of untrusted input (pipeline files, corpora), run by
//! `cargo test` for a bounded number of executions so that CI exercises it on every change.
//!
//! Why not `cargo fuzz`: it needs a nightly toolchain and libFuzzer, which CI does not have; a deterministic
//! mutator over real seed files finds the same class of bugs here (panics on malformed input) and replays
//! exactly. Inputs that once failed live in `tests/data/fuzz/<target>/` and run first, as regression tests.
//! `ALINEA_FUZZ_ITERS` sets the executions per target (default 2000); a failing input is written to
//! `target/fuzz-failures/` and named in the panic message, ready to be added to the corpus; after an abort (which
//! no test can catch) the input that caused it is `target/fuzz-failures/<target>-current.bin`.

use std::path::{Path, PathBuf};

/// Bytes that matter to the formats fuzzed here: structure of TOML, TSV, JSON and line ends, and bytes that
/// are not UTF-8.
const DICTIONARY: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[",
    b"=",
    b"\"",
    b"'",
    b"\n",
    b"\r",
    b"\r\n",
    b"\t",
    b"{",
    b"}",
    b",",
    b":",
    b"\\",
    b"${",
    b"${HOME}",
    b"inputs",
    b"kind",
    b"matrix",
    b"version",
    b"stages.",
    b".",
    b"\xFF",
    b"\xC3",
    b"\xEF\xBB\xBF",
    b"0",
    b"-1",
    b"1e999",
    b"nan",
    b"\"\"\"",
    b"#",
    b"null",
    b"true",
];

/// xorshift64*: small, seeded, the same stream on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits of `input`: flip, insert, delete, duplicate, or splice a dictionary token or a
/// piece of another seed.
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let piece = out[start..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(64)).min(other.len());
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ => out.insert(at, rng.next() as u8),
        }
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The regression inputs of `target`, sorted.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo().join("tests/data/fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("corpus file readable");
            (p, bytes)
        })
        .collect()
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!(
        "{target}-{}.bin",
        &blake3::hash(input).to_hex()[..16]
    ));
    let _ = std::fs::write(&path, input);
    path
}

/// Runs `check` on the regression corpus of `target`, then on `ALINEA_FUZZ_ITERS` mutations of `seeds`.
/// `check` returns `Err` for a wrong (not merely rejected) outcome; a panic is a failure too. Returns the number
/// of executions.
pub fn fuzz(target: &str, seeds: &[Vec<u8>], check: impl Fn(&[u8]) -> Result<(), String>) -> u64 {
    assert!(!seeds.is_empty(), "fuzz target {target} has no seeds");
    let iters: u64 = std::env::var("ALINEA_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // An abort (a failed allocation, say) cannot be caught: the input about to run is on disk first.
    let current = repo()
        .join("target/fuzz-failures")
        .join(format!("{target}-current.bin"));
    let _ = std::fs::create_dir_all(current.parent().unwrap());
    let run = |input: &[u8], origin: &dyn Fn() -> String| {
        let _ = std::fs::write(&current, input);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(wrong)) => wrong,
            Err(p) => format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        };
        let saved = save_failure(target, input);
        panic!(
            "fuzz target {target}: {failure}\n  input ({}) saved as {}",
            origin(),
            saved.display()
        );
    };
    let mut executions = 0;
    for (path, bytes) in corpus(target) {
        run(&bytes, &|| format!("regression {}", path.display()));
        executions += 1;
    }
    let mut rng = Rng(0xA11_17EA ^ blake3::hash(target.as_bytes()).as_bytes()[0] as u64);
    for i in 0..iters {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed, seeds);
        run(&input, &|| format!("mutation {i}"));
        executions += 1;
    }
    executions
}

/// Every file directly in `dir` (relative to the repository) with extension `ext`, as seeds.
pub fn seeds_from(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .expect("seed directory exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("seed readable"))
        .collect()
}

/// Checks that an error message names `path`, as every reader's errors must.
pub fn names_file(message: &str, path: &Path) -> Result<(), String> {
    if message.contains(&path.display().to_string()) {
        Ok(())
    } else {
        Err(format!("error does not name {}: {message}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_parser_never_panics_and_locates_its_errors() {
        let registry = crate::stages::registry();
        let mut seeds = seeds_from("pipelines", "toml");
        seeds.extend(seeds_from("tests/data/pipelines", "toml"));
        let path = repo().join("pipelines/fuzzed.toml");
        let n = fuzz("pipeline", &seeds, |bytes| {
            let text = String::from_utf8_lossy(bytes);
            match alinea_engine::plan::parse("fuzzed.toml", &text, &path, &registry, &[]) {
                Ok(_) => Ok(()),
                Err(e) if e.file == "fuzzed.toml" && (e.line > 0 || e.col == 0) => Ok(()),
                Err(e) => Err(format!("error not located in the file: {e}")),
            }
        });
        assert!(n > 0);
    }

    #[test]
    fn overrides_never_panic() {
        let seeds: Vec<Vec<u8>> = [
            "sample.per_lang=500",
            "opus.langs=[\"be\", \"li\"]",
            "train.lora.r=8",
            "x.mode=pass",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        fuzz("override", &seeds, |bytes| {
            let _ = String::from_utf8_lossy(bytes).parse::<alinea_engine::plan::Override>();
            Ok(())
        });
    }
}
