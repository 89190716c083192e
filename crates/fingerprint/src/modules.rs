//! The module trees of the workspace's libraries, what each module's code names, and the closure over it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::manifest::Package;
use crate::paths::{PathRef, UseLeaf, flatten_use, token_paths};
use crate::{Error, GeneratedModule};

/// What one module's code names.
#[derive(Debug, Default)]
struct Scope {
    uses: Vec<UseLeaf>,
    globs: Vec<PathRef>,
    refs: Vec<PathRef>,
    /// The paths of each `impl` header in the module.
    impl_headers: Vec<Vec<PathRef>>,
}

#[derive(Debug)]
struct Module {
    package: usize,
    file: usize,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    scope: Scope,
}

#[derive(Debug)]
struct FileNode {
    path: PathBuf,
    modules: Vec<usize>,
    includes: Vec<PathBuf>,
    /// Line of an `include!` of a file generated into `OUT_DIR`, whose content no source file holds.
    generated_include: Option<usize>,
    macros_used: BTreeSet<String>,
}

/// `(package index, dependency identifier)` of the registry crates that reached code names.
pub(crate) type Externs = BTreeSet<(usize, String)>;

/// Where a path leads.
enum Target {
    Module(usize),
    Extern(usize, String),
}

/// Every library module of the workspace, with the references of its code.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    files: Vec<FileNode>,
    by_path: HashMap<PathBuf, usize>,
    modules: Vec<Module>,
    /// Root module of each package's library, by package index.
    roots: BTreeMap<usize, usize>,
    /// Package index by library identifier.
    libs: BTreeMap<String, usize>,
    macro_defs: BTreeMap<String, BTreeSet<usize>>,
    /// `impl` blocks naming workspace items in their header: the file holding the impl, and the files of the
    /// modules its header names (trait, self type, generic arguments).
    impls: Vec<(usize, BTreeSet<usize>)>,
}

fn parse_error(path: &Path, e: syn::Error) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        source: e,
    }
}

/// 1-based line of the first occurrence of `needle` in the file (0 if absent), for messages: spans carry no
/// locations outside a proc macro unless proc-macro2's `span-locations` is on, which would rebuild every derive.
fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.path().is_ident("path"))
        .and_then(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
}

impl Graph {
    pub fn build(packages: &[Package], generated: &[GeneratedModule]) -> Result<Graph, Error> {
        let mut g = Graph::default();
        for p in packages {
            g.libs.insert(p.lib_ident.clone(), p.index);
        }
        for p in packages {
            let root = p.lib_root();
            if root.is_file() {
                let m = g.load_file(p, &root, None, &[], true, generated)?;
                g.roots.insert(p.index, m);
            }
        }
        g.link_impls(packages);
        Ok(g)
    }

