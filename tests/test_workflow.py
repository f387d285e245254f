"""cami_geo.workflow helpers used by the Snakefile."""

from __future__ import annotations

from cami_geo.workflow import larger_first


def test_larger_first_ranks_jobs_by_their_partition_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "CHN.gpkg").write_bytes(b"x" * 3_000_000)
    (tmp_path / "p" / "ARM.gpkg").write_bytes(b"x" * 40_000)
    priority = larger_first("p/{iso3}.gpkg")
    chn, arm, missing = (priority({"iso3": k}) for k in ("CHN", "ARM", "XXX"))
    assert chn == 3.0 and arm == 0.04 and missing == 0.0
    assert chn > arm > missing
