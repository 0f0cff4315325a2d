"""medsr_se.checkpoint_format.quietly: the libraries' warnings around loading and building a network go to the
debug log; a warning raised by medsr_se's own code (a deprecation) is not silenced with them."""

from __future__ import annotations

import logging
import warnings

import pytest

from medsr_se import checkpoint_format


def test_third_party_warnings_are_logged_at_debug_and_ours_are_issued_again(tmp_path, caplog):
    theirs = str(tmp_path / "torch" / "serialization.py")  # where torch.load's pickle-protocol note comes from

    def run() -> int:
        warnings.warn_explicit("Detected pickle protocol 4", UserWarning, theirs, 10)
        warnings.warn_explicit("old_name is deprecated", DeprecationWarning, checkpoint_format.__file__, 20)
        return 7

    with caplog.at_level(logging.DEBUG, logger="medsr_se.checkpoint_format"), \
            pytest.warns(DeprecationWarning, match="old_name is deprecated") as raised:
        assert checkpoint_format.quietly(run) == 7
    assert [str(warning.message) for warning in raised] == ["old_name is deprecated"]  # torch's is not raised
    assert [(record.levelno, record.getMessage()) for record in caplog.records
            if record.name == "medsr_se.checkpoint_format"] == [(logging.DEBUG,
                                                                  "UserWarning: Detected pickle protocol 4")]
