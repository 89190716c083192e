//! Loading: sharded and unprefixed folders, clear errors for broken folders, parameter counts.
mod common;

use std::collections::HashMap;
use std::path::Path;

use alinea_bloom::{
    Bloom, BloomConfig, BloomError, LoraConfig, LoraTarget, count_params, count_params_for,
};
use candle_core::{DType, Device, Tensor};

fn fixture() -> std::path::PathBuf {
    common::shared("reference/tiny-bloom")
}

fn copy_fixture(to: &Path) {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture().join(f), to.join(f)).unwrap();
    }
}

fn ids() -> (Vec<Vec<u32>>, Vec<Vec<u8>>) {
    (
        vec![vec![5, 17, 300, 42], vec![3, 3, 9, 10]],
        vec![vec![1, 1, 1, 1], vec![0, 0, 1, 1]],
    )
}

#[test]
fn sharded_unprefixed_folder_loads_identically() {
    let base = Bloom::load(&fixture(), &Device::Cpu, DType::F32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let all =
        candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap();
    let mut shards: [HashMap<String, Tensor>; 2] = Default::default();
    let mut map = serde_json::Map::new();
    for (k, t) in all {
        let k = k.strip_prefix("transformer.").unwrap().to_string();
        let s = if k.starts_with("h.1.") { 1 } else { 0 };
        let name = format!("model-0000{}-of-00002.safetensors", s + 1);
        map.insert(k.clone(), serde_json::Value::String(name));
        shards[s].insert(k, t);
    }
    for (s, m) in shards.iter().enumerate() {
        candle_core::safetensors::save(
            m,
            dir.path()
                .join(format!("model-0000{}-of-00002.safetensors", s + 1)),
        )
        .unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let sharded = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    let (i, m) = ids();
    let a: Vec<f32> = base
        .logits(&i, &m, None)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = sharded
        .logits(&i, &m, None)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a, b);

    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(&e, BloomError::MissingFile { path, .. } if path.ends_with("model-00002-of-00002.safetensors")),
        "{e}"
    );
}

#[test]
fn broken_folders_give_errors_naming_the_fault() {
    let e = Bloom::load(Path::new("/nonexistent/model"), &Device::Cpu, DType::F32).unwrap_err();
    assert!(matches!(e, BloomError::MissingFolder(_)), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");

    std::fs::copy(
        fixture().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");

    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(matches!(e, BloomError::Safetensors { .. }), "{e}");

    // A config whose width disagrees with the weights.
    copy_fixture(dir.path());
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap())
            .unwrap();
    cfg["hidden_size"] = serde_json::json!(32);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(&e, BloomError::ShapeMismatch { name, .. } if name == "word_embeddings.weight"),
        "{e}"
    );

    // More layers than stored.
    cfg["hidden_size"] = serde_json::json!(64);
    cfg["n_layer"] = serde_json::json!(3);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(&e, BloomError::MissingTensor { name, .. } if name.starts_with("h.2.")),
        "{e}"
    );

    cfg["n_head"] = serde_json::json!(5);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(&e, BloomError::Config { field, .. } if field == "n_head"),
        "{e}"
    );

    std::fs::write(
        dir.path().join("config.json"),
        "{\"vocab_size\": 10,\n \"hidden_size\": }",
    )
    .unwrap();
    let e = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(matches!(e, BloomError::Json { line: 2, .. }), "{e}");
}

#[test]
fn preset_counts_match_the_paper() {
    let lora = LoraConfig::default();
    for (name, want) in [
        ("bloomz-1b1", 1_179_648u64),
        ("bloomz-3b", 2_457_600),
        ("bloomz-7b1", 3_932_160),
    ] {
        let c = count_params_for(name, &lora).unwrap();
        assert_eq!(c.trainable_params, want, "{name}");
        assert_eq!(c.total_params, c.base_params + want);
    }
    // Public parameter counts of the released checkpoints.
    assert_eq!(
        BloomConfig::preset("bloomz-1b1").unwrap().base_params(),
        1_065_314_304
    );
    assert_eq!(
        BloomConfig::preset("bloomz-560m").unwrap().base_params(),
        559_214_592
    );
    assert_eq!(
        BloomConfig::preset("bloomz-7b1").unwrap().base_params(),
        7_069_016_064
    );
    assert!(matches!(
        count_params_for("bloomz-9z", &lora),
        Err(BloomError::UnknownPreset(_))
    ));

    // The formula agrees with the fixture's real tensors and a real adapter.
    let dir = fixture();
    let cfg = BloomConfig::from_file(&dir.join("config.json")).unwrap();
    let model = Bloom::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let stored: usize = model
        .state_dict()
        .unwrap()
        .values()
        .map(|t| t.elem_count())
        .sum();
    let lora = LoraConfig {
        targets: vec![LoraTarget::QueryKeyValue, LoraTarget::Dense4hToH],
        ..LoraConfig::default()
    };
    let c = count_params(&cfg, &lora);
    assert_eq!(c.base_params, stored as u64);
    let adapter = alinea_bloom::LoraAdapter::new(&cfg, lora, 1, &Device::Cpu).unwrap();
    assert_eq!(c.trainable_params, adapter.num_params() as u64);
}
