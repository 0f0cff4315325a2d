"""medsr-selfsr's training speed under recipe variants, one after the other on the same machine: iterations per
second of the training phase (the report's ``seconds.training``) and the application's seconds, on one thick-slice
configuration of the MNI T1 (the one of ``python -m benchmarks.throughplane``).

    python -m benchmarks.selfsr_speed --iterations 200 --out R.json         # every variant, 2 rounds in turn
    python -m benchmarks.selfsr_speed --quick --out /tmp/speed.json         # seconds: a check of the script

Variants (``--variants``; each a change to ``options/selfsr.yml``):

    recipe      the shipped recipe as it is
    workers-1   datasets:train:num_worker_per_gpu 1 (the recipe's is 2: on 2 cores its loader processes compete
                with the training's threads)
    workers-0   0 (the batch drawn in the training process, between steps)
    fp32        train:precision fp32 (the recipe's is auto: bf16 autocast where the CPU computes in bfloat16)
    bf16        train:precision bf16 (on a CPU without avx512_bf16 / amx_bf16: emulated, slower than fp32)

Each run is the whole ``medsr-selfsr`` command in its own process, ``--iterations N``, the same seed; the rounds take
turns (recipe, workers-1, workers-0, recipe, ...) so that drift on the machine hits all alike. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.lib import head_cases as cases
from benchmarks.lib.reports import write_report

REPO_ROOT = Path(__file__).resolve().parents[1]  # on the PYTHONPATH of medsr-selfsr's process: this checkout's medsr_se

WORKERS = {"num_worker_per_gpu": 0, "persistent_workers": False}
VARIANTS = {
    "recipe": {},
    "workers-1": {"datasets": {"train": {"num_worker_per_gpu": 1}}},
    "workers-0": {"datasets": {"train": WORKERS}},
    "fp32": {"train": {"precision": "fp32"}},
    "bf16": {"train": {"precision": "bf16"}},
}
QUICK = {"network_g": {"num_feat": 8, "num_block": 1, "reduction": 4},
         "datasets": {"train": {"batch_size_per_gpu": 4, "gt_size": 24}}}


def run_variant(case: cases.Case, overrides: dict, iterations: int, work: Path, name: str) -> dict:
    """One medsr-selfsr run of ``case`` with the recipe changed by ``overrides``: its report's seconds and
    iterations."""
    from medsr_se.utils.options import deep_update, derive, dump_yaml

    recipe = dump_yaml(derive("selfsr", deep_update({"manual_seed": 0}, overrides)), work / f"recipe_{name}.yml")
    out = work / f"out_{name}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                                     str(REPO_ROOT)])))
    command = [sys.executable, "-m", "medsr_se.cli.selfsr", "-i", str(case.path), "-o", str(out), "-opt", str(recipe),
               "--scale", str(case.config.r), "--iterations", str(iterations), "-q"]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"medsr-selfsr failed ({name}):\n{run.stderr[-3000:]}")
    report = json.loads(next(out.glob("*_report.json")).read_text())
    seconds = report["seconds"]
    return {"variant": name, "precision": report["network"]["training_precision"],
            "iterations": report["network"]["iterations"], "training_s": seconds["training"],
            "application_s": seconds["application"], "total_s": seconds["total"],
            "iterations_per_s": report["network"]["iterations"] / seconds["training"]}


def summary(runs: list[dict]) -> dict[str, dict]:
    """Median over rounds per variant."""
    names = list(dict.fromkeys(run["variant"] for run in runs))
    return {name: {key: statistics.median(run[key] for run in runs if run["variant"] == name)
                   for key in ("iterations_per_s", "training_s", "application_s", "total_s")} for name in names}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)[:3])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="anatomical.nii, a tiny network, 4 iterations, 1 round")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.rounds < 1:
        parser.error("--iterations and --rounds: at least 1")
    if args.quick:
        args.iterations, args.rounds = 4, 1
    return args


def main(argv: list[str] | None = None) -> int:
    from medsr_se.utils.options import deep_update

    args = parse_args(argv)
    try:
        gt = cases.load_ground_truth("anatomical" if args.quick else "mni", True)
    except cases.UsageError as error:  # no nilearn (the MNI T1's package), or not the volume expected
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        case = cases.make_case(gt, cases.Config(4, 2, "nogap", 0.0), work, 0)
        for round_index in range(args.rounds):
            for name in args.variants:
                overrides = deep_update(json.loads(json.dumps(VARIANTS[name])), QUICK) if args.quick else \
                    VARIANTS[name]
                result = run_variant(case, overrides, args.iterations, work, f"{name}_{round_index}")
                result["variant"] = name
                print(json.dumps(result), flush=True)
                runs.append(result)
    report = write_report("selfsr_speed", {"volume": "anatomical" if args.quick else "mni", "config": case.config.name,
                                           "iterations": args.iterations, "rounds": args.rounds, "runs": runs,
                                           "median": summary(runs), "cpu_count": os.cpu_count()}, args.out)
    print("| variant | it/s (training) | training s | application s | total s |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in report["median"].items():
        print(f"| {name} | {values['iterations_per_s']:.2f} | {values['training_s']:.1f} | "
              f"{values['application_s']:.1f} | {values['total_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
