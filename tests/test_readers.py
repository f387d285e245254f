"""Readers: encodings, delimiters, title rows, decimal commas, DMS, XLSX, vector files,
zipped Shapefiles, GBIF downloads (DwC-A and simple) and SMART exports."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from cami_geo.errors import InputError
from cami_geo.io.aliases import canonical_columns
from cami_geo.io.archives import safe_extract
from cami_geo.io.coords import crs_from_text, parse_degrees, parse_dms, to_wgs84
from cami_geo.io.dwca import read_dwca
from cami_geo.io.manifest import kind_from_name, read_manifest
from cami_geo.io.smart import is_smart, split_smart
from cami_geo.io.tables import read_csv, read_xlsx
from cami_geo.io.vector import read_vector, read_zipped_shapefile

ROWS = [["Сайгак татарский", "48,1234", "66,5678", "Степь Бетпак-Дала"],
        ["Ирбис", "42,5", "77,25", "Заилийский Алатау"]]


def _csv_text(delim: str, title: bool = False) -> str:
    lines = []
    if title:
        lines += [f"Учёт 2025{delim}{delim}{delim}", f"{delim}{delim}{delim}"]
    lines.append(delim.join(["вид", "широта", "долгота", "местность"]))
    lines += [delim.join(r) for r in ROWS]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251", "utf-16", "utf-16-le"])
@pytest.mark.parametrize("delim", [";", "\t", "|"])
def test_csv_any_encoding_and_delimiter(tmp_path, encoding, delim):
    p = tmp_path / "t.csv"
    p.write_bytes(_csv_text(delim).encode(encoding))
    t = read_csv(p)
    assert list(t.frame.columns) == ["вид", "широта", "долгота", "местность"]
    assert t.frame.iloc[0].tolist() == ROWS[0]
    assert t.rows.tolist() == [2, 3]
    assert t.delimiter == delim


def test_cp1252_western_text(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes("species,locality,lat,lon\nUncia uncia,Región Ñuble café,42.5,77.25\n".encode("cp1252"))
    assert read_csv(p).frame.loc[0, "locality"] == "Región Ñuble café"


def test_title_rows_count_in_row_numbers(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(_csv_text(";", title=True).encode("utf-8"))
    t = read_csv(p)
    assert t.header_row == 3 and t.rows.tolist() == [4, 5]
    assert t.frame.loc[1, "местность"] == "Заилийский Алатау"


def test_blank_rows_keep_numbering_and_ragged_rows_are_noted(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,c\n1,2,3\n\n4,5,6,7\n8,9\n", encoding="utf-8")
    t = read_csv(p)
    assert t.rows.tolist() == [2, 4, 5]
    assert t.ragged == {4: 4, 5: 2}
    assert t.frame.loc[2].tolist() == ["8", "9", ""]


def test_quoted_delimiters_and_newlines(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('species,notes,lat\n"Uncia uncia","seen, then lost",42.5\n', encoding="utf-8")
    assert read_csv(p).frame.loc[0, "notes"] == "seen, then lost"


def test_xlsx_named_sheet_and_title_rows(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "readme"
    wb.active["A1"] = "read me"
    ws = wb.create_sheet("records")
    ws.append(["Snow leopard camera traps"])
    ws.append([])
    ws.append(["species", "lat", "lon", "date"])
    import datetime as dt

    ws.append(["Uncia uncia", 42.51234, 77.25, dt.datetime(2024, 3, 1)])
    ws.append([None, None, None, None])
    ws.append(["Uncia uncia", 42.6, 77.3, "01.03.2024"])
    p = tmp_path / "w.xlsx"
    wb.save(p)
    t = read_xlsx(p)  # the first sheet holds one cell only, so 'records' is the table
    assert t.header_row == 3 and t.rows.tolist() == [4, 6]
    assert t.frame.loc[0].tolist() == ["Uncia uncia", "42.51234", "77.25", "2024-03-01"]
    assert read_xlsx(p, sheet="records").rows.tolist() == [4, 6]
    with pytest.raises(InputError, match="no sheet 'nope'"):
        read_xlsx(p, sheet="nope")


@pytest.mark.parametrize("text,axis,expected", [
    ("41°45'00\"N", "lat", 41.75), ("41°45′30″ N", "lat", 41.758333), ("69 10 30 W", "lon", -69.175),
    ("N41°45.5'", "lat", 41.758333), ("41°45,5'", "lat", 41.758333), ("41d45m0s S", "lat", -41.75),
    ("48°07'24\" с.ш.", "lat", 48.123333), ("66°34'04\" в.д.", "lon", 66.567778), ("-41 45 00", "lat", -41.75),
])
def test_dms(text, axis, expected):
    assert parse_dms(text, axis) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text,axis", [("41°75'00\"N", "lat"), ("41°45'00\"E", "lat"), ("abc", "lat"), ("1 2 3 4", "lat")])
def test_not_dms(text, axis):
    assert parse_dms(text, axis) is None


def test_parse_degrees_mixed_column():
    vals, empty, dec = parse_degrees(pd.Series(["48,1234", "48.5", "", "41°45'00\"N", "x"]), "lat")
    assert vals[:2].tolist() == [48.1234, 48.5] and vals[3] == pytest.approx(41.75)
    assert np.isnan(vals[2]) and np.isnan(vals[4])
    assert empty.tolist() == [False, False, True, False, False]
    assert dec.tolist()[:2] == [4, 1] and dec[3] == -1


def test_projected_coordinates():
    crs = crs_from_text("UTM 42N", where="t")
    assert crs.to_epsg() == 32642
    # 69 E, 41 N in UTM 42N (pyproj forward, then back)
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32642, always_xy=True).transform(69.0, 41.0)
    lon, lat = to_wgs84(np.array([x]), np.array([y]), crs)
    assert lon[0] == pytest.approx(69.0, abs=1e-9) and lat[0] == pytest.approx(41.0, abs=1e-9)
    with pytest.raises(InputError, match="not a coordinate reference system"):
        crs_from_text("EPSG:999999", where="submission.yaml crs")


def test_aliases_english_and_russian():
    m = canonical_columns(["Decimal Latitude", "долгота", "вид", "eventDate", "Count"], "occurrences")
    assert m == {"decimal_latitude": "Decimal Latitude", "decimal_longitude": "долгота", "species": "вид",
                 "event_date": "eventDate", "individual_count": "Count"}
    gbif = canonical_columns(["species", "scientificName", "countryCode"], "occurrences")
    assert gbif["species"] == "scientificName" and gbif["iso3"] == "countryCode"


def test_geojson_in_a_declared_crs(tmp_path):
    gdf = gpd.GeoDataFrame({"name": ["a"], "n": [3]}, geometry=[shapely.Point(69.0, 41.0)], crs=4326).to_crs(32642)
    p = tmp_path / "t.geojson"
    gdf.to_file(p, driver="GeoJSON")
    back = read_vector(p)
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].x == pytest.approx(69.0, abs=1e-6) and back.loc[0, "n"] == "3"


def test_zipped_shapefile_with_and_without_prj(tmp_path):
    gdf = gpd.GeoDataFrame({"species": ["Uncia uncia"]}, geometry=[shapely.Point(77.25, 42.5)], crs=4326)
    d = tmp_path / "shp"
    d.mkdir()
    gdf.to_file(d / "pts.shp")
    z = tmp_path / "pts.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in d.iterdir():
            zf.write(f, f.name)
    back = read_zipped_shapefile(z)
    assert back.loc[0, "species"] == "Uncia uncia" and back.geometry.iloc[0].y == pytest.approx(42.5)
    z2 = tmp_path / "noprj.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        for f in d.iterdir():
            if f.suffix != ".prj":
                zf.write(f, f.name)
    assert read_zipped_shapefile(z2).crs.to_epsg() == 4326   # degrees without .prj: WGS84


def test_safe_extract_refuses_zip_slip(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../outside.txt", "bad")
    out = tmp_path / "x"
    out.mkdir()
    with pytest.raises(InputError, match="leaves the archive folder"):
        safe_extract(z, out)
    assert not (tmp_path / "outside.txt").exists()


def test_safe_extract_size_limit(tmp_path):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", "0" * 200_000)
    with pytest.raises(InputError, match="more than"):
        safe_extract(z, tmp_path / "o", max_bytes=100_000)


META = """<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="metadata.xml">
  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="{skip}"
        rowType="http://rs.tdwg.org/dwc/terms/Occurrence">
    <files><location>occurrence.txt</location></files>
    <id index="0" />
    <field index="1" term="http://rs.tdwg.org/dwc/terms/scientificName"/>
    <field index="2" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>
    <field index="3" term="http://rs.tdwg.org/dwc/terms/decimalLongitude"/>
    <field default="KZ" term="http://rs.tdwg.org/dwc/terms/countryCode"/>
  </core>
