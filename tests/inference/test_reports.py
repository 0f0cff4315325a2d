"""A folder run's log lines (medsr_se.inference.reports): named after the file they are about, or held back while
a volume's slices go through the network; only the handlers log_to_stderr installs are shaped."""

from __future__ import annotations

import logging

from medsr_se.inference.reports import held_back, named
from medsr_se.utils.logs import log_to_stderr

LIBRARY = logging.getLogger("medsr_se.inference.upscale")


def test_named_prefixes_each_line_once(capsys):
    log_to_stderr()
    with named("scan/a.png"):
        LIBRARY.warning("a gray image through a colour model")
        LIBRARY.info("scan/a.png: already named")
    LIBRARY.warning("after")
    assert capsys.readouterr().err.splitlines() == ["warning: scan/a.png: a gray image through a colour model",
                                                    "note: scan/a.png: already named",
                                                    "warning: after"]


def test_held_back_drops_notes_and_warnings_not_errors(capsys):
    log_to_stderr()
    with held_back():
        LIBRARY.warning("12 of 400 values lie outside the window")
        LIBRARY.info("a note")
        LIBRARY.error("an error")
    LIBRARY.warning("the volume's one warning")
    assert capsys.readouterr().err.splitlines() == ["error: an error", "warning: the volume's one warning"]


def test_without_a_handler_records_pass_as_they_are(caplog):
    logger = logging.getLogger("medsr_se")
    saved = logger.handlers[:]
    logger.handlers = []
    try:
        with caplog.at_level(logging.WARNING, logger="medsr_se"), named("a.png"):
            LIBRARY.warning("plain")
    finally:
        logger.handlers = saved
    assert [record.getMessage() for record in caplog.records] == ["plain"]
