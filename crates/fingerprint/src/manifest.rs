//! The workspace's packages, from their `Cargo.toml` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use crate::Error;

/// A normal (not dev-, not build-) dependency of a workspace package.
#[derive(Debug, Clone)]
pub(crate) struct Dep {
    /// The package it names (`package = "…"` or the key).
    pub package: String,
    /// Its specification as written (version requirement, features, path), normalised.
    pub spec: String,
}

/// A workspace member.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Position in the workspace's list.
    pub index: usize,
    /// Package name, e.g. `alinea-engine`.
    pub name: String,
    /// The name its library is known by in paths, e.g. `alinea_engine`.
    pub lib_ident: String,
    /// Absolute directory.
    pub dir: PathBuf,
    /// Directory relative to the workspace root, `/`-separated, empty for the root package.
    pub rel_dir: String,
    /// The Rust edition.
    pub edition: String,
    /// Normal dependencies by the identifier code uses for them (`alinea_instruct`, `polars`).
    pub deps: BTreeMap<String, Dep>,
}

impl Package {
    /// The package's directory relative to the workspace root, `.` for the root package: how digests name it.
    pub fn key(&self) -> &str {
        if self.rel_dir.is_empty() {
            "."
        } else {
            &self.rel_dir
        }
    }

    /// The library's root file.
    pub fn lib_root(&self) -> PathBuf {
        self.dir.join("src/lib.rs")
    }
}

fn read_toml(path: &Path) -> Result<DocumentMut, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<DocumentMut>().map_err(|e| Error::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The root package (if the root manifest has one) and every member matched by `[workspace] members`.
pub(crate) fn workspace_packages(root: &Path) -> Result<Vec<Package>, Error> {
    let manifest = root.join("Cargo.toml");
    let doc = read_toml(&manifest)?;
    let mut dirs = Vec::new();
    if doc.get("package").is_some() {
        dirs.push(root.to_path_buf());
    }
    let members = doc
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(Item::as_array);
    for member in members.into_iter().flatten() {
        let pattern = member.as_str().ok_or_else(|| Error::Manifest {
            path: manifest.clone(),
            message: "workspace member is not a string".into(),
        })?;
        dirs.extend(expand_member(root, pattern, &manifest)?);
    }
    dirs.sort();
    dirs.dedup();
    let workspace_deps = doc
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(Item::as_table);
    dirs.iter()
        .enumerate()
        .map(|(index, dir)| read_package(root, dir, index, workspace_deps))
        .collect()
}

/// `crates/*` → every directory below `crates` with a `Cargo.toml`; a plain path → itself.
fn expand_member(root: &Path, pattern: &str, manifest: &Path) -> Result<Vec<PathBuf>, Error> {
    let Some(prefix) = pattern.strip_suffix("/*") else {
        return Ok(vec![root.join(pattern)]);
    };
    let dir = root.join(prefix);
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?
            .path();
        if path.join("Cargo.toml").is_file() {
            out.push(path);
        }
    }
    if pattern.contains(['*', '?', '[']) && pattern.matches('*').count() > 1 {
        return Err(Error::Manifest {
            path: manifest.to_path_buf(),
            message: format!("unsupported member glob `{pattern}`"),
        });
    }
    Ok(out)
}

fn read_package(
    root: &Path,
    dir: &Path,
    index: usize,
    workspace_deps: Option<&Table>,
) -> Result<Package, Error> {
    let manifest = dir.join("Cargo.toml");
    let doc = read_toml(&manifest)?;
    let bad = |message: &str| Error::Manifest {
        path: manifest.clone(),
        message: message.to_string(),
    };
    let package = doc
        .get("package")
        .ok_or_else(|| bad("no [package] table"))?;
    let name = package
        .get("name")
        .and_then(Item::as_str)
        .ok_or_else(|| bad("no package.name"))?
        .to_string();
    let edition = package
        .get("edition")
        .and_then(Item::as_str)
        .unwrap_or("2015")
        .to_string();
    let lib_ident = doc
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(Item::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| name.replace('-', "_"));
    let mut deps = BTreeMap::new();
    let mut tables: Vec<&Item> = doc.get("dependencies").into_iter().collect();
    if let Some(targets) = doc.get("target").and_then(Item::as_table) {
        tables.extend(targets.iter().filter_map(|(_, t)| t.get("dependencies")));
    }
    for table in tables {
        let table = table
            .as_table_like()
            .ok_or_else(|| bad("[dependencies] is not a table"))?;
        for (key, item) in table.iter() {
            let dep = dependency(key, item, workspace_deps).map_err(|m| bad(&m))?;
            deps.insert(key.replace('-', "_"), dep);
        }
    }
    let rel_dir = dir.strip_prefix(root).unwrap_or(dir);
    let rel_dir = rel_dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok(Package {
        index,
        name,
        lib_ident,
        dir: dir.to_path_buf(),
        rel_dir,
        edition,
        deps,
    })
}

fn dependency(key: &str, item: &Item, workspace_deps: Option<&Table>) -> Result<Dep, String> {
    let inherited = item
        .as_table_like()
        .and_then(|t| t.get("workspace"))
        .and_then(Item::as_bool)
        == Some(true);
    let spec_item = if inherited {
        workspace_deps.and_then(|w| w.get(key)).ok_or_else(|| {
            format!(
                "dependency `{key}` says workspace = true but [workspace.dependencies] lacks it"
            )
        })?
    } else {
        item
    };
    let package = spec_item
        .as_table_like()
        .and_then(|t| t.get("package"))
        .and_then(Item::as_str)
        .unwrap_or(key)
        .to_string();
    // Features added locally to an inherited dependency count too: keep both texts.
    let mut spec = normalise(spec_item);
    if inherited {
        spec.push_str(" + ");
        spec.push_str(&normalise(item));
    }
    Ok(Dep { package, spec })
}

/// The item's TOML text without comments or layout, so that reformatting the manifest changes nothing.
fn normalise(item: &Item) -> String {
    match item {
        Item::Value(v) => {
            let mut v = v.clone();
            v.decor_mut().clear();
            if let Some(t) = v.as_inline_table_mut() {
                t.fmt();
            }
            v.to_string()
        }
        Item::Table(t) => {
            let mut inline = t.clone().into_inline_table();
            inline.fmt();
            inline.to_string()
        }
        other => other.to_string().trim().to_string(),
    }
}
