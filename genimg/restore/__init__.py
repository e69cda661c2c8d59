"""Restoration: degrade a clean image on purpose, restore it with several methods, score them.

- :mod:`genimg.restore.degrade` — the degradation spec language and its seeded operations;
- :mod:`genimg.restore.classical` — scikit-image / OpenCV / Pillow restorers (the ``classical`` backend);
- :mod:`genimg.restore.ncnn_models` — Real-ESRGAN and waifu2x run through ``ncnn`` on the CPU, tiled;
- :mod:`genimg.embedded.dae` — the project's own small denoising autoencoder (trained here);
- :mod:`genimg.restore.methods` — catalog entries → runnable methods;
- :mod:`genimg.restore.bench` — :func:`bench_restore` over the bundled examples.

The task function is :func:`genimg.tasks.restore.restore`.
"""
