//! `Cargo.lock`: which exact package versions a dependency stands for, transitively.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use toml_edit::{DocumentMut, Item};

use crate::Error;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    version: String,
    /// `source checksum`, empty parts for workspace packages.
    origin: String,
    /// As written: `name`, `name version` or `name version (source)`.
    deps: Vec<String>,
}

/// The packages of a `Cargo.lock`.
#[derive(Debug, Default)]
pub(crate) struct Lock {
    entries: Vec<Entry>,
    /// Entry indices by package name.
    by_name: HashMap<String, Vec<usize>>,
    /// Each entry's dependencies, resolved to entry indices.
    edges: Vec<Vec<usize>>,
}

impl Lock {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Lock, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| Error::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| bad(e.to_string()))?;
        let packages = doc
            .get("package")
            .and_then(Item::as_array_of_tables)
            .ok_or_else(|| bad("no [[package]] entries".into()))?;
        let mut entries = Vec::new();
        for (i, p) in packages.iter().enumerate() {
            let field = |k: &str| p.get(k).and_then(Item::as_str).map(str::to_string);
            let name =
                field("name").ok_or_else(|| bad(format!("package #{} has no name", i + 1)))?;
            let version =
                field("version").ok_or_else(|| bad(format!("package `{name}` has no version")))?;
            let origin = format!(
                "{} {}",
                field("source").unwrap_or_default(),
                field("checksum").unwrap_or_default()
            );
            let deps = p
                .get("dependencies")
                .and_then(Item::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            entries.push(Entry {
                name,
                version,
                origin: origin.trim().to_string(),
                deps,
            });
        }
        let mut lock = Lock {
            entries,
            ..Lock::default()
        };
        for (i, e) in lock.entries.iter().enumerate() {
            lock.by_name.entry(e.name.clone()).or_default().push(i);
        }
        let edges: Result<Vec<Vec<usize>>, String> = lock
            .entries
            .iter()
            .map(|e| e.deps.iter().map(|d| lock.find(d)).collect())
            .collect();
        lock.edges = edges.map_err(bad)?;
        Ok(lock)
    }

    /// The entry a dependency string of `Cargo.lock` names.
    fn find(&self, dep: &str) -> Result<usize, String> {
        let mut parts = dep.split(' ');
        let name = parts.next().unwrap_or_default();
        let version = parts.next();
        let found: Vec<usize> = self
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| version.is_none_or(|v| self.entries[i].version == v))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("dependency `{dep}` has no [[package]] entry")),
            _ => Err(format!("dependency `{dep}` is ambiguous")),
        }
    }

    /// `name version` → origin of every package that `package`'s dependency on `dep_package` stands for,
    /// transitively, `package` being a workspace member.
    pub fn closure(
        &self,
        package: &str,
        dep_package: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let member = self
            .entries
            .iter()
            .find(|e| e.name == package && e.origin.is_empty())
            .ok_or_else(|| {
                format!("workspace package `{package}` is not in Cargo.lock (run cargo once)")
            })?;
        let direct: Vec<&String> = member
            .deps
            .iter()
            .filter(|d| d.split(' ').next() == Some(dep_package))
            .collect();
        if direct.is_empty() {
            return Err(format!(
                "`{package}` has no locked dependency `{dep_package}` (run cargo once)"
            ));
        }
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = direct
            .iter()
            .map(|d| self.find(d))
            .collect::<Result<_, _>>()?;
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                stack.extend(&self.edges[i]);
            }
        }
        Ok(seen
            .into_iter()
            .map(|i| {
                let e = &self.entries[i];
                (format!("{} {}", e.name, e.version), e.origin.clone())
            })
            .collect())
    }
}
