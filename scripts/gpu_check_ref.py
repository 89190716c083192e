"""The transformers + PEFT side of scripts/gpu-check.sh, and its table.

Same models, data and batches as alinea's `gpu_check` example (crates/bloom/examples/gpu_check.rs):

  make        random-initialised BLOOM of a named shape (transformers' own init, seed 0), saved as safetensors, and the
              parity batch (ids.json) with its fp32 and bf16 reference logits
  curve       PEFT LoRA training that starts from alinea's initial adapter and replays alinea's batch plan
  train-speed PEFT + torch LoRA training throughput at a fixed batch and sequence length
  gen-speed   model.generate throughput (greedy, KV cache, fixed new tokens)
  report      the table (table.md) and every figure (results.json) from what the steps wrote

Conventions of crates/bloom/tests/data/make_peft_fixture.py and crates/bloom/benches/pytorch/peft_speed.py: pad id 3,
eos id 2, loss on output tokens only (labels -100 elsewhere), torch.optim.AdamW, clip_grad_norm_ 1.0.
"""
import argparse
import json
import math
import os
import resource
import time

import torch

# Shapes of the BLOOMZ checkpoints (config.json of bigscience/bloomz-560m, -1b1, -7b1); "7b1-4l" keeps 4 of 7b1's 30
# blocks so that it fits the time budget; "tiny-*" are the CPU rehearsal's stand-ins.
SHAPES = {
    "560m": dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880),
    "1b1": dict(hidden_size=1536, n_layer=24, n_head=16, vocab_size=250880),
    "7b1-4l": dict(hidden_size=4096, n_layer=4, n_head=32, vocab_size=250880),
    "tiny-a": dict(hidden_size=64, n_layer=2, n_head=4, vocab_size=4000),
    "tiny-b": dict(hidden_size=96, n_layer=3, n_head=4, vocab_size=4000),
}
PAD, EOS = 3, 2


def device_of(name):
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"device {name}: torch sees no CUDA GPU")
    return torch.device(name)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def read_examples(path):
    return json.load(open(path))


def stream_rows(examples, n, length):
    """All examples' ids concatenated, cut into n rows of `length` tokens (cycling), as gpu_check.rs does."""
    stream = [t for e in examples for t in e["ids"]]
    return [[stream[(i * length + j) % len(stream)] for j in range(length)] for i in range(n)]


def cmd_make(a):
    from transformers import BloomConfig, BloomForCausalLM

    dev = device_of(a.device)
    cfg = BloomConfig(**SHAPES[a.shape], initializer_range=0.02, bos_token_id=1, eos_token_id=EOS,
                      pad_token_id=PAD, layer_norm_epsilon=1e-5)
    torch.manual_seed(0)
    with dev:
        model = BloomForCausalLM(cfg).eval()
    os.makedirs(a.dir, exist_ok=True)
    model.save_pretrained(a.dir, safe_serialization=True)
    examples = read_examples(a.examples)
    # The parity batch: the first rows of the token stream, full mask (left padding is covered by the CPU tests).
    ids = stream_rows(examples, a.batch, a.seq)
    json.dump(ids, open(os.path.join(a.dir, "ids.json"), "w"))
    x = torch.tensor(ids, device=dev)
    from safetensors.torch import save_file

    with torch.no_grad():
        save_file({"logits": model(input_ids=x).logits.float().cpu().contiguous()},
                  os.path.join(a.dir, "ref_f32.safetensors"))
        model = model.to(torch.bfloat16)
        save_file({"logits": model(input_ids=x).logits.float().cpu().contiguous()},
                  os.path.join(a.dir, "ref_bf16.safetensors"))
    print(f"made {a.shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")


def lr_factor(s, total, warmup_ratio):
    """transformers' get_linear_schedule_with_warmup, written as alinea's lr_factor."""
    warmup = math.ceil(warmup_ratio * total)
    if s < warmup:
        return s / max(warmup, 1)
    return max(0.0, (total - min(s, total)) / max(total - warmup, 1))


