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
inputs = {{ texts = "train_pairs", pretrain = "mt" }}
vocab_size = 400
pretrain_epochs = 2
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
[stages.repr_base]
kind = "analysis.representations"
inputs = {{ model = "tiny", pairs = "test_pairs" }}
[stages.repr_lora]
kind = "analysis.representations"
inputs = {{ model = "tiny", adapter = "lora", pairs = "test_pairs" }}
[stages.delta]
kind = "analysis.compare"
inputs = {{ base = "repr_base", other = "repr_lora" }}
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
    let lora = one["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "lora")
        .unwrap();
    let names: Vec<&str> = lora["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["loss", "adapter_config.json", "adapter_model.safetensors"]
    );
    // 96 MTInstruct rows (48 pairs, both directions) / batch 16 = 6 steps per epoch, 2 epochs.
    assert_eq!(lora["rows"], 12);

    let store = dir.path().join("a");
    let curve = json(
        &store,
        &["query", "SELECT step, loss FROM lora ORDER BY step"],
    );
    let losses: Vec<f64> = curve
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(
        losses[11] < losses[0],
        "training lowers the loss: {losses:?}"
    );

    let config_digest = lora["outputs"][1]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            store
                .join("objects")
                .join(&config_digest[..2])
                .join(config_digest),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 8);
    assert_eq!(config["lora_alpha"], 32.0);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["query_key_value"])
    );

    let hyps = json(&store, &["query", "SELECT direction, hypothesis FROM hyp"]);
    assert_eq!(hyps.as_array().unwrap().len(), 12);
    assert!(
        hyps.as_array()
            .unwrap()
            .iter()
            .all(|r| !r["hypothesis"].as_str().unwrap().contains('\n'))
    );

    // Representation analysis: 3 hidden-state entries (embeddings + 2 blocks) per language; the adapter, which
    // touches only attention, leaves the embedding layer unchanged and moves the others.
    let deltas = json(
        &store,
        &[
            "query",
            "SELECT layer, pairs, delta FROM delta JOIN repr_base USING (lang, layer) ORDER BY layer",
        ],
    );
    let rows = deltas.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["pairs"], 6);
    assert_eq!(rows[0]["delta"].as_f64().unwrap(), 0.0);
    assert!(rows[2]["delta"].as_f64().unwrap().abs() > 1e-6, "{deltas}");

    let two = json(&dir.path().join("b"), &["--threads", "2", "run", &p]);
    assert_eq!(
        statuses(&one),
        statuses(&two),
        "same artifacts for 1 and 2 threads"
    );
    assert_eq!(
        output_digests(&one, "tiny"),
        output_digests(&two, "tiny"),
        "the pretrained weights are the same for 1 and 2 threads"
    );
    let again = json(&store, &["run", &p]);
    assert!(statuses(&again).iter().all(|(_, s, _)| s == "cached"));
}

