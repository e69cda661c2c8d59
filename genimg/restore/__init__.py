"""Restoration: degrade a clean image on purpose, restore it with several methods, score them.

- :mod:`genimg.restore.degrade` — the degradation spec language and its seeded operations;
- :mod:`genimg.restore.classical` — scikit-image / OpenCV / Pillow restorers and the DAE (the ``classical`` backend;
  the DAE's network is :mod:`genimg.embedded.dae`);
- :mod:`genimg.restore.ncnn_models` — Real-ESRGAN and waifu2x run through ``ncnn`` on the CPU, tiled;
- :mod:`genimg.restore.methods` — catalog entries → runnable methods (one runner per backend).

The task function is :func:`genimg.tasks.restore.restore`.
"""
