"""Small text helpers."""

from textkit.words import title_case, word_count

__all__ = ["title_case", "word_count"]
