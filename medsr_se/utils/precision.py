"""One rule for reduced-precision tensors: reductions and losses run in float32 at least (float64 stays float64).

And one check: bfloat16 on a CPU without native bfloat16 instructions is slower than float32
(:func:`slow_bf16_reason`); training (``train:precision bf16``, via :func:`medsr_se.utils.options.fix_options`) and
``medsr-infer --precision bf16`` warn once when that is the case (:func:`warn_slow_bf16`, logged).
"""

from __future__ import annotations

import logging
import warnings

import torch

logger = logging.getLogger(__name__)  # under the "medsr_se" logger: "warning: ..." on stderr, silenced by its level


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16 / bfloat16 / float32, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is of lower precision (an autocast output), else unchanged."""
    return tensor.to(accumulation_dtype(tensor.dtype))


# ------------------------------------------------------------------------------------- bfloat16 on CPUs without it
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute in bfloat16 (Cooper Lake, AMX)
_warned: set[str] = set()


def cpuinfo_value(*keys: str) -> str | None:
    """The value of the first line of /proc/cpuinfo whose key is one of ``keys`` (``"model name"``, ``"flags"``;
    ARM: ``"Features"``), or None where there is no such line or no /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (the ``flags`` line of /proc/cpuinfo; ARM: ``Features``); empty when unknown.
    Tests replace this function to play another CPU."""
    return set((cpuinfo_value("flags", "Features") or "").split())


def slow_bf16_reason(device: str | torch.device) -> str | None:
    """Why bfloat16 would be slower than float32 on ``device``, or None (CUDA, or a CPU with native bfloat16, or
    one whose flags cannot be read). Without ``avx512_bf16`` / ``amx_bf16`` a CPU emulates every bfloat16
    operation by converting to and from float32 (measured: 0.48x fp32 speed on an AVX-512 Xeon without BF16,
    0.03-0.05x on an AVX2 EPYC)."""
    if torch.device(device).type != "cpu":
        return None
    flags = cpu_flags()
    if not flags or flags & set(NATIVE_BF16_FLAGS):
        return None
    return (f"this CPU has no native bfloat16 ({' / '.join(NATIVE_BF16_FLAGS)} missing from its flags), so every "
            "bfloat16 operation is emulated through float32: expect it slower than fp32 (0.03-0.5x measured), "
            "use fp32 here")


def warn_slow_bf16(device: str | torch.device, what: str, emit: object = None) -> str | None:
    """One warning per process and ``what`` (``train:precision bf16``, ``--precision bf16``: the caller's name for
    the setting) when bfloat16 is slow on ``device`` (:func:`slow_bf16_reason`), logged by this module's logger (a
    command shows it through :func:`medsr_se.utils.logs.log_to_stderr`). Returns the message, or None when there is
    nothing to say (or it was said already). ``emit``: deprecated and ignored (it was a callback that printed the
    message instead of logging it)."""
    if emit is not None:
        warnings.warn("warn_slow_bf16(emit=...) is deprecated and ignored: the warning is logged (logger "
                      f"{logger.name})", DeprecationWarning, stacklevel=2)
    reason = slow_bf16_reason(device)
    if reason is None or what in _warned:
        return None
    _warned.add(what)
    message = f"{what}: {reason}"
    logger.warning("%s", message)
    return message


# ------------------------------------------------------------------------------------------ train:precision: auto
AUTO = "auto"


def native_bf16_cpu() -> str | None:
    """The first of :data:`NATIVE_BF16_FLAGS` this CPU has, or None."""
    flags = cpu_flags()
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


def resolve_auto_precision(on_gpu: bool) -> tuple[str, str]:
    """(``fp32`` or ``bf16``, why) for ``train:precision: auto``: bf16 autocast where the device computes in
    bfloat16 natively (a CUDA GPU that supports it; a CPU with ``avx512_bf16`` / ``amx_bf16``: a GAN iteration
    measured 1.79x fp32's on such an EPYC, BENCHMARKS.md section 7), else fp32 (without them bfloat16 is emulated
    and slower, :func:`slow_bf16_reason`)."""
    if on_gpu:
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU computes in bfloat16"
        return "fp32", "auto: this GPU has no bfloat16"
    flag = native_bf16_cpu()
    if flag is not None:
        return "bf16", f"auto: this CPU computes in bfloat16 ({flag})"
    return "fp32", f"auto: this CPU has no native bfloat16 ({' / '.join(NATIVE_BF16_FLAGS)})"
