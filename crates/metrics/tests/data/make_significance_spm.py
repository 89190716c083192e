#!/usr/bin/env python3
"""Builds the spBLEU paired-test fixture of `metrics.compare` with sacrebleu 2.6.0 itself.

usage: python make_significance_spm.py   (needs `pip install sacrebleu==2.6.0 sentencepiece==0.2.3`; run from
       this folder, after make_significance.py and make_spm_cases.py made their files)

sacrebleu's paired bootstrap test (1000 resamples, SACREBLEU_SEED=12345) of the `zho` live case of
make_significance.py (150 real Flores-200 zho_Hans devtest lines; a baseline and two corrupted systems) with
BLEU(tokenize="flores200"), chrF and chrF++, where the flores200 SentencePiece model is spm/unigram.model (the real
one cannot be downloaded here; make_spm_cases.py placed its models the same way). Written to
significance/spm_expected.json, floats as the integers of their IEEE-754 bits.
"""
import gzip
import json
import os
import shutil
import struct
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HOME = tempfile.mkdtemp()
os.environ["SACREBLEU"] = HOME  # sacrebleu reads its model folder from here (at import)
os.environ["SACREBLEU_SEED"] = "12345"

import sacrebleu  # noqa: E402
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402
from sacrebleu.significance import PairedTest  # noqa: E402
from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS  # noqa: E402

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__


def bits(x):
    return None if x is None else struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def lines(name):
    with gzip.open(os.path.join(HERE, "significance", name), "rt", encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def main():
    os.makedirs(os.path.join(HOME, "models"), exist_ok=True)
    shutil.copy(os.path.join(HERE, "spm", "unigram.model"),
                os.path.join(HOME, "models", os.path.basename(SPM_MODELS["flores200"]["url"])))
    refs = lines("zho.ref.gz")
    named = [(s, lines(f"zho.{s}.gz")) for s in ["baseline", "worse", "near"]]
    metrics = {
        "BLEU": BLEU(references=[refs], tokenize="flores200"),
        "chrF": CHRF(references=[refs]),
        "chrF++": CHRF(references=[refs], word_order=2),
    }
    sigs, scores = PairedTest(named, metrics, references=None, test_type="bs", n_samples=1000)()
    out = {
        "case": "zho",
        "spm_model": "spm/unigram.model",
        "signatures": {k: v.format() for k, v in sigs.items()},
        "results": {k: [{"score": bits(r.score), "p_value": bits(r.p_value), "mean": bits(r.mean),
                         "ci": bits(r.ci)} for r in v] for k, v in scores.items() if k != "System"},
    }
    with open(os.path.join(HERE, "significance", "spm_expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    shutil.rmtree(HOME)


if __name__ == "__main__":
    main()
