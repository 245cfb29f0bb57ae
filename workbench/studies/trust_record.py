"""The trust record of a template run: the headline of its latest rank study (``trust.json``), its
health warnings (``health.json``) and the one-line summary that figures, widgets and reports show.
No torch: notebooks and figure titles read it."""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["LOW_TAU", "TRUST_FILE", "display_path", "health_suffix", "read_health", "read_trust", "trust_line",
           "trust_short", "trust_verdict", "write_trust"]

TRUST_FILE = "trust.json"  # in a template run folder: the latest study's headline figures
#: below this Kendall tau a ranking of the estimates is not to be acted on without stand-alone checks
LOW_TAU = 0.4


def write_trust(template_run, ds, predictor: str, out: Path) -> None:
    from workbench.runs import atomic_write_bytes

    i = list(ds["predictor"].values).index(predictor)
    trust = {"predictor": predictor, "tau": float(ds["tau"].values[i]),
             "tau_ci": [float(ds["tau_lo"].values[i]), float(ds["tau_hi"].values[i])],
             "rho": float(ds["rho"].values[i]), "strategies": int(ds.sizes["strategy"]),
             "seeds": int(ds.sizes["seed"]), "study": str(out)}
    atomic_write_bytes(Path(template_run) / TRUST_FILE, (json.dumps(trust, indent=2) + "\n").encode())


def read_trust(run) -> dict | None:
    """The trust figure of a template run (its latest rank study), or None: unvalidated."""
    path = Path(run) / TRUST_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def read_health(run) -> list[dict]:
    """The template's problems found after training (``RUN/health.json``; [] when none or unchecked)."""
    path = Path(run) / "health.json"
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("template", []))
    except (json.JSONDecodeError, AttributeError):
        return [{"problem": "unreadable-health", "text": f"{path} is not valid JSON", "remedy": "retrain the template"}]


def health_suffix(run, short: bool = False) -> str:
    probs = read_health(run)
    if not probs:
        return ""
    names = ", ".join(p["problem"] for p in probs)
    return f"; TEMPLATE PROBLEMS: {names}" if short else \
        f"; the template has problems ({names}): " + " / ".join(p["text"] for p in probs)


def display_path(path) -> str:
    """``path`` as the user would type it from where they work: relative to the current folder
    when it lies below it, else as given (never an absolute path that wraps mid-word in titles)."""
    import os

    p = Path(path)
    try:
        return os.path.relpath(p.resolve(), Path.cwd()) if p.resolve().is_relative_to(Path.cwd()) else str(p)
    except (OSError, ValueError):
        return str(p)


def trust_verdict(trust: dict) -> tuple[str, str]:
    """``(level, text)`` for a trust figure, against :data:`LOW_TAU`:

    * ``low``: the measured tau lies below it, or is undefined (the anchors' estimates or
      results do not vary: nothing was shown to rank);
    * ``unproven``: the tau is above it but the lower end of its 95% interval lies below it (8
      anchors rarely settle it: their tau has an SD of about 0.2-0.3);
    * ``ok``: the lower end of the 95% interval lies above it."""
    tau, lo = float(trust["tau"]), float(trust["tau_ci"][0])
    n = trust["strategies"]
    anchors = trust.get("source") == "anchors"
    if not math.isfinite(tau):
        return "low", ("LOW: no rank agreement could be measured (the estimates or the stand-alone results of the "
                       f"{n} {'anchors' if anchors else 'strategies'} do not vary); treat the ranking as untested")
    if tau < LOW_TAU:
        return "low", (f"LOW rank agreement (tau {tau:.2f}, below {LOW_TAU}): do not pick a strategy from these "
                       "estimates without stand-alone checks (`workbench recommend --budget 8`); remedies: another "
                       "template seed, a longer warm-up, an ensemble of template seeds")
    if not math.isfinite(lo) or lo < LOW_TAU:
        more = ("more anchors narrow it (`workbench trust --anchors 16`: about 16 new trainings)" if anchors
                else "a study over more strategies or seeds narrows it")
        return "unproven", f"{n} {'anchors' if anchors else 'strategies'} cannot rule out a tau below {LOW_TAU}; {more}"
    return "ok", f"the 95% interval of the rank agreement lies above {LOW_TAU}"


def trust_line(run) -> str:
    """One line for tables: the run's tau with its interval, or an 'unvalidated' mark, and the
    template's problems when it has any (:mod:`workbench.template.health`)."""
    t = read_trust(run)
    if t is None:
        return (f"estimates UNVALIDATED: not yet checked against stand-alone training (run `workbench trust --run "
                f"{display_path(run)} --out DIR`: 8 tool-chosen stand-alone anchors)") + health_suffix(run)
    lo, hi = t["tau_ci"]
    if t.get("source") == "anchors":
        return (f"estimates checked on {t['strategies']} tool-chosen stand-alone anchors: Kendall tau {t['tau']:.2f} "
                f"[95% CI {lo:.2f}, {hi:.2f}]; model error of a prediction about ±{t['interval_90']:.3f} (90%); "
                f"{trust_verdict(t)[1]}") + health_suffix(run)
    return (f"estimates checked against stand-alone training: Kendall tau {t['tau']:.2f} [95% CI {lo:.2f}, {hi:.2f}] "
            f"over {t['strategies']} strategies ({t['predictor']}); {trust_verdict(t)[1]}") + health_suffix(run)


def trust_short(run) -> str:
    """A figure-title version of :func:`trust_line`."""
    t = read_trust(run)
    if t is None:
        return "estimates UNVALIDATED (no stand-alone check)" + health_suffix(run, short=True)
    lo, hi = t["tau_ci"]
    what = "anchors" if t.get("source") == "anchors" else "strategies"
    level = trust_verdict(t)[0]
    mark = {"low": f"; LOW (below {LOW_TAU})", "unproven": f"; not shown above {LOW_TAU}", "ok": ""}[level]
    return (f"rank agreement with stand-alone: Kendall tau {t['tau']:.2f} [{lo:.2f}, {hi:.2f}], "
            f"{t['strategies']} {what}{mark}") + health_suffix(run, short=True)
