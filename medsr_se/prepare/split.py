"""The train / test split of a preparation: by image, or by volume for CT / MRI (every slice of a volume on one
side), deterministic for a seed, or from the user's ``test_list``.

Errors name the parameter (``n_test=500: ...``, ``test_list ...``) and carry it (``error.parameter``): the command
shows its flag instead (:func:`medsr_se.errors.for_command`)."""

from __future__ import annotations

import random

from medsr_se.errors import OptionError


class PrepareError(OptionError):
    """A problem with the input or the options of a preparation; the message names the file or option."""


def make_split(stems: list[str], n_test: int, seed: int, test_list: list[str] | None,
               what: str = "images") -> dict[str, list[str]]:
    """Deterministic train/test split of sorted stems: ``test_list`` if given, else a seeded sample of n_test.
    Both sides must get at least one of ``what`` ('images', or 'volumes' for a CT/MRI source)."""
    stems = sorted(stems)
    if len(stems) < 2:
        raise PrepareError(f"a train/test split needs at least 2 {what}, the source has {len(stems)}: add more, "
                           "or prepare it together with others")
    if test_list is not None:
        unknown = sorted(set(test_list) - set(stems))
        if unknown:
            raise PrepareError(f"test_list names {what} that are not in the input: {', '.join(unknown[:10])}",
                               parameter="test_list")
        test = sorted(set(test_list))
        if not test or len(test) == len(stems):
            raise PrepareError(f"test_list: names {'no' if not test else f'all {len(stems)}'} {what}, which "
                               f"leaves no {'test' if not test else 'training'} {what}", parameter="test_list")
    else:
        if not 0 < n_test < len(stems):
            raise PrepareError(f"n_test={n_test}: must be between 1 and {len(stems) - 1} for {len(stems)} {what}",
                               parameter="n_test")
        test = sorted(random.Random(seed).sample(stems, n_test))
    test_set = set(test)
    return {"train": [s for s in stems if s not in test_set], "test": test}


def split_by_volume(slices: dict[str, list[str]], n_test: int, seed: int,
                    test_list: list[str] | None) -> dict[str, list[str]]:
    """:func:`make_split` over volume names (``n_test`` and ``test_list`` count volumes), expanded to slice stems,
    so that the slices of one volume (one patient) are never on both sides."""
    try:
        by_volume = make_split(list(slices), n_test, seed, test_list, "volumes")
    except PrepareError as error:
        if error.parameter != "n_test":
            raise
        raise PrepareError(f"{error} (for volumes, n_test and test_list count volumes: {len(slices)} found)",
                           parameter="n_test") from error
    return {side: sorted(stem for name in names for stem in slices[name]) for side, names in by_volume.items()}
