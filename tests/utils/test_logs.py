"""A command's log_to_stderr: one line per record, at the verbosity given; Python warnings routed into it."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from medsr_se.utils import logs


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_python_warnings_are_one_line_and_third_party_ones_need_verbose():
    code = """
        import warnings
        from medsr_se.utils.logs import log_to_stderr, NORMAL, VERBOSE
        log_to_stderr(NORMAL)
        warnings.warn("hidden\\n  third-party   noise")
        log_to_stderr(VERBOSE)
        warnings.warn("shown\\n  on   one line")
    """
    done = _run(code)
    assert done.returncode == 0, done.stderr
    # Python's own format has file, line, category and source line
    assert done.stderr.splitlines() == ["shown on one line"]


def test_a_python_warning_is_a_debug_line_wherever_it_was_raised(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(logs.warnings, "showwarning", logs.warnings.showwarning)  # restored after the test
    try:
        logs.log_to_stderr(logs.NORMAL)
        logs.log_python_warning("attributed to\n our  line", UserWarning, logs.__file__, 1)
        assert capsys.readouterr().err == ""
        logs.log_to_stderr(logs.VERBOSE)
        logs.log_python_warning("attributed to\n our  line", UserWarning, logs.__file__, 1)
        assert capsys.readouterr().err.splitlines() == ["attributed to our line"]
    finally:
        logging.getLogger(logs.PACKAGE_LOGGER).setLevel(logging.NOTSET)
