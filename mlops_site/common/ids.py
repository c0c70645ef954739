"""Reading a database id out of text that came from a client."""


def is_id_text(text: object, *, max_digits: int = 18) -> bool:
    """True for ASCII digits only, at most `max_digits` (fits a 64-bit key).

    `str.isdigit()` alone admits "²" and other Unicode digits that `int()` refuses (a 500 that
    schemathesis found in two filters), so every id read from a query goes through here.
    """
    text = str(text)
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
