//! Paths as the code writes them: flattened `use` trees and paths found in macro bodies.

use proc_macro2::{Spacing, TokenStream, TokenTree};

/// A path written in the code, e.g. `crate::support::lang::name` or `::polars::prelude::DataFrame`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRef {
    /// Its segments, without generic arguments.
    pub segs: Vec<String>,
    /// Written with a leading `::` (an extern crate).
    pub global: bool,
}

/// One name a `use` brings into scope.
#[derive(Debug, Clone)]
pub(crate) struct UseLeaf {
    /// The name in scope (`b` for `use a::b`, `c` for `use a::b as c`).
    pub alias: String,
    /// What it stands for.
    pub target: PathRef,
}

/// Flattens a `use` tree into the names it brings into scope and the modules it glob-imports.
pub(crate) fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    global: bool,
    leaves: &mut Vec<UseLeaf>,
    globs: &mut Vec<PathRef>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, global, leaves, globs);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let (alias, segs) = if name == "self" {
                (prefix.last().cloned().unwrap_or_default(), prefix.clone())
            } else {
                (name.clone(), [prefix.as_slice(), &[name]].concat())
            };
            leaves.push(UseLeaf {
                alias,
                target: PathRef { segs, global },
            });
        }
        syn::UseTree::Rename(r) => {
            let name = r.ident.to_string();
            let segs = if name == "self" {
                prefix.clone()
            } else {
                [prefix.as_slice(), &[name]].concat()
            };
            leaves.push(UseLeaf {
                alias: r.rename.to_string(),
                target: PathRef { segs, global },
            });
        }
        syn::UseTree::Glob(_) => {
            globs.push(PathRef {
                segs: prefix.clone(),
                global,
            });
        }
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, global, leaves, globs);
            }
        }
    }
}

/// Every path-looking sequence of tokens (`a::b::c`, `::a::b`, `$crate::x`, a lone `name`) in a macro body.
/// Over-approximates on purpose: a macro body's tokens may become any code.
pub(crate) fn token_paths(tokens: TokenStream, out: &mut Vec<PathRef>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let is_colon2 = |i: usize| {
        matches!((tokens.get(i), tokens.get(i + 1)), (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
    };
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => {
                token_paths(g.stream(), out);
                i += 1;
            }
            TokenTree::Ident(_) | TokenTree::Punct(_) => {
                let (global, start) = if is_colon2(i) {
                    (true, i + 2)
                } else {
                    (false, i)
                };
                // `$crate` in a macro_rules body.
                let dollar =
                    matches!(&tokens.get(start), Some(TokenTree::Punct(p)) if p.as_char() == '$');
                let first = if dollar { start + 1 } else { start };
                let Some(TokenTree::Ident(ident)) = tokens.get(first) else {
                    i += 1;
                    continue;
                };
                let mut segs = vec![ident.to_string()];
                let mut j = first + 1;
                while is_colon2(j) {
                    match tokens.get(j + 2) {
                        Some(TokenTree::Ident(next)) => {
                            segs.push(next.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                out.push(PathRef { segs, global });
                i = j.max(i + 1);
            }
            TokenTree::Literal(_) => i += 1,
        }
    }
}
