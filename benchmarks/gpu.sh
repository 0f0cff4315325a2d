#!/usr/bin/env bash
# One lent GPU machine, a few minutes: the CUDA smoke suite, the CPU DDP test on the GPU host, and the GPU tables of
# mixed precision. Everything lands in benchmarks/results/ (printed too); copy the numbers into BENCHMARKS.md with the
# card's name. Run from the repository root of an installed checkout: bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_device.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

echo "== CUDA smoke suite (pytest -m cuda)"
MEDSR_CUDA_REPORT="$out/cuda_smoke.json" python -m pytest -q -m cuda tests/cuda 2>&1 | tee "$out/cuda_smoke.log" \
    || status=1
echo "== the CPU DDP test on a GPU host (gloo must be chosen for num_gpu: 0)"
python -m pytest -q tests/test_training_runs.py::test_ddp_two_processes_on_cpu 2>&1 | tee -a "$out/cuda_smoke.log" \
    || status=1
echo "== GPU tables: G step, GAN iteration, quality, inference in fp32 / bf16 / fp16"
python -m benchmarks.precision --device cuda --threads 16 --out "$out/precision_cuda.json" 2>&1 \
    | tee "$out/precision_cuda.log" || status=1
cat "$out/cuda_smoke.json" 2>/dev/null
exit $status
