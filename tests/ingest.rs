//! Ingestion on real and deliberately broken inputs: every bad input gives an error naming file, line or field.

mod common;

use common::*;
use polars::prelude::*;

fn pipeline(dir: &std::path::Path, body: &str) -> String {
    write(dir, "p.toml", body).to_str().unwrap().to_string()
}

#[test]
fn different_line_counts_name_both_files_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.be", "адзін\nдва\nтры\n");
    write(dir.path(), "a.en", "one\ntwo\n");
    let p = pipeline(
        dir.path(),
        "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { src = \"a.be\", tgt = \"a.en\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
    );
    let out = alinea(&dir.path().join("s"))
        .args(["run", &p])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = format!("{stdout}{stderr}");
    assert!(
        msg.contains("a.be: has 3 lines but") && msg.contains("a.en has 2"),
        "{msg}"
    );
}

#[test]
fn invalid_utf8_is_an_error_with_line_and_byte_or_replaced_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.be"),
        b"\xEF\xBB\xBF\xd0\xb0\xd0\xb4\xd0\xb7\xd1\x96\xd0\xbd\r\nd\xFFva\r\n",
    )
    .unwrap();
    write(dir.path(), "a.en", "one\ntwo\n");
    let body = "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { src = \"a.be\", tgt = \"a.en\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n";
    let p = pipeline(dir.path(), body);
    let store = dir.path().join("s");
    let out = alinea(&store).args(["run", &p]).output().unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("a.be:2: invalid UTF-8 at byte 2 of the line"),
        "{msg}"
    );

    let p = pipeline(
        dir.path(),
        &format!("{body}on_invalid_utf8 = \"replace\"\n"),
    );
    json(&store, &["run", &p]);
    let rows = json(&store, &["show", "c"]);
    // BOM and CR are stripped, the bad byte is replaced, and the replacement is counted.
    assert_eq!(rows[0]["src"], "адзін");
    assert_eq!(rows[1]["src"], "d\u{FFFD}va");
    let log = json(&store, &["log", "c"]);
    assert_eq!(log["stats"]["counters"]["replaced_invalid_utf8_lines"], 1);
}

#[test]
fn empty_sides_are_dropped_or_kept_and_always_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.be", "адзін\n\nтры\n");
    write(dir.path(), "a.en", "one\ntwo\n  \n");
    let body = "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { src = \"a.be\", tgt = \"a.en\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n";
    let store = dir.path().join("s");
    let report = json(&store, &["run", &pipeline(dir.path(), body)]);
    assert_eq!(report["stages"][0]["rows"], 1);
    assert_eq!(
        json(&store, &["log", "c"])["stats"]["dropped"]["empty_side"],
        2
    );
    let report = json(
        &store,
        &[
            "run",
            &pipeline(dir.path(), &format!("{body}keep_empty = true\n")),
        ],
    );
    assert_eq!(report["stages"][0]["rows"], 3);
    assert_eq!(
        json(&store, &["log", "c"])["stats"]["counters"]["kept_empty_side"],
        2
    );
}

#[test]
fn jsonl_and_tsv_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "c.jsonl",
        "{\"src\": \"адзін\", \"tgt\": \"one\"}\n{\"src\": \"два\"}\n",
    );
    let p = pipeline(
        dir.path(),
        "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { file = \"c.jsonl\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
    );
    let err = fails(&dir.path().join("s"), &["run", &p]);
    assert!(
        err.contains("c.jsonl:2: expected a string field `tgt`"),
        "{err}"
    );

    write(dir.path(), "c.tsv", "src\ttgt\nадзін\tone\nдва\n");
    let p = pipeline(
        dir.path(),
        "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { file = \"c.tsv\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
    );
    let err = fails(&dir.path().join("s"), &["run", &p]);
    assert!(
        err.contains(
            "c.tsv:3: 1 tab-separated fields, expected 2 (at least 2 for the columns in use)"
        ),
        "{err}"
    );
}