#[test]
fn pretraining_is_in_the_key_and_changes_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let store = dir.path().join("s");
    let pretrained = json(&store, &["run", &p, "tiny"]);
    let status = json(&store, &["status", &p, "--set", "tiny.pretrain_epochs=0"]);
    assert!(
        status.to_string().contains("pretrain_epochs"),
        "the reason names the parameter: {status}"
    );
    let random = json(
        &store,
        &["run", &p, "tiny", "--set", "tiny.pretrain_epochs=0"],
    );
    let (a, b) = (
        output_digests(&pretrained, "tiny"),
        output_digests(&random, "tiny"),
    );
    // Outputs in declaration order: loss, config.json, model.safetensors, tokenizer.json.
    assert_eq!(a[3], b[3], "same tokenizer");
    assert_ne!(a[2], b[2], "pretraining changes model.safetensors");

    // The loss curve of pretraining is the stage's `loss` table: one row per optimiser step (2 epochs of
    // batches of 16, the same number in each), falling from the first epoch to the second; the random model has none.
    let store_q = |sql: &str| json(&store, &["query", sql]);
    let mt_rows = store_q("SELECT count(*) AS n FROM mt")[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(
        store_q("SELECT count(*) AS n FROM tiny")[0]["n"],
        0,
        "no pretraining, no loss rows"
    );
    json(&store, &["run", &p, "tiny"]);
    let by_epoch = store_q(
        "SELECT ceil(epoch) AS e, count(*) AS steps, avg(loss) AS loss FROM tiny GROUP BY e ORDER BY e",
    );
    let by_epoch = by_epoch.as_array().unwrap();
    assert_eq!(by_epoch.len(), 2, "{by_epoch:?}");
    // (Rows whose prompt fills pretrain_max_len have no output token left and are not trained on.)
    assert_eq!(by_epoch[0]["steps"], by_epoch[1]["steps"]);
    let steps = by_epoch[0]["steps"].as_u64().unwrap();
    assert!(steps > 0 && steps <= mt_rows.div_ceil(16), "{by_epoch:?}");
    assert!(
        by_epoch[1]["loss"].as_f64().unwrap() < by_epoch[0]["loss"].as_f64().unwrap(),
        "{by_epoch:?}"
    );
}

#[test]
fn model_info_prints_the_papers_trainable_counts() {
    let store = tempfile::tempdir().unwrap();
    for (preset, trainable) in [
        ("bloomz-1b1", 1_179_648u64),
        ("bloomz-3b", 2_457_600),
        ("bloomz-7b1", 3_932_160),
    ] {
        let info = json(store.path(), &["model", "info", "--preset", preset]);
        assert_eq!(info["trainable_params"], trainable, "{preset}");
        assert!(info["total_params"].as_u64().unwrap() > 1_000_000_000);
    }
    let err = fails(
        store.path(),
        &[
            "model",
            "info",
            "--preset",
            "bloomz-1b1",
            "--lora-targets",
            "qkv",
        ],
    );
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
    assert!(
        err.contains("empty_model") && err.contains("config.json"),
        "{err}"
    );
}

/// Whether a finished checkpoint exists under the store's scratch space.
fn has_checkpoint(store: &std::path::Path) -> bool {
    let Ok(works) = std::fs::read_dir(store.join("work")) else {
        return false;
    };
    works.flatten().any(|w| {
        std::fs::read_dir(w.path().join("checkpoints"))
            .map(|rd| {
                rd.flatten().any(|c| {
                    c.path().join("trainer_state.json").is_file()
                        && !c.file_name().to_string_lossy().ends_with(".partial")
                })
            })
            .unwrap_or(false)
    })
}

#[test]
fn killed_training_resumes_from_its_checkpoint_and_ends_with_the_same_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let set = ["--set", "lora.checkpoint_every=2", "--set", "lora.epochs=6"];
    let reference = json(
        &dir.path().join("ref"),
        &[&["run", &p][..], &set[..]].concat(),
    );

    let store = dir.path().join("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_alinea"))
        .arg("--store")
        .arg(&store)
        .args(["run", &p])
        .args(set)
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !has_checkpoint(&store) {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "training finished before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let resumed = json(&store, &[&["run", &p][..], &set[..]].concat());
    assert_eq!(status_of(&resumed, "lora"), "ran");
    let log = json(&store, &["log", "lora"]);
    assert!(
        log["stats"]["counters"]["resumed_from_step"]
            .as_u64()
            .unwrap_or(0)
            >= 2,
        "{}",
        log["stats"]
    );
    let digests = |r: &serde_json::Value| {
        statuses(r)
            .into_iter()
            .filter(|(n, _, _)| n == "lora" || n == "hyp")
            .collect::<Vec<_>>()
    };
    let strip = |v: Vec<(String, String, String)>| {
        v.into_iter().map(|(n, _, d)| (n, d)).collect::<Vec<_>>()
    };
    assert_eq!(
        strip(digests(&resumed)),
        strip(digests(&reference)),
        "resumed training gives the uninterrupted result"
    );
}

