"""PEFT LoRA parity fixture for alinea-bloom.

Builds a LoRA (r=4, alpha=8, two target modules) on the shared tiny-bloom model with PEFT, gives
lora_B non-zero values, saves the adapter with `save_pretrained` into peft-lora/, and records
logits (left-padded batch) and an LM loss into peft-lora/reference.json.

Run from this folder: python make_peft_fixture.py   (torch 2.15 CPU, transformers 5.23, peft 0.21)

The reverse direction: `python make_peft_fixture.py --check-rust DIR` loads an adapter written by
alinea (`cargo run -p alinea-bloom --example export_adapter -- DIR`) with `PeftModel.from_pretrained`
and prints the largest logit difference from alinea's own logits (6.2e-06 when last run).
"""
import json
import os
import sys

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import BloomForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "../../../../../shared/reference/tiny-bloom")
OUT = os.path.join(HERE, "peft-lora")

if len(sys.argv) == 3 and sys.argv[1] == "--check-rust":
    from peft import PeftModel
    d = sys.argv[2]
    m = PeftModel.from_pretrained(BloomForCausalLM.from_pretrained(BASE).eval(), d).eval()
    r = json.load(open(os.path.join(d, "alinea_logits.json")))
    ids, mask = torch.tensor(r["input_ids"]), torch.tensor(r["attention_mask"])
    with torch.no_grad():
        lo = m(input_ids=ids, attention_mask=mask).logits
    diff = ((lo - torch.tensor(r["logits_with_mask"])).abs() * mask[..., None]).max()
    print("max |logit diff| on real tokens:", float(diff))
    sys.exit(0)

torch.manual_seed(1)
base = BloomForCausalLM.from_pretrained(BASE).eval()
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query_key_value", "dense_4h_to_h"],
                 task_type="CAUSAL_LM")
m = get_peft_model(base, cfg).eval()
with torch.no_grad():
    for n, p in m.named_parameters():
        if "lora_B" in n:
            p.copy_(torch.randn_like(p) * 0.3)
m.save_pretrained(OUT)
# Keep the fixture free of machine paths and of PEFT's generated model card.
os.remove(os.path.join(OUT, "README.md"))
acfg = json.load(open(os.path.join(OUT, "adapter_config.json")))
acfg["base_model_name_or_path"] = "tiny-bloom"
json.dump(acfg, open(os.path.join(OUT, "adapter_config.json"), "w"), indent=2, sort_keys=True)
ids = torch.tensor([[5, 17, 300, 42, 999, 0, 7, 123], [1, 2, 3, 4, 5, 6, 7, 8]])
mask = torch.tensor([[1] * 8, [0, 0, 1, 1, 1, 1, 1, 1]])
with torch.no_grad():
    lo = m(input_ids=ids, attention_mask=mask).logits
    loss = m(input_ids=ids, labels=ids).loss
    merged = m.merge_and_unload()
    lo_merged = merged(input_ids=ids, attention_mask=mask).logits
# Padding positions are left out: their values depend on how the attention backend treats fully
# masked rows, which alinea does not need to reproduce.
real = [[[round(x, 6) for x in lo[b, t].tolist()] if mask[b, t] else None for t in range(8)] for b in range(2)]
json.dump({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
           "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "logits_with_mask": real,
           "lm_loss": float(loss), "max_merge_diff": float((lo - lo_merged).abs().max())},
          open(os.path.join(OUT, "reference.json"), "w"))
print("loss", float(loss), "merge diff", float((lo - lo_merged).abs().max()))