</archive>"""


@pytest.mark.parametrize("skip", [0, 1])
def test_dwca_reads_meta_xml(tmp_path, skip):
    body = "1\tSaiga tatarica\t48.1\t66.5\n2\tSaiga tatarica\t48.2\t66.6\n"
    header = "id\tx1\tx2\tx3\n" if skip else ""   # header names are ignored: meta.xml decides
    z = tmp_path / "dwca.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("meta.xml", META.format(skip=skip))
        zf.writestr("occurrence.txt", header + body)
    t = read_dwca(z)
    assert t.frame["scientificName"].tolist() == ["Saiga tatarica"] * 2
    assert t.frame["decimalLongitude"].tolist() == ["66.5", "66.6"]
    assert t.frame["countryCode"].tolist() == ["KZ", "KZ"]
    assert t.rows.tolist() == ([2, 3] if skip else [1, 2])


def test_gbif_simple_download_is_tab_separated(tmp_path):
    cols = ["gbifID", "species", "scientificName", "decimalLatitude", "decimalLongitude", "countryCode", "eventDate", "issue"]
    p = tmp_path / "0009886-250127130748423.csv"
    p.write_text("\t".join(cols) + "\n" + "\t".join(["1", "Saiga tatarica", "Saiga tatarica (Pallas, 1771)", "48.1",
                                                      "66.5", "KZ", "2020-05-01T00:00:00", "A;B"]) + "\n", encoding="utf-8")
    t = read_csv(p)
    assert t.delimiter == "\t" and t.frame.loc[0, "issue"] == "A;B"


SMART = ("Patrol ID,Type,Patrol Start Date,Station,Team,Leader,Pilot,Waypoint ID,Waypoint Date,Waypoint Time,X,Y,Comment,"
         "Observation Category 0,Observation Category 1,Species,Number of Animals\n"
         "P1,Ground,\"Jan 5, 2017\",S1,Team A,Ivan Petrov,Nobody,1,\"Jan 5, 2017\",3:04:05 PM,66.5,48.1,seen,Wildlife,Sighting,Saiga tatarica,12\n"
         "P1,Ground,\"Jan 5, 2017\",S1,Team A,Ivan Petrov,Nobody,2,\"Jan 5, 2017\",4:00:00 PM,66.6,48.2,snare,Human Activity,Poaching,,\n"
         "P1,Ground,\"Jan 5, 2017\",S1,Team A,Ivan Petrov,Nobody,3,\"Jan 5, 2017\",5:00:00 PM,66.7,48.3,,Patrol position,,,\n")


def test_smart_export_split_and_staff_dropped(tmp_path):
    p = tmp_path / "smart.csv"
    p.write_text(SMART, encoding="utf-8")
    t = read_csv(p)
    assert is_smart(t.frame.columns)
    frame, sighting, human = split_smart(t.frame)
    assert sighting.tolist() == [True, False, False] and human.tolist() == [False, True, False]
    assert frame.loc[0, "individual_count"] == "12" and frame.loc[1, "iucn_code"] == "5.1.1"
    assert frame.loc[0, "event_date"].startswith("Jan 5, 2017")
    assert "Ivan Petrov" not in frame.to_csv() and "Team A" not in frame.to_csv()


def test_manifest_and_kinds(tmp_path):
    p = tmp_path / "s1" / "submission.yaml"
    p.parent.mkdir()
    p.write_text("species: Uncia uncia\nrange_states: [KGZ]\ncycle: 2026\nsensitivity: withheld\n"
                 "files:\n  a.xlsx: occurrences\n  b.csv: {kind: threats, crs: 'EPSG:32643'}\n", encoding="utf-8")
    m = read_manifest(p)
    assert m.submission == "s1" and m.files["b.csv"].crs == "EPSG:32643" and m.sensitivity == "withheld"
    p.write_text("sensitivity: 2deg\n", encoding="utf-8")
    with pytest.raises(InputError, match="sensitivity"):
        read_manifest(p)
    assert kind_from_name("Occurrences_2025.xlsx") == "occurrences" and kind_from_name("x.tif") == "raster"
    assert kind_from_name("threats.gpkg") == "threats" and kind_from_name("notes.docx") is None


def test_dates_in_the_forms_sfps_write():
    from cami_geo.io.dates import parse_dates

    iso, year, status = parse_dates(pd.Series(["2017-01-05", "05.01.2017", "5/1/2017", "05-01-2017", "2017/01/05",
                                               "Jan 5, 2017 3:04:05 PM", "2017-01-05T10:00:00Z", "2017-01-01/2017-02-01",
                                               "2017-05", "2017", "2017-02-30", "31.02.2019", "", "soon"]))
    assert iso.tolist()[:8] == ["2017-01-05"] * 7 + ["2017-01-01"]
    assert iso.tolist()[8:10] == ["2017-05", "2017"] and year[9] == 2017
    assert status.tolist()[10:] == ["invalid", "invalid", "missing", "invalid"]


def test_verbatim_coordinates_in_one_column():
    from cami_geo.io.coords import split_coordinates

    cells = pd.Series(["48.1234, 66.5678", "48,1234; 66,5678", "41°45'00\"N 69°10'30\"E", "69°10'30\"E, 41°45'00\"N",
                       "48°07'24\" с.ш. 66°34'04\" в.д.", "", "junk"])
    lat, lon = split_coordinates(cells)
    assert lat.tolist()[:4] == ["48.1234", "48,1234", "41°45'00\"N", "41°45'00\"N"]
    assert lon.tolist()[3] == "69°10'30\"E" and lon.tolist()[4] == "66°34'04\" в.д."
    assert (lat.tolist()[5], lon.tolist()[5]) == ("", "")
    vals, _, _ = parse_degrees(lat, "lat")
    assert vals[2] == pytest.approx(41.75) and np.isnan(vals[6])


def test_dwca_sampling_event_archive(tmp_path):
    meta = ('<archive xmlns="http://rs.tdwg.org/dwc/text/">'
            '<core rowType="http://rs.tdwg.org/dwc/terms/Event" fieldsTerminatedBy="\\t" ignoreHeaderLines="1" fieldsEnclosedBy="">'
            '<files><location>event.txt</location></files><id index="0"/>'
            '<field index="1" term="http://rs.tdwg.org/dwc/terms/eventDate"/>'
            '<field index="2" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>'
            '<field index="3" term="http://rs.tdwg.org/dwc/terms/decimalLongitude"/></core>'
            '<extension rowType="http://rs.tdwg.org/dwc/terms/Occurrence" fieldsTerminatedBy="\\t" ignoreHeaderLines="1" fieldsEnclosedBy="">'
            '<files><location>occurrence.txt</location></files><coreid index="0"/>'
            '<field index="1" term="http://rs.tdwg.org/dwc/terms/occurrenceID"/>'
            '<field index="2" term="http://rs.tdwg.org/dwc/terms/scientificName"/>'
            '<field index="3" term="http://rs.tdwg.org/dwc/terms/individualCount"/></extension></archive>')
    z = tmp_path / "ipt_events.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("meta.xml", meta)
        zf.writestr("event.txt", "id\tdate\tlat\tlon\nE1\t2024-03-01\t42.51234\t77.25123\nE2\t2024-03-02\t42.6\t77.3\n")
        zf.writestr("occurrence.txt", "coreid\tocc\tname\tn\nE1\tO1\tUncia uncia\t1\nE2\tO2\tUncia uncia\t2\nE1\tO3\tUncia uncia\t1\n")
    t = read_dwca(z)
    assert t.frame["occurrenceID"].tolist() == ["O1", "O2", "O3"]
    assert t.frame["eventDate"].tolist() == ["2024-03-01", "2024-03-02", "2024-03-01"]
    assert t.frame["decimalLatitude"].tolist()[1] == "42.6" and t.frame["eventID"].tolist()[2] == "E1"
    assert t.rows.tolist() == [2, 3, 4]


def _large_table(path, rows: int = 40_000, tail: str = "") -> None:
    rng = np.random.default_rng(2)
    lines = ["scientificName,decimalLatitude,decimalLongitude,eventDate,countryCode"]
    for i in range(rows):
        lines.append(f"Saiga tatarica,{rng.uniform(44, 50):.5f},{rng.uniform(50, 80):.5f},2020-01-{1 + i % 28:02d},KZ")
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    assert path.stat().st_size > 1_000_000   # large enough for the pyarrow reader


@pytest.mark.parametrize("tail", ["", "Сайгак,48.1,66.2,2020-01-01,Казахстан\n", "\n"])
def test_large_csv_read_early_equals_read_late(tmp_path, tail):
    """A large table read ahead by the prefetch thread (cami-geo validate) gives the same
    table as a plain read: ASCII, non-ASCII after the first lines, a trailing blank line."""
    from cami_geo.io.csvfast import prefetch, take_prefetched

    p = tmp_path / "occurrences.csv"
    _large_table(p, tail=tail)
    plain = read_csv(p)
    prefetch([p])
    early = read_csv(p)
    assert take_prefetched(p) is None   # taken once
    pd.testing.assert_frame_equal(plain.frame, early.frame)
    assert (plain.rows == early.rows).all() and plain.notes == early.notes and plain.ragged == early.ragged


def test_prefetched_file_changed_since_is_read_again(tmp_path):
    from cami_geo.io.csvfast import prefetch

    p = tmp_path / "occurrences.csv"
    _large_table(p)
    prefetch([p])
    _large_table(p, rows=30_000)
    assert len(read_csv(p).frame) == 30_000


def test_degrees_fast_path_equals_general_parser():
    from cami_geo.io.coords import _degrees_from_arrow, _parse_degrees_arrow

    cases = [["1.5", "", "NA", "12", "-3.25", "1e1", "0.000", "-"], ["", ""], ["48.123456", "7"]]
    for cells in cases:
        s = pd.Series(cells, dtype="str")
        fast = _degrees_from_arrow(s.array._pa_array)
        slow = _parse_degrees_arrow(s, stripped=True)
        assert fast is not None
        for a, b in zip(fast, slow):
            np.testing.assert_array_equal(a, b)
    # not a plain number somewhere: the general parser decides
    assert _degrees_from_arrow(pd.Series(["1.5", "41°45'N"], dtype="str").array._pa_array) is None
    assert _degrees_from_arrow(pd.Series(["1,5", "2"], dtype="str").array._pa_array) is None
