"""The probability space finds the known answer on synthetic data (3 seeds out of 3).

Appearance data must come out spatial, motion data temporal; the S-only strategy (a frame-level
network on the 'spatial' scaffold) must be at chance on motion; nothing may collapse. The
criteria are :data:`workbench.known_answer.CRITERIA`; ``workbench template check`` runs more seeds.
"""

import json

from workbench.studies.known_answer import CRITERIA, known_answer_study


def test_probability_space_finds_the_known_answer(tmp_path):
    res = known_answer_study([0, 1, 2], tmp_path, jobs=2)
    failures = []
    for row in res["per_seed"]:
        for c, ok in row["criteria"].items():
            if not ok:
                failures.append(f"seed {row['seed']}: {CRITERIA[c]}")
        a, m = row["appearance"], row["motion"]
        # every number comes from a real run folder
        for r in (a, m):
            assert r["n_eval"] >= 200
            assert 0.0 <= r["s_only"] <= 1.0
    summary = json.dumps([{k: row[k]["expected_temporal_layers"] for k in ("appearance", "motion")}
                          for row in res["per_seed"]])
    assert not failures, "\n".join(failures) + "\n" + summary
    assert (tmp_path / "known_answer.json").is_file()
    assert (tmp_path / "motion-0" / "estimates.nc").is_file()
