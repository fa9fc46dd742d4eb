"""Forecasts of the coming weeks (new leads, revenue) by additive Holt-Winters exponential smoothing, ETS(A,A,A)
(Hyndman & Athanasopoulos, Forecasting: Principles and Practice, 3rd ed., §8.3), or Holt's linear trend,
ETS(A,A,N) (§8.2), when the history holds fewer than two seasons.

Why not statsmodels' ExponentialSmoothing: it would bring numpy, scipy, pandas and patsy (about 150 MB) into
crm-core's image for a few dozen weekly points; the recursions below are the textbook's, a dozen lines, and the
tests hold them to a synthetic seasonal series. The smoothing parameters are chosen by least squares of the
one-step errors over a grid (alpha, beta, gamma in 0.05 … 0.95, beta <= alpha, gamma <= 1 - alpha); the states
start from the first two seasons (their means give level and trend, the first season less that line the seasonal
states). The prediction interval is the point forecast ± z * sigma_h, sigma_h from the textbook's Table 8.8 (the
variance of ETS(A,A,A) h steps ahead) and sigma squared the mean squared one-step error.

The back-test error: the model is fitted again without the last ``holdout`` weeks and its forecast of them is
compared with what happened (mean absolute error, and the mean absolute percentage error over weeks that were
not zero).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

GRID = (0.05, 0.2, 0.4, 0.6, 0.8, 0.95)
Z = {80: 1.2816, 95: 1.96}


@dataclass(frozen=True)
class Fit:
    alpha: float
    beta: float
    gamma: float
    season: int  # 0: no seasonal part (Holt's linear trend)
    level: float
    trend: float
    seasonals: list[float]  # the last `season` seasonal states, oldest first
    sigma2: float

    def point(self, h: int) -> float:
        s = self.seasonals[(h - 1) % self.season] if self.season else 0.0
        return self.level + h * self.trend + s

    def variance(self, h: int) -> float:
        """Table 8.8: ETS(A,A,A) (gamma and its terms drop out for ETS(A,A,N))."""
        a, b, g, m = self.alpha, self.beta, self.gamma, self.season
        var = 1 + (h - 1) * (a * a + a * b * h + b * b * h * (2 * h - 1) / 6)
        if m:
            k = (h - 1) // m
            var += g * k * (2 * a + g + b * m * (k + 1))
        return self.sigma2 * var


def _run(y: list[float], alpha: float, beta: float, gamma: float, m: int) -> tuple[float, Fit]:
    """The recursions over y; returns the sum of squared one-step errors and the final states."""
    if m:
        # the first season's mean sits at its middle; the trend is the step between the first two seasons' means;
        # each seasonal state is the first season's value less that line, and the level is the line at its end
        first, second = sum(y[:m]) / m, sum(y[m : 2 * m]) / m
        trend = (second - first) / m
        middle = (m - 1) / 2
        seasonals = [y[i] - (first + trend * (i - middle)) for i in range(m)]
        level, start = first + trend * middle, m
    else:
        level, trend, seasonals, start = y[0], y[1] - y[0], [], 1
    sse, n = 0.0, 0
    for t in range(start, len(y)):
        s = seasonals[t % m] if m else 0.0
        error = y[t] - (level + trend + s)
        sse += error * error
        n += 1
        new_level = level + trend + alpha * error
        trend = trend + beta * error  # the error-correction form (FPP3 §8.3)
        if m:
            seasonals[t % m] = s + gamma * error
        level = new_level
    # the seasonal state for step h ahead of the last point t = len(y) - 1 is seasonals[(len(y) + h - 1) % m]
    ordered = [seasonals[(len(y) + i) % m] for i in range(m)] if m else []
    sigma2 = sse / max(n, 1)
    return sse, Fit(alpha, beta, gamma, m, level, trend, ordered, sigma2)


def fit(y: list[float], season: int) -> Fit:
    """The least-squares fit on the grid (seasonal only with two seasons of history, else Holt's)."""
    m = season if season > 1 and len(y) >= 2 * season else 0
    if len(y) < 3:
        mean = sum(y) / len(y) if y else 0.0
        return Fit(0.5, 0.05, 0.0, 0, mean, 0.0, [], 0.0)
    gammas = GRID if m else [0.0]
    candidates = (
        _run(y, alpha, beta, gamma, m)
        for alpha, beta, gamma in itertools.product(GRID, GRID, gammas)
        if beta <= alpha and gamma <= 1 - alpha  # the usual admissible region
    )
    return min(candidates, key=lambda c: c[0])[1]


@dataclass(frozen=True)
class Forecast:
    points: list[float]
    lower: list[float]
    upper: list[float]
    mae: float | None
    mape: float | None
    method: str


def forecast(y: list[float], horizon: int, season: int, level: int = 80, holdout: int = 4) -> Forecast:
    """The next ``horizon`` values with a ``level`` % prediction interval, and the back-test error over the last
    ``holdout`` values. Counts and money are never below zero: the bounds are clipped at zero."""
    model = fit(y, season)
    z = Z[level]
    points = [model.point(h) for h in range(1, horizon + 1)]
    spread = [z * math.sqrt(model.variance(h)) for h in range(1, horizon + 1)]
    mae = mape = None
    if len(y) > holdout + 3:
        past = fit(y[:-holdout], season)
        guesses = [past.point(h) for h in range(1, holdout + 1)]
        actual = y[-holdout:]
        mae = sum(abs(a - g) for a, g in zip(actual, guesses, strict=True)) / holdout
        pct = [abs(a - g) / abs(a) for a, g in zip(actual, guesses, strict=True) if a]
        mape = sum(pct) / len(pct) if pct else None
    method = f"Holt-Winters additive, season {model.season} weeks" if model.season else "Holt linear trend"
    return Forecast(
        [max(p, 0.0) for p in points],
        [max(p - s, 0.0) for p, s in zip(points, spread, strict=True)],
        [max(p + s, 0.0) for p, s in zip(points, spread, strict=True)],
        mae,
        mape,
        f"{method} (alpha {model.alpha}, beta {model.beta}, gamma {model.gamma})",
    )
