"""The emoji world: a scene grammar of OpenMoji emoji and its classical-vision evaluator (a runtime layer).

- :mod:`genimg.emoji.vocabulary`: the emoji, their CLDR names and synonyms, their colour glyphs;
- :mod:`genimg.emoji.grammar`: captioned scenes of one to three emoji (sizes, positions, counts,
  relations, coloured backgrounds), rendered with Pillow, deterministic by seed;
- :mod:`genimg.emoji.prompts`: a caption parsed back into what it asks for;
- :mod:`genimg.emoji.evaluator`: the background and the emoji found in an image, an image checked
  against its caption, the evaluator validated on ground-truth and degraded renders.

Nothing here imports torch or a model. The glyphs are OpenMoji's (CC BY-SA 4.0): renders are adaptations.
"""
