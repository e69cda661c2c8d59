"""Evaluations of models on prompt sets: inputs, per-image and per-set scoring, statistics, cell cache, reports.

The Evaluate task (:mod:`genimg.tasks.evaluate`) runs the cells; everything here is what it
uses and what its report says: :mod:`.inputs` (prompts, seeds, metric names), :mod:`.scoring`
(metrics per image and per model), :mod:`.statistics` (intervals, Pareto fronts),
:mod:`.cache` (cells on disk), :mod:`.fingerprint` (which weights made a cell),
:mod:`.references` (the grammar renders FD/KID compare with), :mod:`.results` (the result
types) and :mod:`.report` (the exported folder).
"""
