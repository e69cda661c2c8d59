"""Prompt suites for the arena: the scene grammar's evaluation set (with its categories) or a text file.

A file holds one prompt a line; a line ``category<TAB>prompt`` gives the prompt a category, so the
leaderboard can be split by it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from genimg import params as P
from genimg.config import settings
from genimg.errors import GenimgError

GRAMMAR = "grammar"
MAX_SUITE_FILE_BYTES = 1 << 20


def grammar_suite() -> list[tuple[str, str | None]]:
    """(prompt, category) for the grammar's 64 evaluation scenes; the category is the scene kind
    (single, position, count, relation)."""
    from genimg.scenes.grammar import eval_prompt_set

    return [(scene.caption, scene.kind) for scene in eval_prompt_set()]


def file_suite(path: str | Path) -> list[tuple[str, str | None]]:
    """(prompt, category or None) from a UTF-8 file, one prompt a line, optionally ``category<TAB>prompt``.

    Raises GenimgError for a missing, too large, binary or empty file, or a bad prompt.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise GenimgError(f"prompt file {path.name!r} not found") from None
    if size > MAX_SUITE_FILE_BYTES:
        raise GenimgError(f"prompt file {path.name} is {size} bytes; the limit is {MAX_SUITE_FILE_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GenimgError(f"prompt file {path.name} is not UTF-8 text: write one prompt a line") from None
    suite = []
    for line in text.splitlines():
        if not line.strip():
            continue
        category, tab, prompt = line.partition("\t")
        if not tab:
            category, prompt = "", line
        suite.append((P.check_prompt(prompt, settings().limits), category.strip()[:64] or None))
    if not suite:
        raise GenimgError(f"prompt file {path.name} holds no prompts: write one prompt a line")
    return suite


def suite(source: str | Path) -> list[tuple[str, str | None]]:
    """The suite named ``source``: "grammar", or the path of a prompt file."""
    return grammar_suite() if str(source).strip().lower() == GRAMMAR else file_suite(source)


def draw(source: str | Path) -> tuple[str, str | None]:
    """One (prompt, category) drawn at random from a suite."""
    prompts = suite(source)
    return prompts[secrets.randbelow(len(prompts))]
