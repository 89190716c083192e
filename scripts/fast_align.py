#!/usr/bin/env python3
"""Word alignment with fast_align (Dyer et al., 2013) as an external aligner for alinea pairs tables.

As a cached `command` stage (see pipelines/examples/fast-align.toml):

    run = ["python3", "scripts/fast_align.py", "--pairs", "{in.pairs}", "--out", "{out.alignments}"]
    in_format = { pairs = "jsonl" }
    tools = ["scripts/fast_align.py"]

Per language, the pairs are written in fast_align's input format (`source ||| target`, one pair per line,
whitespace tokens, lowercased), aligned forward (`fast_align -i F -d -o -v`) and in reverse (`-r`), and symmetrized
with `atools -c grow-diag-final-and`: the settings of fast_align's README, and of the alignments AlignInstruct uses.
The output table has `pair_id`, `lang`, `src_tokens`, `tgt_tokens` (as aligned), and `pharaoh` (`i-j` links, 0-based
token indices). `--fast-align` and `--atools` name the executables when they are not on PATH (build them from
fast_align's sources with CMake); list them in the stage's `tools` so that their bytes enter the cache key.
"""

import argparse
import json
import os
import subprocess
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True, help="pairs table as JSON Lines (pair_id, lang, src, tgt)")
    p.add_argument("--out", required=True, help="alignments table to write (JSON Lines)")
    p.add_argument("--fast-align", default="fast_align")
    p.add_argument("--atools", default="atools")
    p.add_argument("--heuristic", default="grow-diag-final-and")
    return p.parse_args()


def tokens(text):
    return text.lower().split()


def run(cmd, stdout_path):
    print(" ".join(cmd), flush=True)
    with open(stdout_path, "w", encoding="utf-8") as out:
        subprocess.run(cmd, check=True, stdout=out)


def align(args, lang, rows, work):
    corpus = os.path.join(work, f"{lang}.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for r in rows:
            # fast_align skips a line with an empty side; a placeholder keeps the line numbers aligned.
            src, tgt = tokens(r["src"]) or ["<empty>"], tokens(r["tgt"]) or ["<empty>"]
            f.write(" ".join(src) + " ||| " + " ".join(tgt) + "\n")
    forward, reverse, sym = (os.path.join(work, f"{lang}.{d}") for d in ("fwd", "rev", "sym"))
    run([args.fast_align, "-i", corpus, "-d", "-o", "-v"], forward)
    run([args.fast_align, "-i", corpus, "-d", "-o", "-v", "-r"], reverse)
    run([args.atools, "-i", forward, "-j", reverse, "-c", args.heuristic], sym)
    with open(sym, encoding="utf-8") as f:
        links = [line.strip() for line in f]
    if len(links) != len(rows):
        sys.exit(f"{lang}: atools wrote {len(links)} lines for {len(rows)} pairs")
    return links


def main():
    args = parse_args()
    by_lang = {}
    with open(args.pairs, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            for c in ("pair_id", "lang", "src", "tgt"):
                if c not in row:
                    sys.exit(f"{args.pairs}:{n}: missing column {c}")
            by_lang.setdefault(row["lang"], []).append(row)
    work = os.environ.get("ALINEA_SCRATCH", ".")
    with open(args.out, "w", encoding="utf-8") as out:
        for lang in sorted(by_lang):
            rows = by_lang[lang]
            for r, pharaoh in zip(rows, align(args, lang, rows, work)):
                record = {
                    "pair_id": r["pair_id"],
                    "lang": lang,
                    "src_tokens": tokens(r["src"]),
                    "tgt_tokens": tokens(r["tgt"]),
                    "pharaoh": pharaoh,
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
