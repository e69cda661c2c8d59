"""The arena: blind battles between models, votes, Bradley–Terry ratings, shared previews.

``ratings`` is pure (outcomes in, ratings out); ``store`` keeps battles, votes and previews in the
database (genimg.storage); ``prompts`` reads prompt suites. The use cases that generate images
are in genimg.tasks.arena.
"""
