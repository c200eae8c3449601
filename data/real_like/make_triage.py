"""Write ``triage.csv``: 1,300 made-up emergency-department triage records, formatted like a real export.

Synthetic (no patient's record), seeded, and shaped like the Korean ED triage data set that an issue
of this project was tested on (the toolkit does not hold it): ``;`` separator, decimal commas,
``??`` for vital signs not taken, integer-coded categories, a typed chief complaint with hundreds of
spellings, an NHS-number-like identifier, no date, and outcome columns known only after the visit.
See README.md beside it for the columns and how the outcome depends on them.

    python data/real_like/make_triage.py            # rewrites data/real_like/triage.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

N_PATIENTS = 1300
SEED = 20260105
OUT = Path(__file__).with_name("triage.csv")

# Chief complaints: base phrase, relative frequency, log-odds shift of going home. Each is typed in
# several ways (case, typos, extra words), so the column has hundreds of distinct values.
COMPLAINTS = {
    "abdominal pain": (14, 0.3),
    "chest pain": (8, -0.9),
    "dyspnea": (7, -1.2),
    "fever": (8, 0.4),
    "dizziness": (6, 0.2),
    "headache": (5, 0.5),
    "ankle pain": (5, 1.6),
    "laceration": (5, 1.8),
    "vomiting": (5, 0.3),
    "back pain": (4, 0.9),
    "one-sided weakness": (3, -2.6),
    "dysarthria": (2, -2.4),
    "slurred speech": (1, -2.4),
    "mental change": (3, -1.8),
    "seizure": (2, -0.6),
    "syncope": (3, -0.3),
    "palpitation": (2, 0.2),
    "melena": (2, -1.4),
    "hematemesis": (1, -1.5),
    "rash": (2, 1.7),
    "sore throat": (2, 2.0),
    "flank pain": (3, 0.6),
    "fall": (4, 0.2),
    "drug overdose": (2, -0.8),
    "urinary retention": (1, 0.8),
}
QUALIFIERS = (
    *["", "", "", " since yesterday", " for 2 days", " for 3 days", " sudden onset", " today"],
    *[" severe", " mild", " again", " after meal", " at night", " worsening", " ongoing", " since morning"],
)


def _typed(phrase: str, rng: np.random.Generator) -> str:
    text = phrase + QUALIFIERS[rng.integers(len(QUALIFIERS))]
    roll = rng.random()
    if roll < 0.12 and len(text) > 4:  # a dropped letter
        i = rng.integers(1, len(text) - 1)
        text = text[:i] + text[i + 1 :]
    elif roll < 0.25:
        text = text.capitalize()
    elif roll < 0.30:
        text = text.upper()
    return text


def _vital(values: np.ndarray, missing: float, rng: np.random.Generator, decimals: int = 0) -> np.ndarray:
    """Numbers as the export writes them: decimal comma, ``??`` where not measured."""
    text = np.array([f"{v:.{decimals}f}".replace(".", ",") for v in values], dtype=object)
    text[rng.random(len(values)) < missing] = "??"
    return text


def make(n: int = N_PATIENTS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = np.clip(rng.gamma(5.0, 11.0, n) + 14, 16, 96).round().astype(int)
    sex = rng.integers(1, 3, n)  # 1 female, 2 male
    group = rng.choice([1, 2], n, p=[0.45, 0.55])  # 1 local ED, 2 regional ED
    arrival = rng.choice([1, 2, 3, 4, 5, 6, 7], n, p=[0.06, 0.04, 0.48, 0.22, 0.13, 0.04, 0.03])
    injury = rng.choice([1, 2], n, p=[0.8, 0.2])  # 2 = injury
    names = list(COMPLAINTS)
    weights = np.array([COMPLAINTS[c][0] for c in names], dtype=float)
    complaint = rng.choice(len(names), n, p=weights / weights.sum())
    shift = np.array([COMPLAINTS[c][1] for c in names])[complaint]
    older = np.clip((age - 55) / 10, 0, None)
    mental = np.where(rng.random(n) < 0.06 + 0.05 * older + 0.25 * (shift < -1.7), rng.integers(2, 5, n), 1)
    pain = (rng.random(n) < 0.55).astype(int)
    nrs = np.where(pain == 1, rng.integers(2, 10, n), 0)
    severity = rng.normal(0, 1, n) - 0.35 * shift + 0.25 * older + 0.6 * (mental > 1)  # unseen
    sbp = rng.normal(132, 22, n) - 12 * (severity > 1.5) * rng.random(n)
    dbp = sbp * 0.6 + rng.normal(0, 8, n)
    hr = rng.normal(84, 14, n) + 9 * severity
    rr = rng.normal(19, 2, n) + 1.5 * severity
    bt = rng.normal(36.6, 0.45, n) + 0.8 * (names.index("fever") == complaint) + 0.25 * (severity > 1)
    sat = np.clip(rng.normal(97.5, 1.5, n) - 2.0 * (severity > 1.2), 80, 100)
    ktas = np.clip(np.round(3.6 - 0.55 * severity - 0.5 * (mental > 1) + rng.normal(0, 0.6, n)), 1, 5).astype(
        int
    )
    logit = (
        0.9 + 0.9 * shift - 0.7 * older - 0.9 * severity - 1.3 * (mental > 1) - 0.6 * np.isin(arrival, [1, 2])
        + 0.5 * (injury == 2) - 0.04 * np.maximum(hr - 100, 0) - 0.8 * (sat < 94) - 0.6 * (ktas <= 2)
    )  # fmt: skip
    home = rng.random(n) < 1 / (1 + np.exp(-logit))
    # Disposition after the visit: 1 home, 2 ward, 3 ICU, 4 transfer, 5 death, 6 surgery, 7 left.
    not_home = rng.choice([2, 3, 4, 5, 6, 7], n, p=[0.62, 0.12, 0.08, 0.02, 0.12, 0.04])
    disposition = np.where(home, 1, not_home)
    diagnosis = np.where(
        home,
        rng.choice(["gastroenteritis", "sprain", "viral infection", "contusion", "no abnormality"], n),
        rng.choice(["cerebral infarction", "pneumonia", "ICH", "appendicitis", "NSTEMI", "GI bleeding"], n),
    )
    los = np.where(home, rng.gamma(2.0, 120, n), rng.gamma(3.0, 300, n)).round().astype(int)
    frame = pd.DataFrame(
        {
            "patient_id": 4_000_000_000 + rng.choice(10**9, n, replace=False),  # NHS-number-like
            "group": group,
            "sex": sex,
            "age": age,
            "patients_per_hour": rng.poisson(7, n) + 1,
            "arrival_mode": arrival,
            "injury": injury,
            "chief_complaint": [_typed(names[c], rng) for c in complaint],
            "mental": mental,
            "pain": pain,
            "nrs_pain": np.where(pain == 1, nrs.astype(str), "??").astype(object),
            "sbp": _vital(sbp, 0.02, rng),
            "dbp": _vital(dbp, 0.02, rng),
            "hr": _vital(hr, 0.015, rng),
            "rr": _vital(rr, 0.02, rng),
            "bt": _vital(bt, 0.02, rng, decimals=1),
            "saturation": _vital(sat, 0.5, rng),
            "ktas_rn": ktas,
            "ktas_duration_min": [f"{v:.2f}" for v in rng.gamma(2.0, 2.5, n)],  # points, not commas
            "diagnosis_in_ed": diagnosis,
            "disposition": disposition,
            "length_of_stay_min": los,
            "discharged_home": home.astype(int),
        }
    )
    return frame


def main(path: Path = OUT) -> Path:
    frame = make()
    frame.to_csv(path, sep=";", index=False)
    return path


if __name__ == "__main__":
    written = main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"{N_PATIENTS} made-up triage records -> {written}")
