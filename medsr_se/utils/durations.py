"""Wall-clock durations as a user writes them: ``240`` (seconds), ``90s``, ``3m``, ``1.5h``, ``1h30m``.

    parse_duration("3m")           -> 180.0
    parse_duration("1h30m")        -> 5400.0
    format_duration(5400)          -> "1 h 30 min"

A duration is one or more ``NUMBER[UNIT]`` parts (a plain decimal number, no exponent; unit ``s`` / ``sec``,
``m`` / ``min``, ``h``; a number alone is seconds; units in decreasing order, each once), more than 0 s and at most
:data:`LONGEST` seconds. Anything else is an :class:`~medsr_se.errors.OptionError` naming the parameter it was
given for (``time_budget=3x: ...``).
"""

from __future__ import annotations

import re

from medsr_se.errors import OptionError

UNITS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "sec": 1.0, "": 1.0}
LONGEST = 7 * 24 * 3600.0  # a week: a budget beyond it is a typo
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|min|m|sec|s|)\s*", re.IGNORECASE)
HOW = "give seconds (240) or numbers with units s, m, h (90s, 3m, 1h30m)"


def parse_duration(text: str, parameter: str = "duration") -> float:
    """``text`` in seconds (module docstring). :class:`OptionError` naming ``parameter`` for anything else: not a
    duration, 0 (or less), longer than :data:`LONGEST`."""
    shown = " ".join(str(text).split()) or "''"
    spelled = str(text).strip()
    parts = list(_PART.finditer(spelled))
    units = [UNITS[part.group(2).lower()] for part in parts]
    spelled_out = "".join(part.group(0) for part in parts) == spelled and bool(parts)
    bare_number_alone = all(part.group(2) for part in parts) or len(parts) == 1
    if not (spelled_out and bare_number_alone and units == sorted(set(units), reverse=True)):
        raise OptionError(f"{parameter}={shown}: not a duration; {HOW}", parameter=parameter)
    seconds = sum(float(part.group(1)) * unit for part, unit in zip(parts, units))
    if seconds <= 0:
        raise OptionError(f"{parameter}={shown}: must be more than 0 s", parameter=parameter)
    if seconds > LONGEST:
        raise OptionError(f"{parameter}={shown}: more than a week ({LONGEST:.0f} s); {HOW}", parameter=parameter)
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` for a note: ``45 s``, ``4 min``, ``3 min 20 s``, ``1 h 30 min`` (whole seconds)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes) + [f"{secs} s"] * bool(secs)
    return " ".join(parts[:2]) or "0 s"


def process_age_s() -> float:
    """Seconds since this process started (Python's start-up and imports included), from Linux's ``/proc``; 0 where
    that cannot be read."""
    import os
    from pathlib import Path

    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
