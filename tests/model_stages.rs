//! BLOOM stages through the engine: a tiny model made from the shipped data, LoRA training, generation.

mod common;

use common::*;

fn pipeline(dir: &std::path::Path) -> String {
    write(
        dir,
        "model.toml",
        &format!(
            r#"[pipeline]
root = "{}"
[stages.flores]
kind = "ingest.flores200"
inputs = {{ root = "datasets/flores200" }}
langs = ["be"]
[stages.train_pairs]
kind = "sample"
inputs = {{ pairs = "flores" }}
splits = ["dev"]
per_lang = 48
[stages.test_pairs]
kind = "sample"
inputs = {{ pairs = "flores" }}
splits = ["devtest"]
per_lang = 6
[stages.mt]
kind = "instruct.mt"
inputs = {{ pairs = "train_pairs" }}
[stages.tiny]
kind = "model.tiny"
inputs = {{ texts = "train_pairs" }}
vocab_size = 400
[stages.lora]
kind = "train.lora"
inputs = {{ model = "tiny", train = "mt" }}
epochs = 2
batch_size = 16
learning_rate = 0.01
[stages.prompts]
kind = "instruct.prompts"
inputs = {{ pairs = "test_pairs" }}
[stages.hyp]
kind = "generate"
inputs = {{ model = "tiny", adapter = "lora", prompts = "prompts" }}
max_new_tokens = 6
"#,
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

#[test]
fn tiny_model_trains_a_peft_adapter_and_generates_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let one = json(&dir.path().join("a"), &["--threads", "1", "run", &p]);
    let lora = one["stages"].as_array().unwrap().iter().find(|s| s["name"] == "lora").unwrap();
    let names: Vec<&str> = lora["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["loss", "adapter_config.json", "adapter_model.safetensors"]);
    // 96 MTInstruct rows (48 pairs, both directions) / batch 16 = 6 steps per epoch, 2 epochs.
    assert_eq!(lora["rows"], 12);

    let store = dir.path().join("a");
    let curve = json(&store, &["query", "SELECT step, loss FROM lora ORDER BY step"]);
    let losses: Vec<f64> = curve.as_array().unwrap().iter().map(|r| r["loss"].as_f64().unwrap()).collect();
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(losses[11] < losses[0], "training lowers the loss: {losses:?}");

    let config_digest = lora["outputs"][1]["digest"].as_str().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("objects").join(&config_digest[..2]).join(config_digest)).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 8);
    assert_eq!(config["lora_alpha"], 32.0);
    assert_eq!(config["target_modules"], serde_json::json!(["query_key_value"]));

    let hyps = json(&store, &["query", "SELECT direction, hypothesis FROM hyp"]);
    assert_eq!(hyps.as_array().unwrap().len(), 12);
    assert!(hyps.as_array().unwrap().iter().all(|r| !r["hypothesis"].as_str().unwrap().contains('\n')));

    let two = json(&dir.path().join("b"), &["--threads", "2", "run", &p]);
    assert_eq!(statuses(&one), statuses(&two), "same artifacts for 1 and 2 threads");
    let again = json(&store, &["run", &p]);
    assert!(statuses(&again).iter().all(|(_, s, _)| s == "cached"));
}

#[test]
fn model_info_prints_the_papers_trainable_counts() {
    let store = tempfile::tempdir().unwrap();
    for (preset, trainable) in [("bloomz-1b1", 1_179_648u64), ("bloomz-3b", 2_457_600), ("bloomz-7b1", 3_932_160)] {
        let info = json(store.path(), &["model", "info", "--preset", preset]);
        assert_eq!(info["trainable_params"], trainable, "{preset}");
        assert!(info["total_params"].as_u64().unwrap() > 1_000_000_000);
    }
    let err = fails(store.path(), &["model", "info", "--preset", "bloomz-1b1", "--lora-targets", "qkv"]);
    assert!(err.contains("unknown module `qkv`"), "{err}");
}

#[test]
fn a_missing_model_folder_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty_model")).unwrap();
    let p = write(
        dir.path(),
        "p.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"{}\" }}\nlangs = [\"be\"]\n\
             [stages.prompts]\nkind = \"instruct.prompts\"\ninputs = {{ pairs = \"flores\" }}\n\
             [stages.hyp]\nkind = \"generate\"\ninputs = {{ model = \"empty_model\", prompts = \"prompts\" }}\n",
            dir.path().display(),
            repo().join("datasets/flores200").display()
        ),
    );
    let err = fails(&dir.path().join("s"), &["run", p.to_str().unwrap()]);
    assert!(err.contains("empty_model") && err.contains("config.json"), "{err}");
}
