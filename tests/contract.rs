//! The typed stage contract: declared outputs checked by the plan, parameter errors located at their field (or at
//! the `--set` that caused them), and `alinea help` generated for every kind from its types.

use std::path::Path;

use alinea_engine::plan::{self, Override, PlanError};

fn registry() -> alinea_engine::Registry {
    alinea::stages::registry()
}

/// Parses `text` as if it were `contract.toml` at the repository root (so `datasets/` resolves).
fn parse(text: &str, overrides: &[&str]) -> Result<plan::Plan, PlanError> {
    let overrides: Vec<Override> = overrides.iter().map(|o| o.parse().unwrap()).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    plan::parse(
        "contract.toml",
        text,
        &root.join("contract.toml"),
        &registry(),
        &overrides,
    )
}

fn err(text: &str, overrides: &[&str]) -> String {
    parse(text, overrides)
        .map(|_| ())
        .expect_err("the pipeline should be rejected")
        .to_string()
}

const HEAD: &str = r#"
[stages.opus]
kind = "ingest.opus100"
inputs = { root = "datasets/opus-100" }
langs = ["be"]

[stages.lid]
kind = "lid.train"
inputs = { root = "datasets/flores200" }
langs = ["en", "be"]
"#;

#[test]
fn a_valid_pipeline_with_named_outputs_passes() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus.pairs\" }}\n\
         [stages.align]\nkind = \"align.ibm2\"\ninputs = {{ pairs = \"sample\" }}\n"
    );
    let plan = parse(&text, &[]).unwrap();
    assert_eq!(plan.stages.len(), 4);
}

#[test]
fn an_undeclared_output_is_located_at_the_reference_and_lists_the_valid_ones() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"lid.lang\" }}\n"
    );
    let e = err(&text, &[]);
    // The reference `"lid.lang"` is on line 14 (HEAD starts with a newline), column 21 of `inputs = { pairs = …`.
    assert!(e.starts_with("contract.toml:14:20: "), "{e}");
    assert!(
        e.contains("stage `lid` (lid.train) has no output `lang`"),
        "{e}"
    );
    assert!(
        e.contains("its outputs are: langs (table), model (blob)"),
        "{e}"
    );
}

#[test]
fn a_blob_fed_to_a_table_slot_is_rejected_before_running() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"lid.model\" }}\n"
    );
    let e = err(&text, &[]);
    assert!(
        e.contains("input `pairs` takes a table, but `lid.model` (lid.train) is a blob"),
        "{e}"
    );
}

#[test]
fn a_table_fed_to_a_blob_slot_is_rejected_before_running() {
    let text = format!(
        "{HEAD}\n[stages.score]\nkind = \"metrics.score\"\ninputs = {{ generations = \"opus\", lid = \"lid.langs\" }}\n"
    );
    let e = err(&text, &[]);
    assert!(
        e.contains("input `lid` takes a blob, but `lid.langs` (lid.train) is a table"),
        "{e}"
    );
}

#[test]
fn a_missing_required_column_names_the_column_and_the_upstream_schema() {
    // align.pairs reads token and link columns that a pairs table does not have.
    let text = format!(
        "{HEAD}\n[stages.gold]\nkind = \"align.pairs\"\ninputs = {{ alignments = \"opus\" }}\n"
    );
    let e = err(&text, &[]);
    assert!(
        e.contains("input `alignments` needs column `link_src` (list[u32]), but `opus` (ingest.opus100) has none"),
        "{e}"
    );
    assert!(
        e.contains("its columns are: pair_id u64, corpus str"),
        "{e}"
    );
}

#[test]
fn a_column_of_the_wrong_type_is_rejected() {
    // analysis.compare reads `cosine` (f64) of two representation tables; lid.train's `langs` has other columns.
    let text = format!(
        "{HEAD}\n[stages.cmp]\nkind = \"analysis.compare\"\ninputs = {{ base = \"lid\", other = \"lid\" }}\n"
    );
    let e = err(&text, &[]);
    assert!(e.contains("input `base` needs column `layer` (u32)"), "{e}");
}

#[test]
fn validate_errors_are_located_at_the_field() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus\" }}\nmin_words = 9\nmax_words = 3\n"
    );
    let e = err(&text, &[]);
    assert!(e.starts_with("contract.toml:15:1: "), "{e}");
    assert!(
        e.contains("parameter `min_words`: min_words (9) is greater than max_words (3)"),
        "{e}"
    );
}

#[test]
fn nested_fields_are_located_at_their_own_key() {
    let text = format!(
        "{HEAD}\n[stages.align]\nkind = \"align.ibm2\"\ninputs = {{ pairs = \"opus\" }}\n\n[stages.align.ibm2]\niterations = 5\np0 = \"x\"\n"
    );
    let e = err(&text, &[]);
    assert!(e.starts_with("contract.toml:18:1: "), "{e}");
    assert!(e.contains("parameter `ibm2.p0`"), "{e}");
}

#[test]
fn unknown_fields_are_located_at_their_key() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus\" }}\nper_lang = 5\nper_lnag = 5\n"
    );
    let e = err(&text, &[]);
    assert!(e.starts_with("contract.toml:16:1: "), "{e}");
    assert!(
        e.contains("parameter `per_lnag`: unknown field `per_lnag`"),
        "{e}"
    );
}

