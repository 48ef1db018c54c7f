"""The error for an input file that cannot be read at all."""

from __future__ import annotations


class InputFileError(ValueError):
    """The whole input file cannot be read (not a row-level problem)."""
