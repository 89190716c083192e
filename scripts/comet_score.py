#!/usr/bin/env python3
"""COMET scores of an alinea `generate` table, computed with Unbabel's `comet-score` command.

As a cached `command` stage (see pipelines/examples/comet.toml):

    run = ["python3", "scripts/comet_score.py", "--generations", "{in.gen}", "--pairs", "{in.pairs}",
           "--segments", "{out.segments}", "--system", "{out.system}"]
    in_format = { gen = "jsonl", pairs = "jsonl" }
    tools = ["scripts/comet_score.py"]
    env = ["HF_HOME", "CUDA_VISIBLE_DEVICES"]     # where the COMET checkpoint is cached; the GPU used

For each generation the source sentence is the side of its pair (`pair_id`) in the generation's source language,
the hypothesis is `hypothesis` and the reference `output`. `comet-score -s SRC -t HYP -r REF --model M --to_json`
scores each direction's segments; the script writes the segment scores (`pair_id`, `direction`, `comet`) and per
direction the system score (`direction`, `segments`, `comet`, `model`) as JSON Lines.

`comet-score` downloads its checkpoint from the Hugging Face hub on first use (`--model`, default
Unbabel/wmt22-comet-da, the model of the COMET figures in the literature this project reproduces); point HF_HOME at
a cache that holds it to run offline.
"""

import argparse
import json
import os
import subprocess
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generations", required=True, help="generate table as JSON Lines")
    p.add_argument("--pairs", required=True, help="the pairs the prompts were made from, as JSON Lines")
    p.add_argument("--segments", required=True, help="segment scores to write (JSON Lines)")
    p.add_argument("--system", required=True, help="system scores to write (JSON Lines)")
    p.add_argument("--model", default="Unbabel/wmt22-comet-da")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--comet-score", default="comet-score", help="the comet-score executable")
    return p.parse_args()


def read_jsonl(path, needed):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            missing = [c for c in needed if c not in row]
            if missing:
                sys.exit(f"{path}:{n}: missing column(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def segments_by_direction(generations, pairs):
    by_id = {p["pair_id"]: p for p in pairs}
    groups = {}
    for n, g in enumerate(generations, 1):
        pair = by_id.get(g["pair_id"])
        if pair is None:
            sys.exit(f"generations row {n}: pair_id {g['pair_id']} is not in the pairs table")
        source = pair["src"] if g["src_lang"] == pair["src_lang"] else pair["tgt"]
        groups.setdefault(g["direction"], []).append((g["pair_id"], source, g["hypothesis"] or "", g["output"]))
    return groups


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line.replace("\n", " ") + "\n")


def score(args, direction, rows, work):
    files = {}
    for i, what in enumerate(("src", "hyp", "ref")):
        files[what] = os.path.join(work, f"{direction}.{what}.txt")
        write_lines(files[what], [r[i + 1] for r in rows])
    out_json = os.path.join(work, f"{direction}.json")
    cmd = [args.comet_score, "-s", files["src"], "-t", files["hyp"], "-r", files["ref"], "--model", args.model,
           "--batch_size", str(args.batch_size), "--gpus", str(args.gpus), "--to_json", out_json, "--quiet"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(out_json, encoding="utf-8") as f:
        result = json.load(f)
    # `--to_json` maps each translation file to its segments: {"src", "mt", "ref", "COMET"}.
    segments = result[files["hyp"]] if files["hyp"] in result else next(iter(result.values()))
    scores = [float(s["COMET"]) for s in segments]
    if len(scores) != len(rows):
        sys.exit(f"{direction}: comet-score returned {len(scores)} scores for {len(rows)} segments")
    return scores


def main():
    args = parse_args()
    generations = read_jsonl(args.generations, ["pair_id", "direction", "src_lang", "hypothesis", "output"])
    pairs = read_jsonl(args.pairs, ["pair_id", "src_lang", "src", "tgt"])
    work = os.environ.get("ALINEA_SCRATCH", ".")
    segment_rows, system_rows = [], []
    for direction, rows in sorted(segments_by_direction(generations, pairs).items()):
        scores = score(args, direction, rows, work)
        for (pair_id, *_), s in zip(rows, scores):
            segment_rows.append({"pair_id": pair_id, "direction": direction, "comet": s})
        system_rows.append(
            {"direction": direction, "segments": len(scores), "comet": sum(scores) / len(scores), "model": args.model}
        )
    for path, rows in ((args.segments, segment_rows), (args.system, system_rows)):
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
