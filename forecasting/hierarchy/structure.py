"""Which series sum to which: the nodes of a hierarchy and its summing matrix ``S``.

A hierarchy is named by the columns that make its levels, e.g. ``["area", "category"]``. The
bottom series (leaves) are the combinations of those columns present in the data; above them are
each column's totals and the grand total. Node ids follow the project's ``unique_id`` convention
(``city/C2`` is area ``city``, category ``C2`` in the synthetic world):

========================  ===================  ==========================================
node                      ``unique_id``        level
========================  ===================  ==========================================
a leaf                    ``city/C2``          ``area/category`` (the columns, joined)
a column's total          ``area=city``        ``area``
                          ``category=C2``      ``category``
everything                ``total``            ``total``
========================  ===================  ==========================================

With one column (SWAST's areas) the leaves are the values themselves (``Cornwall``) and the only
aggregate is ``total``. A column's total that sums exactly one leaf (a nested column such as a
trust whose areas are the leaves, or a category seen in one area only) would repeat that leaf and
is left out: every node is a distinct sum. ``S`` has one row per node (in :attr:`Hierarchy.nodes`
order: total, then each column's totals, then the leaves) and one column per leaf, with
``S[i, j] = 1`` when leaf ``j`` counts towards node ``i`` (Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., ch. 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops.errors import DataValidationError

TOTAL = "total"
LEAF_SEPARATOR = "/"


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """The nodes of a hierarchy, the level of each, and the summing matrix.

    Attributes
    ----------
    columns : tuple of str
        The columns that make the levels, e.g. ``("area", "category")``.
    nodes : tuple of str
        Every node's ``unique_id``: total, each column's totals, then the leaves.
    node_levels : tuple of str
        The level of each node: ``total``, a column name, or the columns joined by ``/`` (leaves).
    leaves : tuple of str
        The bottom series, in the order of ``S``'s columns.
    S : ndarray of shape (n_nodes, n_leaves)
        The summing matrix.
    """

    columns: tuple[str, ...]
    nodes: tuple[str, ...]
    node_levels: tuple[str, ...]
    leaves: tuple[str, ...]
    S: np.ndarray = field(repr=False)

    @property
    def leaf_level(self) -> str:
        return LEAF_SEPARATOR.join(self.columns)

    @property
    def level_names(self) -> list[str]:
        """Levels from the top down, each once."""
        return list(dict.fromkeys(self.node_levels))

    def nodes_by_level(self) -> dict[str, list[str]]:
        """Level -> its nodes, from the top down (for a model's contract)."""
        out: dict[str, list[str]] = {level: [] for level in self.level_names}
        for node, level in zip(self.nodes, self.node_levels, strict=True):
            out[level].append(node)
        return out

    def level_of(self) -> pd.Series:
        """Node id -> level, to label a frame of node forecasts."""
        return pd.Series(self.node_levels, index=self.nodes, name="level")

    def describe(self) -> str:
        """How the nodes are named, in one line (for error messages)."""
        parts = [f"leaves such as {self.leaves[0]!r}"]
        parts += [f"{c!r} totals '{c}=<value>'" for c in self.columns if c in self.node_levels]
        return ", ".join(parts) + f" and {TOTAL!r}"


def build_hierarchy(leaf_keys: pd.DataFrame, columns: Sequence[str]) -> Hierarchy:
    """The hierarchy over the leaves in ``leaf_keys`` (one row per leaf: ``unique_id`` and ``columns``)."""
    columns = tuple(str(c) for c in columns)
    keys = leaf_keys.drop_duplicates("unique_id").sort_values("unique_id", ignore_index=True)
    leaves = tuple(str(uid) for uid in keys["unique_id"])
    rows: list[np.ndarray] = [np.ones(len(leaves))]
    nodes, levels = [TOTAL], [TOTAL]
    for column in columns:
        for value in sorted(keys[column].astype(str).unique()):
            member = (keys[column].astype(str) == value).to_numpy(dtype=float)
            if member.sum() > 1:  # a total of one leaf would repeat that leaf
                rows.append(member)
                nodes.append(f"{column}={value}")
                levels.append(column)
    leaf_level = LEAF_SEPARATOR.join(columns)
    aggregates = np.vstack(rows)
    if len(leaves) == 1:  # a single series: the total is the leaf
        aggregates, nodes, levels = aggregates[:0], [], []
    # Two columns that group the leaves identically give the same sums: keep the first.
    _, first = np.unique(aggregates, axis=0, return_index=True)
    keep = sorted(first)
    S = np.vstack([aggregates[keep], np.eye(len(leaves))])
    nodes = [nodes[i] for i in keep] + list(leaves)
    levels = [levels[i] for i in keep] + [leaf_level] * len(leaves)
    clash = sorted(set(leaves) & {n for n, lv in zip(nodes, levels, strict=True) if lv != leaf_level})
    if clash:
        raise DataValidationError(
            f"series {clash[:3]} have the name of an aggregate node ('total' or '<column>=<value>'); "
            "rename them in the file"
        )
    return Hierarchy(columns, tuple(nodes), tuple(levels), leaves, S)


def aggregate(df: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, Hierarchy]:
    """Every node's daily series from the leaves' (as hierarchicalforecast's ``aggregate``).

    Parameters
    ----------
    df : DataFrame
        Leaf series in long format, ``unique_id, ds, y`` and the level ``columns`` (each leaf has
        one value of each); other numeric columns (e.g. ``y_expected``) are summed alike.
        Regressors (``x_*``) are refused: what a total's temperature would be is not defined.

    Returns
    -------
    (DataFrame, Hierarchy)
        ``unique_id, ds, y`` (+ the summed columns) for every node, sorted by node and day, and
        the hierarchy. Every leaf must cover the same days (a sum over a changing set of leaves
        would jump where one starts).
    """
    columns = [str(c) for c in columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"hierarchy.levels names column(s) {missing} that the data does not have; it has "
            f"{sorted(map(str, df.columns))}"
        )
    regressors = [c for c in df.columns if str(c).startswith("x_")]
    if regressors:
        raise DataValidationError(
            f"a hierarchy cannot use regressors yet ({regressors}): a total has no temperature of "
            "its own; leave them out (e.g. +data.columns.x_temperature=null) or forecast without hierarchy"
        )
    keys = df[["unique_id", *columns]].dropna().drop_duplicates()
    several = keys["unique_id"][keys["unique_id"].duplicated()]
    if len(several):
        raise DataValidationError(
            f"series {several.iloc[0]!r} has more than one value of {columns}: each leaf series must "
            "belong to one node of every level"
        )
    hierarchy = build_hierarchy(keys, columns)
    summed = [
        c
        for c in df.columns
        if c not in ("unique_id", "ds", *columns) and pd.api.types.is_numeric_dtype(df[c])
    ]
    wide = df.pivot(index="ds", columns="unique_id", values=summed).sort_index()
    gaps = wide["y"].isna()
    if gaps.to_numpy().any():
        leaf = gaps.sum().idxmax()
        day = gaps.index[gaps[leaf].to_numpy()][0]
        raise DataValidationError(
            f"series {leaf!r} has no row for {day:%Y-%m-%d} while others do: every leaf of a hierarchy "
            "must cover the same days (add the days, or set data.fill_missing=0 for days with no calls)"
        )
    parts = []
    for name in summed:
        values = wide[name][list(hierarchy.leaves)].to_numpy(dtype=float) @ hierarchy.S.T
        parts.append(pd.DataFrame(values, index=wide.index, columns=hierarchy.nodes).stack().rename(name))
    nodes = pd.concat(parts, axis=1).rename_axis(["ds", "unique_id"]).reset_index()
    nodes = nodes[["unique_id", "ds", *summed]].sort_values(["unique_id", "ds"], ignore_index=True)
    return nodes, hierarchy
