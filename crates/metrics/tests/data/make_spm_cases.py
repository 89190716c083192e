#!/usr/bin/env python3
"""Builds the spBLEU (SentencePiece-tokenized BLEU) exactness cases of alinea-metrics.

usage: python make_spm_cases.py   (needs `pip install sacrebleu==2.6.0 sentencepiece==0.2.3`; run from this folder)

The real FLORES-200 tokenizer model cannot be downloaded here, so this script trains small SentencePiece models of
the same kinds on real Flores-200 dev lines of 12 languages (a unigram model and a BPE model with the default
nmt_nfkc normalizer, and a BPE model with byte fallback and an identity normalizer), then records:
  spm/pieces.json    EncodeAsPieces of real devtest lines of 16 scripts plus edge cases, for each model
  spm/expected.json  what sacrebleu 2.6.0 computes with `tokenize="flores200"` / `"flores101"` when its model file
                     is one of these models (placed where sacrebleu looks for its download), on corrupted real lines
Deterministic: fixed seeds, single-threaded training.
"""
import json
import os
import shutil
import tempfile

HOME = tempfile.mkdtemp()
os.environ["SACREBLEU"] = HOME  # sacrebleu reads its model folder from here (at import)

import sentencepiece as spm  # noqa: E402

import make_cases  # noqa: E402  (its corruptions and case format; imports sacrebleu after SACREBLEU is set)
from make_cases import DATA, FLORES, NTREX, corrupt, real_lines  # noqa: E402

OUT = "spm"
DEV = os.path.join(DATA, "flores200/flores200_dataset/dev")
TRAIN_LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab", "sin_Sinh", "mya_Mymr",
               "amh_Ethi", "kat_Geor", "khm_Khmr", "ydd_Hebr"]
MODELS = {
    "unigram": dict(model_type="unigram", vocab_size=4000),
    "bpe": dict(model_type="bpe", vocab_size=4000),
    "bpe_bytes": dict(model_type="bpe", vocab_size=3000, byte_fallback=True, normalization_rule_name="identity"),
}
EDGE = [
    "", " ", "   leading and trailing   spaces  ", "tab\tand\u00a0nbsp\u3000ideographic",
    "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３ ｶﾀｶﾅ", "ligatures ﬁ ﬂ ﬃ and ① ㈱ ㎏ ™ ½",
    "emoji 😀👍🏽 and rare 𠀀 𪚥 ᚠᛇᚻ", "Ǆ ǅ ǆ İstanbul ΑΘΗΝΑ straße ẞ",
    "\u0301combining e\u0301 vs é, Hangul 한국어 한", "a" * 60, "▁already▁has▁the▁meta▁symbol",
    "<unk> <s> </s> tokens as text", "mixed\u001cseparators\u001dand\u0085nel",
]


def train():
    os.makedirs(OUT, exist_ok=True)
    text = os.path.join(HOME, "train.txt")
    with open(text, "w", encoding="utf-8") as f:
        for lang in TRAIN_LANGS:
            for line in real_lines(os.path.join(DEV, f"{lang}.dev"), 0, 997):
                f.write(line + "\n")
    for name, kw in MODELS.items():
        spm.SentencePieceTrainer.train(input=text, model_prefix=os.path.join(OUT, name), character_coverage=0.9995,
                                       num_threads=1, seed_sentencepiece_size=200000, minloglevel=2, **kw)
        os.remove(os.path.join(OUT, f"{name}.vocab"))


def pieces():
    lines = list(EDGE)
    for lang in TRAIN_LANGS + ["uig_Arab", "tat_Cyrl", "gle_Latn", "cym_Latn"]:
        lines += real_lines(os.path.join(FLORES, f"{lang}.devtest"), 300, 6)
    out = {"lines": lines}
    for name in MODELS:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, f"{name}.model"))
        out[name] = [sp.encode(l, out_type=str) for l in lines]
    with open(os.path.join(OUT, "pieces.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def install(model, key):
    """Puts a model where sacrebleu's `key` tokenizer loads its download from."""
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
    os.makedirs(os.path.join(HOME, "models"), exist_ok=True)
    shutil.copy(os.path.join(OUT, f"{model}.model"), os.path.join(HOME, "models", os.path.basename(SPM_MODELS[key]["url"])))


def cases():
    make_cases.OUT = OUT
    configs = lambda tok: [  # noqa: E731
        {"tokenize": tok, "lowercase": False, "smooth": "exp", "smooth_value": None, "chrf_lowercase": False},
        {"tokenize": tok, "lowercase": True, "smooth": "floor", "smooth_value": None, "chrf_lowercase": False},
    ]
    out = []
    for model, tok, corpora in [
        ("unigram", "flores200", [("eng_Latn", 100), ("amh_Ethi", 400), ("zho_Hans", 600), ("khm_Khmr", 800)]),
        ("bpe", "flores200", [("fra_Latn", 100), ("arb_Arab", 200), ("sin_Sinh", 300), ("uig_Arab", 500)]),
        ("bpe_bytes", "flores101", [("rus_Cyrl", 100), ("mya_Mymr", 700), ("zho_Hans", 50)]),
    ]:
        install(model, tok)
        for lang, start in corpora:
            ref = real_lines(os.path.join(FLORES, f"{lang}.devtest"), start)
            cjk = lang in ("zho_Hans", "khm_Khmr", "mya_Mymr")
            c = make_cases.case(f"{model}_{lang}", [corrupt(l, cjk=cjk) for l in ref], [ref], configs(tok))
            c["spm_model"] = f"{model}.model"
            out.append(c)
    ntrex = real_lines(os.path.join(NTREX, "newstest2019-ref.mya.txt"), 0)
    install("unigram", "flores200")
    c = make_cases.case("unigram_mya_ntrex", [corrupt(l, cjk=True) for l in ntrex], [ntrex], configs("flores200"))
    c["spm_model"] = "unigram.model"
    out.append(c)
    import sacrebleu
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"sacrebleu_version": sacrebleu.__version__, "sentencepiece_version": spm.__version__, "cases": out},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    train()
    pieces()
    cases()
    shutil.rmtree(HOME)
