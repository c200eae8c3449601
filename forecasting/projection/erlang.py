"""Erlang-C staffing of a queue of telephone assessments (library layer).

Calls arrive as a Poisson process at rate ``lam`` per minute, each takes an exponential time with
mean ``service`` minutes, ``c`` clinicians take them first come, first served and nobody hangs up
(M/M/c). With offered load ``A = lam * service``:

- the chance a call waits, Erlang C: ``C(c, A) = c B / (c - A (1 - B))`` with the Erlang B
  recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))`` (stable for any size);
- the share answered within ``t`` minutes: ``1 - C(c, A) exp(-(c - A) t / service)``;
- the mean wait: ``C(c, A) service / (c - A)``.

Everything is vectorised over arrays of arrival rates, so a whole year of hours is staffed at once.
"""

from __future__ import annotations

import numpy as np

MAX_AGENTS = 5_000


def erlang_c(agents: np.ndarray | int, load: np.ndarray | float) -> np.ndarray:
    """Chance a call waits, for ``agents`` servers and offered load ``load`` (Erlangs); 1 when
    ``agents <= load`` (the queue grows without bound)."""
    agents = np.asarray(agents, dtype=int)
    load = np.asarray(load, dtype=float)
    agents, load = np.broadcast_arrays(agents, load)
    b = np.ones(load.shape)
    for k in range(1, int(agents.max(initial=0)) + 1):
        step = load * b / (k + load * b)
        b = np.where(k <= agents, step, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = agents * b / (agents - load * (1 - b))
    return np.where(agents > load, np.clip(c, 0.0, 1.0), 1.0)


def service_level(agents, arrivals_per_min, service_min: float, within_min: float) -> np.ndarray:
    """Share of calls answered (assessment started) within ``within_min`` minutes."""
    load = np.asarray(arrivals_per_min, dtype=float) * service_min
    agents = np.asarray(agents, dtype=int)
    waits = erlang_c(agents, load)
    decay = np.exp(-np.maximum(agents - load, 0.0) * within_min / service_min)
    return np.where(agents > load, 1.0 - waits * decay, 0.0)


def mean_wait(agents, arrivals_per_min, service_min: float) -> np.ndarray:
    """Mean wait in minutes before assessment (infinite when ``agents <= load``)."""
    load = np.asarray(arrivals_per_min, dtype=float) * service_min
    agents = np.asarray(agents, dtype=int)
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = erlang_c(agents, load) * service_min / (agents - load)
    return np.where(agents > load, wait, np.inf)


def agents_needed(
    arrivals_per_min: np.ndarray | float, service_min: float, within_min: float, target: float
) -> np.ndarray:
    """Fewest clinicians so that at least ``target`` of calls are answered within ``within_min``.

    Zero arrivals need zero clinicians. Vectorised: the Erlang B recursion runs once up to the
    largest answer, and each cell keeps the first ``c`` that meets the target.
    """
    if not 0 < target < 1:
        raise ValueError(f"target service level must be between 0 and 1, got {target}")
    lam = np.asarray(arrivals_per_min, dtype=float)
    load = lam * service_min
    need = np.where(lam > 0, 0, -1)  # -1: done (no calls); 0: not yet found
    b = np.ones(load.shape)
    k = 0
    while (need == 0).any():
        k += 1
        if k > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} clinicians needed: check the arrival rates")
        b = load * b / (k + load * b)
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = k * b / (k - load * (1 - b))
            level = 1.0 - np.clip(wait, 0.0, 1.0) * np.exp(-(k - load) * within_min / service_min)
        met = (need == 0) & (k > load) & (level >= target)
        need = np.where(met, k, need)
    return np.maximum(need, 0)