#[test]
fn override_errors_point_at_the_override() {
    let text = format!(
        "{HEAD}\n[stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"opus\" }}\nper_lang = 5\n"
    );
    let e = err(&text, &["sample.per_lang=abc"]);
    assert!(e.starts_with("--set sample.per_lang=abc: "), "{e}");
    assert!(
        e.contains("invalid type: string \"abc\", expected u64"),
        "{e}"
    );
    let e = err(&text, &["sample.min_words=900"]);
    assert!(e.starts_with("--set sample.min_words=900: "), "{e}");
    let e = err(&text, &["sample.nope=1"]);
    assert!(e.starts_with("--set sample.nope=1: "), "{e}");
    assert!(e.contains("unknown field `nope`"), "{e}");
    let e = err(&text, &["smaple.per_lang=1"]);
    assert!(
        e.starts_with("--set smaple.per_lang=1: no stage `smaple`"),
        "{e}"
    );
    assert!(e.contains("did you mean `sample`?"), "{e}");
}

#[test]
fn param_dependent_outputs_follow_the_parameters() {
    let r = registry();
    let lora = r.get("train.lora").unwrap();
    let names = |params: serde_json::Value| -> Vec<String> {
        let canonical = lora.canonical_params(params).unwrap();
        lora.outputs(&canonical)
            .unwrap()
            .iter()
            .map(|o| o.name.to_string())
            .collect()
    };
    let merged = "merged.safetensors".to_string();
    assert!(!names(serde_json::json!({})).contains(&merged));
    assert!(names(serde_json::json!({"merge": true})).contains(&merged));
}

#[test]
fn every_kind_declares_outputs_that_its_defaults_produce_a_subset_of() {
    for kind in registry().iter() {
        if kind
            .inputs()
            .iter()
            .any(|s| s.name == alinea_engine::ANY_SLOT)
        {
            // A kind the pipeline describes (`command`): its outputs are the pipeline's, tested in command_stage.rs.
            continue;
        }
        let declared = kind.declared_outputs();
        assert!(!declared.is_empty(), "{} declares no output", kind.kind());
        let with_defaults = kind.outputs(&kind.default_params()).unwrap();
        for o in &with_defaults {
            assert!(
                declared.contains(o),
                "{}: {} not in OUTPUTS",
                kind.kind(),
                o.name
            );
        }
    }
}

#[test]
fn help_of_every_kind_lists_every_parameter_input_and_output() {
    let r = registry();
    assert!(r.iter().count() >= 23);
    for kind in r.iter() {
        let text = alinea_engine::help::render(kind);
        let defaults = kind.default_params();
        let fields = defaults.as_object().expect("params are a table");
        for (name, value) in fields {
            assert!(
                text.contains(&format!("\n  {name}: ")),
                "help of {} lacks parameter `{name}`:\n{text}",
                kind.kind()
            );
            for sub in value.as_object().into_iter().flat_map(|o| o.keys()) {
                assert!(
                    text.contains(&format!("{name}.{sub}: ")),
                    "help of {} lacks parameter `{name}.{sub}`:\n{text}",
                    kind.kind()
                );
            }
        }
        // Every parameter is documented by its doc comment.
        for p in alinea_engine::help::parameters(kind) {
            assert!(
                !p.doc.is_empty(),
                "{}: parameter `{}` has no doc comment",
                kind.kind(),
                p.name
            );
        }
        for input in kind.inputs() {
            assert!(
                text.contains(&format!("\n  {} (", input.name)),
                "help of {} lacks input `{}`:\n{text}",
                kind.kind(),
                input.name
            );
        }
        for output in kind.declared_outputs() {
            assert!(
                text.contains(&format!("\n  {} (", output.display_name())),
                "help of {} lacks output `{}`:\n{text}",
                kind.kind(),
                output.name
            );
            if let Some(columns) = output.columns() {
                for c in columns {
                    assert!(
                        text.contains(&format!("{} {}", c.name, c.dtype)),
                        "help of {} lacks column `{}` of `{}`",
                        kind.kind(),
                        c.name,
                        output.name
                    );
                }
            }
        }
    }
}

#[test]
fn help_shows_types_defaults_and_docs() {
    let r = registry();
    let text = alinea_engine::help::render(r.get("sample").unwrap());
    assert!(text.contains("  per_lang: integer = 200000\n"), "{text}");
    assert!(
        text.contains("Pairs kept per (split, src_lang, tgt_lang) group"),
        "{text}"
    );
    assert!(
        text.contains("  splits: array of string = [\"train\"]\n"),
        "{text}"
    );
    assert!(text.contains("  pairs (table, required): "), "{text}");
    assert!(
        text.contains("columns: pair_id u64, corpus str, split str"),
        "{text}"
    );
}

#[test]
fn type_errors_in_flattened_domain_configs_are_located_at_the_field() {
    // `generate` embeds alinea_bloom::GenerateConfig (flattened): serde reports its errors at the table.
    let text = format!(
        "{HEAD}\n[stages.gen]\nkind = \"generate\"\ninputs = {{ model = \"datasets\", prompts = \"opus\" }}\ndevice = \"cpu\"\nbatch_size = \"many\"\n"
    );
    let e = err(&text, &[]);
    assert!(e.starts_with("contract.toml:16:1: "), "{e}");
    assert!(
        e.contains("parameter `batch_size`: invalid type: string \"many\""),
        "{e}"
    );
}

#[test]
fn generate_keeps_its_canonical_parameters_while_reusing_the_domain_config() {
    let r = registry();
    let canonical = r
        .get("generate")
        .unwrap()
        .canonical_params(serde_json::json!({"max_new_tokens": 48, "batch_size": 16}))
        .unwrap();
    assert_eq!(
        canonical,
        serde_json::json!({"batch_size": 16, "device": "cpu", "dtype": "auto", "max_input_len": 384, "max_new_tokens": 48, "no_repeat_ngram_size": 0})
    );
}
