"""Train the tiny byte-level BPE tokenizer fixture `tiny-bpe-tokenizer.json`.

A stand-in for BLOOMZ's byte-level BPE (vocabulary 250,880, far too large to ship): same pre-tokenizer and
decoder family, trained on the first 300 lines of FLORES-200 dev for eng_Latn, afr_Latn and bel_Cyrl.
Run: python3 -m venv v && v/bin/pip install tokenizers==0.21.4 && v/bin/python make_tokenizer.py
"""
import pathlib
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

root = pathlib.Path(__file__).resolve().parents[5] / "shared/datasets/flores200/flores200_dataset/dev"
lines = []
for code in ["eng_Latn", "afr_Latn", "bel_Cyrl"]:
    lines += (root / f"{code}.dev").read_text(encoding="utf-8").splitlines()[:300]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(lines, trainer)
tok.save(str(pathlib.Path(__file__).parent / "tiny-bpe-tokenizer.json"))
print(tok.encode("Translate from English to Afrikaans.").tokens)
