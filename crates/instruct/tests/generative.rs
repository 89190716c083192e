//! MonoInstruct and InstructAlign denoising on real FLORES-200 sentences.
mod common;

use alinea_instruct::*;
use common::*;

const MONO_HEAD: &str = "Given the context, complete the following sentence:";

#[test]
fn mono_full_and_half_reproduce_the_sentence() {
    let mut pairs = flores("afr_Latn", "af", 30);
    pairs.extend(flores("zho_Hans", "zh", 5).into_iter().map(|mut p| {
        p.pair_id += 100;
        p
    }));
    let p = MonoParams {
        length: unlimited(),
        ..Default::default()
    };
    let out = build_mono(&pairs, &TokenCounter::Bytes, &p).unwrap();
    assert_eq!(out.stats.by_task["mono-full"], 35);
    assert_eq!(out.stats.by_task["mono-half"], 35);
    for r in &out.rows {
        let x = &pairs
            .iter()
            .find(|p| Some(p.pair_id) == r.pair_id)
            .unwrap()
            .tgt;
        assert_eq!(r.src_lang, r.tgt_lang);
        let given = r.instruction.strip_prefix(MONO_HEAD).unwrap();
        match r.task {
            Task::MonoFull => {
                assert_eq!(given, "");
                assert_eq!(r.output, format!(" {x}"));
            }
            Task::MonoHalf => {
                let given = given.strip_prefix(' ').unwrap();
                assert_eq!(
                    format!("{given}{}", r.output),
                    *x,
                    "prompt + output is the sentence"
                );
                if r.tgt_lang == "af" {
                    let n = x.split_whitespace().count();
                    assert_eq!(given.split_whitespace().count(), n / 2);
                    assert!(r.output.starts_with(' '));
                }
            }
            t => panic!("unexpected task {t:?}"),
        }
    }
    // Chinese has no spaces: split by characters, counted.
    assert_eq!(out.stats.notes["mono_half_char_split"], 5);
}

#[test]
fn denoise_masks_words_and_spans() {
    let pairs = flores("gle_Latn", "ga", 40);
    let p = DenoiseParams {
        length: unlimited(),
        seed: 3,
        ..Default::default()
    };
    let out = build_denoise(&pairs, &names(), &TokenCounter::Bytes, &p).unwrap();
    assert_eq!(out.stats.by_task["denoise-word"], 40);
    assert_eq!(out.stats.by_task["denoise-span"], 40);
    for r in &out.rows {
        let pair = &pairs[r.pair_id.unwrap() as usize];
        let x = &pair.tgt;
        assert_eq!(r.output, format!(" {x}"));
        assert_eq!(r.direction, "en-ga");
        let head = match r.task {
            Task::DenoiseWord => {
                "Given the following English sentence as context, restore the masked words of the Irish sentence."
            }
            _ => {
                "Given the following English sentence as context, restore the masked spans of the Irish sentence."
            }
        };
        let prefix = format!("{head}\nEnglish: {}\nIrish: ", pair.src);
        let masked = r.instruction.strip_prefix(&prefix).unwrap();
        let n = x.split_whitespace().count();
        let m = ((n as f64 * 0.15).round() as usize).clamp(1, n - 1);
        let words: Vec<&str> = masked.split_whitespace().collect();
        let masks = words.iter().filter(|w| **w == "<mask>").count();
        if r.task == Task::DenoiseWord {
            assert_eq!(masks, m);
            assert_eq!(words.len(), n);
            // Every unmasked word is the original word at that position.
            for (w, o) in words.iter().zip(x.split_whitespace()) {
                assert!(*w == "<mask>" || w == &o);
            }
        } else {
            assert!(masks >= 1 && masks <= m);
            assert!(words.len() < n || m == masks && words.len() == n);
        }
    }
    let custom: DenoiseParams =
        serde_json::from_str(r#"{"levels": "word", "word_template": "{X}<-{Y}|{x_masked}|{y}", "mask_token": "_", "length": {"max_input_tokens": 0}}"#).unwrap();
    let out = build_denoise(&pairs[..1], &names(), &TokenCounter::Bytes, &custom).unwrap();
    assert_eq!(out.rows.len(), 1);
    assert!(out.rows[0].instruction.starts_with("Irish<-English|"));
    assert!(
        out.rows[0]
            .instruction
            .ends_with(&format!("|{}", pairs[0].src))
    );
    assert!(
        build_denoise(
            &pairs,
            &names(),
            &TokenCounter::Bytes,
            &DenoiseParams {
                mask_ratio: 0.0,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn mt_on_opus_limburgish_with_stats() {
    let dir = "datasets/opus-100/opus-100-corpus/v1.0/supervised/en-li";
    let en = std::fs::read_to_string(shared(&format!("{dir}/opus.en-li-test.en"))).unwrap();
    let li = std::fs::read_to_string(shared(&format!("{dir}/opus.en-li-test.li"))).unwrap();
    let pairs: Vec<ParallelPair> = en
        .lines()
        .zip(li.lines())
        .take(200)
        .enumerate()
        .map(|(i, (e, l))| ParallelPair {
            pair_id: i as u64,
            src_lang: "en".into(),
            tgt_lang: "li".into(),
            src: e.into(),
            tgt: l.into(),
        })
        .collect();
    let empty = pairs
        .iter()
        .filter(|p| p.src.trim().is_empty() || p.tgt.trim().is_empty())
        .count() as u64;
    let out = build_mt(&pairs, &names(), &TokenCounter::Bytes, &MtParams::default()).unwrap();
    let too_long = out
        .stats
        .dropped
        .get("input_too_long")
        .copied()
        .unwrap_or(0)
        + out
            .stats
            .dropped
            .get("output_too_long")
            .copied()
            .unwrap_or(0);
    assert_eq!(out.stats.rows + too_long + 2 * empty, 400);
    assert_eq!(
        out.stats
            .dropped
            .get("empty_sentence")
            .copied()
            .unwrap_or(0),
        empty
    );
    assert_eq!(
        out.stats.by_task_direction["mt"]
            .get("en-li")
            .copied()
            .unwrap_or(0)
            + out.stats.by_task_direction["mt"]
                .get("li-en")
                .copied()
                .unwrap_or(0),
        out.stats.rows
    );
    assert!(
        out.rows
            .iter()
            .all(|r| r.input_tokens as usize == r.instruction.len()
                && r.input_tokens <= 384
                && r.output_tokens <= 384)
    );
    assert!(
        out.rows[0]
            .instruction
            .starts_with("Translate from English to Limburgish.\nEnglish: ")
    );
}
