//! Alpaca parsing, mixing (CrossAlpaca / experience replay) and curricula.
mod common;

use std::collections::BTreeMap;

use alinea_instruct::*;
use common::*;

fn mt_rows(n: usize) -> Vec<InstructRow> {
    let mut pairs = flores("afr_Latn", "af", n);
    pairs.extend(flores("hau_Latn", "ha", n).into_iter().map(|mut p| {
        p.pair_id += 10_000;
        p
    }));
    build_mt(
        &pairs,
        &names(),
        &TokenCounter::Bytes,
        &MtParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap()
    .rows
}

#[test]
fn alpaca_json_and_jsonl_parse_alike() {
    let a = load_alpaca(&data("alpaca_sample.json")).unwrap();
    let b = load_alpaca(&data("alpaca_sample.jsonl")).unwrap();
    assert_eq!(a.len(), 6);
    assert_eq!(a, b);
    assert_eq!(a[2].input, "", "missing input defaults to empty");
    assert_eq!(
        a[1].to_row("alpaca").prompt(),
        "Translate the following sentence into French.\nThe weather is nice today."
    );
}

#[test]
fn alpaca_errors_name_file_and_line() {
    let p = data("alpaca_bad_line3.jsonl");
    let e = load_alpaca(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:3:", p.display())), "{e}");
    assert!(e.contains("missing field `output`"), "{e}");
    let p = data("alpaca_bad_missing_output.json");
    let e = load_alpaca(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:4:", p.display())), "{e}");
    assert!(e.contains("missing field `output`"), "{e}");
    let e = parse_alpaca(
        "{\"instruction\": \"a\", \"output\": \"b\"}\n\n[1, 2]\n",
        std::path::Path::new("mem.jsonl"),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("mem.jsonl:3:"), "{e}");
    let e = load_alpaca(&data("does-not-exist.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does-not-exist.json"), "{e}");
}

#[test]
fn mixing_counts_and_ratios() {
    let generated = mt_rows(20); // 80 rows: 4 directions x 20
    let ext = load_alpaca(&data("alpaca_sample.json")).unwrap();
    let count = |out: &BuildOutput, t: &str| out.stats.by_task.get(t).copied().unwrap_or(0);
    // Experience replay with a fixed count.
    let out = mix(
        &generated,
        &ext,
        &TokenCounter::Bytes,
        &MixParams {
            count: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((count(&out, "mt"), count(&out, "external")), (80, 4));
    assert!(
        out.rows
            .iter()
            .filter(|r| r.task == Task::External)
            .all(|r| r.source == "external" && r.pair_id.is_none())
    );
    // Ratio: external rows per generated row.
    let out = mix(
        &generated,
        &ext,
        &TokenCounter::Bytes,
        &MixParams {
            ratio: Some(0.05),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(count(&out, "external"), 4);
    // More than available: all used, shortfall recorded.
    let out = mix(
        &generated,
        &ext,
        &TokenCounter::Bytes,
        &MixParams {
            count: Some(1000),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(count(&out, "external"), 6);
    assert_eq!(out.stats.notes["external_shortfall"], 994);
    // CrossAlpaca: all Alpaca + a cap per direction.
    let p: MixParams =
        serde_json::from_str(r#"{"per_direction_cap": 5, "source_name": "alpaca", "seed": 3}"#)
            .unwrap();
    let out = mix(&generated, &ext, &TokenCounter::Bytes, &p).unwrap();
    assert_eq!(count(&out, "external"), 6);
    for d in ["en-af", "af-en", "en-ha", "ha-en"] {
        assert_eq!(out.stats.by_task_direction["mt"][d], 5);
    }
    assert_eq!(out.stats.dropped["per_direction_cap"], 60);
    // Interleaved, deterministic, seed-dependent.
    let first_ext = out
        .rows
        .iter()
        .position(|r| r.task == Task::External)
        .unwrap();
    assert!(
        first_ext < out.rows.len() - 6,
        "external rows are interleaved, not appended"
    );
    assert_eq!(
        out,
        mix(&generated, &ext, &TokenCounter::Bytes, &p).unwrap()
    );
    assert_ne!(
        out.rows,
        mix(
            &generated,
            &ext,
            &TokenCounter::Bytes,
            &MixParams {
                seed: 4,
                ..p.clone()
            }
        )
        .unwrap()
        .rows
    );
    // Both count and ratio: an error naming the parameter.
    let e = mix(
        &generated,
        &ext,
        &TokenCounter::Bytes,
        &MixParams {
            count: Some(1),
            ratio: Some(1.0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("parameter `count`"));
}

#[test]
fn objectives_parse() {
    let o: Objective = "MT+Align→MT".parse().unwrap();
    assert_eq!(o.phases, vec![vec![Task::Mt, Task::Align], vec![Task::Mt]]);
    assert_eq!(o, "mt + align -> mt".parse().unwrap());
    assert_eq!(o.to_string(), "mt+align->mt");
    let o: Objective = "MT+Mono-half+Align+Hint+Revise".parse().unwrap();
    assert_eq!(
        o.phases,
        vec![vec![
            Task::Mt,
            Task::MonoHalf,
            Task::Align,
            Task::Hint,
            Task::Revise
        ]]
    );
    let o: Objective = "AlignInstruct->MTInstruct".parse().unwrap();
    assert_eq!(o.phases, vec![vec![Task::Align], vec![Task::Mt]]);
    let o: Objective = "MT+Align->MT+Hint".parse().unwrap();
    assert_eq!(o.tasks(), vec![Task::Mt, Task::Align, Task::Hint]);
    let o: Objective = "MT+Denoise+External".parse().unwrap();
    assert_eq!(
        o.phases,
        vec![vec![
            Task::Mt,
            Task::DenoiseWord,
            Task::DenoiseSpan,
            Task::External
        ]]
    );
    let e = "MT+Algin".parse::<Objective>().unwrap_err().to_string();
    assert!(
        e.starts_with("objective `MT+Algin`: phase 1: unknown component `Algin`"),
        "{e}"
    );
    assert!("MT+->MT".parse::<Objective>().is_err());
}

#[test]
fn curricula_order_and_shuffle() {
    let (pairs, toks, gold) = hansards(60);
    let corpus = AlignedCorpus::new(&pairs, &toks, &gold).unwrap();
    let align = build_align(
        &corpus,
        &names(),
        &TokenCounter::Bytes,
        &AlignParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap()
    .rows;
    let mt = build_mt(
        &pairs,
        &names(),
        &TokenCounter::Bytes,
        &MtParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap()
    .rows;
    let all: Vec<InstructRow> = mt.iter().chain(&align).cloned().collect();
    let (n_mt, n_al) = (mt.len(), align.len());

    let cur = |obj: &str, seed: u64| {
        build_curriculum(
            &all,
            &CurriculumParams {
                objective: obj.into(),
                seed,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let o = cur("MT+Align", 1);
    assert_eq!(o.rows.len(), n_mt + n_al);
    assert!(o.rows.iter().all(|r| r.phase == 1));
    // Shuffled: the first n_mt rows are not all MT.
    assert!(o.rows[..n_mt].iter().any(|r| r.task == Task::Align));

    let o = cur("Align->MT", 1);
    assert_eq!(o.rows.len(), n_al + n_mt);
    assert!(
        o.rows[..n_al]
            .iter()
            .all(|r| r.task == Task::Align && r.phase == 1)
    );
    assert!(
        o.rows[n_al..]
            .iter()
            .all(|r| r.task == Task::Mt && r.phase == 2)
    );
    assert_eq!(
        o.stats.by_phase,
        BTreeMap::from([(1, n_al as u64), (2, n_mt as u64)])
    );

    let o = cur("MT+Align→MT", 1);
    assert_eq!(o.rows.len(), 2 * n_mt + n_al);
    assert!(o.rows[..n_mt + n_al].iter().all(|r| r.phase == 1));
    assert!(
        o.rows[n_mt + n_al..]
            .iter()
            .all(|r| r.task == Task::Mt && r.phase == 2)
    );
    // Each phase holds exactly its input rows (as a multiset), only reordered.
    let key = |r: &InstructRow| {
        (
            r.pair_id,
            r.direction.clone(),
            r.instruction.clone(),
            r.output.clone(),
        )
    };
    let mut got: Vec<_> = o.rows[n_mt + n_al..].iter().map(key).collect();
    let mut want: Vec<_> = mt.iter().map(key).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_ne!(
        o.rows[n_mt + n_al..].iter().map(key).collect::<Vec<_>>(),
        mt.iter().map(key).collect::<Vec<_>>(),
        "phase 2 is shuffled"
    );
    // Deterministic under the seed, different across seeds; the unshuffled form keeps input order.
    assert_eq!(o, cur("MT+Align->MT", 1));
    assert_ne!(o.rows, cur("MT+Align->MT", 2).rows);
    let plain = build_curriculum(
        &all,
        &CurriculumParams {
            objective: "MT".into(),
            shuffle: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        plain.rows.iter().map(key).collect::<Vec<_>>(),
        mt.iter().map(key).collect::<Vec<_>>()
    );
    // A component without rows is an error unless allowed.
    let e = build_curriculum(
        &all,
        &CurriculumParams {
            objective: "MT+Hint".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "objective `MT+Hint`: phase 1: no `hint` rows in the input"
    );
    let ok = build_curriculum(
        &all,
        &CurriculumParams {
            objective: "MT+Hint".into(),
            allow_empty: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ok.rows.len(), n_mt);
}