#[test]
fn tsv_rows_wider_than_the_header_are_an_error_or_counted_never_cut_silently() {
    let dir = tempfile::tempdir().unwrap();
    // Line 3 has a tab inside its English side: taking field 1 would keep only "one".
    write(
        dir.path(),
        "c.tsv",
        "src\ttgt\nадзін\tone\nдва\ttwo\tand a half\n",
    );
    let body = "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { file = \"c.tsv\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n";
    let err = fails(&dir.path().join("s"), &["run", &pipeline(dir.path(), body)]);
    assert!(
        err.contains("c.tsv:3: 3 tab-separated fields, expected 2 (as many as the header); a tab inside a text field? Set extra_columns = \"ignore\""),
        "{err}"
    );
    let store = dir.path().join("s2");
    let report = json(
        &store,
        &[
            "run",
            &pipeline(dir.path(), &format!("{body}extra_columns = \"ignore\"\n")),
        ],
    );
    assert_eq!(report["stages"][0]["rows"], 2);
    assert_eq!(
        json(&store, &["log", "c"])["stats"]["counters"]["rows_with_extra_columns"],
        1
    );
    // Without a header, "extra" means beyond the columns in use.
    write(dir.path(), "h.tsv", "адзін\tone\nдва\ttwo\tx\n");
    let body = "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { file = \"h.tsv\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\ntsv_header = false\nsrc_column = \"0\"\ntgt_column = \"1\"\n";
    let err = fails(
        &dir.path().join("s3"),
        &["run", &pipeline(dir.path(), body)],
    );
    assert!(
        err.contains("h.tsv:2: 3 tab-separated fields, expected 2 (the columns in use)"),
        "{err}"
    );
}

#[test]
fn cr_only_line_ends_are_line_ends_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "be.txt", "адзін\rдва\rтры\r");
    write(dir.path(), "en.txt", "one\ntwo\nthree\n");
    let store = dir.path().join("s");
    let report = json(
        &store,
        &[
            "run",
            &pipeline(
                dir.path(),
                "[stages.c]\nkind = \"ingest.parallel\"\ninputs = { src = \"be.txt\", tgt = \"en.txt\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
            ),
        ],
    );
    assert_eq!(report["stages"][0]["rows"], 3);
    assert_eq!(
        json(&store, &["log", "c"])["stats"]["counters"]["cr_only_line_ends"],
        3
    );
    let rows = json(&store, &["query", "SELECT src, tgt FROM c ORDER BY line"]);
    assert_eq!(rows[2]["src"], "тры", "{rows}");
    assert_eq!(rows[2]["tgt"], "three", "{rows}");
}

#[test]
fn opus100_original_layout_reads_real_files_traceably() {
    let store = tempfile::tempdir().unwrap();
    json(store.path(), &["run", "tests/data/pipelines/ingest.toml"]);
    let rows = json(
        store.path(),
        &[
            "query",
            "SELECT src, tgt, source_file, line FROM opus WHERE lang = 'li' AND split = 'test' AND line = 7",
        ],
    );
    let expected_li = std::fs::read_to_string(
        repo().join("datasets/opus-100/supervised/en-li/opus.en-li-test.li"),
    )
    .unwrap();
    let expected_en = std::fs::read_to_string(
        repo().join("datasets/opus-100/supervised/en-li/opus.en-li-test.en"),
    )
    .unwrap();
    assert_eq!(rows[0]["src"], expected_li.lines().nth(6).unwrap());
    assert_eq!(rows[0]["tgt"], expected_en.lines().nth(6).unwrap());
    assert_eq!(
        rows[0]["source_file"],
        "supervised/en-li/opus.en-li-test.li"
    );
}

#[test]
fn opus100_missing_language_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        &format!(
            "[stages.o]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"{}\" }}\nlangs = [\"af\"]\n",
            repo().join("datasets/opus-100").display()
        ),
    );
    let err = fails(&dir.path().join("s"), &["run", &p]);
    assert!(
        err.contains("supervised/af-en/opus.af-en-train.af")
            && err.contains("missing OPUS-100 file"),
        "{err}"
    );
}

