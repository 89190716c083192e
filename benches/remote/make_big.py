# Helper of benches/remote/run.sh (needs `pip install blake3`).
# Builds a local alinea store holding one 1 GiB blob under a real-looking record and a ref `big`, from a record
# copied out of a real run (so the record format is the store's own).
import json, os, sys, glob, hashlib
from blake3 import blake3
store, template_store, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = json.load(open(sorted(glob.glob(f"{template_store}/actions/*/*.json"))[0]))
os.makedirs(f"{store}/tmp", exist_ok=True)
h = blake3(); chunk = os.urandom(1 << 20)
tmp = f"{store}/tmp/big"
with open(tmp, "wb") as f:
    for i in range(size >> 20):
        c = bytes([i & 255]) + chunk[1:]
        h.update(c); f.write(c)
d = h.hexdigest()
os.makedirs(f"{store}/objects/{d[:2]}", exist_ok=True)
os.rename(tmp, f"{store}/objects/{d[:2]}/{d}")
key = blake3(b"bench-big-" + d.encode()).hexdigest()
rec["key"] = key; rec["stage"] = "big"
rec["outputs"] = [{"name": "big", "digest": d, "kind": "blob", "bytes": size, "rows": None}]
os.makedirs(f"{store}/actions/{key[:2]}", exist_ok=True)
json.dump(rec, open(f"{store}/actions/{key[:2]}/{key}.json", "w"))
os.makedirs(f"{store}/refs", exist_ok=True)
json.dump({"file": "bench.toml", "stages": {"big": {"kind": rec["components"]["kind"], "key": key}}}, open(f"{store}/refs/big.json", "w"))
open(f"{store}/refs/HEAD", "w").write("big")
print(d)