/// A CUDA device in a build without the `cuda` feature, or an unknown dtype, stops the stage with an error that
/// names the stage, the value and the way out; the stage never runs on the CPU instead.
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_and_bad_dtypes_are_errors_not_cpu_runs() {
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"{}\" }}\nlangs = [\"be\"]\n\
         [stages.pairs]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nper_lang = 8\n\
         [stages.tiny]\nkind = \"model.tiny\"\ninputs = {{ texts = \"pairs\" }}\nvocab_size = 300\n\
         [stages.mt]\nkind = \"instruct.mt\"\ninputs = {{ pairs = \"pairs\" }}\n",
        dir.path().display(),
        repo().join("datasets/flores200").display()
    );
    for (stage, want) in [
        (
            "[stages.lora]\nkind = \"train.lora\"\ninputs = { model = \"tiny\", train = \"mt\" }\ndevice = \"cuda:1\"\n",
            "device `cuda:1`: this alinea was built without CUDA support",
        ),
        (
            "[stages.hyp]\nkind = \"generate\"\ninputs = { model = \"tiny\", prompts = \"mt\" }\ndevice = \"cuda\"\n",
            "device `cuda`: this alinea was built without CUDA support",
        ),
        (
            "[stages.hyp]\nkind = \"generate\"\ninputs = { model = \"tiny\", prompts = \"mt\" }\ndtype = \"fp64\"\n",
            "parameter `dtype`: `fp64`: expected auto, f32, bf16 or f16",
        ),
    ] {
        let p = write(dir.path(), "p.toml", &format!("{head}{stage}"));
        let err = fails(&dir.path().join("s"), &["run", p.to_str().unwrap()]);
        let name = if stage.contains("lora") {
            "lora"
        } else {
            "hyp"
        };
        assert!(err.contains(want) && err.contains(name), "{err}");
        if want.starts_with("device") {
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}

/// The bytes of output `name` of stage `stage` in a run report.
fn output_bytes(
    store: &std::path::Path,
    report: &serde_json::Value,
    stage: &str,
    name: &str,
) -> Vec<u8> {
    let s = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap();
    let o = s["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {s}"));
    let digest = o["digest"].as_str().unwrap();
    std::fs::read(store.join("objects").join(&digest[..2]).join(digest)).unwrap()
}

