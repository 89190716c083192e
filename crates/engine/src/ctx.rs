//! What a running stage sees: its resolved inputs, verified reads, progress and scratch space.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use polars::prelude::DataFrame;

use super::contract::{BlobSlot, FolderSlot, PathSlot, Presence, TableSlot, TablesSlot};
use super::error::StageError;
use super::store::{InputFile, OutputRef, Store};

/// An upstream output filling a table slot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UpstreamTable {
    /// The upstream stage's name.
    pub stage: String,
    /// The output used.
    pub output: OutputRef,
    /// Where the output lands when a folder input materializes it, relative to the folder: its name, less the
    /// `<folder>/` prefix when the input names a folder output (`stage.adapter` → `adapter_config.json`).
    pub file: String,
}

/// What fills one input slot, as [`StageCtx::input`] shows it to a kind whose slots are named by the pipeline.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// One upstream table.
    Table(&'a UpstreamTable),
    /// One upstream blob.
    Blob(&'a UpstreamTable),
    /// Upstream blobs read as a folder (a folder output, or every blob of a stage), or several tables.
    Many(&'a [UpstreamTable]),
    /// A file or directory given in the pipeline.
    Path(&'a Path),
}

/// The context handed to [`super::Stage::run`].
pub struct StageCtx {
    pub(crate) store: Store,
    pub(crate) name: String,
    pub(crate) tables: BTreeMap<String, Vec<UpstreamTable>>,
    pub(crate) paths: BTreeMap<String, (PathBuf, Vec<InputFile>)>,
    /// Slots filled by an upstream stage's blobs as a folder.
    pub(crate) folders: std::collections::BTreeSet<String>,
    pub(crate) work_dir: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) progress: MultiProgress,
    pub(crate) threads: usize,
}

impl StageCtx {
    /// The stage's name in the pipeline.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Worker threads the stage may use (the size of the ambient rayon pool).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The table filling `slot`, read from the store and verified against its digest (an `Option` for an
    /// optional slot).
    pub fn table<P: Presence>(&self, slot: TableSlot<P>) -> Result<P::Out<DataFrame>, StageError> {
        let name = slot.name();
        let value = if self.tables.contains_key(name) {
            Some(self.table_named(name)?)
        } else {
            None
        };
        P::lift(value, name)
    }

    /// Every table filling `slot`, with the name of the stage that made it, in pipeline order.
    pub fn tables<P: Presence>(
        &self,
        slot: TablesSlot<P>,
    ) -> Result<P::Out<Vec<(String, DataFrame)>>, StageError> {
        let name = slot.name();
        let value = if self.tables.contains_key(name) {
            Some(self.tables_named(name)?)
        } else {
            None
        };
        P::lift(value, name)
    }

    /// The bytes of the blob filling `slot`, verified against its digest.
    pub fn blob<P: Presence>(&self, slot: BlobSlot<P>) -> Result<P::Out<Vec<u8>>, StageError> {
        let name = slot.name();
        let value = if self.tables.contains_key(name) {
            Some(self.blob_named(name)?)
        } else {
            None
        };
        P::lift(value, name)
    }

    /// The folder filling `slot`: the directory given in the pipeline, or the upstream stage's blobs written
    /// (once verified) as files named after its outputs.
    pub fn folder<P: Presence>(&self, slot: FolderSlot<P>) -> Result<P::Out<PathBuf>, StageError> {
        let name = slot.name();
        let value = if self.has_input(name) {
            Some(self.folder_named(name)?)
        } else {
            None
        };
        P::lift(value, name)
    }

    /// The verified object of the blob filling `slot`, by path: for blobs too large to read into memory.
    pub fn blob_path<P: Presence>(&self, slot: BlobSlot<P>) -> Result<P::Out<PathBuf>, StageError> {
        let name = slot.name();
        let value = match self.tables.get(name).map(Vec::as_slice) {
            None => None,
            Some([up]) => Some(self.store.verified_path(&up.output.digest)?),
            Some(ups) => {
                return Err(StageError::Input {
                    slot: name.into(),
                    message: format!("expected one blob, got {}", ups.len()),
                });
            }
        };
        P::lift(value, name)
    }

    /// The names of the filled input slots, sorted.
    pub fn input_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .tables
            .keys()
            .chain(self.paths.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// What fills the slot named `slot`, for kinds whose slots the pipeline names (a wildcard
    /// [`crate::InputSlot`]); typed kinds use the typed accessors.
    pub fn input(&self, slot: &str) -> Option<Input<'_>> {
        if let Some((path, _)) = self.paths.get(slot) {
            return Some(Input::Path(path));
        }
        let ups = self.tables.get(slot)?;
        Some(match ups.as_slice() {
            [one] if !self.folders.contains(slot) => match one.output.kind {
                super::store::ObjectKind::Table => Input::Table(one),
                super::store::ObjectKind::Blob => Input::Blob(one),
            },
            many => Input::Many(many),
        })
    }

    /// Decodes the table `up` (an output of an upstream stage), verified against its digest.
    pub fn decode_table(&self, up: &UpstreamTable) -> Result<DataFrame, StageError> {
        let bytes = self.store.get_bytes(&up.output.digest)?;
        super::table::decode_table(bytes, || {
            format!(
                "object {} (output `{}` of stage `{}`)",
                self.store.object_path(&up.output.digest).display(),
                up.output.name,
                up.stage
            )
        })
    }

    /// Puts a verified copy of the object of `up` at `dest` (a hard link where possible; see
    /// [`Store::materialize`]).
    pub fn materialize(&self, up: &UpstreamTable, dest: &Path) -> Result<(), StageError> {
        self.store.materialize(&up.output.digest, dest)?;
        Ok(())
    }

    /// The folder filling the slot named `slot` (see [`StageCtx::folder`]).
    pub fn folder_by_name(&self, slot: &str) -> Result<PathBuf, StageError> {
        self.folder_named(slot)
    }

    /// The directory relative paths of the pipeline resolve against.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path filling `slot`.
    pub fn path<P: Presence>(&self, slot: PathSlot<P>) -> Result<P::Out<&Path>, StageError> {
        P::lift(self.path_named(slot.name()), slot.name())
    }

    fn table_named(&self, slot: &str) -> Result<DataFrame, StageError> {
        let mut all = self.tables_named(slot)?;
        match all.len() {
            1 => Ok(all.remove(0).1),
            n => Err(StageError::Input {
                slot: slot.into(),
                message: format!("expected one table, got {n}"),
            }),
        }
    }

    fn has_input(&self, slot: &str) -> bool {
        self.tables.contains_key(slot) || self.paths.contains_key(slot)
    }

    fn tables_named(&self, slot: &str) -> Result<Vec<(String, DataFrame)>, StageError> {
        let ups = self.tables.get(slot).ok_or_else(|| StageError::Input {
            slot: slot.into(),
            message: "no table input given".into(),
        })?;
        ups.iter()
            .map(|u| Ok((u.stage.clone(), self.decode_table(u)?)))
            .collect()
    }

    fn blob_named(&self, slot: &str) -> Result<Vec<u8>, StageError> {
        let ups = self.tables.get(slot).ok_or_else(|| StageError::Input {
            slot: slot.into(),
            message: "no input given".into(),
        })?;
        let [up] = ups.as_slice() else {
            return Err(StageError::Input {
                slot: slot.into(),
                message: format!("expected one blob, got {}", ups.len()),
            });
        };
        Ok(self.store.get_bytes(&up.output.digest)?)
    }

    fn folder_named(&self, slot: &str) -> Result<PathBuf, StageError> {
        if let Some((path, _)) = self.paths.get(slot) {
            return Ok(path.clone());
        }
        let ups = self.tables.get(slot).ok_or_else(|| StageError::Input {
            slot: slot.into(),
            message: "no input given".into(),
        })?;
        let dir = self.work_dir()?.join("inputs").join(slot);
        std::fs::create_dir_all(&dir).map_err(StageError::io(&dir))?;
        for up in ups {
            // Names are `/`-separated relative paths (folder outputs); anything that would leave the folder is
            // refused rather than written outside it.
            let rel = Path::new(&up.file);
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(StageError::Input {
                    slot: slot.into(),
                    message: format!(
                        "output `{}` of stage `{}` is not a relative file name",
                        up.output.name, up.stage
                    ),
                });
            }
            self.store.materialize(&up.output.digest, &dir.join(rel))?;
        }
        Ok(dir)
    }

    fn path_named(&self, slot: &str) -> Option<&Path> {
        self.paths.get(slot).map(|(p, _)| p.as_path())
    }

    /// Reads an input file and checks it still has the digest taken before the stage ran, so the recorded key is
    /// exactly what the stage read (a file edited mid-run fails the stage instead of poisoning the cache).
    pub fn read_file(&self, path: &Path) -> Result<Vec<u8>, StageError> {
        let hashed = self
            .paths
            .values()
            .flat_map(|(_, files)| files.iter())
            .find(|f| f.path == path)
            .ok_or_else(|| {
                StageError::Other(format!(
                    "{}: not among the files hashed for this stage's inputs",
                    path.display()
                ))
            })?;
        let bytes = std::fs::read(path).map_err(StageError::io(path))?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != hashed.digest {
            if hashed.stamp.is_some() && super::files::file_stamp(path) == hashed.stamp {
                // Unchanged since it was "hashed": the digest came from a wrong stat-cache entry.
                return Err(StageError::StaleInputDigest {
                    path: path.to_path_buf(),
                });
            }
            return Err(StageError::BadInput {
                path: path.to_path_buf(),
                line: 0,
                message:
                    "file changed while the stage was running; rerun to pick up the new content"
                        .into(),
            });
        }
        Ok(bytes)
    }

    /// A progress bar for `len` units of work, drawn only on a terminal.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} {bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta}]",
            )
            .expect("static template"),
        );
        bar.set_prefix(self.name.clone());
        bar.set_message(what.to_string());
        bar
    }

    /// Scratch directory kept across interrupted runs of this very action (same key): put checkpoints here.
    pub fn work_dir(&self) -> Result<&Path, StageError> {
        std::fs::create_dir_all(&self.work_dir).map_err(StageError::io(&self.work_dir))?;
        Ok(&self.work_dir)
    }
}
