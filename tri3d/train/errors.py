"""Errors a training run raises on purpose (the CLI prints them as one line)."""
from __future__ import annotations


class TrainingStopped(RuntimeError):
    """The run stopped itself: e.g. too many steps in a row with non-finite losses or gradients."""
