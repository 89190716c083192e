//! The typed contract of a stage kind: declared outputs (with table schemas) and typed input slots.
//!
//! A kind declares what it produces as [`OutputSlot`]s, so that a pipeline can be checked before anything runs
//! (every `stage.output` reference names a declared output of the right kind, with the columns the reading slot
//! requires), and the executor checks after each run that the outputs match the declaration.
//!
//! Inputs are typed constants ([`TableSlot`], [`TablesSlot`], [`PathSlot`], [`BlobSlot`], [`FolderSlot`]), each
//! either [`Required`] or [`Optional`]: the same constant goes into [`crate::Stage::INPUTS`] and into the accessor
//! (`ctx.table(PAIRS)`), so a misspelt slot is a compile error and an optional slot reads as an `Option`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use polars::prelude::{DataFrame, DataType};

use crate::error::StageError;
use crate::stage::{InputSlot, SlotKind};

/// The data type of a declared table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// UTF-8 string.
    Str,
    /// Boolean.
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// A list of values of the inner type.
    List(&'static DType),
}

impl DType {
    /// Whether a polars column type is this declared type.
    pub fn matches(&self, dtype: &DataType) -> bool {
        match (self, dtype) {
            (DType::Str, DataType::String)
            | (DType::Bool, DataType::Boolean)
            | (DType::U8, DataType::UInt8)
            | (DType::U16, DataType::UInt16)
            | (DType::U32, DataType::UInt32)
            | (DType::U64, DataType::UInt64)
            | (DType::I32, DataType::Int32)
            | (DType::I64, DataType::Int64)
            | (DType::F32, DataType::Float32)
            | (DType::F64, DataType::Float64) => true,
            // A list column with no rows at all may have been built as a list of nulls.
            (DType::List(inner), DataType::List(actual)) => {
                inner.matches(actual) || matches!(**actual, DataType::Null)
            }
            _ => false,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Str => f.write_str("str"),
            DType::Bool => f.write_str("bool"),
            DType::U8 => f.write_str("u8"),
            DType::U16 => f.write_str("u16"),
            DType::U32 => f.write_str("u32"),
            DType::U64 => f.write_str("u64"),
            DType::I32 => f.write_str("i32"),
            DType::I64 => f.write_str("i64"),
            DType::F32 => f.write_str("f32"),
            DType::F64 => f.write_str("f64"),
            DType::List(inner) => write!(f, "list[{inner}]"),
        }
    }
}

/// A declared column: its name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDecl {
    /// Column name.
    pub name: &'static str,
    /// Column type.
    pub dtype: DType,
}

/// A declared column (shorthand for schema constants).
pub const fn col(name: &'static str, dtype: DType) -> ColumnDecl {
    ColumnDecl { name, dtype }
}

/// What a declared output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A table with exactly these columns, in this order.
    Table(&'static [ColumnDecl]),
    /// A table that passes its input's schema through (no fixed columns; not checked).
    AnyTable,
    /// One opaque byte object.
    Blob,
    /// Any number of blobs whose names start with the slot's name (outputs that depend on parameters, e.g. one
    /// file per requested format). Read together through a folder input.
    Blobs,
    /// A directory tree: one blob per file, named `<slot>/<relative path>`. `stage.slot` names the whole tree, and
    /// a folder input materializes it with the slot's prefix removed.
    Folder,
}

impl OutputKind {
    fn is_table(&self) -> bool {
        matches!(self, OutputKind::Table(_) | OutputKind::AnyTable)
    }
}

/// One declared output of a stage kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSlot {
    /// The output's name (`stage.NAME` in pipeline files); for [`OutputKind::Blobs`], the prefix of the names.
    /// Borrowed for the constant declarations of built-in kinds, owned where a pipeline names the outputs (the
    /// `command` kind).
    pub name: Cow<'static, str>,
    /// What it is.
    pub kind: OutputKind,
    /// One line shown by `alinea help <kind>`.
    pub doc: &'static str,
}

impl OutputSlot {
    /// A table output with a fixed schema.
    pub const fn table(
        name: &'static str,
        columns: &'static [ColumnDecl],
        doc: &'static str,
    ) -> Self {
        OutputSlot {
            name: Cow::Borrowed(name),
            kind: OutputKind::Table(columns),
            doc,
        }
    }

