"""The spec room: one YAML file turned into typed settings, before anything runs.

    schema      the YAML spec -> SweepSpec (sections, search parameters, every check; SpecError)
    space       the search space for Optuna (define-by-run, conditional parameters) and a trial's config
    reference   docs/SPEC.md, generated from the declarations the parser checks against

May import: trainables (the training config it fills in) and pyyaml; Optuna only inside `space`'s
functions. Nothing else of tuner: every other room reads the spec, the spec reads none of them.
"""
