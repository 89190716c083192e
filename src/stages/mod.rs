//! Stage kinds, one folder each. To add a kind: a new folder implementing [`alinea_engine::Stage`] and one line
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

use alinea_engine::Registry;
use alinea_engine::key::KindCode;

include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));

fn code(folder: &str) -> KindCode {
    let digest = FINGERPRINTS
        .iter()
        .find(|(name, _)| *name == folder)
        .map(|(_, fp)| *fp)
        .expect("build.rs fingerprints every stage folder");
    KindCode {
        digest,
        files: &[],
        deps: &[],
        build: &[],
    }
}

/// Every stage kind of this build.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.add::<ingest_opus100::IngestOpus100>(code("ingest_opus100"))
        .add::<align_ibm2::AlignIbm2>(code("align_ibm2"))
        .add::<align_pairs::AlignPairs>(code("align_pairs"))
        .add::<ingest_flores200::IngestFlores200>(code("ingest_flores200"))
        .add::<ingest_parallel::IngestParallel>(code("ingest_parallel"))
        .add::<sample::Sample>(code("sample"))
        .add::<instruct_mt::InstructMt>(code("instruct_mt"))
        .add::<instruct_align::InstructAlign>(code("instruct_align"))
        .add::<instruct_hint::InstructHint>(code("instruct_hint"))
        .add::<instruct_revise::InstructRevise>(code("instruct_revise"))
        .add::<instruct_mono::InstructMono>(code("instruct_mono"))
        .add::<instruct_denoise::InstructDenoise>(code("instruct_denoise"))
        .add::<instruct_prompts::InstructPrompts>(code("instruct_prompts"))
        .add::<instruct_mix::InstructMix>(code("instruct_mix"))
        .add::<instruct_curriculum::InstructCurriculum>(code("instruct_curriculum"))
        .add::<model_tiny::ModelTiny>(code("model_tiny"))
        .add::<train_lora::TrainLora>(code("train_lora"))
        .add::<generate::Generate>(code("generate"))
        .add::<lid_train::LidTrain>(code("lid_train"))
        .add::<metrics_score::MetricsScore>(code("metrics_score"))
        .add::<report::Report>(code("report"))
        .add::<analysis_representations::AnalysisRepresentations>(code("analysis_representations"))
        .add::<analysis_compare::AnalysisCompare>(code("analysis_compare"));
    if std::env::var("ALINEA_DEBUG_STAGES").is_ok_and(|v| v == "1") {
        r.add::<debug_fail::DebugFail>(code("debug_fail"));
    }
    r
}