    /// A blob output.
    pub const fn blob(name: &'static str, doc: &'static str) -> Self {
        OutputSlot {
            name: Cow::Borrowed(name),
            kind: OutputKind::Blob,
            doc,
        }
    }

    /// A set of blobs whose names start with `prefix` (see [`OutputKind::Blobs`]).
    pub const fn blobs(prefix: &'static str, doc: &'static str) -> Self {
        OutputSlot {
            name: Cow::Borrowed(prefix),
            kind: OutputKind::Blobs,
            doc,
        }
    }

    /// An output whose name is chosen by the pipeline.
    pub fn named(name: impl Into<String>, kind: OutputKind, doc: &'static str) -> Self {
        OutputSlot {
            name: Cow::Owned(name.into()),
            kind,
            doc,
        }
    }

    /// Whether an output named `name` is this slot.
    pub fn covers(&self, name: &str) -> bool {
        match self.kind {
            OutputKind::Blobs => name.starts_with(&*self.name),
            OutputKind::Folder => {
                name == self.name
                    || name
                        .strip_prefix(&*self.name)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            _ => name == self.name,
        }
    }

    /// The name as shown to users (`report.*` for a set of blobs).
    pub fn display_name(&self) -> String {
        match self.kind {
            OutputKind::Blobs => format!("{}*", self.name),
            OutputKind::Folder => format!("{}/", self.name),
            _ => self.name.to_string(),
        }
    }

    /// `table`, `blob` or `blobs`, for messages.
    pub fn kind_word(&self) -> &'static str {
        match self.kind {
            OutputKind::Table(_) | OutputKind::AnyTable => "table",
            OutputKind::Blob => "blob",
            OutputKind::Blobs => "blobs",
            OutputKind::Folder => "folder",
        }
    }

    /// The declared columns of a table output (`None` for blobs and pass-through tables).
    pub fn columns(&self) -> Option<&'static [ColumnDecl]> {
        match self.kind {
            OutputKind::Table(c) => Some(c),
            _ => None,
        }
    }

    /// Whether this is a table output.
    pub fn is_table(&self) -> bool {
        self.kind.is_table()
    }

    /// Whether this is a blob output (one or a set).
    pub fn is_blob(&self) -> bool {
        matches!(
            self.kind,
            OutputKind::Blob | OutputKind::Blobs | OutputKind::Folder
        )
    }
}