def batch_tensors(rows, dev):
    """Right-padded ids, mask and labels (-100 on inputs and padding) of [(ids, n_input)]."""
    t = max(len(x) for x, _ in rows)
    ids = torch.tensor([x + [PAD] * (t - len(x)) for x, _ in rows], device=dev)
    mask = torch.tensor([[1] * len(x) + [0] * (t - len(x)) for x, _ in rows], device=dev)
    labels = torch.tensor([[-100] * n + x[n:] + [-100] * (t - len(x)) for x, n in rows], device=dev)
    return ids, mask, labels


def cmd_curve(a):
    from peft import PeftModel
    from transformers import BloomForCausalLM

    dev = device_of(a.device)
    ours = json.load(open(os.path.join(a.dir, "alinea_curve.json")))
    c = ours["config"]
    base = BloomForCausalLM.from_pretrained(a.model, dtype=torch.float32).to(dev)
    model = PeftModel.from_pretrained(base, os.path.join(a.dir, "init_adapter"), is_trainable=True)
    model.train()
    examples = read_examples(a.examples)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total = len(ours["plan"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, c["warmup_ratio"]))
    losses, t0 = [], time.time()
    for idx in ours["plan"]:
        ids, mask, labels = batch_tensors([(examples[i]["ids"], examples[i]["n_input"]) for i in idx], dev)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c["max_grad_norm"])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.detach().item())
    json.dump({"loss": losses, "seconds": time.time() - t0}, open(os.path.join(a.dir, "peft_curve.json"), "w"))
    print(f"peft curve: {losses[0]:.4f} -> {losses[-1]:.4f}")