    fn load_file(
        &mut self,
        package: &Package,
        path: &Path,
        parent: Option<(usize, String)>,
        module_path: &[String],
        mod_rs: bool,
        generated: &[GeneratedModule],
    ) -> Result<usize, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let ast = syn::parse_file(&text).map_err(|e| parse_error(path, e))?;
        let file = self.files.len();
        self.files.push(FileNode {
            path: path.to_path_buf(),
            modules: Vec::new(),
            includes: Vec::new(),
            generated_include: None,
            macros_used: BTreeSet::new(),
        });
        self.by_path.insert(path.to_path_buf(), file);
        let module = self.new_module(package.index, file, parent);
        let dir = if mod_rs {
            path.parent().unwrap_or(Path::new("")).to_path_buf()
        } else {
            path.with_extension("")
        };
        self.load_items(
            package,
            module,
            file,
            &ast.items,
            &dir,
            module_path,
            generated,
        )?;
        for g in generated
            .iter()
            .filter(|g| g.package == package.name && g.parent == module_path)
        {
            let child_path = [module_path, std::slice::from_ref(&g.name)].concat();
            self.load_file(
                package,
                &g.file,
                Some((module, g.name.clone())),
                &child_path,
                true,
                generated,
            )?;
        }
        Ok(module)
    }

    fn new_module(
        &mut self,
        package: usize,
        file: usize,
        parent: Option<(usize, String)>,
    ) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            package,
            file,
            parent: parent.as_ref().map(|(p, _)| *p),
            children: BTreeMap::new(),
            scope: Scope::default(),
        });
        if let Some((p, name)) = parent {
            self.modules[p].children.insert(name, id);
        }
        self.files[file].modules.push(id);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn load_items(
        &mut self,
        package: &Package,
        module: usize,
        file: usize,
        items: &[syn::Item],
        dir: &Path,
        module_path: &[String],
        generated: &[GeneratedModule],
    ) -> Result<(), Error> {
        let file_path = self.files[file].path.clone();
        for item in items {
            match item {
                syn::Item::Mod(m) if is_cfg_test(&m.attrs) => {}
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    let child_path = [module_path, std::slice::from_ref(&name)].concat();
                    if let Some((_, content)) = &m.content {
                        let child =
                            self.new_module(package.index, file, Some((module, name.clone())));
                        self.load_items(
                            package,
                            child,
                            file,
                            content,
                            &dir.join(&name),
                            &child_path,
                            generated,
                        )?;
                        continue;
                    }
                    let (child_file, mod_rs) = match path_attr(&m.attrs) {
                        Some(p) => (file_path.parent().unwrap_or(Path::new("")).join(p), true),
                        None => {
                            let flat = dir.join(format!("{name}.rs"));
                            let nested = dir.join(&name).join("mod.rs");
                            if flat.is_file() {
                                (flat, false)
                            } else if nested.is_file() {
                                (nested, true)
                            } else {
                                return Err(Error::Unresolved {
                                    path: file_path.clone(),
                                    line: line_of(&file_path, &format!("mod {name}")),
                                    message: format!(
                                        "module `{name}` has no file: neither {} nor {}",
                                        flat.display(),
                                        nested.display()
                                    ),
                                });
                            }
                        }
                    };
                    self.load_file(
                        package,
                        &child_file,
                        Some((module, name)),
                        &child_path,
                        mod_rs,
                        generated,
                    )?;
                }
                other => {
                    let mut c = Collector {
                        scope: &mut self.modules[module].scope,
                        file: &mut self.files[file],
                        dir: file_path.parent().unwrap_or(Path::new("")).to_path_buf(),
                        macros_defined: Vec::new(),
                        error: None,
                    };
                    c.visit_item(other);
                    let (defined, error) = (std::mem::take(&mut c.macros_defined), c.error.take());
                    if let Some(e) = error {
                        return Err(e);
                    }
                    for name in defined {
                        self.macro_defs.entry(name).or_default().insert(file);
                    }
                }
            }
        }
        Ok(())
    }

    fn link_impls(&mut self, packages: &[Package]) {
        let mut impls = Vec::new();
        for (m, module) in self.modules.iter().enumerate() {
            for header in &module.scope.impl_headers {
                let named: BTreeSet<usize> = header
                    .iter()
                    .filter_map(|r| match self.resolve(m, r, packages, 0) {
                        Some(Target::Module(t)) => Some(self.modules[t].file),
                        _ => None,
                    })
                    .filter(|&f| f != module.file)
                    .collect();
                if !named.is_empty() {
                    impls.push((module.file, named));
                }
            }
        }
        self.impls = impls;
    }

    /// Descends from `module` through the leading segments of `segs` that name child modules.
    fn walk(&self, mut module: usize, segs: &[String]) -> usize {
        for s in segs {
            match self.modules[module].children.get(s) {
                Some(&child) => module = child,
                None => break,
            }
        }
        module
    }

    fn extern_crate(
        &self,
        module: usize,
        name: &str,
        rest: &[String],
        packages: &[Package],
    ) -> Option<Target> {
        let package = &packages[self.modules[module].package];
        let dep = package.deps.get(name)?;
        match packages.iter().find(|p| p.name == dep.package) {
            Some(ws) => self
                .roots
                .get(&ws.index)
                .map(|&root| Target::Module(self.walk(root, rest))),
            None => Some(Target::Extern(package.index, name.to_string())),
        }
    }

    /// Where the path `r`, written in `module`, leads (`None`: a local item, the prelude, `std`, a primitive).
    fn resolve(
        &self,
        module: usize,
        r: &PathRef,
        packages: &[Package],
        depth: u8,
    ) -> Option<Target> {
        let (first, rest) = r.segs.split_first()?;
        if depth > 16 {
            return None;
        }
        if r.global {
            return self.extern_crate(module, first, rest, packages);
        }
        let m = &self.modules[module];
        match first.as_str() {
            "crate" => return Some(Target::Module(self.walk(self.roots[&m.package], rest))),
            "self" => return Some(Target::Module(self.walk(module, rest))),
            "super" => {
                let mut cur = module;
                let mut i = 0;
                while r.segs.get(i).map(String::as_str) == Some("super") {
                    cur = self.modules[cur].parent?;
                    i += 1;
                }
                return Some(Target::Module(self.walk(cur, &r.segs[i..])));
            }
            "Self" => return None,
            _ => {}
        }
        if let Some(leaf) = m.scope.uses.iter().find(|u| &u.alias == first) {
            let target = PathRef {
                segs: [leaf.target.segs.as_slice(), rest].concat(),
                ..leaf.target.clone()
            };
            // `use polars::prelude::*` style leaves whose first segment is the alias itself name an extern crate.
            if leaf.target.segs.first() == Some(first) && !leaf.target.global {
                if let Some(t) = m.children.get(first) {
                    return Some(Target::Module(self.walk(*t, rest)));
                }
                return self.extern_crate(module, first, rest, packages);
            }
            return self.resolve(module, &target, packages, depth + 1);
        }
        if let Some(&child) = m.children.get(first) {
            return Some(Target::Module(self.walk(child, rest)));
        }
        if let Some(t) = self.extern_crate(module, first, rest, packages) {
            return Some(t);
        }
        for glob in &m.scope.globs {
            if let Some(Target::Module(base)) = self.resolve(module, glob, packages, depth + 1) {
                let via = PathRef {
                    segs: r.segs.clone(),
                    global: false,
                };
                if self.modules[base].children.contains_key(first)
                    || self.modules[base]
                        .scope
                        .uses
                        .iter()
                        .any(|u| &u.alias == first)
                {
                    return self.resolve(base, &via, packages, depth + 1);
                }
            }
        }
        None
    }

    /// Every file the `seeds` reach, and the `(package, dependency)` pairs of registry crates their code names.
    pub fn closure(
        &self,
        seeds: &[PathBuf],
        packages: &[Package],
    ) -> Result<(BTreeSet<PathBuf>, Externs), Error> {
        let mut files = BTreeSet::new();
        let mut externs = BTreeSet::new();
        let mut queue: Vec<PathBuf> = seeds.to_vec();
        while let Some(path) = queue.pop() {
            if !files.insert(path.clone()) {
                continue;
            }
            let Some(&f) = self.by_path.get(&path) else {
                // Data or a source file no module declares: its bytes count, it names nothing.
                if !path.is_file() {
                    return Err(Error::Unresolved {
                        path,
                        line: 0,
                        message: "no such file".into(),
                    });
                }
                continue;
            };
            let node = &self.files[f];
            if let Some(line) = node.generated_include {
                return Err(Error::Unresolved {
                    path,
                    line,
                    message: "reached code includes a file generated at build time, whose content cannot be \
                              fingerprinted; move what stages need out of this module"
                        .into(),
                });
            }
            let mut reach = |t: Option<Target>, queue: &mut Vec<PathBuf>| match t {
                Some(Target::Module(m)) => {
                    queue.push(self.files[self.modules[m].file].path.clone())
                }
                Some(Target::Extern(p, name)) => {
                    externs.insert((p, name));
                }
                None => {}
            };
            for &m in &node.modules {
                let scope = &self.modules[m].scope;
                let uses = scope.uses.iter().map(|u| &u.target);
                for r in uses.chain(&scope.globs).chain(&scope.refs) {
                    reach(self.resolve(m, r, packages, 0), &mut queue);
                }
            }
            for name in &node.macros_used {
                for def in self.macro_defs.get(name).into_iter().flatten() {
                    queue.push(self.files[*def].path.clone());
                }
            }
            queue.extend(node.includes.iter().cloned());
            if queue.is_empty() {
                // An impl matters to code that can name everything its header names: once all of that is
                // reached, so is the impl (trait impls live anywhere in a crate and are never imported).
                for (impl_file, named) in &self.impls {
                    let path = &self.files[*impl_file].path;
                    if !files.contains(path)
                        && named.iter().all(|n| files.contains(&self.files[*n].path))
                    {
                        queue.push(path.clone());
                    }
                }
            }
        }
        Ok((files, externs))
    }

    pub fn files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

