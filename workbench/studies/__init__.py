"""Studies built on the engine (light at import: no torch until a study runs).

``pipeline`` (train a template or a strategy into a run folder), ``mainjob`` (the main job),
``rank`` (do the estimates rank like stand-alone training?), ``fusionbench`` (the stand-alone
truth table), ``compare`` (the literature comparison), ``known_answer`` (the synthetic check).
"""
