"""What a model can draw: its prompt domain — vocabulary, example prompts, and a check of a prompt.

A catalog entry names its domain (``domain = "scene-grammar"``); the dashboard shows the domain's
vocabulary and clickable examples next to the model picker, and an inline note (not an error)
when a prompt falls outside it. The embedded models share the scene grammar's domain; a later
model (the emoji world, ...) registers its own domain here and names it in its catalog entry.
Models without a domain (hub models) take any prompt.
"""

from __future__ import annotations

from genimg.errors import GenimgError
from genimg.methods import Method, Registry


class PromptDomain(Method):
    """A model family's prompt vocabulary (the method contract: id, label, availability)."""

    task = "prompt-domain"
    vocabulary = ""   # one or two sentences: what the models can draw

    def examples(self) -> list[str]:
        """Prompts that show what the models draw well, for clickable examples."""
        return []

    # Columns of :meth:`words`' rows (the searchable vocabulary table beside the model picker).
    WORD_COLUMNS = ("", "word", "kind", "also")

    def words(self) -> list[list[str]]:
        """Every word the models know, as rows ``[symbol, word, kind, other words for it]`` (default: none)."""
        return []

    def search(self, query: str, limit: int = 400) -> list[list[str]]:
        """The rows of :meth:`words` whose text contains every word of ``query`` (case-insensitive), at most
        ``limit``; all rows for an empty query."""
        terms = (query or "").lower().split()
        rows = [row for row in self.words() if all(t in " ".join(row).lower() for t in terms)]
        return rows[:limit]

    # The out-of-domain note: "This prompt is outside <outside>, so expect <expect>. Try e.g. ..."
    outside = ""
    expect = ""

    def parse(self, prompt: str) -> None:
        """Raise GenimgError when ``prompt`` is outside the domain (default: nothing is)."""

    def check(self, prompt: str) -> str | None:
        """None when ``prompt`` is inside the domain (or empty), else a note saying what would work instead."""
        text = (prompt or "").strip()
        if not text:
            return None
        try:
            self.parse(text)
        except GenimgError:
            return (f"This prompt is outside {self.outside}, so expect {self.expect}. Try e.g. "
                    f"“{self.examples()[0]}” — or pick a model with weights for open prompts.")
        return None


DOMAINS: Registry[PromptDomain] = Registry("prompt domain")


@DOMAINS.register
class SceneGrammar(PromptDomain):
    """The embedded models' scene grammar: coloured shapes on a coloured background."""

    id, label = "scene-grammar", "Scene grammar (coloured shapes)"
    vocabulary = ("Coloured **circles, squares, triangles and stars** (red, green, blue, yellow, purple, orange, "
                  "white, black; small or large) on a coloured background: one object, one at a position (left, "
                  "right, top, bottom, centre), two to four of one kind, or two related (left of, right of, above, "
                  "below). 64 px.")

    def examples(self) -> list[str]:
        return ["a large red star on a white background",
                "a small blue circle on the left on a yellow background",
                "three green triangles on a black background",
                "a purple square above a small orange circle on a white background",
                "a big yellow star to the right of a blue triangle on a black background"]

    outside = ("what the embedded models learnt (coloured circles, squares, triangles and stars on a coloured "
               "background)")
    expect = "a flat colour or a stray shape"

    def parse(self, prompt: str) -> None:
        from genimg.scenes.prompts import parse_prompt

        parse_prompt(prompt)

    def words(self) -> list[list[str]]:
        from genimg.scenes import grammar

        symbols = {"circle": "●", "square": "■", "triangle": "▲", "star": "★"}
        rows = [[symbols.get(shape, ""), shape, "shape", ""] for shape in grammar.SHAPES]
        rows += [["", colour, "colour (object or background)", ""] for colour in grammar.COLOUR_NAMES]
        rows += [["", size, "size", ", ".join(w for w in grammar.SIZE_WORDS[size] if w != size)]
                 for size in grammar.SIZES]
        rows += [["", position, "position", ""] for position in grammar.POSITIONS]
        rows += [["", relation, "relation", ""] for relation in grammar.RELATIONS]
        return rows


@DOMAINS.register
class EmojiWorld(PromptDomain):
    """The emoji world (genimg.emoji): one to three OpenMoji emoji on a coloured background."""

    id, label = "emoji-world", "Emoji world (OpenMoji scenes)"

    @property
    def vocabulary(self) -> str:  # type: ignore[override]
        from genimg.emoji.grammar import BACKGROUND_NAMES
        from genimg.emoji.vocabulary import vocabulary

        return (f"**{len(vocabulary())} OpenMoji emoji** by their Unicode (CLDR) names or synonyms — smileys, people "
                "in five skin tones, mammals, birds, fruit, prepared food, cars, trains and aircraft, weather, "
                "flowers, plants and buildings — one alone (small or large), at a position (left, right, top, "
                "bottom, centre), two or three of one kind, or two related (left of, right of, above, below), on a "
                f"{', '.join(BACKGROUND_NAMES)} background. 128 px. Emoji: OpenMoji, CC BY-SA 4.0 (the model and its "
                "images are adaptations). Search the vocabulary below.")

    def examples(self) -> list[str]:
        return ["a cat to the left of a rocket on a blue background",
                "a big grinning face on a yellow background",
                "three strawberries on a white background",
                "a small airplane at the top, pink background",
                "a woman with medium-dark skin tone on a green background",
                "a sun above a house on a blue background"]

    def words(self) -> list[list[str]]:
        from genimg.emoji.vocabulary import vocabulary

        return [[e.char, e.name, e.subgroup.replace("-", " "), ", ".join(e.synonyms)] for e in vocabulary()]

    outside = "the emoji world (one to three of its OpenMoji emoji, by name, on a coloured background)"
    expect = "a stray emoji or a flat colour"

    def parse(self, prompt: str) -> None:
        from genimg.emoji.prompts import parse_prompt

        parse_prompt(prompt)


def domain_of(spec: object) -> PromptDomain | None:
    """The prompt domain a catalog entry names (``domain = ...``), or None for open-vocabulary models."""
    name = getattr(spec, "domain", None)
    return DOMAINS.get(name) if name else None


def can_draw(spec: object, prompt: str) -> bool:
    """Whether the model of catalog entry ``spec`` can draw ``prompt``: its domain reads it, or it has
    no domain (open vocabulary)."""
    domain = domain_of(spec)
    return domain is None or domain.check(prompt) is None
