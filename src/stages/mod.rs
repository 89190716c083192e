//! Stage kinds, one folder each. To add a kind: a new folder implementing [`crate::engine::Stage`] and one line
//! in [`registry`].

pub mod align_ibm2;
pub mod align_pairs;
pub mod analysis_compare;
pub mod analysis_representations;
pub mod debug_fail;
pub mod generate;
pub mod ingest_flores200;
pub mod ingest_opus100;
pub mod ingest_parallel;
pub mod instruct_align;
pub mod instruct_curriculum;
pub mod instruct_denoise;
pub mod instruct_hint;
pub mod instruct_mix;
pub mod instruct_mono;
pub mod instruct_mt;
pub mod instruct_prompts;
pub mod instruct_revise;
pub mod lid_train;
pub mod metrics_score;
pub mod model_tiny;
pub mod report;
pub mod sample;
pub mod train_lora;

use crate::engine::Registry;

/// Every stage kind of this build.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.add::<ingest_opus100::IngestOpus100>()
        .add::<align_ibm2::AlignIbm2>()
        .add::<align_pairs::AlignPairs>()
        .add::<ingest_flores200::IngestFlores200>()
        .add::<ingest_parallel::IngestParallel>()
        .add::<sample::Sample>()
        .add::<instruct_mt::InstructMt>()
        .add::<instruct_align::InstructAlign>()
        .add::<instruct_hint::InstructHint>()
        .add::<instruct_revise::InstructRevise>()
        .add::<instruct_mono::InstructMono>()
        .add::<instruct_denoise::InstructDenoise>()
        .add::<instruct_prompts::InstructPrompts>()
        .add::<instruct_mix::InstructMix>()
        .add::<instruct_curriculum::InstructCurriculum>()
        .add::<model_tiny::ModelTiny>()
        .add::<train_lora::TrainLora>()
        .add::<generate::Generate>()
        .add::<lid_train::LidTrain>()
        .add::<metrics_score::MetricsScore>()
        .add::<report::Report>()
        .add::<analysis_representations::AnalysisRepresentations>()
        .add::<analysis_compare::AnalysisCompare>();
    if std::env::var("ALINEA_DEBUG_STAGES").is_ok_and(|v| v == "1") {
        r.add::<debug_fail::DebugFail>();
    }
    r
}
