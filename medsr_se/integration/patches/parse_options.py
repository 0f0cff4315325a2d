"""BasicSR's ``parse_options`` (the one of ``basicsr.utils.options``, also bound in ``basicsr.train`` and
``basicsr.test``), wrapped once, so every entry point reads option files the same way: ``python -m
medsr_se.train``, ``medsr-selfsr`` and BasicSR's own ``train.py`` / ``test.py`` with the autoload hook.

Before BasicSR parses ``sys.argv``:
  * ``--local-rank=N`` (torch >= 2 launchers) becomes BasicSR's ``--local_rank`` spelling;
  * a recipe name after ``-opt`` (``x4``, ``baselines/edsr_x8``) becomes its path;
  * the option file is read safely (plain YAML data only): a bad one is an ``OptionFileError`` naming it.
After: :func:`medsr_se.utils.options.fix_options` (``persistent_workers`` off where a loader has no workers, the
slow-bfloat16 warning), then the checks a pipeline asked for with :func:`checks` (the training options' dataset
folders, scale and patch size for ``medsr-train``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

MARK = "medsr_se_parse_options"  # attribute on the wrapper: BasicSR's parse_options is wrapped once
_checks: list[Callable[[dict], None]] = []


def normalise_local_rank_argv(argv: list[str]) -> list[str]:
    """``--local-rank=3`` / ``--local-rank 3`` (torch >= 2 launchers) -> BasicSR's ``--local_rank`` spelling."""
    return [("--local_rank" + arg[len("--local-rank"):]) if arg.startswith("--local-rank") else arg for arg in argv]


@contextlib.contextmanager
def checks(*extra: Callable[[dict], None] | None) -> Iterator[None]:
    """While inside, the wrapped ``parse_options`` also runs ``extra`` on the parsed options (None: nothing)."""
    added = [check for check in extra if check is not None]
    _checks.extend(added)
    try:
        yield
    finally:
        for check in added:
            _checks.remove(check)


def wrap(upstream: Callable) -> Callable:
    from medsr_se.utils.options import fix_options, load_yaml, option_file_argument, resolve_option_argument

    def parse_options(root_path: str, is_train: bool = True):
        """BasicSR's parse_options with medsr-se's argument spellings, safe reading, fix-ups and checks."""
        sys.argv[:] = resolve_option_argument(normalise_local_rank_argv(sys.argv))
        option_file = option_file_argument(sys.argv)
        if option_file is not None:
            load_yaml(option_file)  # OptionFileError naming the file, before BasicSR touches it
        opt, args = upstream(root_path, is_train)
        opt = fix_options(opt)
        for check in list(_checks):
            check(opt)
        return opt, args

    setattr(parse_options, MARK, True)
    return parse_options


def needed() -> bool:
    from basicsr.utils import options

    return not getattr(options.parse_options, MARK, False)


def apply() -> None:
    import basicsr.test
    import basicsr.train
    from basicsr.utils import options

    wrapped = wrap(options.parse_options)
    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = wrapped
