#!/bin/sh
# Runs a command once on every node of the Slurm allocation it is in (one task per node, through srun), with the
# rendezvous variables that distributed launchers expect: MASTER_ADDR and MASTER_PORT (the first node of the
# allocation), NNODES, NODE_RANK, NPROC_PER_NODE (the GPUs Slurm gave each node, else 1), and the same as
# torchrun's own PET_* variables, so that
#   scripts/slurm-nodes.sh torchrun train.py …
# needs no other flags. For a `command` stage with `resources = { nodes = N, gpus_per_node = G }` under
# `--executor slurm` (see pipelines/examples/peft-lora-multinode.toml). accelerate launch takes them as
#   scripts/slurm-nodes.sh sh -c 'accelerate launch --num_machines $NNODES --machine_rank $NODE_RANK \
#     --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT train.py …'
# A task that fails ends the others (--kill-on-bad-exit), and the stage fails with its exit status.
set -eu
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "slurm-nodes.sh: not inside a Slurm allocation (SLURM_JOB_ID is unset): run the stage with --executor slurm, local = false and resources.nodes" >&2
  exit 2
fi
[ "$#" -gt 0 ] || { echo "usage: slurm-nodes.sh COMMAND [ARG…]" >&2; exit 2; }
nodes=${SLURM_JOB_NUM_NODES:-1}
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# The first node's address as Slurm knows it (NodeAddr): a node name need not resolve through DNS.
addr=$(scontrol show node "$first" -o | tr ' ' '\n' | sed -n 's/^NodeAddr=//p')
MASTER_ADDR=${addr:-$first}
# A port per job, so two jobs sharing a node do not collide.
MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
NNODES=$nodes
# One process per GPU Slurm gave each node (gpus_per_node), one on a CPU-only allocation.
NPROC_PER_NODE=${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
PET_MASTER_ADDR=$MASTER_ADDR PET_MASTER_PORT=$MASTER_PORT PET_NNODES=$nodes PET_NPROC_PER_NODE=$NPROC_PER_NODE
export MASTER_ADDR MASTER_PORT NNODES NPROC_PER_NODE PET_MASTER_ADDR PET_MASTER_PORT PET_NNODES PET_NPROC_PER_NODE
exec srun --nodes="$nodes" --ntasks="$nodes" --ntasks-per-node=1 --kill-on-bad-exit=1 \
  sh -c 'NODE_RANK=$SLURM_NODEID PET_NODE_RANK=$SLURM_NODEID; export NODE_RANK PET_NODE_RANK; exec "$@"' \
  slurm-nodes "$@"