/// `name (kind)`, comma-separated: the valid outputs of a kind, for messages.
pub fn list_outputs(outputs: &[OutputSlot]) -> String {
    if outputs.is_empty() {
        return "(none)".into();
    }
    outputs
        .iter()
        .map(|o| format!("{} ({})", o.display_name(), o.kind_word()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that the columns of `df` are exactly `declared`, in order, with their types.
pub fn check_columns(df: &DataFrame, declared: &[ColumnDecl]) -> Result<(), String> {
    let schema = df.schema();
    let actual: Vec<(&str, &DataType)> = schema.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let names: Vec<&str> = actual.iter().map(|(n, _)| *n).collect();
    let wanted: Vec<&str> = declared.iter().map(|c| c.name).collect();
    if names != wanted {
        return Err(format!(
            "columns are [{}], declared [{}]",
            names.join(", "),
            wanted.join(", ")
        ));
    }
    for ((name, dtype), decl) in actual.iter().zip(declared) {
        if !decl.dtype.matches(dtype) {
            return Err(format!(
                "column `{name}` has type {dtype}, declared {}",
                decl.dtype
            ));
        }
    }
    Ok(())
}

/// Checks the outputs a stage produced against what its kind declared for these parameters: every produced
/// output is declared with its kind and schema, every declared single output is produced, and the main (first)
/// table is the first declared table.
pub fn check_outputs<'a>(
    declared: &[OutputSlot],
    tables: &[(String, DataFrame)],
    blobs: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let blobs: Vec<&str> = blobs.into_iter().collect();
    for (name, df) in tables {
        let slot = declared.iter().find(|s| s.covers(name)).ok_or_else(|| {
            format!(
                "produced table `{name}`, which the kind does not declare; declared outputs: {}",
                list_outputs(declared)
            )
        })?;
        if !slot.is_table() {
            return Err(format!(
                "produced `{name}` as a table, but it is declared as a {}",
                slot.kind_word()
            ));
        }
        if let Some(columns) = slot.columns() {
            check_columns(df, columns).map_err(|m| format!("table `{name}`: {m}"))?;
        }
    }
    for name in &blobs {
        let slot = declared.iter().find(|s| s.covers(name)).ok_or_else(|| {
            format!(
                "produced blob `{name}`, which the kind does not declare; declared outputs: {}",
                list_outputs(declared)
            )
        })?;
        if !slot.is_blob() {
            return Err(format!(
                "produced `{name}` as a blob, but it is declared as a {}",
                slot.kind_word()
            ));
        }
    }
    for slot in declared {
        let produced = match slot.kind {
            OutputKind::Blobs | OutputKind::Folder => true,
            OutputKind::Blob => blobs.iter().any(|n| *n == slot.name),
            _ => tables.iter().any(|(n, _)| *n == slot.name),
        };
        if !produced {
            return Err(format!(
                "declared {} output `{}` was not produced",
                slot.kind_word(),
                slot.name
            ));
        }
    }
    if let (Some((first, _)), Some(main)) = (tables.first(), declared.iter().find(|s| s.is_table()))
        && *first != main.name
    {
        return Err(format!(
            "the main (first) table is `{first}`, but the first declared table is `{}`",
            main.name
        ));
    }
    Ok(())
}

/// Marks a slot that a pipeline must fill; its accessor returns the value itself.
#[derive(Debug, Clone, Copy)]
pub struct Required;
/// Marks a slot that a pipeline may leave empty; its accessor returns an `Option`.
#[derive(Debug, Clone, Copy)]
pub struct Optional;

/// Whether a slot must be filled, and what its accessor returns accordingly.
pub trait Presence {
    /// `true` for [`Required`].
    const REQUIRED: bool;
    /// What an accessor returns for a slot holding a `T`.
    type Out<T>;
    /// The accessor's result from what the context holds (`None`: the slot is empty).
    fn lift<T>(value: Option<T>, slot: &str) -> Result<Self::Out<T>, StageError>;
}

impl Presence for Required {
    const REQUIRED: bool = true;
    type Out<T> = T;
    fn lift<T>(value: Option<T>, slot: &str) -> Result<T, StageError> {
        // A plan that passed validation fills every required slot, so this is only reached by a context built
        // by hand (tests) or a kind whose accessor names a slot missing from its INPUTS.
        value.ok_or_else(|| StageError::Input {
            slot: slot.into(),
            message: "required input is not filled (is the slot listed in the kind's INPUTS?)"
                .into(),
        })
    }
}

impl Presence for Optional {
    const REQUIRED: bool = false;
    type Out<T> = Option<T>;
    fn lift<T>(value: Option<T>, _slot: &str) -> Result<Option<T>, StageError> {
        Ok(value)
    }
}

macro_rules! typed_slot {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name<P = Required> {
            slot: InputSlot,
            presence: PhantomData<P>,
        }

        impl<P> Clone for $name<P> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<P> Copy for $name<P> {}

        impl $name<Required> {
            /// A required slot named `name` (as written in the pipeline's `inputs`), documented by `doc`.
            pub const fn new(name: &'static str, doc: &'static str) -> Self {
                $name {
                    slot: InputSlot {
                        name,
                        kind: $kind,
                        required: true,
                        doc,
                        columns: &[],
                    },
                    presence: PhantomData,
                }
            }

            /// The same slot, optional: its accessor returns an `Option`.
            pub const fn optional(self) -> $name<Optional> {
                $name {
                    slot: InputSlot {
                        required: false,
                        ..self.slot
                    },
                    presence: PhantomData,
                }
            }
        }

        impl<P> $name<P> {
            /// The untyped declaration, for [`crate::Stage::INPUTS`].
            pub const fn slot(self) -> InputSlot {
                self.slot
            }

            /// The slot's name.
            pub const fn name(self) -> &'static str {
                self.slot.name
            }
        }
    };
}

