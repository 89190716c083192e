//! Computes the code fingerprint of every stage kind from its own source folder, so that editing one stage
//! invalidates only that stage's cached results (and not, say, a change to the CLI).
//!
//! A stage folder may name extra sources it depends on with lines `// fingerprint-include: <path>` (relative to
//! the package root), e.g. the domain crate it wraps.

use std::fs;
use std::path::{Path, PathBuf};

fn files_below(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for entry in entries {
        files_below(&entry, out);
    }
}

fn fingerprint(root: &Path, folder: &Path) -> String {
    let mut files = Vec::new();
    files_below(folder, &mut files);
    let mut includes = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("// fingerprint-include:") {
                includes.push(root.join(rest.trim()));
            }
        }
    }
    for include in includes {
        println!("cargo:rerun-if-changed={}", include.display());
        files_below(&include, &mut files);
    }
    files.sort();
    files.dedup();
    let mut hasher = blake3::Hasher::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap_or(&file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        hasher.update(&fs::read(&file).unwrap_or_default());
        hasher.update(&[0]);
    }
    hasher.finalize().to_hex()[..16].to_string()
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let stages = root.join("src/stages");
    println!("cargo:rerun-if-changed=src/stages");
    let mut folders: Vec<PathBuf> = fs::read_dir(&stages)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    folders.sort();
    let mut code = String::from(
        "/// Code fingerprints of the stage folders, made by build.rs.\npub static FINGERPRINTS: &[(&str, &str)] = &[\n",
    );
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        code.push_str(&format!(
            "    ({:?}, {:?}),\n",
            name,
            fingerprint(&root, &folder)
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("fingerprints.rs");
    fs::write(out, code).unwrap();
}
