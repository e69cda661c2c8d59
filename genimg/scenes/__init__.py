"""The scene grammar and its classical-vision prompt-faithfulness evaluator (a runtime layer).

- :mod:`genimg.scenes.grammar`: captioned synthetic scenes (training data and evaluation prompts);
- :mod:`genimg.scenes.prompts`: a caption parsed back into what it asks for;
- :mod:`genimg.scenes.detection`: the background and the objects found in an image;
- :mod:`genimg.scenes.evaluator`: an image checked against its caption, sets scored, the
  evaluator validated on ground truth.

Nothing here imports torch or a model: the embedded models are trained on and judged by
this package, and it depends on none of them.
"""
