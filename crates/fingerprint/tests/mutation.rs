//! Mutation tests of the fingerprint rule, on a copy of this very workspace: an edit inside a kind's closure changes
//! its digest, an edit outside leaves it alone; and on small workspaces, each kind of edge and each error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use alinea_fingerprint::{Error, GeneratedModule, Workspace, files_below, stage_impls};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    for file in files_below(from).unwrap() {
        let rel = file.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

/// The sources and manifests of the workspace (no target, no data), copied into a temporary directory.
fn workspace_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo();
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root.join(f), dir.path().join(f)).unwrap();
    }
    copy_tree(&root.join("src"), &dir.path().join("src"));
    for member in std::fs::read_dir(root.join("crates")).unwrap() {
        let member = member.unwrap().path();
        let name = member.file_name().unwrap();
        std::fs::create_dir_all(dir.path().join("crates").join(name)).unwrap();
        std::fs::copy(
            member.join("Cargo.toml"),
            dir.path().join("crates").join(name).join("Cargo.toml"),
        )
        .unwrap();
        copy_tree(
            &member.join("src"),
            &dir.path().join("crates").join(name).join("src"),
        );
    }
    dir
}

/// Stage folder → (closure files, digest), computed as build.rs does.
fn kinds(root: &Path) -> BTreeMap<String, (BTreeSet<String>, String)> {
    let (ws, folders) = load(root);
    digests(&ws, &folders)
}

/// The workspace at `root` with its stage folders declared as build.rs declares them.
fn load(root: &Path) -> (Workspace, Vec<PathBuf>) {
    let stages = root.join("src/stages");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&stages)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let generated: Vec<GeneratedModule> = folders
        .iter()
        .map(|f| GeneratedModule {
            package: "alinea".into(),
            parent: vec!["stages".into()],
            name: f.file_name().unwrap().to_string_lossy().into(),
            file: f.join("mod.rs"),
        })
        .collect();
    (Workspace::load(root, &generated).unwrap(), folders)
}

