//! Discovers, from the code's own imports, every source file and every dependency that a set of Rust source files
//! can reach inside a Cargo workspace: the input of alinea's code fingerprints.
//!
//! A build script calls [`Workspace::load`] once and [`Workspace::reach`] per stage kind, with the files of the
//! kind's folder as seeds. The rule, at the granularity of source files:
//!
//! | edge from file `F` to …                          | because                                                   |
//! |--------------------------------------------------|-----------------------------------------------------------|
//! | the file of every module a path in `F` names     | `use crate::a::b`, `super::x`, `alinea_instruct::y`, paths in types, expressions, patterns, attributes and macro bodies (scanned token by token) |
//! | the file of every module a `use` alias leads to  | `use crate::support; support::lang::X` reaches `lang.rs`  |
//! | the files of modules glob-imported into `F`      | `use crate::m::*` may bring any item of `m` into scope     |
//! | every file with an `impl` naming a reached module's item | trait impls and inherent impls can live in any module of a crate, and change behaviour without being imported |
//! | every file defining a `macro_rules!` that `F` invokes by name | macros are not reached through paths           |
//! | every file `F` includes (`include!`, `include_str!`, `include_bytes!`) | the bytes become code or data        |
//! | the registry packages a reached path starts with | their `Cargo.lock` entries, transitively, and the dependency specification (features) under which the workspace package uses them |
//!
//! A path into a module `crate::a::b::Item` reaches the file of the deepest module it names (`b`), not the files of
//! `a` or of the crate root: a parent module only declares its children. Modules declared `#[cfg(test)]` are not
//! compiled into a library and are skipped. Everything is resolved or it is an error: a `mod` whose file is missing,
//! an unreadable or unparsable file, an include with a computed path — never a silent omission.
//!
//! Known limits, all on the side of reaching *more* than needed: a file is reached whole (an edit to any item of
//! `lang.rs` reaches every user of any item of it); aliases, globs and macro names are matched by name, not by
//! full name resolution; a registry package's closure covers its build and proc-macro dependencies too.

mod lock;
mod manifest;
mod modules;
mod paths;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use modules::stage_impls;

/// Why the workspace could not be analysed. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A Rust source file does not parse (rustc, compiling it, says where).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: syn::Error,
    },
    /// Something the code names could not be found.
    #[error("{path}:{line}: {message}")]
    Unresolved {
        /// The file naming it.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What was not found, and where it was looked for.
        message: String,
    },
    /// A `Cargo.toml` or `Cargo.lock` is not what Cargo writes.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// A module whose declaration is generated at build time (and so is not in any source file), e.g. the stage
/// folders that a build script declares with `#[path]` in an `include!`d file.
#[derive(Debug, Clone)]
pub struct GeneratedModule {
    /// The workspace package declaring it, e.g. `alinea`.
    pub package: String,
    /// Path of the parent module inside the package, e.g. `["stages"]`.
    pub parent: Vec<String>,
    /// The module's name.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
}

/// What a set of seed files reaches. Workspace packages are named by their directory (`.` for the root), so
/// that renaming a package changes no digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Workspace-relative path (with `/`) → blake3 of the file's bytes.
    pub files: BTreeMap<String, String>,
    /// What of the dependency graph the code reaches: `spec <package> <dep>` → the dependency's specification in
    /// the package's `Cargo.toml`, `lock <name> <version>` → its source and checksum in `Cargo.lock`, and
    /// `edition <package>` → the edition of each workspace package reached.
    pub deps: BTreeMap<String, String>,
}

impl Reach {
    /// blake3 over the files, the dependencies and the `build` facts given (toolchain, target, features), as hex.
    pub fn digest(&self, build: &BTreeMap<String, String>) -> String {
        let mut h = blake3::Hasher::new();
        for (section, map) in [("file", &self.files), ("dep", &self.deps), ("build", build)] {
            for (k, v) in map {
                for part in [section, k.as_str(), v.as_str()] {
                    h.update(part.as_bytes());
                    h.update(&[0]);
                }
            }
        }
        h.finalize().to_hex()[..32].to_string()
    }
}

/// A Cargo workspace, its modules parsed and their references collected.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    packages: Vec<manifest::Package>,
    lock: lock::Lock,
    graph: modules::Graph,
}

impl Workspace {
    /// Reads the workspace at `root` (the directory of its `Cargo.toml` and `Cargo.lock`): every member's library
    /// modules, from `src/lib.rs` down, plus the `generated` ones.
    pub fn load(root: &Path, generated: &[GeneratedModule]) -> Result<Workspace, Error> {
        let packages = manifest::workspace_packages(root)?;
        let lock = lock::Lock::read(&root.join("Cargo.lock"))?;
        let graph = modules::Graph::build(&packages, generated)?;
        Ok(Workspace {
            root: root.to_path_buf(),
            packages,
            lock,
            graph,
        })
    }

    /// Every file the `seeds` reach (the seeds included) and the dependencies their code names.
    pub fn reach(&self, seeds: &[PathBuf]) -> Result<Reach, Error> {
        let (files, externs) = self.graph.closure(seeds, &self.packages)?;
        let mut reach = Reach::default();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            reach.files.insert(
                self.relative(&file),
                blake3::hash(&bytes).to_hex().to_string(),
            );
        }
        let mut packages_reached: BTreeSet<usize> = reach
            .files
            .keys()
            .filter_map(|f| self.package_of(f))
            .collect();
        for (package, dep) in &externs {
            let p = &self.packages[*package];
            packages_reached.insert(p.index);
            let spec = &p.deps[dep];
            reach
                .deps
                .insert(format!("spec {} {dep}", p.key()), spec.spec.clone());
            for (name, entry) in self
                .lock
                .closure(&p.name, &spec.package)
                .map_err(|message| Error::Manifest {
                    path: self.root.join("Cargo.lock"),
                    message,
                })?
            {
                reach.deps.insert(format!("lock {name}"), entry);
            }
        }
        for i in packages_reached {
            let p = &self.packages[i];
            reach
                .deps
                .insert(format!("edition {}", p.key()), p.edition.clone());
        }
        Ok(reach)
    }

    /// The workspace package whose directory holds `rel` (the innermost one).
    fn package_of(&self, rel: &str) -> Option<usize> {
        self.packages
            .iter()
            .filter(|p| p.rel_dir.is_empty() || rel.starts_with(&format!("{}/", p.rel_dir)))
            .max_by_key(|p| p.rel_dir.len())
            .map(|p| p.index)
    }

    /// `path` relative to the workspace root, with `/` separators.
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every Rust source file of the workspace's libraries, as the module walk found them.
    pub fn source_files(&self) -> Vec<PathBuf> {
        self.graph.files()
    }
}

/// Every file below `dir` (or `dir` itself if it is a file), sorted, for the seeds of a stage folder.
pub fn files_below(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_file() {
            out.push(path);
            continue;
        }
        let entries = std::fs::read_dir(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            stack.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}
