"""Formula neutralisation and HTML/JS escaping of submission text."""

from __future__ import annotations

import pandas as pd
import pytest

from cami_geo.render.escape import escape_html
from cami_geo.textsafe import neutralise_formula, write_csv


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "@SUM(A1)", "-2+3", "\t=1", "=cmd|'/C calc'!A0"])
def test_formulas_are_neutralised(text):
    assert neutralise_formula(text) == "'" + text


@pytest.mark.parametrize("value", ["-12", "+3.5", "-0,5", "Saiga", "", 7, -1.5, None])
def test_plain_values_untouched(value):
    assert neutralise_formula(value) == value


def test_write_csv_neutralises_text_cells_only(tmp_path):
    df = pd.DataFrame({"locality": ['=HYPERLINK("http://x")', "Betpak-Dala"], "n": [-3, 4]})
    write_csv(df, tmp_path / "x.csv")
    back = pd.read_csv(tmp_path / "x.csv")
    assert back.locality.tolist() == ['\'=HYPERLINK("http://x")', "Betpak-Dala"]
    assert back.n.tolist() == [-3, 4]


def test_escape_html_blocks_markup_and_template_literals():
    out = escape_html("<script>alert(1)</script> ${x} `y` \\ & \"q\" 'a'")
    for bad in ("<", ">", "${", "`", "\\", '"', "'"):
        assert bad not in out
    assert escape_html(float("nan")) == "" and escape_html(None) == ""


def test_escape_html_equals_a_one_pass_translation():
    """escape_html chains str.replace for speed; it must equal escaping each character once."""
    from hypothesis import given, strategies as st

    from cami_geo.render.escape import escape_html

    table = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                           "\\": "&#92;", "`": "&#96;", "$": "&#36;"})

    @given(st.text(alphabet=st.sampled_from(list("&<>\"'\\`$#;ax1 ") + ["雪", "ü"]), max_size=60))
    def check(text):
        assert escape_html(text) == text.translate(table)

    check()


def test_neutralise_frame_equals_the_cell_by_cell_map():
    """neutralise_frame only passes cells that start with a trigger to neutralise_formula;
    its CSV must equal that of mapping every text cell through it (object and Arrow text columns,
    missing values, numbers in object columns, numeric columns)."""
    from hypothesis import given, settings, strategies as st

    from cami_geo.textsafe import neutralise_frame

    cell = st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=True),
                     st.text(alphabet=st.sampled_from(list("=+-@\t\r1.,eE ax'")), max_size=6))
    text = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("=+-@\t1.,ax")), max_size=6))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(cell, min_size=0, max_size=8), st.lists(text, min_size=0, max_size=8))
    def check(mixed, texts):
        n = min(len(mixed), len(texts))
        df = pd.DataFrame({"mixed": pd.Series(mixed[:n], dtype=object),
                           "arrow": pd.Series(texts[:n], dtype="string[pyarrow]"),
                           "num": pd.Series(range(n), dtype="int64")})
        expected = df.copy()
        for col in ("mixed", "arrow"):
            expected[col] = df[col].map(neutralise_formula)
        # what write_csv writes (a column of missing values may keep its text dtype)
        assert neutralise_frame(df).to_csv(index=False) == expected.to_csv(index=False)

    check()
