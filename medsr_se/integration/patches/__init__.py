"""One module per change to BasicSR, each with ``needed()`` (is the upstream behaviour still there?) and
``apply()`` (patch it). :mod:`medsr_se.integration.fixes` holds the table that applies each once."""
