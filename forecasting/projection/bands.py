"""Age bands as labels (``'0-4'``, ``'90+'``): parsing, and checking that a set of bands tiles all ages."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mlops.errors import DataValidationError

_CLOSED = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_OPEN = re.compile(r"^\s*(\d+)\s*\+\s*$")
_SINGLE = re.compile(r"^\s*(\d+)\s*$")  # one year of age, as ONS subnational projections give them


def parse_band(label: str) -> tuple[int, float]:
    """Lower and upper age (inclusive; ``inf`` for an open band) of a label like ``'85-89'`` or ``'90+'``.

    Raises
    ------
    DataValidationError
        If the label is neither ``'<lo>-<hi>'`` with lo <= hi, ``'<lo>+'`` nor a single age ``'<age>'``.
    """
    text = str(label)
    if match := _CLOSED.match(text):
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high:
            return low, float(high)
    elif match := _OPEN.match(text):
        return int(match.group(1)), float("inf")
    elif match := _SINGLE.match(text):
        return int(match.group(1)), float(match.group(1))
    raise DataValidationError(
        f"unknown age band {text!r}: write bands as '<from>-<to>' (e.g. '85-89'), '<from>+' (e.g. '90+') "
        "or one age (e.g. '47')"
    )


def ordered_bands(labels: Iterable[str], source: str = "population") -> list[str]:
    """The labels sorted by age, after checking that they tile ages 0 and over exactly once.

    Tiling means: the youngest band starts at 0, each band starts one year after the previous one
    ends, and the oldest band is open (``'90+'``). Overlaps and gaps are named in the error, because a
    projection that counts some ages twice or not at all is silently wrong.
    """
    spans = sorted(((*parse_band(label), str(label)) for label in set(labels)), key=lambda s: (s[0], s[1]))
    if not spans:
        raise DataValidationError(f"{source}: no age bands")
    if spans[0][0] != 0:
        raise DataValidationError(f"{source}: age bands must start at age 0; the youngest is {spans[0][2]!r}")
    for (_, high_a, label_a), (low_b, _, label_b) in zip(spans, spans[1:], strict=False):
        if low_b <= high_a:
            raise DataValidationError(f"{source}: age bands {label_a!r} and {label_b!r} overlap")
        if low_b > high_a + 1:
            raise DataValidationError(
                f"{source}: ages {int(high_a) + 1}-{low_b - 1} are in no band "
                f"(between {label_a!r} and {label_b!r})"
            )
    if spans[-1][1] != float("inf"):
        raise DataValidationError(
            f"{source}: the oldest band {spans[-1][2]!r} must be open-ended (e.g. '90+') so every age "
            "is counted"
        )
    return [label for _, _, label in spans]


def bands_in_range(bands: Iterable[str], age_range: str, source: str = "scenario") -> list[str]:
    """The bands that make up ``age_range`` (itself a band label such as ``'85+'`` or ``'65-84'``).

    The range must start and end on band edges, so a scenario never splits a band.
    """
    low, high = parse_band(age_range)
    members = []
    for band in bands:
        band_low, band_high = parse_band(band)
        inside = band_low >= low and band_high <= high
        outside = band_high < low or band_low > high
        if not (inside or outside):
            raise DataValidationError(
                f"{source}: age range {age_range!r} splits band {band!r}; use ranges on band edges"
            )
        if inside:
            members.append(band)
    if not members:
        raise DataValidationError(f"{source}: age range {age_range!r} contains no population band")
    return members
