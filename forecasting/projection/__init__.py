"""Ten-year demand projections under population scenarios, for planners.

Annual calls in an area are the sum over age bands of population x per-capita rate, with the rate
and its trend estimated from history (:mod:`.rates`); a daily shape estimated from history turns
years into days (:mod:`.daily_shape`); a Monte Carlo over rate, trend, population and daily noise
gives fans and peak days (:mod:`.simulate`, :mod:`.summaries`); category and disposition splits come
from the scenario (:mod:`.scenario`, :mod:`.splits`).

Library modules take and return numpy/pandas objects and import neither Hydra nor MLflow. The
pipeline layer is :mod:`.pipeline` (MLflow logging, registration) with the served model in
:mod:`.pyfunc_model`; the Hydra entry point is :mod:`forecasting.project`.
"""