#[test]
fn merge_hands_the_merged_model_to_the_store_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = pipeline(dir.path());
    let report = json(&store, &["run", &p, "--set", "lora.merge=true"]);
    let merged = output_bytes(&store, &report, "lora", "merged.safetensors");
    let base = output_bytes(&store, &report, "tiny", "model.safetensors");
    // Same tensors, same shapes and dtype (the header lists them), other attention weights.
    let header = |b: &[u8]| {
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        serde_json::from_slice::<serde_json::Value>(&b[8..8 + n]).unwrap()
    };
    let (hm, hb) = (header(&merged), header(&base));
    let names = |h: &serde_json::Value| {
        let mut k: Vec<String> = h
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(names(&hm), names(&hb));
    for name in names(&hb) {
        assert_eq!(hm[&name]["shape"], hb[&name]["shape"], "{name}");
        assert_eq!(hm[&name]["dtype"], hb[&name]["dtype"], "{name}");
    }
    assert_ne!(merged, base, "the adapter was merged in");
    // Moved, not copied: no second copy of the merged model stays in the stage's scratch space.
    let leftovers: Vec<_> = walk(&store.join("work"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    assert!(leftovers.is_empty(), "scratch copies left: {leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The output digests of `stage` in a `run --json` answer.
fn output_digests(report: &serde_json::Value, stage: &str) -> Vec<String> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap()["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn checkpoint_every_cannot_change_the_bytes_and_stays_out_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let plain = json(&a, &["run", &p]);
    let checkpointed = json(&b, &["run", &p, "--set", "lora.checkpoint_every=1"]);
    assert_eq!(
        output_digests(&plain, "lora"),
        output_digests(&checkpointed, "lora"),
        "a checkpoint after every step gives the same bytes"
    );
    let again = json(&a, &["run", &p, "--set", "lora.checkpoint_every=3"]);
    assert_eq!(status_of(&again, "lora"), "cached");
    // The adapter as a folder PEFT loads: `export STAGE -o DIR/` writes each blob under its own name.
    let folder = dir.path().join("adapter/");
    json(&a, &["export", "lora", "-o", folder.to_str().unwrap()]);
    let digests = output_digests(&plain, "lora");
    for (name, digest) in [
        ("adapter_config.json", &digests[1]),
        ("adapter_model.safetensors", &digests[2]),
    ] {
        let bytes = std::fs::read(folder.join(name)).unwrap();
        assert_eq!(&blake3::hash(&bytes).to_hex().to_string(), digest, "{name}");
    }
    // Unknown keys are still refused, though serde cannot deny them through train.lora's nested flatten.
    let typo = fails(&a, &["status", &p, "--set", "lora.epochz=1"]);
    assert!(
        typo.contains("unknown field `epochz`, expected one of"),
        "{typo}"
    );
    let changed = json(&a, &["run", &p, "--set", "lora.epochs=1"]);
    assert_eq!(
        status_of(&changed, "lora"),
        "ran",
        "a keyed parameter still reruns"
    );
}

#[test]
fn a_validation_set_gives_validation_loss_per_evaluation_step_and_keep_best_keeps_the_lowest() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let text = std::fs::read_to_string(&p).unwrap().replace(
        r#"inputs = { model = "tiny", train = "mt" }"#,
        r#"inputs = { model = "tiny", train = "mt", validation = "val" }"#,
    ) + "[stages.val]\nkind = \"instruct.mt\"\ninputs = { pairs = \"test_pairs\" }\n";
    let p = write(dir.path(), "validated.toml", &text);
    let p = p.to_str().unwrap();
    let store = dir.path().join("s");
    let set = ["--set", "lora.eval_every=4", "--set", "lora.epochs=3"];
    let last = json(&store, &[&["run", p][..], &set[..]].concat());
    let curve = json(
        &store,
        &["query", "SELECT step, val_loss FROM lora ORDER BY step"],
    );
    let rows = curve.as_array().unwrap();
    assert_eq!(rows.len(), 18, "96 examples / 16 per batch x 3 epochs");
    let evaluated: Vec<(u64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r["val_loss"].as_f64()?)))
        .collect();
    let steps: Vec<u64> = evaluated.iter().map(|e| e.0).collect();
    assert_eq!(
        steps,
        [4, 8, 12, 16, 18],
        "every 4 steps and after the last"
    );
    assert!(
        evaluated.iter().all(|e| e.1.is_finite() && e.1 > 0.0),
        "{evaluated:?}"
    );
    let best = evaluated
        .iter()
        .fold(evaluated[0], |b, e| if e.1 < b.1 { *e } else { b });

    let kept = json(
        &store,
        &[&["run", p, "--set", "lora.keep_best=true"][..], &set[..]].concat(),
    );
    assert_eq!(status_of(&kept, "lora"), "ran");
    let log = json(&store, &["log", "lora"]);
    assert_eq!(
        log["stats"]["counters"]["best_step"], best.0,
        "{}",
        log["stats"]
    );
    let (last_adapter, kept_adapter) = (
        output_digests(&last, "lora")[2].clone(),
        output_digests(&kept, "lora")[2].clone(),
    );
    assert_eq!(
        last_adapter == kept_adapter,
        best.0 == 18,
        "the kept adapter is the last one exactly when the last evaluation is the best"
    );
}
