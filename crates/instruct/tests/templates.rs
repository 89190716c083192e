//! Exact templates, character by character, against RECIPE.md §4 and against literal strings.
mod common;

use alinea_instruct::template::*;
use alinea_instruct::*;
use common::*;

#[test]
fn mt_matches_recipe_and_literal() {
    let pairs = flores("afr_Latn", "af", 3);
    let out = build_mt(&pairs, &names(), &TokenCounter::Bytes, &MtParams::default()).unwrap();
    assert_eq!(out.rows.len(), 6, "both directions per pair");
    let (en, af) = (&pairs[0].src, &pairs[0].tgt);
    let recipe_in = recipe_template("**MTInstruct**", 0, "\n");
    let recipe_out = recipe_template("**MTInstruct**", 1, "\n");
    assert_eq!(recipe_in, "Translate from {Y} to {X}.\n{Y}: {y}\n{X}:");
    assert_eq!(recipe_out, " {x}");
    // X = Afrikaans (unseen), Y = English: first row is Y→X.
    let r = &out.rows[0];
    assert_eq!(
        r.instruction,
        sub(
            &recipe_in,
            &[("{Y}", "English"), ("{X}", "Afrikaans"), ("{y}", en)]
        )
    );
    assert_eq!(r.output, sub(&recipe_out, &[("{x}", af)]));
    assert_eq!(
        r.instruction,
        format!("Translate from English to Afrikaans.\nEnglish: {en}\nAfrikaans:")
    );
    assert_eq!(
        (
            r.src_lang.as_str(),
            r.tgt_lang.as_str(),
            r.direction.as_str()
        ),
        ("en", "af", "en-af")
    );
    let r = &out.rows[1];
    assert_eq!(
        r.instruction,
        format!("Translate from Afrikaans to English.\nAfrikaans: {af}\nEnglish:")
    );
    assert_eq!(r.output, format!(" {en}"));
    assert_eq!(r.direction, "af-en");
}

