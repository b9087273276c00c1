#!/usr/bin/env bash
# The README's GPU figures, on a machine with one or more CUDA GPUs and lamae importable.
#
#   bash benchmarks/gpu.sh throughput [DIR]   # eager bf16: tiny/small/base at 250 and 500 Hz,
#                                             # + base at 500 Hz with each attention kernel
#   bash benchmarks/gpu.sh compile [DIR]      # tiny/small/base at 500 Hz under torch.compile
#   bash benchmarks/gpu.sh pretrain [DIR]     # synth -> prepare (500 Hz) -> `lamae pretrain`
#                                             # on the GPU: one process, two (torchrun),
#                                             # one under torch.compile
#
# Each stage prints its tables and keeps them in DIR (default runs/gpu-figures, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:?"which stage: throughput, compile or pretrain"}
dir=${2:-runs/gpu-figures}
mkdir -p "$dir"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$dir/gpu.txt"

case "$stage" in
throughput)
  "$py" benchmarks/throughput.py --sizes tiny small base --rates 250 500 --steps 10 --profile \
    | tee "$dir/throughput.txt"
  for kernel in flash efficient math; do  # math (unfused) may not fit: the others go on
    "$py" benchmarks/throughput.py --sizes base --rates 500 --steps 10 --attention "$kernel" \
      | tee "$dir/attention-$kernel.txt" || echo "attention $kernel: failed (see above)"
  done
  ;;
compile)
  "$py" benchmarks/throughput.py --sizes tiny small base --rates 500 --steps 10 --compile \
    | tee "$dir/compile.txt"
  ;;
pretrain)
  work=${TMPDIR:-/tmp}/lamae-gpu
  records=${RECORDS:-4000}
  workers=$(( $(nproc) > 16 ? 16 : $(nproc) ))
  "$py" -m lamae.cli synth "$work/data" --records "$records" --workers "$workers"
  "$py" -m lamae.cli prepare "$work/data" --format mimic --out "$work/store" --fs 500 --workers "$workers"
  common=(--store "$work/store" --size small --batch-size 256 --device cuda --workers 8
          --checkpoint-every 1000 --set log_every=20)
  time "$py" -m lamae.cli pretrain "${common[@]}" --out "$work/one" --steps ${STEPS:-200}
  cp "$work/one/loss.csv" "$dir/one-loss.csv"
  # two processes: one per GPU where there are two, sharing one GPU (through gloo) where not
  "$py" -m torch.distributed.run --standalone --nproc_per_node 2 -m lamae.cli pretrain "${common[@]}" \
    --out "$work/two" --steps ${STEPS_TWO:-60}
  cp "$work/two/loss.csv" "$dir/two-loss.csv"
  # one process again, under torch.compile (compilation takes the first minute or two)
  "$py" -m lamae.cli pretrain "${common[@]}" --out "$work/compiled" --steps ${STEPS:-200} --compile
  cp "$work/compiled/loss.csv" "$dir/compiled-loss.csv"
  ;;
*)
  echo "unknown stage $stage: throughput, compile or pretrain" >&2
  exit 2
  ;;
esac
