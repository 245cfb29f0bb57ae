"""From estimates to a decision, with a few stand-alone trainings as evidence.

* :class:`Surrogate`: a Bayesian linear model of a strategy's stand-alone accuracy from its
  shared-weight estimate and its unit at each layer. Its prior says "the estimate is right up to
  an offset", so with no anchor it ranks like the estimates; each stand-alone result (an
  *anchor*) corrects it, with an uncertainty. The prior scale and the noise are chosen by the
  evidence (the marginal likelihood) on a small grid.
* :func:`choose_anchors`: the strategies a run's trust figure is measured on, chosen by the tool
  (spread over the range of the estimates), never by the user, whose designs are a biased sample.
* :func:`recommend`: with a budget of ``B`` stand-alone trainings, verify first where the surrogate
  is high or unsure (an upper confidence bound), refit after each, and return the best verified
  strategy with its evidence.
* :func:`simulate_recommend`, :func:`interval_coverage` and :func:`trust_flag_rates`: the same
  policy run against a truth table (each "training" looks up one seed of the table), for
  regret-vs-budget curves, the coverage of the surrogate's intervals and how often a run's trust
  figure calls its ranking low.

No torch: the trainings are a function the caller passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["Surrogate", "choose_anchors", "interval_coverage", "recommend", "simulate_recommend", "trust_flag_rates",
           "unit_features"]

#: prior standard deviations of the intercept (offset of the estimates) and of the estimate's slope around 1
OFFSET_SD, SLOPE_SD = 0.3, 0.5
#: the grids the evidence chooses from: observation noise and the prior scale of a unit's effect at a layer
NOISE_GRID = (0.01, 0.02, 0.04, 0.08)
UNIT_SD_GRID = (0.005, 0.02, 0.05)


def _units_of(code: str) -> tuple[str, ...]:
    """The per-layer unit letters of a strategy code (``densenet-tiny[2D]:ss33bbss`` -> s,s,3,...)."""
    return tuple(code.rsplit(":", 1)[-1])


def unit_features(codes: Sequence[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """One-hot (layer, unit) columns of ``codes``; returns the matrix and the column names."""
    units = [_units_of(c) for c in codes]
    if len({len(u) for u in units}) > 1:
        raise ValueError("strategies of different depths cannot share one surrogate")
    cols = sorted({(i, u) for us in units for i, u in enumerate(us)})
    index = {c: j for j, c in enumerate(cols)}
    x = np.zeros((len(codes), len(cols)))
    for r, us in enumerate(units):
        for i, u in enumerate(us):
            x[r, index[i, u]] = 1.0
    return x, cols


class Surrogate:
    """Stand-alone accuracy ~ offset + slope * estimate + sum over layers of the unit's effect.

    ``codes`` and ``estimates`` describe every candidate (anchors and the rest); :meth:`fit`
    takes the anchors' measured accuracies; :meth:`predict` gives the posterior mean and the
    predictive standard deviation of one stand-alone training of each candidate."""

    def __init__(self, codes: Sequence[str], estimates: Sequence[float]):
        self.codes = list(codes)
        est = np.asarray(estimates, float)
        if len(est) != len(self.codes) or not np.isfinite(est).all():
            raise ValueError("give one finite estimate per strategy")
        onehot, self.columns = unit_features(self.codes)
        self.x = np.column_stack([np.ones(len(est)), est, onehot])
        self.index = {c: i for i, c in enumerate(self.codes)}
        self.prior_mean = np.zeros(self.x.shape[1])
        self.prior_mean[1] = 1.0  # the estimate is right up to an offset
        self.fit({})

    def _prior_var(self, unit_sd: float) -> np.ndarray:
        v = np.full(self.x.shape[1], unit_sd ** 2)
        v[0], v[1] = OFFSET_SD ** 2, SLOPE_SD ** 2
        return v

    def _posterior(self, rows: np.ndarray, y: np.ndarray, noise: float, unit_sd: float):
        prior_var = self._prior_var(unit_sd)
        x = self.x[rows]
        precision = np.diag(1.0 / prior_var) + x.T @ x / noise ** 2
        cov = np.linalg.inv(precision)
        mean = cov @ (self.prior_mean / prior_var + x.T @ y / noise ** 2)
        return mean, cov

    def _log_evidence(self, rows: np.ndarray, y: np.ndarray, noise: float, unit_sd: float) -> float:
        x = self.x[rows]
        c = x @ np.diag(self._prior_var(unit_sd)) @ x.T + noise ** 2 * np.eye(len(y))
        r = y - x @ self.prior_mean
        sign, logdet = np.linalg.slogdet(c)
        return float(-0.5 * (r @ np.linalg.solve(c, r) + logdet + len(y) * math.log(2 * math.pi)))

    def fit(self, anchors: Mapping[str, float]) -> Surrogate:
        """Condition on ``{code: measured stand-alone accuracy}`` (codes among the candidates)."""
        unknown = [c for c in anchors if c not in self.index]
        if unknown:
            raise ValueError(f"anchors {unknown[:3]} are not among the surrogate's strategies")
        rows = np.array([self.index[c] for c in anchors], dtype=int)
        y = np.asarray(list(anchors.values()), float)
        if len(y) >= 2:
            grid = [(n, u) for n in NOISE_GRID for u in UNIT_SD_GRID]
            self.noise, self.unit_sd = max(grid, key=lambda g: self._log_evidence(rows, y, *g))
        else:  # nothing to choose by: the middle of the grids
            self.noise, self.unit_sd = NOISE_GRID[1], UNIT_SD_GRID[1]
        self.anchors = dict(anchors)
        self.mean, self.cov = self._posterior(rows, y, self.noise, self.unit_sd)
        return self

    def predict(self, codes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and predictive SD (one stand-alone training) of ``codes`` (default: all)."""
        rows = np.arange(len(self.codes)) if codes is None else np.array([self.index[c] for c in codes], dtype=int)
        x = self.x[rows]
        var = np.einsum("ij,jk,ik->i", x, self.cov, x) + self.noise ** 2
        return x @ self.mean, np.sqrt(var)


