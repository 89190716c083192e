#!/usr/bin/env python3
"""LoRA training with Hugging Face PEFT + TRL on an alinea instruction table, with the paper's configuration.

AlignInstruct (arXiv 2401.05811) fine-tunes BLOOMZ with LoRA: rank 8, alpha 32, dropout 0.1 on
`query_key_value`, 5 epochs, inputs and outputs of at most 384 tokens each. This script does the same with PEFT and
TRL's SFTTrainer, so an alinea pipeline can train with the reference implementation as a cached `command` stage:

    [stages.peft]
    kind = "command"
    run = ["python3", "scripts/train_peft.py", "--data", "{in.train}", "--model", "{in.model}",
           "--out", "{out.adapter}", "--loss", "{out.loss}"]
    inputs = { train = "train_set", model = "${ALINEA_MODEL}" }
    in_format = { train = "jsonl" }
    tools = ["scripts/train_peft.py"]
    outputs = { adapter = { folder = true }, loss = { table = "jsonl" } }

The input is the instruction table (`instruction`, `input`, `output`, `phase` columns, as alinea writes it): the
prompt is `instruction`, then a newline and `input` when there is one (alinea's `InstructRow::prompt`), the
completion is `output` followed by EOS, and the loss is on the completion only. A curriculum's phases are trained
one after the other, `--epochs` each, as alinea's `train.lora` does. Prompt and completion are truncated to their
token budgets separately (384 + 384), which TRL's single `max_length` cannot express, so the examples are given to
SFTTrainer already tokenized (`input_ids` + `completion_mask`).

Outputs: the adapter folder (`adapter_config.json`, `adapter_model.safetensors`: what `PeftModel.from_pretrained`
loads), and the loss per optimiser step as JSON Lines (`step`, `epoch`, `phase`, `loss`, `learning_rate`).
"""

import argparse
import json
import math
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="instruction table as JSON Lines")
    p.add_argument("--model", required=True, help="Hugging Face model folder (config.json, weights, tokenizer)")
    p.add_argument("--out", required=True, help="adapter folder to write")
    p.add_argument("--loss", required=True, help="loss table to write (JSON Lines)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=32)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--targets", default="query_key_value", help="comma-separated module names")
    p.add_argument("--epochs", type=float, default=5)
    p.add_argument("--max-input-len", type=int, default=384)
    p.add_argument("--max-output-len", type=int, default=384)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--warmup-ratio", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (fixed, so results do not depend on the machine)")
    p.add_argument(
        "--base-model",
        help="name written as base_model_name_or_path in adapter_config.json (default: the model folder's name; "
        "never its full path, which is a scratch directory that differs between runs and machines)",
    )
    return p.parse_args()


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                rows.append((int(row.get("phase") or 0), row["instruction"], row.get("input") or "", row["output"]))
            except (ValueError, KeyError) as e:
                sys.exit(f"{path}:{n}: not an instruction-table row ({e}); expected instruction, input, output, phase")
    if not rows:
        sys.exit(f"{path}: no rows")
    return rows


def load_tokenizer(model_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError):
        # A folder with only tokenizer.json (alinea's model.tiny) has no tokenizer_config.json to name a class.
        return PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))


def encode(tokenizer, rows, max_in, max_out):
    """Per phase, the tokenized examples: prompt and completion truncated separately, EOS after the completion."""
    eos = tokenizer.eos_token_id
    phases = {}
    for phase, instruction, extra, output in rows:
        prompt = instruction if not extra else f"{instruction}\n{extra}"
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][:max_in]
        c_ids = tokenizer(output, add_special_tokens=False)["input_ids"][:max_out]
        if eos is not None:
            c_ids = c_ids + [eos]
        phases.setdefault(phase, []).append(
            {"input_ids": p_ids + c_ids, "completion_mask": [0] * len(p_ids) + [1] * len(c_ids)}
        )
    return [phases[k] for k in sorted(phases)]


def total_steps(examples, args):
    """Optimiser steps of one phase, as the HF Trainer counts them."""
    per_epoch = math.ceil(math.ceil(examples / args.batch_size) / args.grad_accum)
    return math.ceil(per_epoch * args.epochs)


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(args.seed)
    rows = read_rows(args.data)
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    # A bare tokenizer.json names no special tokens: take them from the model's config, as alinea's loader does.
    for role in ("bos", "eos", "pad"):
        token_id = getattr(model.config, f"{role}_token_id", None)
        if getattr(tokenizer, f"{role}_token_id") is None and token_id is not None:
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=args.targets.split(","),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    print(f"trainable parameters: {trainable} of {total}", flush=True)
    phases = encode(tokenizer, rows, args.max_input_len, args.max_output_len)
    loss_rows = []
    step_base = 0
    scratch = os.environ.get("ALINEA_SCRATCH", ".")
    for phase, examples in enumerate(phases):
        config = SFTConfig(
            output_dir=os.path.join(scratch, f"trainer-{phase}"),
            num_train_epochs=args.epochs,
            learning_rate=args.lr,
            per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=args.grad_accum,
            # transformers 5 takes warm-up in steps; this is its former `warmup_ratio` rule (ceil of a fraction).
            warmup_steps=math.ceil(args.warmup_ratio * total_steps(len(examples), args)),
            lr_scheduler_type="linear",
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=args.seed,
            data_seed=args.seed,
            max_length=args.max_input_len + args.max_output_len + 1,
            completion_only_loss=True,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(examples),
            processing_class=tokenizer,
        )
        trainer.train()
        for entry in trainer.state.log_history:
            if "loss" in entry:
                loss_rows.append(
                    {
                        "step": step_base + int(entry["step"]),
                        "epoch": float(entry["epoch"]),
                        "phase": phase,
                        "loss": float(entry["loss"]),
                        "learning_rate": float(entry["learning_rate"]),
                    }
                )
        step_base += trainer.state.global_step
        print(f"phase {phase}: {len(examples)} examples, {trainer.state.global_step} steps", flush=True)
    # Under torchrun (several processes, one or more nodes: scripts/slurm-nodes.sh) every rank trained the same
    # replica and the loss above is already the mean over ranks; only the first writes the outputs.
    if int(os.environ.get("RANK", "0")) != 0:
        return
    # PEFT records the path the base was loaded from; inside a command stage that is a scratch directory, so the
    # adapter's bytes would depend on where the run happened (`--check-determinism` finds exactly this).
    base_name = args.base_model or os.path.basename(os.path.normpath(args.model))
    for config in model.peft_config.values():
        config.base_model_name_or_path = base_name
    # The model card (README.md) takes the base's name from the base model's config and its `name_or_path` (tags).
    model.get_base_model().config._name_or_path = base_name
    model.get_base_model().name_or_path = base_name
    model.save_pretrained(args.out)
    with open(args.loss, "w", encoding="utf-8") as f:
        for row in loss_rows:
            f.write(json.dumps(row) + "\n")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    print(f"final loss {loss_rows[-1]['loss']:.4f} after {step_base} steps on {world} process(es)", flush=True)


if __name__ == "__main__":
    main()
