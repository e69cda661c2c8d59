"""Visual question answering (a runtime layer beside the scene grammar it builds on).

- :mod:`genimg.vqa.questions`: a question parsed into its type (colour, shape, count, position,
  background, relation) and the objects it names;
- :mod:`genimg.vqa.scene_qa`: the offline answerer (catalog id ``genimg-scene-qa``) over the scene
  grammar's classical-vision detector, answering from pixels only;
- :mod:`genimg.vqa.generation`: questions with known answers generated from a prompt, and answers
  compared with them (the question-based faithfulness metric, TIFA-style).

No torch and no model here: the VLM answerers are loaded by :mod:`genimg.models.vlm_backend`.
"""
