"""Boilerplate: sentences that many texts of an index hold word for word (a sign-off, a copyright line, a
newsletter prompt, a "share this" line), set aside when two texts are compared.

Unrelated briefs that end with the same three lines would otherwise align on those lines, share their word 3-grams
and their MinHash shingles, and join one story. A sentence is boilerplate when more distinct texts of the index
hold it word for word (evidence.sentence_hash) than hold a rare term (Settings.rare_term_texts): the count that
the shared-sentence candidates already keep. A text keeps its boilerplate when that is most of its words: then
the common sentences are what it says (a wire story carried by many outlets, each with a line of its own), not
what is wrapped around it.
"""

from __future__ import annotations

from .compare import TextView
from .config import BRIEF_SENTENCES, Settings
from .minhash import shingles, signature

#: a text keeps its common sentences when they hold more than this share of its words.
MAX_SHARE = 0.5


def common_positions(view: TextView, common: set[int]) -> tuple[int, ...]:
    """Where the sentences of `view` that are in `common` (sentence hashes) stand, to be set aside; none when they
    hold more than MAX_SHARE of its words (counted between spaces)."""
    keys = view.sentence_keys
    dropped = tuple(i for i, key in enumerate(keys) if key is not None and key in common)
    if not dropped:
        return ()
    lengths = [len(sentence.split()) for sentence in view.sentences]
    if sum(lengths[i] for i in dropped) > MAX_SHARE * sum(lengths):
        return ()
    return dropped


def kept_common(view: TextView, common: set[int], dropped: tuple[int, ...]) -> set[int]:
    """The sentences in `common` that `view` keeps as what it says (`dropped`, its common_positions, is empty: they
    are most of its words) when they are more than a brief (BRIEF_SENTENCES): a pair compares them on the other
    side too, where that side would set them aside (a story carried by many outlets, word for word, stays the story
    of a text that adds reporting to it). A block of BRIEF_SENTENCES distinct sentences or fewer is ignored by
    partners, whatever it is: a short item's sign-off, which is why, but also a short wire story, which a text
    extending it then sets aside (README)."""
    if dropped:
        return set()
    kept = {key for key in view.sentence_keys if key is not None and key in common}
    return kept if len(kept) > BRIEF_SENTENCES else set()


def how_compared(view: TextView, common: set[int]) -> tuple[tuple[int, ...], set[int]]:
    """What a pair does with the common sentences of `view`: its common_positions (set aside) and its kept_common
    (compared on the other side too)."""
    dropped = common_positions(view, common)
    return dropped, kept_common(view, common, dropped)


def pair_positions(view: TextView, dropped: tuple[int, ...], kept_by_other: set[int]) -> tuple[int, ...]:
    """`dropped` (the common_positions of `view`), less the sentences the other text of the pair keeps
    (kept_common)."""
    if not dropped or not kept_by_other:
        return dropped
    keys = view.sentence_keys
    return tuple(i for i in dropped if keys[i] not in kept_by_other)


def without(view: TextView, dropped: tuple[int, ...], settings: Settings) -> TextView:
    """The view of the text without its sentences at `dropped` (common_positions), or `view` itself when that is
    none. The part keeps the whole text's specific terms (weighted by rarity in the index, so terms every text
    holds count for little) and records where its sentences stood."""
    if not dropped:
        return view
    aside = set(dropped)
    kept = [i for i in range(len(view.sentences)) if i not in aside]
    sentences = [view.sentences[i] for i in kept]
    sig = signature(shingles(" ".join(sentences), settings.shingle_size), settings.num_perm)
    keys = view.sentence_keys
    return TextView(sentences, view.vectors[kept], sig, view.common_directions, _terms=view.terms,
                    _sentence_keys=[keys[i] for i in kept], positions=[view.position(i) for i in kept])
