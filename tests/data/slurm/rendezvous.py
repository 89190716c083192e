#!/usr/bin/env python3
"""A two-node rendezvous with Python's standard library, as torch.distributed's TCP store does it: the rank-0 task
listens on MASTER_ADDR:MASTER_PORT, every other rank connects and sends its host name and a number, rank 0 sums
them and writes one row per rank (JSON Lines). Run once per node by scripts/slurm-nodes.sh; exercises what a
multi-node launcher needs from the allocation (one task per node, the first node reachable from the others)."""

import argparse
import json
import os
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rank, world = int(os.environ["NODE_RANK"]), int(os.environ["NNODES"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    me = {"rank": rank, "host": socket.gethostname(), "value": 10 ** rank}
    if rank == 0:
        server = socket.create_server((addr, port))
        server.settimeout(60)
        rows = [me]
        for _ in range(world - 1):
            conn, _ = server.accept()
            with conn, conn.makefile("r") as f:
                rows.append(json.loads(f.readline()))
        rows.sort(key=lambda r: r["rank"])
        total = sum(r["value"] for r in rows)
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps({**r, "world": world, "total": total}) + "\n")
        return
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection((addr, port), timeout=5) as s:
                s.sendall((json.dumps(me) + "\n").encode())
            return
        except OSError as e:
            if time.time() > deadline:
                sys.exit(f"rank {rank}: cannot reach rank 0 at {addr}:{port}: {e}")
            time.sleep(0.2)


if __name__ == "__main__":
    main()