typed_slot!(
    /// A slot filled by one upstream table (`ctx.table(SLOT)`).
    TableSlot,
    SlotKind::Table
);
typed_slot!(
    /// A slot filled by any number of upstream tables (`ctx.tables(SLOT)`).
    TablesSlot,
    SlotKind::Tables
);
typed_slot!(
    /// A slot filled by a file or directory (`ctx.path(SLOT)`).
    PathSlot,
    SlotKind::Path
);
typed_slot!(
    /// A slot filled by one upstream blob (`ctx.blob(SLOT)`).
    BlobSlot,
    SlotKind::Blob
);
typed_slot!(
    /// A slot filled by a folder: a directory, or an upstream stage's blobs (`ctx.folder(SLOT)`).
    FolderSlot,
    SlotKind::Folder
);

impl<P> TableSlot<P> {
    /// The same slot, requiring these columns (with these types) of the upstream's declared schema; checked
    /// when the pipeline is loaded.
    pub const fn requires(self, columns: &'static [ColumnDecl]) -> Self {
        TableSlot {
            slot: InputSlot {
                columns,
                ..self.slot
            },
            presence: PhantomData,
        }
    }
}

impl<P> TablesSlot<P> {
    /// See [`TableSlot::requires`].
    pub const fn requires(self, columns: &'static [ColumnDecl]) -> Self {
        TablesSlot {
            slot: InputSlot {
                columns,
                ..self.slot
            },
            presence: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, DataFrame};

    const COLS: &[ColumnDecl] = &[col("a", DType::Str), col("n", DType::U64)];

    fn frame() -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new("a".into(), vec!["x".to_string()]),
            Column::new("n".into(), vec![1u64]),
        ])
        .unwrap()
    }

    #[test]
    fn columns_must_match_names_order_and_types() {
        assert!(check_columns(&frame(), COLS).is_ok());
        let err =
            check_columns(&frame(), &[col("a", DType::Str), col("n", DType::U32)]).unwrap_err();
        assert!(
            err.contains("column `n` has type u64, declared u32"),
            "{err}"
        );
        let err =
            check_columns(&frame(), &[col("n", DType::U64), col("a", DType::Str)]).unwrap_err();
        assert!(err.contains("columns are [a, n], declared [n, a]"), "{err}");
    }

    #[test]
    fn outputs_must_be_declared_and_produced() {
        let declared = [
            OutputSlot::table("main", COLS, ""),
            OutputSlot::blob("model", ""),
            OutputSlot::named("report.", OutputKind::Blobs, ""),
            OutputSlot::named("adapter", OutputKind::Folder, ""),
        ];
        let tables = vec![("main".to_string(), frame())];
        let blobs = [
            "model",
            "report.md",
            "adapter/config.json",
            "adapter/sub/w.bin",
        ];
        assert!(check_outputs(&declared, &tables, blobs).is_ok());
        let err = check_outputs(&declared, &tables, blobs[1..].iter().copied()).unwrap_err();
        assert!(
            err.contains("declared blob output `model` was not produced"),
            "{err}"
        );
        let err =
            check_outputs(&declared, &tables, blobs.into_iter().chain(["extra"])).unwrap_err();
        assert!(
            err.contains("produced blob `extra`, which the kind does not declare"),
            "{err}"
        );
        // A folder covers the files below it, not a sibling that merely shares the prefix.
        let err =
            check_outputs(&declared, &tables, blobs.into_iter().chain(["adapterx"])).unwrap_err();
        assert!(err.contains("produced blob `adapterx`"), "{err}");
        let err = check_outputs(&declared, &[("model".to_string(), frame())], blobs).unwrap_err();
        assert!(err.contains("declared as a blob"), "{err}");
    }

    #[test]
    fn list_types_name_their_items() {
        assert_eq!(DType::List(&DType::U32).to_string(), "list[u32]");
        assert!(DType::List(&DType::Str).matches(&DataType::List(Box::new(DataType::String))));
        assert!(!DType::List(&DType::Str).matches(&DataType::String));
    }

    #[test]
    fn typed_slots_carry_their_declaration() {
        const PAIRS: TableSlot = TableSlot::new("pairs", "a pairs table").requires(COLS);
        const TOK: PathSlot<Optional> = PathSlot::new("tokenizer", "tokenizer.json").optional();
        assert!(PAIRS.slot().required && PAIRS.slot().kind == SlotKind::Table);
        assert_eq!(PAIRS.slot().columns, COLS);
        assert!(!TOK.slot().required && TOK.slot().kind == SlotKind::Path);
        assert_eq!(TOK.name(), "tokenizer");
    }
}
