"""Lineage audit: trace an image forward to the adapters and reports it fed, or an adapter back to its images.

``store`` opens the manifests in DuckDB (scanned, or through the ``lineage.duckdb`` index), ``query``
holds the joins, ``png`` reads and checks a PNG file, ``forward`` and ``reverse`` assemble the JSON
documents (their docstrings give the structure), ``render`` prints them, ``command`` is the CLI.
"""


class LineageError(Exception):
    """The target cannot be traced (no such file, id or hash); the message says what was looked for."""
