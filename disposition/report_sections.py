"""Report sections about the data and the model choice, placed before the headline results.

The evaluation report (``disposition.model_card.render_report``) is about held-out results; what the
run did with the user's columns and why it registered the model it did come first, and a warning
that a feature leaks the outcome is at the very top, not in the notes at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from disposition.columns import render_markdown

_ANCHOR = "\n## Headline"


@dataclass
class ReportSections:
    """Warnings for the top of the report and titled markdown blocks before its headline."""

    warnings: list[str] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)

    def add(self, title: str, body: str) -> None:
        self.blocks.append((title, body))


def column_section(profile: pd.DataFrame | None) -> str:
    """The column summary: role, inferred type, levels, missing share, AUC of each feature alone."""
    if profile is None or profile.empty:
        return "No column summary."
    return "\n".join(
        [
            "Every column of the file as the run read it. Types: numeric, binary, integer-coded category "
            "(whole numbers within 1..10, at least 3 levels, used as a category), text category, date, "
            "free text (very many "
            "levels, most seen once), identifier (unique or nearly unique per call), numbers with junk. "
            "Identifiers, free text and dates are never features unless allowed by name "
            "(`calls.allow_columns`) or listed in `calls.features`; *AUC alone* is how well the feature "
            "by itself separates the outcome (0.5 = not at all, 1 = perfectly: a leak).",
            "",
            render_markdown(profile),
        ]
    )


def add_sections(report: str, sections: ReportSections | None) -> str:
    """``report`` with the warnings after its title and the blocks before its headline section."""
    if sections is None:
        return report
    title, _, rest = report.partition("\n")
    top = ""
    if sections.warnings:
        top = "\n" + "\n".join(f"> **WARNING**: {w}." for w in sections.warnings) + "\n"
    blocks = "".join(f"\n## {name}\n\n{body}\n" for name, body in sections.blocks)
    at = rest.find(_ANCHOR)
    rest = rest + blocks if at < 0 else rest[:at] + "\n" + blocks.rstrip("\n") + "\n" + rest[at:]
    return title + "\n" + top + rest
