#!/usr/bin/env python3
"""Builds the sacrebleu exactness cases of alinea-metrics from real Flores-200 / NTREX-128 lines.

usage: python make_cases.py   (needs `pip install sacrebleu==2.6.0`; run from this folder)

For each case it writes hypothesis/reference files under cases/ (realistic corruptions of real
lines: dropped / swapped / duplicated words, casing, punctuation loss, Unicode quotes and dashes,
CJK text, empty hypotheses, over-long hypotheses, Python-only whitespace such as U+001C, CRLF)
and records in expected.json what sacrebleu 2.6.0 computes for several configurations: corpus
BLEU (all its statistics, signature, formatted line), chrF and chrF++, and sentence-level scores
(BLEU with effective_order=True as sacrebleu.sentence_bleu). Deterministic (fixed seed).
"""
import json
import os
import random

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../../shared/datasets")
FLORES = os.path.join(DATA, "flores200/flores200_dataset/devtest")
NTREX = os.path.join(DATA, "ntrex128/NTREX-128")
OUT = "cases"
N = 40

rng = random.Random(20261123)


def real_lines(path, start, n=N):
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = [l.rstrip("\n") for l in f]
    return lines[start:start + n]


QUOTES = [('"', "\u201c"), ("'", "\u2019"), ("-", "\u2013"), (" - ", " \u2014 "), ("...", "\u2026")]


def corrupt(line, cjk=False):
    """One to three realistic corruptions in a row."""
    for _ in range(rng.randint(1, 3)):
        line = corrupt_once(line, cjk)
    return line


