//! alinea's engine: pipeline plans, cache keys, the content-addressed store and the executor. It knows nothing about
//! what stages compute.

pub mod ctx;
pub mod error;
pub mod exec;
pub mod files;
pub mod key;
pub mod plan;
pub mod stage;
pub mod store;
pub mod table;

pub use ctx::StageCtx;
pub use error::{StageError, StoreError};
pub use stage::{InputSlot, Outputs, Registry, SlotKind, Stage, Stats};
pub use store::Store;