fn digests(ws: &Workspace, folders: &[PathBuf]) -> BTreeMap<String, (BTreeSet<String>, String)> {
    let build = BTreeMap::from([("rustc".to_string(), "test".to_string())]);
    folders
        .iter()
        .map(|f| {
            assert_eq!(
                stage_impls(&f.join("mod.rs"), "Stage").unwrap().len(),
                1,
                "{}",
                f.display()
            );
            let reach = ws.reach(&files_below(f).unwrap()).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            (
                name,
                (reach.files.keys().cloned().collect(), reach.digest(&build)),
            )
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap();
    s.push_str(text);
    std::fs::write(path, s).unwrap();
}

fn changed(
    before: &BTreeMap<String, (BTreeSet<String>, String)>,
    after: &BTreeMap<String, (BTreeSet<String>, String)>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(k, (_, d))| &after[*k].1 != d)
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn every_file_of_a_closure_moves_exactly_the_kinds_that_reach_it() {
    let dir = workspace_copy();
    // Appending a comment changes no module structure: the parsed workspace stays valid, only hashes move.
    let (ws, folders) = load(dir.path());
    let before = digests(&ws, &folders);
    let all_files: BTreeSet<String> = before
        .values()
        .flat_map(|(files, _)| files.iter().cloned())
        .collect();
    assert!(
        all_files.len() > 40,
        "closures cover {} files",
        all_files.len()
    );
    for file in &all_files {
        let path = dir.path().join(file);
        let original = std::fs::read(&path).unwrap();
        append(&path, "\n// mutated\n");
        let after = digests(&ws, &folders);
        let expected: BTreeSet<String> = before
            .iter()
            .filter(|(_, (files, _))| files.contains(file))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(changed(&before, &after), expected, "editing {file}");
        std::fs::write(&path, original).unwrap();
    }
}

#[test]
fn each_kind_reaches_its_folder_and_another_kinds_folder_only_through_its_code() {
    let dir = workspace_copy();
    let before = kinds(dir.path());
    for (kind, (files, _)) in &before {
        assert!(
            files.contains(&format!("src/stages/{kind}/mod.rs")),
            "{kind}"
        );
        assert!(
            files.iter().any(|f| f.starts_with("crates/engine/src/")),
            "{kind} reaches the engine's byte-shaping code"
        );
        assert!(
            !files.contains("crates/engine/src/exec.rs")
                && !files.contains("crates/engine/src/plan.rs"),
            "{kind}: scheduler and plan are not in keys"
        );
        assert!(
            !files.iter().any(|f| f.starts_with("src/cli/")),
            "{kind} does not reach the CLI"
        );
    }
    // Editing one kind's folder leaves every other kind cached.
    append(
        &dir.path().join("src/stages/sample/mod.rs"),
        "\n// mutated\n",
    );
    assert_eq!(
        changed(&before, &kinds(dir.path())),
        BTreeSet::from(["sample".to_string()])
    );
}

#[test]
fn renaming_a_language_moves_the_instruction_kinds_and_not_the_aligner() {
    let dir = workspace_copy();
    let before = kinds(dir.path());
    let lang = dir.path().join("crates/instruct/src/lang.rs");
    let text = std::fs::read_to_string(&lang).unwrap();
    assert!(
        text.contains("\"Belarusian\""),
        "the registry names Belarusian"
    );
    std::fs::write(&lang, text.replace("\"Belarusian\"", "\"Belarusan\"")).unwrap();
    let moved = changed(&before, &kinds(dir.path()));
    for template_kind in [
        "instruct_mt",
        "instruct_align",
        "instruct_hint",
        "instruct_revise",
        "instruct_denoise",
        "instruct_prompts",
    ] {
        assert!(
            moved.contains(template_kind),
            "{template_kind} takes language names from lang.rs: {moved:?}"
        );
    }
    // (model_tiny reads instruction tables to pretrain on, through the instruct crate's row type, and so reaches
    // the whole crate: the granularity is the file, and that crate's lib.rs re-exports lang.rs.)
    for unrelated in ["sample", "align_ibm2", "align_pairs", "ingest_opus100"] {
        assert!(
            !moved.contains(unrelated),
            "{unrelated} does not reach lang.rs"
        );
    }
}

/// A workspace of one package, `demo`, from `(path, text)` files, with a `Cargo.lock` naming `dep` packages.
fn tiny(files: &[(&str, &str)], lock_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nleft = \"1\"\nright = \"1\"\n";
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    let lock = format!(
        "version = 4\n\n[[package]]\nname = \"demo\"\nversion = \"0.1.0\"\ndependencies = [\"left\", \"right\"]\n\n\
         [[package]]\nname = \"left\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\nchecksum = \"aa\"\ndependencies = [\"shared\"]\n\n\
         [[package]]\nname = \"right\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\nchecksum = \"bb\"\n\n{lock_extra}"
    );
    std::fs::write(dir.path().join("Cargo.lock"), lock).unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const SHARED_1: &str = "[[package]]\nname = \"shared\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\nchecksum = \"cc\"\n";
const SHARED_2: &str = "[[package]]\nname = \"shared\"\nversion = \"1.0.1\"\nsource = \"registry+x\"\nchecksum = \"dd\"\n";

fn reach_files(dir: &Path, seed: &str) -> Result<BTreeSet<String>, Error> {
    let ws = Workspace::load(dir, &[])?;
    Ok(ws.reach(&[dir.join(seed)])?.files.into_keys().collect())
}

#[test]
fn aliases_globs_impls_macros_and_includes_are_followed() {
    let dir = tiny(
        &[
            (
                "src/lib.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\npub mod f;\n#[cfg(test)]\nmod tests;\n",
            ),
            (
                "src/a.rs",
                "use crate::b;\nuse crate::c::*;\npub fn go() -> u32 { b::inner::value() + helper() + crate::d::D.get() + shout!() }\n",
            ),
            ("src/b.rs", "pub mod inner;\n"),
            ("src/b/inner.rs", "pub fn value() -> u32 { 1 }\n"),
            (
                "src/c.rs",
                "pub fn helper() -> u32 { include_str!(\"data.txt\").len() as u32 }\n",
            ),
            ("src/data.txt", "forty-two"),
            ("src/d.rs", "pub struct D;\n"),
            (
                "src/e.rs",
                "impl crate::d::D { pub fn get(&self) -> u32 { 3 } }\n",
            ),
            (
                "src/f.rs",
                "#[macro_export]\nmacro_rules! shout { () => { 4 } }\npub fn unrelated() {}\n",
            ),
        ],
        SHARED_1,
    );
    let files = reach_files(dir.path(), "src/a.rs").unwrap();
    let expected = [
        "src/a.rs",
        "src/b.rs",
        "src/b/inner.rs",
        "src/c.rs",
        "src/data.txt",
        "src/d.rs",
        "src/e.rs",
        "src/f.rs",
    ];
    assert_eq!(
        files,
        expected
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    );
    // lib.rs only declares modules (a path through a module does not reach its parent); tests.rs is test-only.
    assert!(!files.contains("src/lib.rs") && !files.contains("src/tests.rs"));
}

#[test]
fn an_impl_joins_only_when_everything_its_header_names_is_reached() {
    let dir = tiny(
        &[
            (
                "src/lib.rs",
                "pub mod t;\npub mod x;\npub mod y;\npub mod imp;\npub mod user;\n",
            ),
            ("src/t.rs", "pub trait Speak { fn speak(&self) -> u32; }\n"),
            ("src/x.rs", "pub struct X;\n"),
            ("src/y.rs", "pub struct Y;\n"),
            (
                "src/imp.rs",
                "use crate::t::Speak;\nimpl Speak for crate::y::Y { fn speak(&self) -> u32 { 2 } }\n",
            ),
            (
                "src/user.rs",
                "use crate::t::Speak;\npub fn f(x: &crate::x::X) -> u32 { let _ = x; 0 }\n",
            ),
        ],
        SHARED_1,
    );
    // user reaches the trait and X, not Y: the impl for Y cannot matter to it.
    assert_eq!(
        reach_files(dir.path(), "src/user.rs").unwrap(),
        ["src/t.rs", "src/user.rs", "src/x.rs"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    std::fs::write(
        dir.path().join("src/user.rs"),
        "use crate::t::Speak;\npub fn f(y: &crate::y::Y) -> u32 { y.speak() }\n",
    )
    .unwrap();
    assert!(
        reach_files(dir.path(), "src/user.rs")
            .unwrap()
            .contains("src/imp.rs")
    );
}

#[test]
fn lock_entries_of_reached_crates_are_in_the_digest_and_others_are_not() {
    let files = [
        ("src/lib.rs", "pub mod uses_left;\npub mod uses_right;\n"),
        ("src/uses_left.rs", "pub fn f() { left::go() }\n"),
        ("src/uses_right.rs", "pub fn g() { right::go() }\n"),
    ];
    let build = BTreeMap::new();
    let digests = |lock_extra: &str| {
        let dir = tiny(&files, lock_extra);
        let ws = Workspace::load(dir.path(), &[]).unwrap();
        let left = ws.reach(&[dir.path().join("src/uses_left.rs")]).unwrap();
        let right = ws.reach(&[dir.path().join("src/uses_right.rs")]).unwrap();
        assert!(
            left.deps.contains_key("lock shared 1.0.0")
                || left.deps.contains_key("lock shared 1.0.1"),
            "transitive: {:?}",
            left.deps
        );
        assert!(!right.deps.keys().any(|k| k.starts_with("lock shared")));
        (left.digest(&build), right.digest(&build))
    };
    let (left_1, right_1) = digests(SHARED_1);
    let (left_2, right_2) = digests(SHARED_2);
    assert_ne!(
        left_1, left_2,
        "a bump of a crate `left` depends on moves its users"
    );
    assert_eq!(right_1, right_2, "and no one else");
    let mut toolchain = BTreeMap::new();
    toolchain.insert("rustc".to_string(), "rustc 1.96.0".to_string());
    let dir = tiny(&files, SHARED_1);
    let reach = Workspace::load(dir.path(), &[])
        .unwrap()
        .reach(&[dir.path().join("src/uses_right.rs")])
        .unwrap();
    assert_ne!(
        reach.digest(&build),
        reach.digest(&toolchain),
        "the toolchain is in the digest"
    );
}

#[test]
fn what_cannot_be_resolved_is_an_error_naming_the_file() {
    let missing_mod = tiny(
        &[
            ("src/lib.rs", "pub mod lang;\npub mod langs_typo;\n"),
            ("src/lang.rs", ""),
        ],
        SHARED_1,
    );
    let e = Workspace::load(missing_mod.path(), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lib.rs:2") && e.contains("module `langs_typo` has no file"),
        "{e}"
    );

    let missing_include = tiny(
        &[(
            "src/lib.rs",
            "pub const T: &str = include_str!(\"templates.txt\");\n",
        )],
        SHARED_1,
    );
    let e = Workspace::load(missing_include.path(), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("lib.rs:1") && e.contains("templates.txt"), "{e}");

    let computed = tiny(
        &[(
            "src/lib.rs",
            "pub const T: &str = include_str!(concat!(\"a\", \".txt\"));\n",
        )],
        SHARED_1,
    );
    let e = Workspace::load(computed.path(), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("computed path"), "{e}");

    let unparsable = tiny(&[("src/lib.rs", "pub fn (\n")], SHARED_1);
    assert!(matches!(
        Workspace::load(unparsable.path(), &[]),
        Err(Error::Parse { .. })
    ));
}