#[test]
fn opus100_hugging_face_parquet_layout_matches_the_text_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo().join("datasets/opus-100/supervised/be-en");
    let be: Vec<String> = std::fs::read_to_string(root.join("opus.be-en-dev.be"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let en: Vec<String> = std::fs::read_to_string(root.join("opus.be-en-dev.en"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let translation = StructChunked::from_columns(
        "translation".into(),
        be.len(),
        &[Column::new("be".into(), &be), Column::new("en".into(), &en)],
    )
    .unwrap()
    .into_series();
    let mut df = DataFrame::new_infer_height(vec![translation.into()]).unwrap();
    std::fs::create_dir_all(dir.path().join("hf/be-en")).unwrap();
    let mut f = std::fs::File::create(
        dir.path()
            .join("hf/be-en/validation-00000-of-00001.parquet"),
    )
    .unwrap();
    ParquetWriter::new(&mut f).finish(&mut df).unwrap();
    std::fs::rename(
        dir.path()
            .join("hf/be-en/validation-00000-of-00001.parquet"),
        dir.path().join("hf/be-en/dev-00000-of-00001.parquet"),
    )
    .unwrap();
    let p = pipeline(
        dir.path(),
        &format!(
            "[stages.hf]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"hf\" }}\nlangs = [\"be\"]\nsplits = [\"dev\"]\n\
         [stages.txt]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"{}\" }}\nlangs = [\"be\"]\nsplits = [\"dev\"]\n",
            repo().join("datasets/opus-100").display()
        ),
    );
    let store = dir.path().join("s");
    json(&store, &["run", &p]);
    let q = json(
        &store,
        &[
            "query",
            "SELECT count(*) AS n FROM hf JOIN txt ON hf.line = txt.line WHERE hf.src = txt.src AND hf.tgt = txt.tgt",
        ],
    );
    assert_eq!(q[0]["n"], 2000);
}

#[test]
fn flores200_rejects_misaligned_files() {
    let dir = tempfile::tempdir().unwrap();
    let flores = dir.path().join("flores");
    std::fs::create_dir_all(flores.join("dev")).unwrap();
    write(&flores, "dev/eng_Latn.dev", "a\nb\nc\n");
    write(&flores, "dev/bel_Cyrl.dev", "а\nб\n");
    let p = pipeline(
        dir.path(),
        "[stages.f]\nkind = \"ingest.flores200\"\ninputs = { root = \"flores\" }\nlangs = [\"be\"]\nsplits = [\"dev\"]\n",
    );
    let err = fails(&dir.path().join("s"), &["run", &p]);
    assert!(
        err.contains("bel_Cyrl.dev: has 2 lines but") && err.contains("eng_Latn.dev has 3"),
        "{err}"
    );
}

#[test]
fn flores200_from_shared_covers_every_registry_language() {
    let root = shared("datasets/flores200/flores200_dataset");
    let codes = [
        "af", "am", "be", "cy", "ga", "gd", "gl", "ha", "ka", "kk", "km", "ky", "li", "my", "nb",
        "nn", "oc", "si", "tg", "tk", "tt", "ug", "uz", "yi", "de", "nl", "ru", "ar", "fr", "zh",
    ];
    let dir = tempfile::tempdir().unwrap();
    let langs = codes
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let p = pipeline(
        dir.path(),
        &format!(
            "[stages.f]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"{}\" }}\nlangs = [{langs}]\nsplits = [\"devtest\"]\n",
            root.display()
        ),
    );
    let report = json(&dir.path().join("s"), &["run", &p]);
    assert_eq!(report["stages"][0]["rows"], 30 * 1012);
}

#[test]
fn pipeline_errors_point_at_file_line_col_with_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s");
    let cases: &[(&str, &str)] = &[
        (
            "[stages.a]\nkind = \"ingest.opus10\"\n",
            "p.toml:2:8: unknown stage kind `ingest.opus10` (did you mean `ingest.opus100`?)",
        ),
        (
            "[stages.a]\nkind = \"sample\"\ninputs = { pairs = \"b\" }\n[stages.b]\nkind = \"sample\"\ninputs = { pairs = \"a\" }\n",
            "p.toml:1:9: cycle between stages: a -> b -> a",
        ),
        (
            "[stages.a]\nkind = \"sample\"\ninputs = { pairs = \"nope\" }\n",
            "p.toml:3:20: input `pairs`: no stage named `nope`",
        ),
        (
            "[stages.a]\nkind = \"sample\"\n",
            "p.toml:1:9: stage `a` (sample) needs input `pairs`",
        ),
        (
            "[stages.b]\nkind = \"ingest.parallel\"\ninputs = { file = \"p.toml\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n[stages.a]\nkind = \"sample\"\ninputs = { pairs = \"b\" }\nper_lang = \"many\"\n",
            "p.toml:9:1: stage `a` (sample): parameter `per_lang`: invalid type: string \"many\", expected u64",
        ),
        (
            "[stages.a]\nkind = \"ingest.parallel\"\ninputs = { src = \"x\" }\nsrc_lng = \"be\"\n",
            "p.toml:4:1: stage `a` (ingest.parallel): parameter `src_lng`: unknown field `src_lng`, expected one of `src_lang`",
        ),
        (
            "[stages.a]\nkind = \"ingest.parallel\"\ninputs = { src = \"x\", tgt = \"p.toml\" }\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
            "p.toml:3:18: input `src`: `",
        ),
        (
            "[stages.f]\nkind = \"ingest.flores200\"\ninputs = { root = \".\" }\nlangz = [\"be\"]\n",
            "p.toml:4:1: stage `f` (ingest.flores200): parameter `langz`: unknown field `langz`, expected one of",
        ),
        (
            "[stagez.a]\n",
            "p.toml:1:2: unknown top-level key `stagez`; expected `pipeline`, `executor`, `store` or `stages`",
        ),
        ("[stages.a\n", "p.toml:1:10: invalid TOML"),
    ];
    for (body, expected) in cases {
        let p = pipeline(dir.path(), body);
        let err = fails(&s, &["status", &p]);
        assert!(
            err.contains(expected),
            "for\n{body}\nexpected `{expected}` in:\n{err}"
        );
    }
}