#[test]
fn separator_is_a_parameter() {
    let pairs = flores("bel_Cyrl", "be", 1);
    let p: MtParams =
        serde_json::from_str(r#"{"separator": " ", "directions": "y-to-x"}"#).unwrap();
    let out = build_mt(&pairs, &names(), &TokenCounter::Bytes, &p).unwrap();
    assert_eq!(out.rows.len(), 1);
    let expect = sub(
        &recipe_template("**MTInstruct**", 0, " "),
        &[
            ("{Y}", "English"),
            ("{X}", "Belarusian"),
            ("{y}", &pairs[0].src),
        ],
    );
    assert_eq!(out.rows[0].instruction, expect);
    assert!(!out.rows[0].instruction.contains('\n'));
}

#[test]
fn align_template_matches_recipe() {
    let recipe = recipe_template("**AlignInstruct**", 0, "\n");
    let got = align_input(
        "\n",
        "English",
        "French",
        "the house .",
        "la maison .",
        "house",
        "maison",
    );
    let expect = sub(
        &recipe,
        &[
            ("{Y}", "English"),
            ("{X}", "French"),
            ("{y_l..y_l+m}", "house"),
            ("{x_k..x_k+n}", "maison"),
            ("{y}", "the house ."),
            ("{x}", "la maison ."),
        ],
    );
    assert_eq!(got, expect);
    assert_eq!(
        got,
        "Given the following parallel sentence between English and French, judge whether the assertion is True or False.\n\
         English: the house .\nFrench: la maison .\nAssertion: \"house\" can be aligned with \"maison\" statistically."
    );
    assert_eq!(align_output(true), "True");
    assert_eq!(align_output(false), "False");
}

#[test]
fn hint_template_matches_recipe() {
    let recipe = recipe_template("**HintInstruct**", 0, "\n");
    let got = hint_input(
        "\n",
        "English",
        "French",
        &[("maison", "house"), ("bleue", "blue")],
        "the blue house",
    );
    let listed = "- (maison, house),\n- (bleue, blue),";
    let expect = sub(
        &recipe.replace("- ({x span 1}, {y span 1}),\n- ...", listed),
        &[
            ("{Y}", "English"),
            ("{X}", "French"),
            ("{y}", "the blue house"),
        ],
    );
    assert_eq!(got, expect);
    assert_eq!(recipe_template("**HintInstruct**", 1, "\n"), " {x}");
}

#[test]
fn revise_template_matches_recipe() {
    let recipe_in = recipe_template("**ReviseInstruct**", 0, "\n");
    let recipe_out = recipe_template("**ReviseInstruct**", 1, "\n");
    let got = revise_input("\n", "English", "French", "the house", "la chien");
    let expect = sub(
        &recipe_in,
        &[
            ("{X}", "French"),
            ("{Y}", "English"),
            ("{y}", "the house"),
            ("{x with one word/span corrupted}", "la chien"),
        ],
    );
    assert_eq!(got, expect);
    assert_eq!(
        revise_output("chien", "maison"),
        sub(
            &recipe_out,
            &[("{corrupted}", "chien"), ("{original}", "maison")]
        )
    );
    assert_eq!(
        revise_output("chien", "maison"),
        "The incorrectly translated word is \"chien\". It should be \"maison\"."
    );
}

#[test]
fn mono_template_matches_recipe() {
    let recipe_in = recipe_template("**MonoInstruct**", 0, "\n");
    let recipe_out = recipe_template("**MonoInstruct**", 1, "\n");
    assert_eq!(
        mono_input("Die kat"),
        sub(&recipe_in, &[("{x_1..x_l}", "Die kat")])
    );
    assert_eq!(recipe_out, " {x_l+1..x_N}");
    assert_eq!(
        mono_input(""),
        "Given the context, complete the following sentence:"
    );
}

#[test]
fn table8_prompts_match_recipe() {
    let y = "Hello world.";
    let vals = [("{Y}", "English"), ("{X}", "Welsh"), ("{y}", y)];
    let default = sub(&recipe_template("**MTInstruct**", 0, "\n"), &vals);
    assert_eq!(
        PromptVariant::Default.render("\n", "English", "Welsh", y),
        default
    );
    for (i, v) in [
        PromptVariant::Prompt1,
        PromptVariant::Prompt2,
        PromptVariant::Prompt3,
        PromptVariant::Prompt4,
        PromptVariant::Prompt5,
    ]
    .into_iter()
    .enumerate()
    {
        let recipe = recipe_template(&format!("PROMPT-{}", i + 1), 0, "\n");
        assert_eq!(
            v.render("\n", "English", "Welsh", y),
            sub(&recipe, &vals),
            "PROMPT-{}",
            i + 1
        );
    }
    assert_eq!(
        PromptVariant::Prompt5.render("\n", "English", "Welsh", y),
        "Translate to Welsh.\nHello world.\nWelsh:"
    );
}

#[test]
fn prompts_builder_uses_variant_and_keeps_reference() {
    let pairs = flores("cym_Latn", "cy", 4);
    let p: PromptParams = serde_json::from_str(r#"{"variant": "prompt-3"}"#).unwrap();
    let out = build_prompts(&pairs, &names(), &p).unwrap();
    assert_eq!(out.rows.len(), 8);
    assert_eq!(
        out.rows[0].instruction,
        format!("Translate to Welsh.\nEnglish: {}\nWelsh:", pairs[0].src)
    );
    assert_eq!(out.rows[0].output, pairs[0].tgt);
    assert_eq!(
        out.rows[1].instruction,
        format!("Translate to English.\nWelsh: {}\nEnglish:", pairs[0].tgt)
    );
    assert_eq!(out.stats.by_task_direction["prompt"]["en-cy"], 4);
    assert_eq!(out.stats.by_task_direction["prompt"]["cy-en"], 4);
}

#[test]
fn fill_is_single_pass() {
    assert_eq!(
        fill("{X}: {y}", &[("X", "French"), ("y", "literal {X} braces")]),
        "French: literal {X} braces"
    );
    assert_eq!(fill("{unknown} {", &[]), "{unknown} {");
}

#[test]
fn unknown_params_are_rejected() {
    let e = serde_json::from_str::<AlignParams>(r#"{"pairs_per_sentense": 2}"#).unwrap_err();
    assert!(e.to_string().contains("pairs_per_sentense"), "{e}");
    let p: AlignParams = serde_json::from_str("{}").unwrap();
    assert_eq!(p, AlignParams::default());
    assert_eq!(p.length.max_input_tokens, 384);
    assert_eq!(p.separator, "\n");
}

#[test]
fn missing_language_name_is_an_error() {
    let mut pairs = flores("afr_Latn", "af", 2);
    pairs[1].tgt_lang = "xx".into();
    let e = build_mt(&pairs, &names(), &TokenCounter::Bytes, &MtParams::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pair 1: field `tgt_lang`: no English name for language code `xx`"
    );
    let closure = NameFn(|c: &str| (c == "en" || c == "xx" || c == "af").then(|| c.to_uppercase()));
    let out = build_mt(&pairs, &closure, &TokenCounter::Bytes, &MtParams::default()).unwrap();
    assert!(
        out.rows[2]
            .instruction
            .starts_with("Translate from EN to XX.")
    );
}

#[test]
fn prompt_variant_names() {
    assert_eq!(
        "PROMPT-3".parse::<PromptVariant>().unwrap(),
        PromptVariant::Prompt3
    );
    assert_eq!(
        "default".parse::<PromptVariant>().unwrap(),
        PromptVariant::Default
    );
    assert_eq!(
        "5".parse::<PromptVariant>().unwrap(),
        PromptVariant::Prompt5
    );
    assert!("prompt-6".parse::<PromptVariant>().is_err());
    for v in PromptVariant::ALL {
        let name = serde_json::to_value(v).unwrap();
        assert_eq!(name.as_str().unwrap().parse::<PromptVariant>().unwrap(), v);
    }
}