/// Collects what one item names into its module's scope.
struct Collector<'a> {
    scope: &'a mut Scope,
    file: &'a mut FileNode,
    dir: PathBuf,
    macros_defined: Vec<String>,
    error: Option<Error>,
}

fn to_ref(p: &syn::Path) -> PathRef {
    PathRef {
        segs: p.segments.iter().map(|s| s.ident.to_string()).collect(),
        global: p.leading_colon.is_some(),
    }
}

/// Every path in a piece of syntax (an impl's header).
#[derive(Default)]
struct AllPaths(Vec<PathRef>);

impl<'ast> Visit<'ast> for AllPaths {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.0.push(to_ref(p));
        syn::visit::visit_path(self, p);
    }
}

impl Collector<'_> {
    fn include(&mut self, mac: &syn::Macro, name: &str) {
        let line = line_of(&self.file.path, &format!("{name}!"));
        if let Ok(lit) = mac.parse_body::<syn::LitStr>() {
            let path = self.dir.join(lit.value());
            if path.is_file() {
                self.file.includes.push(path);
            } else {
                self.error.get_or_insert(Error::Unresolved {
                    path: self.file.path.clone(),
                    line,
                    message: format!("{name}! names {}, which does not exist", path.display()),
                });
            }
        } else if mac.tokens.to_string().contains("OUT_DIR") {
            self.file.generated_include = Some(line);
        } else {
            self.error.get_or_insert(Error::Unresolved {
                path: self.file.path.clone(),
                line,
                message: format!(
                    "{name}! with a computed path cannot be followed; use a string literal"
                ),
            });
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        flatten_use(
            &u.tree,
            &mut Vec::new(),
            u.leading_colon.is_some(),
            &mut self.scope.uses,
            &mut self.scope.globs,
        );
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.scope.refs.push(to_ref(p));
        syn::visit::visit_path(self, p);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let mut header = AllPaths::default();
        if let Some((_, trait_path, _)) = &i.trait_ {
            header.visit_path(trait_path);
        }
        header.visit_type(&i.self_ty);
        self.scope.impl_headers.push(header.0);
        syn::visit::visit_item_impl(self, i);
    }

    fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
        if let (true, Some(ident)) = (m.mac.path.is_ident("macro_rules"), &m.ident) {
            self.macros_defined.push(ident.to_string());
        }
        syn::visit::visit_item_macro(self, m);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        match name.as_str() {
            "include" | "include_str" | "include_bytes" => self.include(mac, &name),
            _ => {
                self.file.macros_used.insert(name);
                token_paths(mac.tokens.clone(), &mut self.scope.refs);
            }
        }
    }
}

/// The types of `file` that implement a trait named `trait_name` (last path segment), e.g. the stage kind of a
/// stage folder's `mod.rs`.
pub fn stage_impls(file: &Path, trait_name: &str) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let ast = syn::parse_file(&text).map_err(|e| parse_error(file, e))?;
    let mut out = Vec::new();
    for item in &ast.items {
        if let syn::Item::Impl(i) = item {
            let is_trait = i
                .trait_
                .as_ref()
                .is_some_and(|(_, p, _)| p.segments.last().is_some_and(|s| s.ident == trait_name));
            if let (true, syn::Type::Path(tp)) = (is_trait, &*i.self_ty)
                && let Some(seg) = tp.path.segments.last()
            {
                out.push(seg.ident.to_string());
            }
        }
    }
    Ok(out)
}
