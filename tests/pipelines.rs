//! The shipped pipeline files stay valid: the demo, and the paper's experiments against a data root laid out as
//! they expect (built from ../shared with symlinks, so nothing large is copied).

mod common;

use common::*;

#[test]
fn demo_pipeline_validates_and_renders_its_graph() {
    let store = tempfile::tempdir().unwrap();
    let out = alinea(store.path())
        .args(["dag", "pipelines/demo.toml", "--format", "mermaid"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dag = String::from_utf8_lossy(&out.stdout);
    for stage in [
        "align",
        "gold",
        "align_instr",
        "train_set_mt_align",
        "lora_mt_align",
        "gen_mt",
        "score_mt_align",
        "report",
    ] {
        assert!(
            dag.contains(&format!("{stage}[")),
            "{stage} missing from\n{dag}"
        );
    }
}

#[cfg(unix)]
#[test]
fn paper_pipelines_validate_against_a_real_data_layout() {
    let data = tempfile::tempdir().unwrap();
    let opus = shared("datasets/opus-100/opus-100-corpus");
    let flores = shared("datasets/flores200/flores200_dataset");
    std::os::unix::fs::symlink(&opus, data.path().join("opus-100-corpus")).unwrap();
    std::os::unix::fs::symlink(&flores, data.path().join("flores200_dataset")).unwrap();
    let model = data.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("tokenizer.json"), "{}").unwrap();
    for file in [
        "pipelines/bloomz24-table1.toml",
        "pipelines/bloomz3-de-nl-ru.toml",
    ] {
        let out = alinea(&data.path().join("store"))
            .env("ALINEA_DATA", data.path())
            .env("ALINEA_MODEL", &model)
            .args(["dag", file])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dag = String::from_utf8_lossy(&out.stdout);
        assert!(dag.contains("\"report\""), "{file}");
    }
    let out = alinea(&data.path().join("store"))
        .env_remove("ALINEA_DATA")
        .args(["dag", "pipelines/bloomz24-table1.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment variable `ALINEA_DATA`"));
}

#[test]
fn example_pipelines_of_external_tools_validate() {
    let store = tempfile::tempdir().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo().join("pipelines/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = alinea(store.path()).arg("dag").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            found.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    found.sort();
    assert_eq!(
        found,
        ["comet", "fast-align", "peft-lora", "peft-lora-multinode"]
    );
    // Every script an example runs is listed in its `tools`, so its bytes are in the cache key.
    for name in &found {
        let text = std::fs::read_to_string(repo().join(format!("pipelines/examples/{name}.toml")))
            .unwrap();
        let tools: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tools = ["))
            .flat_map(|l| l.split('"').skip(1).step_by(2))
            .collect();
        for script in text.split('"').filter(|s| s.starts_with("scripts/")) {
            assert!(repo().join(script).is_file(), "{name}: {script} missing");
            assert!(
                tools.contains(&script),
                "{name}: {script} not in tools {tools:?}"
            );
        }
    }
}
