//! Every registered kind carries a real code fingerprint, and it describes the sources of this very checkout.

mod common;

use std::collections::BTreeSet;

#[test]
fn every_registered_kind_has_a_real_fingerprint_of_the_current_sources() {
    let registry = alinea::stages::registry();
    let mut digests = BTreeSet::new();
    for kind in registry.iter() {
        let code = kind.code();
        let name = kind.kind();
        assert_eq!(code.digest.len(), 32, "{name}: {}", code.digest);
        assert!(code.digest.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert!(
            kind.fingerprint().starts_with(code.digest) && kind.fingerprint().contains("+v"),
            "{name}"
        );
        assert!(
            digests.insert(code.digest),
            "{name} shares a digest with another kind"
        );
        let folder = format!("src/stages/{}/mod.rs", name.replace('.', "_"));
        assert!(
            code.files.iter().any(|(f, _)| *f == folder),
            "{name} lacks its own folder {folder}"
        );
        assert!(
            code.files
                .iter()
                .any(|(f, _)| *f == "crates/engine/src/table.rs"),
            "{name}: the Parquet writer shapes its bytes"
        );
        assert!(
            code.deps.iter().any(|(d, _)| d.starts_with("lock polars ")),
            "{name}: polars writes its tables"
        );
        assert!(
            code.build
                .iter()
                .any(|(k, v)| *k == "rustc" && v.starts_with("rustc ")),
            "{name}: toolchain"
        );
        for (file, hash) in code.files {
            let bytes = std::fs::read(common::repo().join(file))
                .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
            assert_eq!(
                blake3::hash(&bytes).to_hex().as_str(),
                *hash,
                "{name}: {file} changed since the build hashed it"
            );
        }
    }
    assert!(digests.len() >= 23, "{} kinds", digests.len());
}
