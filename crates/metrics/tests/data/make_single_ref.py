#!/usr/bin/env python3
"""Reference scores for `json_object_has_the_issue_shape` (sacrebleu_exact.rs): cases/eng_flores.hyp against its first
reference only, with sacrebleu's defaults (BLEU 13a/exp, chrF, chrF++), at full precision, into single_ref.json.

usage: pip install sacrebleu==2.6.0 && python3 make_single_ref.py   (run from this folder)
"""
import json

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF


def read_lines(path):
    # As make_cases.py and sacrebleu's command line read files.
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip() for line in f]


def main():
    hyp = read_lines("cases/eng_flores.hyp")
    refs = [read_lines("cases/eng_flores.ref0")]
    out = {"sacrebleu_version": sacrebleu.__version__}
    for name, metric in [("bleu", BLEU()), ("chrf", CHRF()), ("chrf++", CHRF(word_order=2))]:
        s = metric.corpus_score(hyp, refs)
        out[name] = {"score": s.score, "signature": str(metric.get_signature()), "formatted": str(s)}
    with open("single_ref.json", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
