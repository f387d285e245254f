"""SMART (ranger patrol) CSV exports (DOMAIN.md section 5).

Wildlife sightings become occurrences, human-activity observations become threats; the
names and personal details of patrol staff (Leader, Pilot, Team, Members, Observer ...)
never leave the reader.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .aliases import fold

STAFF_COLUMNS = ("leader", "pilot", "team", "members", "member", "observer", "observers", "patrolleader",
                 "employee", "employees", "ranger", "rangers", "staff", "driver", "recordedby", "createdby")
WILDLIFE = re.compile(r"(?i)wildlife|animal|sighting|fauna|mammal|species|scat|живот|звер|фауна")
HUMAN = re.compile(r"(?i)human|threat|illegal|activity|poach|snare|trap|hunt|livestock|grazing|logging|mining|"
                   r"fire|camp|vehicle|road|fence|gun|shot|trespass|браконь|угроз|скот|выпас")
THREAT_CODES = [
    (re.compile(r"(?i)snare|trap|poach|hunt|gun|shot|carcass|браконь|охот"), "5.1.1"),
    (re.compile(r"(?i)livestock|grazing|herd|скот|выпас"), "2.3"),
    (re.compile(r"(?i)logging|timber|wood|firewood"), "5.3"),
    (re.compile(r"(?i)mining|mine|quarry"), "3.2"),
    (re.compile(r"(?i)oil|gas"), "3.1"),
    (re.compile(r"(?i)fire"), "7.1"),
    (re.compile(r"(?i)road|vehicle|track"), "4.1"),
    (re.compile(r"(?i)fence"), "2.3"),
    (re.compile(r"(?i)camp|tourism|recreation|trespass"), "6.1"),
]
_CATEGORY = re.compile(r"(?i)^observationcategory\d$|^category\d?$")


def is_smart(columns) -> bool:
    """Whether a table's columns look like a SMART patrol-observation export."""
    folded = {fold(c) for c in columns}
    return "waypointid" in folded and ("patrolid" in folded or any(_CATEGORY.match(c) for c in folded))


def split_smart(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Split a SMART export into canonical text columns and the two kinds of rows.

    Returns
    -------
    frame : text frame with canonical columns (species, decimal_latitude, decimal_longitude,
        event_date, individual_count, iucn_code, threat_type, notes, occurrence_id), staff
        columns removed
    sighting : bool array, rows that are wildlife sightings (occurrences)
    human : bool array, rows that are human activities (threats)
    """
    by_fold = {fold(c): c for c in frame.columns}
    keep = [c for c in frame.columns if fold(c) not in STAFF_COLUMNS]
    f = frame[keep]
    cats = [c for c in f.columns if _CATEGORY.match(fold(c))]
    cat_text = f[cats].astype(str).agg(" / ".join, axis=1) if cats else pd.Series("", index=f.index)
    cat_text = cat_text.str.replace(r"( / )+$", "", regex=True)
    # the top category decides (a "Human activity / vehicle track" is not wildlife); deeper
    # categories only when the top one says neither
    top = f[cats[0]].astype(str) if cats else cat_text
    human_top = top.str.contains(HUMAN).to_numpy()
    wild_top = top.str.contains(WILDLIFE).to_numpy() & ~human_top
    undecided = ~human_top & ~wild_top
    human = human_top | (undecided & cat_text.str.contains(HUMAN).to_numpy())
    wildlife = wild_top | (undecided & ~human & cat_text.str.contains(WILDLIFE).to_numpy())

    def col(*names):
        for n in names:
            if n in by_fold and by_fold[n] in f.columns:
                return f[by_fold[n]].astype(str)
        return pd.Series("", index=f.index, dtype=object)

    date = col("waypointdate", "date")
    time_ = col("waypointtime", "time")
    when = (date + " " + time_).str.strip()
    species = col("species", "speciesname", "wildlifespecies", "animal")
    count = pd.Series("", index=f.index, dtype=object)
    for c in f.columns:
        if fold(c).startswith("numberof") or fold(c) in ("number", "count", "numberofanimals", "total"):
            count = f[c].astype(str)
            break
    threat_text = cat_text.copy()
    for c in f.columns:
        if fold(c).startswith("threat") or fold(c) in ("activitytype", "typeofactivity", "humanactivity"):
            threat_text = (threat_text + " / " + f[c].astype(str)).str.strip(" /")
    code = pd.Series("", index=f.index, dtype=object)
    for pattern, c in THREAT_CODES:
        code = code.where(code != "", np.where(threat_text.str.contains(pattern), c, ""))
    out = pd.DataFrame({
        "species": species, "decimal_latitude": col("y", "latitude", "lat"), "decimal_longitude": col("x", "longitude", "lon"),
        "event_date": when.str.replace(r"^(\w{3} \d{1,2}, \d{4}) .*$", r"\1", regex=True),
        "individual_count": count, "iucn_code": code, "threat_type": threat_text,
        "name": cat_text, "notes": col("comment", "comments"),
        "occurrence_id": (col("patrolid") + ":" + col("waypointid")).str.strip(":"),
        "basis_of_record": "HumanObservation",
    })
    return out.reset_index(drop=True), wildlife, human
