"""Erlang-C staffing of a queue of telephone assessments (library layer).

Calls arrive as a Poisson process at rate ``lam`` per minute, each takes an exponential time with
mean ``service`` minutes, ``c`` clinicians take them first come, first served and nobody hangs up
(M/M/c). With offered load ``A = lam * service``:

- the chance a call waits, Erlang C: ``C(c, A) = c B / (c - A (1 - B))`` with the Erlang B
  recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))`` (stable for any size);
- the share answered within ``t`` minutes: ``1 - C(c, A) exp(-(c - A) t / service)``;
- the mean wait: ``C(c, A) service / (c - A)``.

Erlang A (M/M/c+M) adds callers who hang up: each waits an exponential time with mean ``patience``
minutes (rate ``theta = 1 / patience``) and leaves unanswered if no clinician has started by then.
The queue is a birth-death chain: ``pi[c + j] = pi[c] prod_{k=1..j} lam / (c mu + k theta)`` beyond
the ``c`` busy clinicians, Erlang B below. A call finding ``j`` waiting ahead reaches a clinician
after ``j + 1`` stages with rates ``c mu + i theta`` (``i`` ahead: a clinician frees or one of them
hangs up), unless its own patience runs out first; tilting each stage by its own patience gives

    P(answered within t | j) = c mu / (c mu + (j + 1) theta) * (1 - I_u(c mu / theta + 1, j + 1)),

with ``u = exp(-theta t)`` and ``I`` the regularised incomplete beta function (``exp(-theta S)`` of
a sum ``S`` of exponentials with rates ``theta (b + 1) .. theta (b + m)`` is Beta(b + 1, m)). A call
that hangs up counts as not answered in time. The share that hangs up follows with ``t`` infinite.

Everything is vectorised over arrays of arrival rates, so a whole year of hours is staffed at once.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc

MAX_AGENTS = 5_000


def erlang_b(agents: np.ndarray | int, load: np.ndarray | float) -> np.ndarray:
    """Chance all ``agents`` are busy in a loss system with offered load ``load`` (Erlang B)."""
    agents, load = np.broadcast_arrays(np.asarray(agents, dtype=int), np.asarray(load, dtype=float))
    b = np.ones(load.shape)
    for k in range(1, int(agents.max(initial=0)) + 1):
        b = np.where(k <= agents, load * b / (k + load * b), b)
    return b


def erlang_c(agents: np.ndarray | int, load: np.ndarray | float) -> np.ndarray:
    """Chance a call waits, for ``agents`` servers and offered load ``load`` (Erlangs); 1 when
    ``agents <= load`` (the queue grows without bound)."""
    agents, load = np.broadcast_arrays(np.asarray(agents, dtype=int), np.asarray(load, dtype=float))
    b = erlang_b(agents, load)
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


def erlang_a(
    agents, arrivals_per_min, service_min: float, within_min: float, patience_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """Erlang A: the share of calls answered within ``within_min`` and the share that hang up, when
    callers wait on average ``patience_min`` minutes (exponential) before hanging up.

    Stable for any load (callers who hang up keep the queue finite, even with fewer clinicians than
    the offered load); the work grows with the queue, i.e. with patience when clinicians are short.
    """
    if patience_min <= 0:
        raise ValueError(f"patience must be positive minutes, got {patience_min}")
    agents, lam = np.broadcast_arrays(
        np.asarray(agents, dtype=int), np.asarray(arrivals_per_min, dtype=float)
    )
    shape = lam.shape
    agents, lam = agents.ravel(), lam.ravel()
    answered, hung_up = np.ones(lam.shape), np.zeros(lam.shape)
    busy = (lam > 0) & (agents > 0)
    answered[(lam > 0) & (agents <= 0)], hung_up[(lam > 0) & (agents <= 0)] = 0.0, 1.0
    if busy.any():
        answered[busy], hung_up[busy] = _erlang_a_busy(
            agents[busy], lam[busy], service_min, within_min, patience_min
        )
    return answered.reshape(shape), hung_up.reshape(shape)


def _erlang_a_busy(agents, lam, service_min, within_min, patience_min, chunk: int = 32):
    """:func:`erlang_a` for cells with calls and at least one clinician (1-d arrays).

    Sums over ``j`` (calls waiting ahead of an arrival) in chunks, each term relative to the largest
    so far (log scale, so nothing overflows), until in every cell the terms fall by a ratio below 1
    and the next is below 1e-16 of the largest: the geometric tail left out is smaller still.
    """
    theta = 1.0 / patience_min
    c_mu = (agents / service_min)[:, None]  # rate at which busy clinicians free up
    rate = lam[:, None]
    u = np.exp(-theta * within_min)
    top = np.zeros(len(lam))  # log of the largest q_j = pi[c + j] / pi[c] so far
    log_q_last = np.zeros(len(lam))
    total = np.zeros(len(lam))  # sum of q_j, then in time, then hanging up; all scaled by exp(-top)
    in_time = np.zeros(len(lam))
    hanging = np.zeros(len(lam))
    start = 0
    while True:
        j = np.arange(start, start + chunk)[None, :]
        steps = np.log(rate / (c_mu + np.maximum(j, 1) * theta))
        steps[:, 0] = np.where(start == 0, 0.0, steps[:, 0])  # q_0 = 1
        log_q = log_q_last[:, None] + np.cumsum(steps, axis=1)
        new_top = np.maximum(top, log_q.max(axis=1))
        rescale = np.exp(top - new_top)
        q = np.exp(log_q - new_top[:, None])
        served = c_mu / (c_mu + (j + 1) * theta)
        answered = served * (1.0 - betainc(c_mu / theta + 1.0, j + 1.0, u))
        total = total * rescale + q.sum(axis=1)
        in_time = in_time * rescale + (q * answered).sum(axis=1)
        hanging = hanging * rescale + (q * (1.0 - served)).sum(axis=1)
        top, log_q_last = new_top, log_q[:, -1]
        start += chunk
        ratio = lam / (c_mu[:, 0] + start * theta)
        if np.all((ratio < 1) & (log_q_last - top < np.log(np.maximum(1e-16 * (1 - ratio), 1e-300)))):
            break
    with np.errstate(divide="ignore"):  # Erlang B underflows to 0 for many idle clinicians: no wait
        below = np.exp(-top) / erlang_b(agents, lam * service_min)  # sum of pi[n <= c] / pi[c], scaled
    pi_c = 1.0 / (below + total - np.exp(-top))  # scaled like the sums; q_0 = 1 is in both
    waits = pi_c * total
    answered = 1.0 - waits + pi_c * in_time
    return np.clip(answered, 0.0, 1.0), np.clip(pi_c * hanging, 0.0, 1.0)


def agents_needed(
    arrivals_per_min: np.ndarray | float,
    service_min: float,
    within_min: float,
    target: float,
    patience_min: float | None = None,
) -> np.ndarray:
    """Fewest clinicians so that at least ``target`` of calls are answered within ``within_min``.

    Zero arrivals need zero clinicians. ``patience_min=None``: nobody hangs up (Erlang C); otherwise
    Erlang A (:func:`erlang_a`), where a call that hangs up is not answered in time. Vectorised: the
    Erlang B recursion runs once up to the largest answer, and each cell keeps the first ``c`` that
    meets the target.
    """
    if not 0 < target < 1:
        raise ValueError(f"target service level must be between 0 and 1, got {target}")
    if patience_min is not None:
        return _agents_needed_a(
            np.asarray(arrivals_per_min, dtype=float), service_min, within_min, target, patience_min
        )
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


def _agents_needed_a(lam, service_min, within_min, target, patience_min) -> np.ndarray:
    """Erlang A staffing by bisection between two bounds. Below: clinicians serve at most
    ``c / load`` of the calls, so ``target`` needs ``c >= target * load``. Above: the fewest with
    which, by Erlang C, ``target`` of calls find a clinician free; callers who hang up only shorten
    the queue, so with them at least as many find one free. The share answered in time rises with
    ``c``, so the bisection finds the fewest that meet the target."""
    lam = np.asarray(lam, dtype=float)
    shape, lam = lam.shape, lam.ravel()
    load = lam * service_min
    low = np.maximum(np.ceil(target * load - 1e-9), 1).astype(int) - 1  # does not meet the target
    high = agents_needed(lam, service_min, 0.0, target)  # meets it (0 for no calls)
    open_ = (lam > 0) & (high - low > 1)
    while open_.any():
        middle = (low + high) // 2
        answered, _ = erlang_a(middle[open_], lam[open_], service_min, within_min, patience_min)
        met = np.zeros(lam.shape, dtype=bool)
        met[open_] = answered >= target
        high = np.where(open_ & met, middle, high)
        low = np.where(open_ & ~met, middle, low)
        open_ &= high - low > 1
    return high.reshape(shape)
