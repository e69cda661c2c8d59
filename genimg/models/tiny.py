"""Tiny random-weight diffusers pipelines (and a tiny VLM) built from configs, for plumbing tests and benchmarks.

They exercise the real loading code (``save_pretrained`` → ``AutoPipelineForText2Image
.from_pretrained``) offline. Never a product default: their images are noise.
"""

from __future__ import annotations

import json
import string
from pathlib import Path


def write_tiny_clip_tokenizer(folder: Path) -> None:
    """Write a small CLIP BPE vocabulary (characters + a few merges) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(string.ascii_lowercase + string.digits + ".,!?'-")
    tokens = ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("i", "n"), ("o", "n</w>"),
              ("e", "r"), ("c", "a"), ("ca", "t</w>"), ("r", "e"), ("d", "o"), ("do", "g</w>")]
    for left, right in merges:
        tokens.append(left + right)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")


def build_tiny_sd_pipeline(folder: str | Path, seed: int = 0, sample_size: int = 32):
    """Build a tiny Stable-Diffusion-shaped pipeline and save it to ``folder``; return the folder.

    UNet2DConditionModel + AutoencoderKL (factor 4) + CLIPTextModel + CLIP tokenizer +
    Euler scheduler, all random, ~1 MB of weights, safetensors.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size // 4, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1, norm_num_groups=8, sample_size=sample_size,
    )
    tok_dir = folder / "_tokenizer_src"
    write_tiny_clip_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer(vocab=str(tok_dir / "vocab.json"), merges=str(tok_dir / "merges.txt"),
                              model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    import shutil

    shutil.rmtree(tok_dir)
    return folder


# Words the tiny VLM's word-level tokenizer knows; anything else is <unk> (plumbing only).
_VLM_WORDS = ("what colour color is the circle square triangle star red green blue yellow purple orange white black "
              "background how many are there where left right top bottom yes no USER : ASSISTANT ?").split()
_VLM_TEMPLATE = ("{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
                 "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} ASSISTANT:"
                 "{% endif %}")


def build_tiny_vlm(folder: str | Path, seed: int = 0) -> Path:
    """Build a tiny random LLaVA (CLIP vision tower + Llama text model, 16-wide) with its processor (a word-level
    tokenizer built with the ``tokenizers`` library, a chat template) and save it to ``folder``; return the folder.

    Loads through the real answerer code (``AutoProcessor`` / ``AutoModelForImageTextToText``); its answers are
    random words.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor, PreTrainedTokenizerFast)

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor  # no torchvision needed
    except ImportError:  # older transformers: the PIL processor was the only one
        from transformers import CLIPImageProcessor as ImageProcessor

    folder = Path(folder)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<image>": 3, "<pad>": 4}
    vocab.update({w: len(vocab) + i for i, w in enumerate(dict.fromkeys(_VLM_WORDS))})
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    side, patch = 30, 6
    processor = LlavaProcessor(image_processor=ImageProcessor(size={"shortest_edge": side},
                                                              crop_size={"height": side, "width": side}),
                               tokenizer=tokenizer, patch_size=patch, vision_feature_select_strategy="default",
                               chat_template=_VLM_TEMPLATE, image_token="<image>", num_additional_image_tokens=1)
    torch.manual_seed(seed)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=side, patch_size=patch),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                                bos_token_id=1, eos_token_id=2, pad_token_id=4),
        image_token_index=3, vision_feature_layer=-1, vision_feature_select_strategy="default")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
