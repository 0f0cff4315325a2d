"""BasicSR's option loader (``basicsr.utils.options.ordered_yaml``) is PyYAML's full ``Loader``: an option file
with a ``!!python/object/apply:os.system [...]`` tag runs the command while it is being read. Replaced by
:class:`medsr_se.utils.options.SafeOrderedLoader` (plain data only, order kept), so every BasicSR entry point that
reads option files (``parse_options`` of train.py and test.py) refuses such tags and runs nothing."""

from __future__ import annotations


def needed() -> bool:
    import yaml
    from basicsr.utils import options

    return not issubclass(options.ordered_yaml()[0], yaml.SafeLoader)


def apply() -> None:
    from basicsr.utils import options

    from medsr_se.utils.options import SafeOrderedLoader

    dumper = options.ordered_yaml()[1]

    def ordered_yaml():
        """BasicSR's (Loader, Dumper) pair, with a loader that builds plain data only."""
        return SafeOrderedLoader, dumper

    options.ordered_yaml = ordered_yaml