def cmd_train_speed(a):
    from peft import LoraConfig, get_peft_model
    from transformers import BloomForCausalLM

    dev = device_of(a.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    base = BloomForCausalLM.from_pretrained(a.model, dtype=dtype).to(dev)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=["query_key_value"],
                                            task_type="CAUSAL_LM"))
    model.train()
    rows = stream_rows(read_examples(a.examples), a.batch * a.steps, a.seq)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rates, losses, t_all = [], [], time.time()
    for s in range(a.steps):
        sync(dev)
        t0 = time.time()
        batch = [(r, a.seq // 2) for r in rows[s * a.batch:(s + 1) * a.batch]]
        ids, mask, labels = batch_tensors(batch, dev)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(loss.detach().item())  # a host sync, as alinea's loss read-back
        sync(dev)
        rates.append(a.batch * a.seq / (time.time() - t0))
    out = {"impl": "peft", "torch": torch.__version__, "device": str(dev), "dtype": a.dtype, "batch": a.batch,
           "seq": a.seq, "steps": a.steps, "tokens_per_sec": sorted(rates[2:])[len(rates[2:]) // 2],
           "seconds": time.time() - t_all, "peak_rss_mib": peak_rss_mib(), "losses": losses}
    if dev.type == "cuda":
        out["torch_peak_allocated_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    json.dump(out, open(a.out, "w"), indent=1)
    print(f"peft train-speed: {out['seconds']:.1f}s")


def cmd_gen_speed(a):
    from transformers import BloomForCausalLM

    dev = device_of(a.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    model = BloomForCausalLM.from_pretrained(a.model, dtype=dtype).to(dev).eval()
    prompts = stream_rows(read_examples(a.examples), a.batch, a.prompt_len)
    ids = torch.tensor(prompts, device=dev)
    mask = torch.ones_like(ids)
    kw = dict(attention_mask=mask, do_sample=False, num_beams=1, use_cache=True, pad_token_id=PAD, eos_token_id=None)
    with torch.no_grad():
        model.generate(input_ids=ids, max_new_tokens=4, min_new_tokens=4, **kw)
        sync(dev)
        t0 = time.time()
        out = model.generate(input_ids=ids, max_new_tokens=a.new, min_new_tokens=a.new, **kw)
        sync(dev)
    secs = time.time() - t0
    produced = (out.shape[1] - ids.shape[1]) * out.shape[0]
    res = {"impl": "hf-generate", "device": str(dev), "dtype": a.dtype, "batch": a.batch, "prompt_len": a.prompt_len,
           "new_tokens": a.new, "produced": produced, "tokens_per_sec": produced / secs, "seconds": secs,
           "peak_rss_mib": peak_rss_mib(), "first_row": out[0, ids.shape[1]:].tolist()}
    json.dump(res, open(a.out, "w"), indent=1)
    print(f"hf generate: {produced} tokens in {secs:.2f}s")


def logit_errors(got, want):
    d = (got - want).abs()
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
            "argmax_agree": float((got.argmax(-1) == want.argmax(-1)).float().mean())}


def cmd_report(a):
    from safetensors.torch import load_file

    w = a.work
    res = {"parity": [], "curve": None, "speed": [], "memory": {}}
    lines = ["| check | figure | criterion | result |", "|---|---|---|---|"]

    def row(check, figure, criterion, ok):
        lines.append(f"| {check} | {figure} | {criterion} | {'PASS' if ok else 'FAIL'} |")
        return ok

    all_ok = True
    for shape in a.parity:
        d = os.path.join(w, shape)
        files = {k: os.path.join(d, f"{k}.safetensors") for k in ("ref_f32", "ref_bf16", "alinea_f32", "alinea_bf16")}
        if not all(os.path.exists(p) for p in files.values()):
            all_ok &= row(f"logits {shape}", "missing (a step failed: see log.txt)", "", False)
            continue
        ref32, ref16, our32, our16 = (load_file(files[k])["logits"] for k in files)
        e32 = logit_errors(our32, ref32)
        e16 = logit_errors(our16, ref32)
        h16 = logit_errors(ref16, ref32)
        res["parity"].append({"shape": shape, "f32": e32, "bf16_vs_hf_f32": e16, "hf_bf16_vs_hf_f32": h16})
        all_ok &= row(f"logits {shape} f32 vs transformers f32", f"max {e32['max_abs']:.2e}, top-1 agree "
                      f"{e32['argmax_agree']:.3f}", "max <= 1e-3", e32["max_abs"] <= 1e-3)
        # bf16 rounds weights and activations: both frameworks' bf16 logits are set against the fp32 reference,
        # and alinea's error must stay within twice transformers' own bf16 error.
        all_ok &= row(f"logits {shape} bf16 vs transformers f32",
                      f"alinea max {e16['max_abs']:.2e} mean {e16['mean_abs']:.2e} top-1 {e16['argmax_agree']:.3f}; "
                      f"transformers bf16 max {h16['max_abs']:.2e} mean {h16['mean_abs']:.2e} top-1 "
                      f"{h16['argmax_agree']:.3f}", "alinea max <= 2 x transformers bf16 max",
                      e16["max_abs"] <= 2 * h16["max_abs"])
    cd = os.path.join(w, "curve")
    if not all(os.path.exists(os.path.join(cd, f)) for f in ("alinea_curve.json", "peft_curve.json")):
        all_ok &= row("LoRA curve vs PEFT; gradients", "missing (a step failed: see log.txt)", "", False)
    else:
        ours = json.load(open(os.path.join(cd, "alinea_curve.json")))
        peft = json.load(open(os.path.join(cd, "peft_curve.json")))
        diffs = [abs(x - y) for x, y in zip(ours["loss"], peft["loss"])]
        rel = max(d / abs(y) for d, y in zip(diffs, peft["loss"]))
        res["curve"] = {"alinea": ours["loss"], "peft": peft["loss"], "max_abs_diff": max(diffs), "max_rel_diff": rel,
                        "device": ours["device"], "config": ours["config"]}
        all_ok &= row(f"LoRA curve {len(diffs)} steps (r 8, a 32, qkv, lr {ours['config']['lr']}) vs PEFT",
                      f"loss {ours['loss'][0]:.4f} -> {ours['loss'][-1]:.4f} (PEFT {peft['loss'][0]:.4f} -> "
                      f"{peft['loss'][-1]:.4f}); max diff {max(diffs):.2e} ({rel:.2%})", "max relative diff <= 1%",
                      rel <= 0.01)
        moved = ours["moved"]
        still = [m["tensor"] for m in moved if not m["max_abs_change"] > 0]
        res["curve"]["unmoved"] = still
        all_ok &= row(f"gradients reach every LoRA tensor ({ours['device']})",
                      f"{len(moved) - len(still)}/{len(moved)} tensors moved; smallest change "
                      f"{min(m['max_abs_change'] for m in moved):.2e}", "all moved", not still)
    for kind in ("train", "gen"):
        for shape in a.speed:
            f = {i: os.path.join(w, f"{kind}_{shape}_{i}.json") for i in ("alinea", "ref")}
            if not all(os.path.exists(p) for p in f.values()):
                lines.append(f"| {kind} speed {shape} | missing (a step failed: see log.txt) | | FAIL |")
                all_ok = False
                continue
            ours, ref = (json.load(open(f[i])) for i in ("alinea", "ref"))
            mem = {}
            for i in ("alinea", "ref"):
                p = os.path.join(w, f"{kind}_{shape}_{i}.gpumem")
                if os.path.exists(p):
                    vals = [int(x) for x in open(p).read().split() if x.strip().isdigit()]
                    mem[i] = (max(vals) - vals[0]) if vals else float("nan")
            ratio = ours["tokens_per_sec"] / ref["tokens_per_sec"]
            what = "train tokens/s" if kind == "train" else "generate new tokens/s"
            shape_desc = (f"batch {ours['batch']} x seq {ours['seq']}" if kind == "train" else
                          f"batch {ours['batch']}, prompt {ours['prompt_len']}, {ours['new_tokens']} new")
            res["speed"].append({"kind": kind, "shape": shape, "alinea": ours, "ref": ref, "ratio": ratio,
                                 "gpu_mem_mib": mem})
            fig = f"alinea {ours['tokens_per_sec']:.0f} vs {ref['impl']} {ref['tokens_per_sec']:.0f} = {ratio:.2f}x"
            if mem:
                fig += f"; GPU memory {mem.get('alinea', float('nan')):.0f} vs {mem.get('ref', float('nan')):.0f} MiB"
            else:
                fig += f"; peak RSS {ours['peak_rss_mib']:.0f} vs {ref['peak_rss_mib']:.0f} MiB"
            lines.append(f"| {what} {shape} {ours['dtype']} ({shape_desc}) | {fig} | goal >= 1.0x | "
                         f"{'met' if ratio >= 1.0 else 'short'} |")
    lines.append("")
    lines.append(f"load average: {open('/proc/loadavg').read().split()[:3]}; torch {torch.__version__}")
    table = "\n".join(lines)
    open(os.path.join(a.out, "table.md"), "w").write(table + "\n")
    res["all_checks_pass"] = all_ok
    json.dump(res, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print(table)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--shape", required=True, choices=SHAPES)
    m.add_argument("--dir", required=True)
    m.add_argument("--examples", required=True)
    m.add_argument("--device", default="cpu")
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--seq", type=int, default=64)
    c = sub.add_parser("curve")
    c.add_argument("--model", required=True)
    c.add_argument("--dir", required=True)
    c.add_argument("--examples", required=True)
    c.add_argument("--device", default="cpu")
    for name in ("train-speed", "gen-speed"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--examples", required=True)
        s.add_argument("--device", default="cpu")
        s.add_argument("--dtype", default="bf16")
        s.add_argument("--batch", type=int, default=8 if name == "train-speed" else 16)
        s.add_argument("--out", required=True)
        if name == "train-speed":
            s.add_argument("--seq", type=int, default=512)
            s.add_argument("--steps", type=int, default=12)
        else:
            s.add_argument("--prompt-len", type=int, default=32)
            s.add_argument("--new", type=int, default=64)
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--parity", nargs="*", default=[])
    r.add_argument("--speed", nargs="*", default=[])
    a = p.parse_args()
    {"make": cmd_make, "curve": cmd_curve, "train-speed": cmd_train_speed, "gen-speed": cmd_gen_speed,
     "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