def corrupt_once(line, cjk=False):
    """One realistic corruption, chosen at random."""
    k = rng.randrange(11)
    units = list(line) if cjk else line.split(" ")
    j = "" if cjk else " "
    if k == 0 and len(units) > 3:  # dropped words
        for _ in range(rng.randint(1, 3)):
            units.pop(rng.randrange(len(units)))
        return j.join(units)
    if k == 1 and len(units) > 3:  # swapped neighbours
        i = rng.randrange(len(units) - 1)
        units[i], units[i + 1] = units[i + 1], units[i]
        return j.join(units)
    if k == 2:  # casing
        return line.lower() if rng.random() < 0.5 else line.upper()
    if k == 3:  # punctuation lost
        return "".join(c for c in line if c not in ".,;:!?\"'()")
    if k == 4:  # Unicode quotes and dashes
        for a, b in QUOTES:
            line = line.replace(a, b)
        return line
    if k == 5:  # empty hypothesis
        return ""
    if k == 6:  # over-generation: repeated tail (oscillation)
        tail = j.join(units[-3:])
        return line + j + j.join([tail] * rng.randint(2, 4))
    if k == 7 and len(units) > 2:  # under-translation: first half only
        return j.join(units[: len(units) // 2])
    if k == 8:  # odd whitespace that Python strips / splits but Rust's trim would not
        return line.replace(" ", rng.choice(["  ", "\t", " \u00a0", "\u001c"]), 2) + rng.choice(["\u001f", " \u00a0", "\t", "\r"])
    if k == 9:  # HTML entities and 13a specials
        return line.replace("&", "&amp;").replace(" ", " &quot;", 1) + " <skipped>"
    return line  # exact copy


def write(name, lines):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for l in lines:
            f.write(l + "\n")
    return path


def read_lines(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip() for line in f]


def bleu_json(bleu, b):
    return {
        "score": b.score, "counts": list(b.counts), "totals": list(b.totals),
        "precisions": list(b.precisions), "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len,
        "signature": str(bleu.get_signature()), "formatted": str(b),
    }


CONFIGS = [
    {"tokenize": "13a", "lowercase": False, "smooth": "exp", "smooth_value": None, "chrf_lowercase": False},
    {"tokenize": "13a", "lowercase": True, "smooth": "floor", "smooth_value": None, "chrf_lowercase": True},
    {"tokenize": "intl", "lowercase": False, "smooth": "add-k", "smooth_value": None, "chrf_lowercase": False},
    {"tokenize": "char", "lowercase": False, "smooth": "none", "smooth_value": None, "chrf_lowercase": False},
    {"tokenize": "none", "lowercase": False, "smooth": "floor", "smooth_value": 0.3, "chrf_lowercase": False},
]
ZH_CONFIGS = [
    {"tokenize": "zh", "lowercase": False, "smooth": "exp", "smooth_value": None, "chrf_lowercase": False},
    {"tokenize": "zh", "lowercase": True, "smooth": "add-k", "smooth_value": 2.0, "chrf_lowercase": True},
    {"tokenize": "13a", "lowercase": False, "smooth": "exp", "smooth_value": None, "chrf_lowercase": False},
]


def case(name, hyps, refs, configs):
    hp = write(f"{name}.hyp", hyps)
    rps = [write(f"{name}.ref{i}", r) for i, r in enumerate(refs)]
    H = read_lines(hp)
    R = [read_lines(p) for p in rps]
    runs = []
    for c in configs:
        kw = dict(tokenize=c["tokenize"], lowercase=c["lowercase"], smooth_method=c["smooth"], smooth_value=c["smooth_value"])
        bleu = BLEU(**kw)
        sbleu = BLEU(effective_order=True, **kw)
        chrf = CHRF(word_order=0, lowercase=c["chrf_lowercase"])
        chrfpp = CHRF(word_order=2, lowercase=c["chrf_lowercase"])
        b = bleu.corpus_score(H, R)
        cf = chrf.corpus_score(H, R)
        cp = chrfpp.corpus_score(H, R)
        segs = []
        for i, h in enumerate(H):
            rs = [r[i] for r in R]
            segs.append({"bleu": sbleu.sentence_score(h, rs).score, "chrf": chrf.sentence_score(h, rs).score,
                         "chrf++": chrfpp.sentence_score(h, rs).score})
        runs.append({
            "config": c,
            "bleu": bleu_json(bleu, b),
            "chrf": {"score": cf.score, "signature": str(chrf.get_signature()), "formatted": str(cf)},
            "chrf++": {"score": cp.score, "signature": str(chrfpp.get_signature()), "formatted": str(cp)},
            "sentence_bleu_signature": str(sbleu.get_signature()),
            "segments": segs,
        })
    return {"name": name, "hyp": os.path.basename(hp), "refs": [os.path.basename(p) for p in rps], "runs": runs}


SPECIALS = [
    "It's 1990-2000: a 3.5% rise, i.e. $3,000.50 (approx.)... \"quoted\" -- dash",
    "&amp;lt;b&amp;gt; &quot;entities&quot; &lt;tag&gt; AT&T <skipped> end-\nline",
    "mixed\u001cseparators\u001dand\u00a0nbsp\u2009thin\u3000ideographic\u0085nel",
    "Unicode \u201cquotes\u201d \u2018single\u2019 \u2013 en \u2014 em \u2026 \u00ab\u00bb \u2022 \u20ac5 \u00a9",
    "\u0130stanbul \u0391\u0398\u0397\u039d\u0391\u03a3 \u039f\u0394\u039f\u03a3. STRASSE \u1e9e \u01c5",
    "\u6211\u7231\u5317\u4eac\uff0c\u201c\u4f60\u597d\u201d\u3002\U00020000\u2f81 abc1,2.3",
    "1,2,3. a.b,c ,. ., 4-5 -6 x- -y 7- 8--9",
    "",
    "   leading and trailing   ",
]


def tokenizer_cases():
    """Tokenizer outputs and Python lowercasing on real lines of many scripts plus edge cases."""
    from sacrebleu.metrics.bleu import _get_tokenizer
    lines = list(SPECIALS)
    for lang in ["eng_Latn", "fra_Latn", "deu_Latn", "amh_Ethi", "arb_Arab", "khm_Khmr", "mya_Mymr", "zho_Hans",
                 "ydd_Hebr", "kat_Geor", "sin_Sinh", "uig_Arab", "rus_Cyrl", "cym_Latn"]:
        lines += real_lines(os.path.join(FLORES, f"{lang}.devtest"), 200, 8)
    out = {"lines": lines, "lower": [l.lower() for l in lines]}
    for name in ["13a", "intl", "zh", "char", "none"]:
        tok = _get_tokenizer(name)()
        out[name] = [tok(l) for l in lines]
    with open("tokenizers.json", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    # English, two references: Flores devtest line + an NTREX-independent light paraphrase (a corruption).
    eng = real_lines(os.path.join(FLORES, "eng_Latn.devtest"), 100)
    cases.append(case("eng_flores", [corrupt(l) for l in eng], [eng, [corrupt(l) for l in eng]], CONFIGS))
    for lang, start in [("fra_Latn", 300), ("deu_Latn", 500), ("rus_Cyrl", 700), ("amh_Ethi", 50), ("ydd_Hebr", 900)]:
        ref = real_lines(os.path.join(FLORES, f"{lang}.devtest"), start)
        cases.append(case(f"{lang}_flores", [corrupt(l) for l in ref], [ref], CONFIGS))
    # NTREX, out-of-domain news, scripts without spaces between words for Khmer/Burmese.
    for lang, start in [("khm", 0), ("mya", 400), ("kat", 800), ("nld", 1200)]:
        ref = real_lines(os.path.join(NTREX, f"newstest2019-ref.{lang}.txt"), start)
        cases.append(case(f"{lang}_ntrex", [corrupt(l) for l in ref], [ref], CONFIGS[:2] + CONFIGS[3:4]))
    zh = real_lines(os.path.join(NTREX, "newstest2019-ref.zho_Hans.txt"), 10)
    zh2 = real_lines(os.path.join(FLORES, "zho_Hans.devtest"), 10)
    cases.append(case("zho_ntrex", [corrupt(l, cjk=True) for l in zh], [zh], ZH_CONFIGS))
    cases.append(case("zho_flores_2ref", [corrupt(l, cjk=True) for l in zh2], [zh2, [corrupt(l, cjk=True) for l in zh2]], ZH_CONFIGS))
    # Short segments where higher-order matches vanish: exercises every smoothing and effective order.
    short = [" ".join(l.split()[:rng.randint(1, 4)]) for l in eng]
    cases.append(case("eng_short", [corrupt(l) for l in short], [[" ".join(l.split()[:5]) for l in eng]], CONFIGS))
    # A corpus of empty hypotheses (BLEU 0 with sacrebleu's early stop, chrF 0).
    cases.append(case("all_empty", ["" for _ in eng[:5]], [eng[:5]], CONFIGS[:1]))
    tokenizer_cases()
    with open("expected.json", "w", encoding="utf-8") as f:
        json.dump({"sacrebleu_version": sacrebleu.__version__, "cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
