"""The clinical truth of the synthetic call world: symptom groups and what makes a call safe to close.

Every call's TRUE probability of being safely closed by telephone is a fixed function of what a
call handler can see (symptom group, category, age, history, call-taker flags, hour, area), so the
oracle score is observable in principle and a good model can approach it. The realised outcome is
then a coin flip with that probability: the only irreducible noise.

Effect sizes are judgement calls shaped by DOMAIN.md, not estimates:

- older callers are at higher risk (steep age gradient after 55; older fallers and older people
  alone more so), and so are care-home residents and people with long-term conditions;
- repeat callers are at higher risk: three or more previous contacts raised the odds of a missed
  case about fourfold in Marincowitz et al. 2024 (here -0.35 per contact in 30 days plus -0.3 per
  contact in 7 days: three recent contacts lower the log-odds by about 1.5);
- Category 1 and red-flag symptom groups are almost never safe to close remotely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORIES = ("C1", "C2", "C3", "C4")


@dataclass(frozen=True)
class SymptomGroup:
    """One chief-complaint group, in the spirit of NHS Pathways / MPDS protocols.

    Attributes
    ----------
    weight : float
        Relative frequency before conditioning on category and age.
    category_mix : tuple of 4 floats
        How often calls in this group are triaged C1..C4 (relative; used through Bayes' rule
        because the category of each call comes from the daily counts).
    logit : float
        Log-odds of safe remote closure for a typical adult caller in Category 3.
    age_tilt : float
        Change in log relative frequency per decade of age above 50 (falls rise with age,
        mental-health crises fall).
    severe_pain : float
        Probability that the call handler records severe pain.
    red_flag : bool
        Whether the default configuration treats the group as never closable remotely.
    """

    weight: float
    category_mix: tuple[float, float, float, float]
    logit: float
    age_tilt: float = 0.0
    severe_pain: float = 0.1
    red_flag: bool = False


# fmt: off
SYMPTOM_GROUPS: dict[str, SymptomGroup] = {
    "cardiac_respiratory_arrest": SymptomGroup(1.5, (0.97, 0.03, 0.0, 0.0), -10.0, 0.2, 0.0, True),
    "unconscious":                SymptomGroup(3.0, (0.70, 0.30, 0.0, 0.0), -7.0, 0.15, 0.0, True),
    "choking":                    SymptomGroup(0.5, (0.80, 0.20, 0.0, 0.0), -6.0, 0.0, 0.0, True),
    "anaphylaxis":                SymptomGroup(0.7, (0.60, 0.40, 0.0, 0.0), -6.0, -0.2, 0.1, True),
    "major_haemorrhage":          SymptomGroup(1.5, (0.35, 0.60, 0.05, 0.0), -7.0, 0.0, 0.3, True),
    "major_trauma":               SymptomGroup(2.0, (0.30, 0.65, 0.05, 0.0), -6.0, -0.1, 0.6, True),
    "stroke_symptoms":            SymptomGroup(3.0, (0.0, 0.97, 0.03, 0.0), -9.0, 0.3, 0.05, True),
    "chest_pain":                 SymptomGroup(8.0, (0.05, 0.85, 0.10, 0.0), -4.0, 0.1, 0.4, True),
    "breathing_problems":         SymptomGroup(11.0, (0.25, 0.65, 0.10, 0.0), -3.2, 0.15, 0.05),
    "fainting_collapse":          SymptomGroup(5.0, (0.05, 0.60, 0.35, 0.0), 0.0, 0.2, 0.05),
    "seizure":                    SymptomGroup(3.0, (0.15, 0.70, 0.15, 0.0), -1.6, -0.1, 0.0),
    "falls":                      SymptomGroup(14.0, (0.03, 0.45, 0.47, 0.05), 0.4, 0.35, 0.3),
    "sick_person":                SymptomGroup(10.0, (0.02, 0.45, 0.48, 0.05), 0.0, 0.15, 0.1),
    "abdominal_pain":             SymptomGroup(4.0, (0.0, 0.30, 0.65, 0.05), 0.0, 0.0, 0.55),
    "back_pain":                  SymptomGroup(2.0, (0.0, 0.10, 0.60, 0.30), 3.2, 0.0, 0.6),
    "diarrhoea_vomiting":         SymptomGroup(2.0, (0.0, 0.10, 0.60, 0.30), 2.8, 0.0, 0.1),
    "headache":                   SymptomGroup(1.5, (0.0, 0.35, 0.55, 0.10), 0.8, -0.1, 0.4),
    "mental_health":              SymptomGroup(4.0, (0.0, 0.45, 0.50, 0.05), 1.8, -0.4, 0.0),
    "overdose_poisoning":         SymptomGroup(3.0, (0.05, 0.75, 0.20, 0.0), -1.8, -0.4, 0.0),
    "diabetic_problems":          SymptomGroup(1.5, (0.02, 0.60, 0.35, 0.03), 0.4, 0.1, 0.0),
    "allergic_reaction":          SymptomGroup(1.0, (0.0, 0.35, 0.55, 0.10), 2.0, -0.2, 0.05),
    "urinary_problems":           SymptomGroup(1.5, (0.0, 0.05, 0.60, 0.35), 3.0, 0.3, 0.3),
    "minor_injury":               SymptomGroup(3.0, (0.0, 0.10, 0.60, 0.30), 3.2, -0.1, 0.4),
    "wound_laceration":           SymptomGroup(1.5, (0.0, 0.30, 0.60, 0.10), 1.6, 0.0, 0.3),
    "eye_ent_dental":             SymptomGroup(0.8, (0.0, 0.05, 0.50, 0.45), 4.4, -0.1, 0.4),
    "pregnancy_childbirth":       SymptomGroup(1.0, (0.05, 0.75, 0.20, 0.0), -3.6, 0.0, 0.4),
    "heat_cold_exposure":         SymptomGroup(0.5, (0.0, 0.40, 0.50, 0.10), 0.6, 0.2, 0.0),
    "palpitations":               SymptomGroup(2.0, (0.02, 0.60, 0.35, 0.03), -0.4, 0.1, 0.1),
    "dizziness":                  SymptomGroup(2.0, (0.0, 0.30, 0.60, 0.10), 1.4, 0.2, 0.0),
    "cough_cold_flu":             SymptomGroup(2.0, (0.0, 0.10, 0.50, 0.40), 3.6, -0.2, 0.0),
    "catheter_stoma":             SymptomGroup(0.7, (0.0, 0.0, 0.50, 0.50), 3.8, 0.4, 0.1),
    "medication_query":           SymptomGroup(0.7, (0.0, 0.0, 0.30, 0.70), 5.2, 0.1, 0.0),
    "limb_problem":               SymptomGroup(1.2, (0.0, 0.10, 0.60, 0.30), 2.8, 0.1, 0.4),
    "rash_skin":                  SymptomGroup(0.6, (0.0, 0.10, 0.50, 0.40), 4.4, -0.1, 0.0),
}
# fmt: on

RED_FLAG_GROUPS = tuple(name for name, group in SYMPTOM_GROUPS.items() if group.red_flag)

# Log-odds shifts of safe remote closure; see the module docstring for where each comes from.
CATEGORY_EFFECT = {"C1": -4.0, "C2": -1.4, "C3": 0.0, "C4": 1.0}
AREA_EFFECT = {"city": 0.2, "coast": -0.3, "moor": -0.5}  # rural: fewer community alternatives
NIGHT_HOURS = 6  # calls from midnight to 6 am have fewer services to refer to
EFFECTS = {
    "age_over_55_per_year": -0.055,
    "infant": -1.0,  # under 1
    "under_5": -0.4,
    "school_age": 0.4,  # 5-15
    "older_faller": -1.6,  # falls at 75+: fractures, long lies
    "older_alone": -1.0,  # 75+ and alone
    "contacts_30d": -0.35,  # per contact, capped at 5
    "contacts_7d": -0.3,  # per contact, capped at 3
    "long_term_condition": -0.3,  # per condition
    "care_home": -0.8,
    "severe_pain": -1.8,
    "able_to_walk": 1.6,
    "first_party_caller": 0.7,
    "night": -0.6,
}

# Diurnal profile of ambulance calls (share by hour): low at 4-5 am, plateau late morning to evening.
HOUR_WEIGHTS = np.array(
    [
        3.0,
        2.7,
        2.4,
        2.1,
        1.9,
        1.9,
        2.3,
        3.0,
        3.9,
        4.8,
        5.4,
        5.6,
        5.6,
        5.4,
        5.3,
        5.2,
        5.2,
        5.2,
        5.1,
        5.0,
        4.8,
        4.5,
        4.1,
        3.5,
    ]
)


def history_logit(contacts_30d: np.ndarray, contacts_7d: np.ndarray) -> np.ndarray:
    """Log-odds shift from previous contacts (the part clinicians are known to under-weight)."""
    return EFFECTS["contacts_30d"] * np.minimum(contacts_30d, 5) + EFFECTS["contacts_7d"] * np.minimum(
        contacts_7d, 3
    )


def true_logit(calls, intercept: float) -> np.ndarray:
    """Log-odds that each call can be safely closed remotely, from observable call features only.

    Parameters
    ----------
    calls : DataFrame
        Columns ``symptom_group, category, age, sex, area, hour, care_home, contacts_7d,
        contacts_30d, long_term_conditions, severe_pain, able_to_walk, first_party_caller,
        patient_alone``.
    intercept : float
        Overall level, solved by the generator so today's practice meets its adverse-outcome rate.
    """
    age = calls["age"].to_numpy(dtype=float)
    group = calls["symptom_group"].astype(str).to_numpy()
    codes = pd.Categorical(group, categories=list(SYMPTOM_GROUPS)).codes
    if (codes < 0).any():
        raise ValueError(f"unknown symptom group(s): {sorted(set(group[codes < 0]))[:5]}")
    logit = intercept + np.array([g.logit for g in SYMPTOM_GROUPS.values()])[codes]
    logit += calls["category"].astype(str).map(CATEGORY_EFFECT).to_numpy(dtype=float)
    logit += calls["area"].astype(str).map(AREA_EFFECT).fillna(0.0).to_numpy(dtype=float)
    logit += EFFECTS["age_over_55_per_year"] * np.maximum(age - 55, 0)
    logit += np.select(
        [age < 1, age < 5, age < 16], [EFFECTS["infant"], EFFECTS["under_5"], EFFECTS["school_age"]], 0.0
    )
    old = age >= 75
    logit += EFFECTS["older_faller"] * (old & (group == "falls"))
    logit += EFFECTS["older_alone"] * (old & (calls["patient_alone"].to_numpy() == 1))
    logit += history_logit(calls["contacts_30d"].to_numpy(), calls["contacts_7d"].to_numpy())
    for flag in ("care_home", "severe_pain", "able_to_walk", "first_party_caller"):
        logit += EFFECTS[flag] * calls[flag].to_numpy(dtype=float)
    logit += EFFECTS["long_term_condition"] * calls["long_term_conditions"].to_numpy(dtype=float)
    logit += EFFECTS["night"] * (calls["hour"].to_numpy() < NIGHT_HOURS)
    return logit
