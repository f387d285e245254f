"""The one escaping function for submission text that lands in HTML or JavaScript.

folium 0.20 inserts popup and tooltip strings as raw HTML inside JavaScript template
literals, so ``<``, ``&`` and quotes must become entities and backslash, backtick and ``$``
must not reach the template literal as such. Every piece of text from a submission passes
through :func:`escape_html` before it reaches a map, a report or a validation page.
"""

from __future__ import annotations

import math
from typing import Any

_TABLE = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
    "\\": "&#92;", "`": "&#96;", "$": "&#36;",
})


def escape_html(value: Any) -> str:
    """Text safe in HTML element content, attribute values and JS template literals.

    >>> escape_html('<img src=x onerror=alert(1)> ${1+1} `x` \\\\')
    '&lt;img src=x onerror=alert(1)&gt; &#36;{1+1} &#96;x&#96; &#92;'
    >>> escape_html(None)
    ''
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).translate(_TABLE)
