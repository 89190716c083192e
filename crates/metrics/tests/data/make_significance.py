#!/usr/bin/env python3
"""Builds the significance-test fixtures of alinea-metrics with sacrebleu 2.6.0 itself.

usage: python make_significance.py   (needs `pip install sacrebleu==2.6.0`; run from this folder;
       `pip download sacrebleu==2.6.0 --no-binary :all: --no-deps` and unpack it next to this
       script, or set SACREBLEU_SDIST to the unpacked folder, for sacrebleu's own test data)

Two sets, written under significance/:

* wmt17: sacrebleu's own test/test_significance.py vectors. Its pickle of 16 WMT17 en-de systems
  (3004 segments) is reduced to per-segment BLEU statistics (tokenize='none', as the test scores
  them; BLEU statistics are proven exact elsewhere), wmt17_bleu_stats.txt.gz, and the expected
  results are sacrebleu's PairedTest with the test's settings (bootstrap 2000 resamples, AR 10,000
  trials, SACREBLEU_SEED=12345), next to the Moses / multeval p-values that test compares with.
* live: real Flores-200 devtest lines in several scripts, a baseline and two systems made by
  realistic corruptions, gzipped (alinea reads .gz as sacrebleu does), scored by sacrebleu's
  PairedTest (bootstrap and AR) and corpus_score(n_bootstrap=1000) under several BLEU / chrF
  configurations.

Every float is stored as the integer of its IEEE-754 bits so the Rust side compares bit for bit.
"""
import bz2
import gzip
import json
import os
import pickle
import random
import struct

os.environ["SACREBLEU_SEED"] = "12345"

import sacrebleu  # noqa: E402
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402
from sacrebleu.significance import PairedTest  # noqa: E402

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "significance")
FLORES = os.path.join(HERE, "../../../../../shared/datasets/flores200/flores200_dataset/devtest")
SDIST = os.environ.get("SACREBLEU_SDIST", os.path.join(HERE, "sacrebleu-2.6.0"))

rng = random.Random(20261202)


def bits(x):
    return None if x is None else struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def result_json(r):
    return {"score": bits(r.score), "p_value": bits(r.p_value), "mean": bits(r.mean), "ci": bits(r.ci)}


def paired(named, metrics, test_type, n_samples, n_ar_confidence=-1):
    sigs, scores = PairedTest(named, metrics, references=None, test_type=test_type,
                              n_samples=n_samples, n_ar_confidence=n_ar_confidence)()
    return {
        "signatures": {k: v.format() for k, v in sigs.items()},
        "results": {k: [result_json(r) for r in v] for k, v in scores.items() if k != "System"},
    }


def wmt17():
    with bz2.BZ2File(os.path.join(SDIST, "test/wmt17_en_de_systems.pkl.bz2"), "rb") as f:
        named = pickle.load(f)
    _, refs = named.pop()
    bleu = BLEU(references=refs, tokenize="none")
    with gzip.open(os.path.join(OUT, "wmt17_bleu_stats.txt.gz"), "wt", encoding="utf-8") as out:
        for i, (_, hyps) in enumerate(named):
            for s in bleu._extract_corpus_statistics(hyps, None):
                out.write(f"{i}\t{' '.join(map(str, s))}\n")
    metrics = {"BLEU": BLEU(references=refs, tokenize="none")}
    return {
        "systems": [n for n, _ in named],
        "bs": paired(named, metrics, "bs", 2000),
        "ar": paired(named, metrics, "ar", 10000),
    }


def corrupt(line, rate, cjk):
    units = list(line) if cjk else line.split(" ")
    out = []
    for u in units:
        r = rng.random()
        if r < rate * 0.5:
            continue  # dropped
        if r < rate * 0.7 and out:
            out[-1], u = u, out[-1]  # swapped with the previous unit
        elif r < rate * 0.8:
            u = u.upper() if not cjk else u  # casing
        elif r < rate:
            out.append(u)  # duplicated
        out.append(u)
    return ("" if cjk else " ").join(out)


LIVE = [
    # (name, flores file, lines, cjk, bleu kwargs, chrf kwargs)
    ("deu", "deu_Latn", 200, False, {}, {}),
    ("rus_addk", "rus_Cyrl", 150, False, {"smooth_method": "add-k", "smooth_value": 0.5}, {}),
    ("zho", "zho_Hans", 150, True, {"tokenize": "zh"}, {}),
    ("arb_floor", "arb_Arab", 120, False, {"smooth_method": "floor", "smooth_value": 0.2},
     {"beta": 3, "eps_smoothing": True}),
    ("amh_char", "amh_Ethi", 100, False, {"tokenize": "char", "lowercase": True},
     {"char_order": 4, "whitespace": True, "lowercase": True}),
    ("kat_small", "kat_Geor", 30, False, {"smooth_method": "none"}, {"beta": 1}),
    ("khm_eff", "khm_Khmr", 80, True, {"effective_order": True, "max_ngram_order": 3}, {}),
]


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as f:
        f.write("".join(l + "\n" for l in lines))


def live():
    cases = []
    for name, lang, n, cjk, bleu_kw, chrf_kw in LIVE:
        with open(os.path.join(FLORES, f"{lang}.devtest"), encoding="utf-8") as f:
            refs = [l.rstrip("\n") for l in f][:n]
        base = [corrupt(l, 0.25, cjk) for l in refs]
        worse = [corrupt(l, 0.35, cjk) for l in refs]
        # Close to the baseline: a tenth of its lines corrupted once more.
        near = [corrupt(b, 0.2, cjk) if rng.random() < 0.1 else b for b in base]
        files = {}
        for key, lines in [("ref", refs), ("baseline", base), ("worse", worse), ("near", near)]:
            files[key] = f"{name}.{key}.gz"
            write_gz(os.path.join(OUT, files[key]), lines)
        named = [("baseline", base), ("worse", worse), ("near", near)]
        metrics = {
            "BLEU": BLEU(references=[refs], **bleu_kw),
            "chrF": CHRF(references=[refs], **chrf_kw),
            "chrF++": CHRF(references=[refs], word_order=2, **chrf_kw),
        }
        confidence = {}
        for mname, m in metrics.items():
            per_sys = []
            for _, hyps in named:
                s = m.corpus_score(hyps, None, n_bootstrap=1000)
                per_sys.append({"score": bits(s.score), "mean": bits(s._mean), "ci": bits(s._ci),
                                "signature": m.get_signature().format()})
            confidence[mname] = per_sys
            m.n_bootstrap = None
            m.seed = None
        cases.append({
            "name": name, "files": files, "bleu": bleu_kw, "chrf": chrf_kw,
            "bs": paired(named, metrics, "bs", 1000),
            "ar": paired(named, metrics, "ar", 10000),
            "ar_confidence": paired(named, metrics, "ar", 2000, n_ar_confidence=300),
            "confidence": confidence,
        })
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {"wmt17": wmt17(), "live": live()}
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


main()
