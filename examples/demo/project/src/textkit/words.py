"""Counting and capitalising words."""


def word_count(text: str) -> int:
    """Number of whitespace-separated words in `text`."""
    return len(text.split())


def title_case(text: str) -> str:
    """Capitalise the first letter of every word, leaving the rest as written."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split())
