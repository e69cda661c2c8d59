"""The emoji world's vocabulary, scene grammar, renderer and caption parser (genimg.emoji)."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from genimg.emoji import grammar
from genimg.emoji.grammar import BACKGROUNDS, KINDS, EmojiObject, Scene, eval_prompt_set, render, scene_for_seed
from genimg.emoji.prompts import parse_prompt, spec_for_scene
from genimg.emoji.vocabulary import (
    PEOPLE, SKIN_TONES, SUBGROUPS, _emoji_test_entries, faces, glyph, lookup, plural_of, vocabulary,
    vocabulary_records,
)
from genimg.errors import GenimgError


def test_vocabulary_covers_every_named_subgroup_and_the_toned_people():
    vocab = vocabulary()
    assert len(vocab) >= 150
    chars = {e.char for e in vocab}
    for subgroup in SUBGROUPS:  # every fully-qualified emoji of each named subgroup, none left out
        wanted = {c for s, c, _ in _emoji_test_entries()
                  if s == subgroup and not any(0x1F3FB <= ord(x) <= 0x1F3FF for x in c)}
        assert wanted and wanted <= chars, subgroup
    toned = [e for e in vocab if e.tone]
    assert Counter(e.tone for e in toned) == {t: len(PEOPLE) for t in SKIN_TONES}
    assert lookup("👨🏽").name == "man with medium skin tone" and lookup("👨🏽").tone == "medium"
    assert lookup("😀").name == "grinning face" and lookup("😀").face
    assert {e.subgroup for e in faces()} == {"face-smiling", "face-affection", "face-sleepy", "person"}


def test_names_synonyms_and_plurals_each_name_one_emoji():
    owners: dict[str, set[str]] = {}
    for e in vocabulary():
        for phrase in (e.name, e.plural, *e.synonyms):
            owners.setdefault(phrase, set()).add(e.char)
    assert all(len(v) == 1 for v in owners.values())
    assert lookup("🚗").name == "automobile" and "car" in lookup("🚗").synonyms
    assert plural_of("face with tears of joy") == "faces with tears of joy"
    assert plural_of("man with dark skin tone") == "men with dark skin tone"
    assert plural_of("strawberry") == "strawberries"
    records = vocabulary_records()
    assert records[0] == {"emoji": "😀", "name": "grinning face", "subgroup": "face-smiling",
                          "synonyms": list(lookup("😀").synonyms)}


def test_every_glyph_is_drawn_in_colour():
    chromatic = filled = 0
    for e in vocabulary():
        g = np.asarray(glyph(e.char))
        assert g.shape[2] == 4 and g.shape[0] > 40 and g.shape[1] > 40, e.name
        rgb = g[..., :3][g[..., 3] > 128].astype(int)
        assert len(rgb) > 1000, e.name  # drawn, not an empty box
        filled += (rgb.max(axis=1) > 100).mean() > 0.2  # not a bare black outline (the black cat is black)
        chromatic += (rgb.max(axis=1) - rgb.min(axis=1) > 60).any()
    assert filled >= 0.9 * len(vocabulary())
    assert chromatic >= 0.8 * len(vocabulary())  # in colour (some, like the gorilla or the cloud, are grey)


def test_scenes_are_deterministic_by_seed_and_the_eval_set_is_pinned():
    assert scene_for_seed(7) == scene_for_seed(7)
    assert scene_for_seed(7) != scene_for_seed(8)
    assert np.array_equal(np.asarray(render(scene_for_seed(3))), np.asarray(render(scene_for_seed(3))))
    scenes = eval_prompt_set()
    assert len(scenes) == len(vocabulary()) + 300
    assert {s.objects[0].char for s in scenes if s.kind == "single"} == {e.char for e in vocabulary()}
    fingerprint = hashlib.sha256(repr([
        (s.caption, s.background, s.kind, s.position, s.relation,
         [(o.char, o.size, round(o.x, 6), round(o.y, 6)) for o in s.objects]) for s in scenes
    ]).encode()).hexdigest()[:16]
    assert fingerprint == "546d80fd5f040521"


def test_scene_kinds_follow_the_layout_rules():
    rng = np.random.Generator(np.random.PCG64(11))
    seen = Counter()
    for _ in range(400):
        s = grammar.sample_scene(rng)
        seen[s.kind] += 1
        assert 1 <= len(s.objects) <= 3 and s.background in BACKGROUNDS
        for o in s.objects:  # inside the image
            r = grammar.SIZES[o.size] / 2
            assert r <= o.x <= 1 - r and r <= o.y <= 1 - r
        if s.kind == "count":
            assert len({o.char for o in s.objects}) == 1 and len(s.objects) in grammar.COUNTS
        if s.kind == "relation":
            a, b = s.objects
            along, cross = grammar.relation_axes(b.x - a.x, b.y - a.y, s.relation)
            assert a.char != b.char and along >= grammar.RELATION_MIN and abs(cross) <= grammar.RELATION_SLOPE * along
    assert set(seen) == set(KINDS)
    faces_only = [grammar.sample_scene(rng, faces_only=True) for _ in range(50)]
    assert all(lookup(o.char).face for s in faces_only for o in s.objects)


def test_captions_parse_back_to_their_scenes():
    rng = np.random.Generator(np.random.PCG64(5))
    phrasings = set()
    for _ in range(600):
        s = grammar.sample_scene(rng)
        got, want = parse_prompt(s.caption), spec_for_scene(s)
        assert got.kind == want.kind and got.position == want.position and got.relation == want.relation, s.caption
        assert got.background in (None, want.background), s.caption
        for g, w in zip(got.objects, want.objects, strict=True):
            assert (g.char, g.count) == (w.char, w.count) and g.size in (None, w.size), s.caption
        phrasings.add(s.caption.split(" ")[0])
    assert len(phrasings) >= 4  # varied openings: a / an / two / three ...
    spec = parse_prompt("A Kitty to the left of a spaceship, GRAY background.")
    assert [o.char for o in spec.objects] == ["🐈", "🚀"] and spec.background == "grey"
    assert parse_prompt("a small airplane").objects[0].char == "🛩️"  # the emoji's name, not size + airplane
    assert parse_prompt("a little airplane").objects[0] == parse_prompt("a tiny airplane").objects[0]


@pytest.mark.parametrize("prompt", ["a dragon", "two cat", "a cat to the left of a cat", "a cat on a black background",
                                    "four cats", ""])
def test_prompts_outside_the_world_are_refused_clearly(prompt):
    with pytest.raises(GenimgError, match="outside the emoji world"):
        parse_prompt(prompt)


def test_renders_have_the_right_size_and_show_the_emoji():
    scene = Scene((EmojiObject("🐈", "large", 0.3, 0.5), EmojiObject("🚀", "small", 0.75, 0.5)), "blue",
                  "relation", "a cat to the left of a rocket", relation="left of")
    for size in (96, 128, 200):
        img = render(scene, size)
        assert img.size == (size, size) and img.mode == "RGB"
        arr = np.asarray(img).astype(int)
        assert tuple(arr[0, 0]) == BACKGROUNDS["blue"]
        differs = np.abs(arr - BACKGROUNDS["blue"]).max(axis=2) > 48
        left, right = differs[:, : size // 2].sum(), differs[:, size // 2:].sum()
        assert left > right > 0.01 * size * size  # the large cat left, the small rocket right


def test_bad_input_is_a_clear_error():
    with pytest.raises(GenimgError, match="render size"):
        render(scene_for_seed(0), 32)
    with pytest.raises(GenimgError, match="seed must be"):
        scene_for_seed(-1)
    with pytest.raises(GenimgError, match="not in the emoji world"):
        lookup("🦖")
    with pytest.raises(GenimgError, match="unknown scene kind"):
        grammar.compose_scene(np.random.Generator(np.random.PCG64(0)), "crowd")
    with pytest.raises(GenimgError, match="prompt must be a string"):
        parse_prompt(None)


def test_the_emoji_world_domain_shows_its_vocabulary_and_examples():
    from types import SimpleNamespace

    from genimg.domains import DOMAINS, domain_of

    domain = domain_of(SimpleNamespace(domain="emoji-world"))
    assert domain is DOMAINS.get("emoji-world")
    assert f"{len(vocabulary())} OpenMoji emoji" in domain.vocabulary and "CC BY-SA 4.0" in domain.vocabulary
    assert len(domain.examples()) >= 5
    assert all(domain.check(p) is None for p in domain.examples())  # every example is inside the world
    note = domain.check("a dragon breathing fire over a castle")
    assert note and "outside the emoji world" in note and domain.examples()[0] in note
    assert domain.check("") is None
