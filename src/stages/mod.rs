//! Stage kinds, one folder each. To add a kind: a new folder implementing [`crate::engine::Stage`] and one line
//! in [`registry`].

pub mod debug_fail;
pub mod ingest_flores200;
pub mod ingest_opus100;
pub mod ingest_parallel;
pub mod instruct_curriculum;
pub mod instruct_denoise;
pub mod instruct_mix;
pub mod instruct_mono;
pub mod instruct_mt;
pub mod instruct_prompts;
pub mod sample;

use crate::engine::Registry;

/// Every stage kind of this build.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.add::<ingest_opus100::IngestOpus100>()
        .add::<ingest_flores200::IngestFlores200>()
        .add::<ingest_parallel::IngestParallel>()
        .add::<sample::Sample>()
        .add::<instruct_mt::InstructMt>()
        .add::<instruct_mono::InstructMono>()
        .add::<instruct_denoise::InstructDenoise>()
        .add::<instruct_prompts::InstructPrompts>()
        .add::<instruct_mix::InstructMix>()
        .add::<instruct_curriculum::InstructCurriculum>();
    if std::env::var("ALINEA_DEBUG_STAGES").is_ok_and(|v| v == "1") {
        r.add::<debug_fail::DebugFail>();
    }
    r
}
