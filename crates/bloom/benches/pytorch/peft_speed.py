"""PyTorch + PEFT counterpart of benches/bloom_speed.rs (same configs, data and batch shapes).

Random BLOOM of the bench's size, byte-level BPE trained on the same 64 Flores-200 MTInstruct rows,
LoRA r8/a32/dropout 0.1 on query_key_value, AdamW lr 2e-4, batch 8 length-grouped, loss on output
tokens only, one epoch; then greedy generation (KV cache, left padding) of 64 new tokens for 16
prompts in batches of 8. Usage: python peft_speed.py [tiny|small|medium] [threads]
"""
import os
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import BloomConfig, BloomForCausalLM

size = sys.argv[1] if len(sys.argv) > 1 else "small"
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
hidden, layers, heads, vocab = {"tiny": (64, 2, 4, 1000), "small": (128, 4, 4, 2000), "medium": (512, 8, 8, 8000)}[size]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../../shared/datasets/flores200/flores200_dataset/dev")
en = open(f"{root}/eng_Latn.dev").read().splitlines()[:64]
af = open(f"{root}/afr_Latn.dev").read().splitlines()[:64]
rows = [(f"Translate from English to Afrikaans.\nEnglish: {e}\nAfrikaans:", f" {a}") for e, a in zip(en, af)]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator([a + b for a, b in rows], trainers.BpeTrainer(
    vocab_size=vocab, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
torch.manual_seed(1)
cfg = BloomConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, n_layer=layers, n_head=heads,
                  initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=3)
model = get_peft_model(BloomForCausalLM(cfg), LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1,
                                                          target_modules=["query_key_value"], task_type="CAUSAL_LM"))
ex = []
for i, o in rows:
    a, b = tok.encode(i).ids, tok.encode(o).ids + [2]
    ex.append((a + b, len(a)))
tokens = sum(len(x) for x, _ in ex)
order = sorted(range(len(ex)), key=lambda k: -len(ex[k][0]))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.0)
model.train()
t0 = time.time()
for s in range(0, len(order), 8):
    batch = [ex[k] for k in order[s:s + 8]]
    t = max(len(x) for x, _ in batch)
    ids = torch.tensor([x + [3] * (t - len(x)) for x, _ in batch])
    mask = torch.tensor([[1] * len(x) + [0] * (t - len(x)) for x, _ in batch])
    labels = torch.tensor([[-100] * n + x[n:] + [-100] * (t - len(x)) for x, n in batch])
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
train_s = time.time() - t0
model.eval()
prompts = [x[:n] for x, n in ex[:16]]
order = sorted(range(16), key=lambda k: -len(prompts[k]))
t0 = time.time()
new = 0
with torch.no_grad():
    for s in range(0, 16, 8):
        b = [prompts[k] for k in order[s:s + 8]]
        t = max(len(p) for p in b)
        ids = torch.tensor([[3] * (t - len(p)) + p for p in b])
        mask = torch.tensor([[0] * (t - len(p)) + [1] * len(p) for p in b])
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=64, min_new_tokens=64,
                             do_sample=False, num_beams=1, pad_token_id=3, eos_token_id=None)
        new += (out.shape[1] - t) * len(b)
gen_s = time.time() - t0
print(f"pytorch {torch.__version__} threads={torch.get_num_threads()} config={size} vocab={cfg.vocab_size}")
print(f"train: {len(ex)} examples, {tokens} tokens in {train_s:.2f}s -> {tokens / train_s:.0f} tokens/s")
print(f"generate: {new} new tokens in {gen_s:.2f}s -> {new / gen_s:.0f} new tokens/s")
