"""Personal data in free text: find it and mask it before anything else sees the text.

Case descriptions carry what reporters type: phone numbers, email addresses, links and
names. :func:`scrub` replaces each with a placeholder (``[PHONE]``, ``[EMAIL]``,
``[URL]``, ``[NAME]``) in one vectorised pass of Polars regular expressions, so the text
can be clustered, shown as an example or exported without the people in it.

Names are found where the text marks them: after a title (``Dr.``, ``Mrs.``) or a cue
such as "my name is", "contact:" or "belongs to", as two or three capitalised words. A
name written with no such mark is not detectable this way and stays.
"""

from __future__ import annotations

import polars as pl

__all__ = ["MASKS", "mask_email_expr", "mask_name_expr", "scrub", "scrub_expr"]

#: Placeholders :func:`scrub` writes, by kind of personal data.
MASKS: dict[str, str] = {"url": "[URL]", "email": "[EMAIL]", "phone": "[PHONE]", "name": "[NAME]"}

_URL = r"(?i)\b(?:https?://|www\.)[^\s<>\"']+"
_EMAIL = r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"
# North American numbers in the usual shapes: (415) 555-1638, 415-555-1638, 415.555.1638,
# +1 415 555 1638; and longer international ones written with a leading +.
_PHONE = (
    r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"
    r"|\+\d{1,3}(?:[\s.-]?\d{2,4}){2,5}\b"
)
# A capitalised name word: Ana, O'Neil, McDonald, Mary-Jane.
_CAPITALISED = r"[A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_NAME = rf"{_CAPITALISED}(?:\s+{_CAPITALISED}){{1,2}}"
_TITLED = rf"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Doctor)\.?\s+{_CAPITALISED}(?:\s+{_CAPITALISED})?"
_CUES = r"(?i:my name is|name is|name was|named|contact:|belongs to|signed|this is|i am|i'm)"


def scrub_expr(text: pl.Expr) -> pl.Expr:
    """The expression that masks personal data in ``text`` (see :func:`scrub`).

    >>> df = pl.DataFrame({"d": ["Mail jo.doe@mail.example.com or call (415) 555-1638"]})
    >>> df.select(scrub_expr(pl.col("d")))["d"][0]
    'Mail [EMAIL] or call [PHONE]'
    """
    return (
        text.str.replace_all(_URL, MASKS["url"])
        .str.replace_all(_EMAIL, MASKS["email"])
        .str.replace_all(_PHONE, MASKS["phone"])
        .str.replace_all(_TITLED, MASKS["name"])
        .str.replace_all(rf"({_CUES})\s+{_NAME}", "${1} " + MASKS["name"])
    )


def scrub(texts: pl.Series) -> pl.Series:
    """Mask phone numbers, emails, links and detectable names in every text.

    Null stays null; the order and length of the series are kept.

    >>> s = pl.Series(["My name is Ana Lopez, phone +1 415 555 0101.",
    ...                "See https://x.example/p?id=3 and ask Dr. Eric Webb."])
    >>> scrub(s).to_list()
    ['My name is [NAME], phone [PHONE].', 'See [URL] and ask [NAME].']
    """
    return pl.select(scrub_expr(pl.lit(texts))).to_series().alias(texts.name)


def mask_name_expr(name: pl.Expr) -> pl.Expr:
    """A person's name cut to its initials, enough to tell two apart in a list.

    >>> pl.select(mask_name_expr(pl.lit("Ana María Lopez"))).item()
    'A. M. L.'
    """
    return (
        name.str.extract_all(r"\b\w")
        .list.eval(pl.element().str.to_uppercase() + ".")
        .list.join(" ")
    )


def mask_email_expr(email: pl.Expr) -> pl.Expr:
    """An email address with its mailbox hidden but for the first letter.

    >>> pl.select(mask_email_expr(pl.lit("ana.lopez@mail.example.com"))).item()
    'a•••@mail.example.com'
    """
    return email.str.replace(r"^(.)[^@]*@", "${1}•••@")
