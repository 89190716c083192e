//! Language identifier accuracy on Flores-200 devtest and failure analysis on real lines.

use std::path::PathBuf;
use std::sync::OnceLock;

use alinea_metrics::{FailureConfig, LidConfig, LidModel, analyze_failures, read_lines};

fn flores() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/flores200/flores200_dataset"
    ));
    assert!(
        p.join("dev").is_dir(),
        "missing Flores-200 data at {} (the shared datasets folder)",
        p.display()
    );
    p
}

fn model() -> &'static LidModel {
    static M: OnceLock<LidModel> = OnceLock::new();
    M.get_or_init(|| {
        LidModel::train_flores_dir(flores().join("dev"), None, &LidConfig::default())
            .expect("train on Flores dev")
    })
}

fn devtest(lang: &str) -> Vec<String> {
    read_lines(flores().join("devtest").join(format!("{lang}.devtest"))).unwrap()
}

#[test]
fn lid_accuracy_floor_on_flores_devtest() {
    let m = model();
    assert_eq!(m.languages.len(), 31);
    // A slice per language keeps the debug-mode test short; the full table is in the report.
    let data: Vec<(String, Vec<String>)> = m
        .languages
        .iter()
        .map(|l| (l.clone(), devtest(l).into_iter().step_by(5).collect()))
        .collect();
    let acc = m.evaluate(&data);
    let (mut ok, mut n) = (0, 0);
    for (lang, (c, t)) in &acc {
        ok += c;
        n += t;
        let a = *c as f64 / *t as f64;
        // Bokmål/Nynorsk are the closest pair (97.6–98.5% on the full devtest).
        assert!(a >= 0.95, "{lang}: accuracy {a:.3} below 0.95");
    }
    let all = ok as f64 / n as f64;
    assert!(all >= 0.99, "overall accuracy {all:.4} below 0.99");
}

#[test]
fn lid_model_serializes_compactly_and_identically() {
    let m = model();
    let json = serde_json::to_string(m).unwrap();
    assert!(json.len() < 4_000_000, "model JSON is {} bytes", json.len());
    let back: LidModel = serde_json::from_str(&json).unwrap();
    back.validate().unwrap();
    let line = &devtest("tat_Cyrl")[3];
    assert_eq!(back.identify(line), m.identify(line));
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

#[test]
fn failure_rates_on_constructed_direction() {
    let src = devtest("eng_Latn");
    let refs = devtest("hau_Latn");
    let fra = devtest("fra_Latn");
    let n = 60;
    let (src, refs) = (src[..n].to_vec(), refs[..n].to_vec());
    let mut hyps = Vec::new();
    for i in 0..n {
        let h = match i / 10 {
            0 => refs[i].clone(), // good translation
            1 => src[i].clone(),  // source copy (and off-target: English)
            2 => {
                // oscillation: the reference's last three words repeated three more times
                let w: Vec<&str> = refs[i].split(' ').collect();
                let tail = w[w.len().saturating_sub(3)..].join(" ");
                format!("{} {tail} {tail} {tail}", refs[i])
            }
            3 => fra[i].clone(), // off-target: French
            4 => String::new(),  // empty
            _ => refs[i].split(' ').take(3).collect::<Vec<_>>().join(" "), // under-translation
        };
        hyps.push(h);
    }
    let r = analyze_failures(
        &src,
        &hyps,
        &refs,
        "hau_Latn",
        Some(model()),
        &FailureConfig::for_target("hau_Latn"),
    )
    .unwrap();
    assert_eq!(r.n_segments, n);
    let share = |k: usize| k as f64 / n as f64;
    assert_eq!(r.empty_rate, share(10));
    // Segments 10..20 (English copies) and 30..40 (French) are off-target, the Hausa ones are not;
    // the 3-word fragments of 50..60 are too short to assert on.
    let off: Vec<usize> = (0..50).filter(|&i| r.segments[i].off_target).collect();
    assert_eq!(
        off,
        (10..20).chain(30..40).collect::<Vec<_>>(),
        "{:?}",
        r.detected_languages
    );
    assert!(r.off_target_rate.unwrap() >= share(20));
    assert_eq!(r.source_copy_rate, share(10));
    assert_eq!(r.oscillation_rate, share(10));
    assert_eq!(r.under_translation_rate, share(10));
    assert!(r.detected_languages["hau_Latn"] >= 20);
    assert!(
        r.length_ratio > 0.0 && r.length_ratio < 1.2,
        "{}",
        r.length_ratio
    );
    // Without an identifier the off-target rate is absent, not zero.
    let r = analyze_failures(
        &src,
        &hyps,
        &refs,
        "hau_Latn",
        None,
        &FailureConfig::default(),
    )
    .unwrap();
    assert_eq!(r.off_target_rate, None);
    assert!(
        analyze_failures(
            &src[..3],
            &hyps,
            &refs,
            "hau_Latn",
            None,
            &FailureConfig::default()
        )
        .is_err()
    );
}

#[test]
fn genuine_translations_between_close_languages_are_not_failures() {
    // Real references as hypotheses: nld→afr and nob→nno are the closest pairs in the registry.
    for (s, t) in [
        ("nld_Latn", "afr_Latn"),
        ("nob_Latn", "nno_Latn"),
        ("glg_Latn", "oci_Latn"),
    ] {
        let src: Vec<String> = devtest(s).into_iter().take(200).collect();
        let refs: Vec<String> = devtest(t).into_iter().take(200).collect();
        let r = analyze_failures(
            &src,
            &refs,
            &refs,
            t,
            Some(model()),
            &FailureConfig::for_target(t),
        )
        .unwrap();
        assert!(
            r.source_copy_rate <= 0.01,
            "{s}→{t}: source copy rate {}",
            r.source_copy_rate
        );
        assert!(
            r.off_target_rate.unwrap() <= 0.05,
            "{s}→{t}: off-target rate {:?}",
            r.off_target_rate
        );
        assert_eq!(r.oscillation_rate, 0.0, "{s}→{t}");
        assert!((r.length_ratio - 1.0).abs() < 1e-12);
        // The same sources passed off as translations are caught as copies.
        let r = analyze_failures(
            &src,
            &src,
            &refs,
            t,
            Some(model()),
            &FailureConfig::for_target(t),
        )
        .unwrap();
        assert!(
            r.source_copy_rate >= 0.95,
            "{s}→{t}: copies detected {}",
            r.source_copy_rate
        );
        assert!(
            r.off_target_rate.unwrap() >= 0.95,
            "{s}→{t}: copies off-target {:?}",
            r.off_target_rate
        );
    }
}