def choose_anchors(estimates: Mapping[str, float], k: int, *, seed: int = 0) -> list[str]:
    """``k`` strategies spread over the range of the estimates: the candidates sorted by estimate
    and cut into ``k`` equal strata, one drawn at random from each (the tool chooses, so the
    anchors are not the biased sample of designs a user would pick)."""
    codes = sorted(estimates, key=lambda c: (estimates[c], c))
    if not 1 <= k <= len(codes):
        raise ValueError(f"k must lie in 1..{len(codes)} (the candidates), got {k}")
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(codes), k + 1).round().astype(int)
    return [codes[int(rng.integers(a, b))] for a, b in zip(edges[:-1], edges[1:])]


def recommend(estimates: Mapping[str, float], train: Callable[[str], float], budget: int, *, kappa: float = 1.0,
              anchors: Mapping[str, float] | None = None, on_result: Callable[[str, float], None] | None = None) -> dict:
    """Spend ``budget`` stand-alone trainings (``train(code) -> accuracy``) on the strategies the
    surrogate rates highest or least surely (mean + ``kappa`` x SD), refitting after each, and
    return the best verified one with its evidence. ``anchors``: results known already (count
    against nothing). With ``budget=0`` and no anchors it is the top estimate, unverified."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0 stand-alone trainings, got {budget}")
    codes = list(estimates)
    sur = Surrogate(codes, [estimates[c] for c in codes])
    known = dict(anchors or {})
    sur.fit(known)
    verified: list[str] = []
    for _ in range(min(budget, len(codes) - len(known))):
        mean, sd = sur.predict()
        score = np.where([c in known for c in codes], -np.inf, mean + kappa * sd)
        pick = codes[int(np.argmax(score))]
        known[pick] = float(train(pick))
        verified.append(pick)
        if on_result is not None:
            on_result(pick, known[pick])
        sur.fit(known)
    mean, sd = sur.predict()
    if known:  # the best strategy with stand-alone evidence, judged by the posterior
        pool = [i for i, c in enumerate(codes) if c in known]
    else:
        pool = list(range(len(codes)))
    best = codes[max(pool, key=lambda i: mean[i])]
    i = codes.index(best)
    return {"best": best, "estimate": float(estimates[best]), "predicted": float(mean[i]),
            "interval": (float(mean[i] - 1.96 * sd[i]), float(mean[i] + 1.96 * sd[i])),
            "standalone": known.get(best), "verified": verified, "results": known,
            "noise": sur.noise, "unit_sd": sur.unit_sd}


def simulate_recommend(truth: Mapping[str, Sequence[float]], estimates: Mapping[str, float],
                       budgets: Sequence[int], *, repeats: int = 20, seed: int = 0, kappa: float = 1.0) -> dict:
    """:func:`recommend` against a truth table. Where every strategy has two or more seeds, each
    repeat holds one seed back: a "training" draws one of the other seeds, and the returned
    strategy is judged on the held-back seed against the strategy the other seeds' mean ranks
    best, judged on the same seed (the noise that chose either does not also judge it; a
    returned strategy that beats the reference there counts as a negative regret; as the
    reference is itself a noisy pick, this understates the regret against the true best, and
    ``mean_vs_seed_max``, against the best result of the held-back seed, overstates it). Otherwise
    trainings and scoring share the seeds (``"held_back": False``: optimistic).
    Regret: the accuracy the returned strategy gives up against the best, in units of the table's
    seed SD. ``{budget: {"regret": [...], "mean", "sd", "found_best"}}`` over ``repeats`` runs."""
    codes = [c for c in estimates if c in truth and np.isfinite(np.asarray(truth[c], float)).sum() >= 1]
    if len(codes) < 3:
        raise ValueError("fewer than 3 strategies have both an estimate and a stand-alone result")
    table = np.array([np.asarray(truth[c], float) for c in codes])  # strategy x seed (NaN: not trained)
    table = table[:, np.isfinite(table).any(0)]  # a seed that no strategy has is not one of this setting's
    from workbench.studies.agreement import seed_sd as _seed_sd

    seed_sd = _seed_sd(table)
    held_back = bool(np.isfinite(table).all() and table.shape[1] >= 2)
    est = {c: estimates[c] for c in codes}
    out = {}
    for b in budgets:
        regrets, vs_max, found = [], [], 0
        for r in range(repeats):
            rng = np.random.default_rng([seed, b, r])
            if held_back:
                h = int(rng.integers(table.shape[1]))
                score = table[:, h]
                pool = {c: np.delete(table[i], h) for i, c in enumerate(codes)}
                # the reference: the best strategy by the other seeds' mean, judged on the held-back
                # seed like the returned one (the maximum of one seed's results is inflated by noise)
                ref = score[int(np.argmax(np.delete(table, h, axis=1).mean(1)))]
            else:
                score = np.array([np.nanmean(v) for v in table])
                pool = {c: v[np.isfinite(v)] for c, v in zip(codes, table)}
                ref = score.max()
            res = recommend(est, lambda c, rng=rng, pool=pool: float(rng.choice(pool[c])), b, kappa=kappa)
            gap = float(ref - score[codes.index(res["best"])])
            regrets.append(gap / seed_sd if seed_sd > 0 else float("nan"))
            # pessimistic bound: against the best result of the held-back seed itself
            vs_max.append(float(score.max() - score[codes.index(res["best"])]) / seed_sd if seed_sd > 0
                          else float("nan"))
            found += gap <= 0
        out[int(b)] = {"regret": regrets, "mean": float(np.mean(regrets)), "sd": float(np.std(regrets)),
                       "found_best": found / repeats, "mean_vs_seed_max": float(np.mean(vs_max))}
    return {"budgets": out, "seed_sd": seed_sd, "strategies": len(codes), "held_back": held_back}


def interval_coverage(truth: Mapping[str, Sequence[float]], estimates: Mapping[str, float], k: int, *,
                      repeats: int = 20, level: float = 0.9, seed: int = 0) -> dict:
    """How often the surrogate's ``level`` prediction interval, fitted on ``k`` tool-chosen anchors
    (one random seed's result each), holds a new stand-alone training (one random seed) of each
    strategy that was not an anchor: the coverage the per-run trust figure claims, measured."""
    from statistics import NormalDist

    codes = [c for c in estimates if c in truth and np.isfinite(np.asarray(truth[c], float)).any()]
    acc = {c: np.asarray(truth[c], float)[np.isfinite(np.asarray(truth[c], float))] for c in codes}
    if not 1 <= k < len(codes):
        raise ValueError(f"k must lie in 1..{len(codes) - 1} (strategies left to check), got {k}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    hits, total, widths = 0, 0, []
    for r in range(repeats):
        rng = np.random.default_rng([seed, k, r])
        est = {c: estimates[c] for c in codes}
        anchors = choose_anchors(est, k, seed=int(rng.integers(1 << 31)))
        sur = Surrogate(codes, [est[c] for c in codes]).fit({c: float(rng.choice(acc[c])) for c in anchors})
        rest = [c for c in codes if c not in anchors]
        mean, sd = sur.predict(rest)
        y = np.array([float(rng.choice(acc[c])) for c in rest])
        hits += int((np.abs(y - mean) <= z * sd).sum())
        total += len(rest)
        widths.append(float(np.mean(2 * z * sd)))
    return {"level": level, "anchors": k, "coverage": hits / total, "checked": total,
            "mean_width": float(np.mean(widths)), "mean_half_width": float(np.mean(widths)) / 2, "repeats": repeats}


def trust_flag_rates(truth: Mapping[str, Sequence[float]], estimates: Mapping[str, float], k: int = 8, *,
                     repeats: int = 20, seed: int = 0, bootstrap: int = 2000) -> dict:
    """How a run's trust figure (``workbench trust``: ``k`` tool-chosen anchors, one stand-alone
    training each) judges these estimates, simulated against a truth table: the share of draws in
    which it says ``low`` (anchor tau below :data:`~workbench.studies.trust_record.LOW_TAU`),
    ``unproven`` or ``ok`` (:func:`~workbench.studies.trust_record.trust_verdict`), the mean anchor
    tau, and the tau of the estimates against the seed mean of every strategy (what the figure
    stands for). As ``workbench trust``: test top-1 of one seed per anchor, tau on the tool-chosen
    anchors alone, the same bootstrap; strategies without a finite estimate are left out."""
    from scipy.stats import kendalltau

    from workbench.studies.agreement import rank_metrics
    from workbench.studies.trust_record import trust_verdict

    codes = [c for c in estimates if c in truth and np.isfinite(np.asarray(truth[c], float)).any()
             and np.isfinite(estimates[c])]
    acc = {c: np.asarray(truth[c], float)[np.isfinite(np.asarray(truth[c], float))] for c in codes}
    if not 3 <= k <= len(codes):
        raise ValueError(f"k must lie in 3..{len(codes)} (strategies with a truth), got {k}")
    est = {c: estimates[c] for c in codes}
    levels, taus = [], []
    for r in range(repeats):
        rng = np.random.default_rng([seed, k, r, 7])
        anchors = choose_anchors(est, k, seed=int(rng.integers(1 << 31)))
        y = np.array([float(rng.choice(acc[c])) for c in anchors])
        m = rank_metrics(np.array([est[c] for c in anchors]), y, bootstrap=bootstrap, seed=r)
        t = {"tau": m["tau"], "tau_ci": list(m["tau_ci"]), "strategies": k, "source": "anchors"}
        levels.append(trust_verdict(t)[0])
        taus.append(t["tau"])
    full = float(kendalltau([est[c] for c in codes], [acc[c].mean() for c in codes]).statistic)
    taus = np.asarray(taus, float)
    taus = taus[np.isfinite(taus)]  # undefined taus count as "low" above, not in the mean
    return {"anchors": k, "repeats": repeats, "full_tau": full,
            "anchor_tau_mean": float(np.mean(taus)) if len(taus) else float("nan"),
            "anchor_tau_sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else float("nan"),
            **{level: levels.count(level) / repeats for level in ("low", "unproven", "ok")}}
