"""The project's own text-to-image models at run time (a runtime layer): networks, configs, pipelines, loaders.

- :mod:`genimg.embedded.text`: the frozen MiniLM text encoder every embedded model conditions on;
- :mod:`genimg.embedded.diffusion`: the latent diffusion model (configs, patch autoencoder,
  pipeline, loader; the few-step model is this pipeline with an LCM scheduler);
- :mod:`genimg.embedded.onnx_unet`: the UNet on ONNX Runtime;
- :mod:`genimg.embedded.gan` / :mod:`genimg.embedded.cvae`: the one-step GAN and conditional VAE.

No training code lives here (that is :mod:`genimg.training`), and no scene grammar (that is
:mod:`genimg.scenes`): loading and running a shipped model needs neither.
"""
