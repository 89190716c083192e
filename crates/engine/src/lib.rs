//! alinea's engine: pipeline plans, cache keys, the content-addressed store and the executor. It knows nothing about
//! what stages compute.

pub mod contract;
pub mod ctx;
pub mod error;
pub mod exec;
pub mod files;
pub mod help;
pub mod key;
pub mod memory;
pub mod plan;
pub mod remote;
pub mod runs;
pub mod slurm;
pub mod stage;
pub mod store;
pub mod table;

pub use contract::{
    BlobSlot, ColumnDecl, DType, FolderSlot, Optional, OutputKind, OutputSlot, PathSlot, Presence,
    Required, TableSlot, TablesSlot, col,
};
pub use ctx::{Input, StageCtx, UpstreamTable};
pub use error::{StageError, StoreError};
pub use stage::{
    ANY_SLOT, BlobData, InputSlot, Outputs, ParamError, Placement, Registry, SlotKind, Stage, Stats,
};
pub use store::Store;
