"""tribes — conversation-first tribe matching."""

__version__ = "0.1.0"
