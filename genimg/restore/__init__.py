"""Restoration: degrade a clean image on purpose, restore it with several methods, score them.

- :mod:`genimg.restore.degrade` — the degradation spec language and its seeded operations;
- :mod:`genimg.restore.classical` — scikit-image / OpenCV / Pillow restorers (the ``classical`` backend);
- :mod:`genimg.restore.ncnn_models` — Real-ESRGAN and waifu2x run through ``ncnn`` on the CPU, tiled;
- :mod:`genimg.restore.dae` — the project's own small denoising autoencoder (trained here);
- :mod:`genimg.restore.registry` — catalog entries → runnable methods.

The task function is :func:`genimg.tasks.restore.restore`.
"""
