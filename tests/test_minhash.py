"""Shingles, MinHash signatures, the Jaccard estimate and the LSH candidate index."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE

from datasketch import LeanMinHash, MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.minhash import (HashTable, LSHIndex, content_words, hash_values_from_bytes, jaccard, jaccard_many,
                              matches_needed, shingles, signature, signature_from_bytes, signature_to_bytes)

NUM_PERM = 128


def sig(text: str):
    return signature(shingles(text, 2), NUM_PERM)


def test_content_words_fold_case_and_accents_and_drop_stop_words():
    assert content_words("The U.S. and Kyïv said they would meet in Geneva.") == ["u.s", "kyiv", "meet", "geneva"]


def test_shingles_are_word_bigrams_of_content_words():
    assert shingles("The U.S. and Kyïv said they would meet in Geneva.", 2) == {"u.s kyiv", "kyiv meet",
                                                                                 "meet geneva"}


def test_short_texts_still_have_a_shingle():
    assert shingles("Geneva", 2) == {"geneva"}
    assert shingles("The of", 2) == {"the of"}  # only stop words: fall back to all words
    assert shingles("", 2) == set()


def test_identical_texts_have_jaccard_one():
    assert jaccard(sig(FLOOD_WIRE), sig(FLOOD_WIRE)) == 1.0


def test_signature_ignores_case_and_stop_words():
    assert jaccard(sig("THE FLOODS IN PAIPORTA KILLED 62"), sig("floods at Paiporta killed 62")) == 1.0


def test_unrelated_texts_have_low_jaccard():
    assert jaccard(sig(FLOOD_WIRE), sig(CHESS)) < 0.05
    assert jaccard(sig(FLOOD_WIRE), sig(FLOOD_OTHER_EVENT)) < 0.05


def test_rewrite_shares_more_shingles_than_another_event():
    assert jaccard(sig(FLOOD_WIRE), sig(FLOOD_REWRITE)) > 0.2


def test_jaccard_many_gives_each_estimate():
    texts = [FLOOD_WIRE, FLOOD_REWRITE, FLOOD_OTHER_EVENT, CHESS]
    sigs = [signature(shingles(t, 1), 128) for t in texts]
    assert list(jaccard_many(sigs[0], [s.hashvalues for s in sigs])) == [jaccard(sigs[0], s) for s in sigs]
    with pytest.raises(ValueError, match="different sizes"):
        jaccard_many(sigs[0], [signature(shingles(CHESS, 1), 64).hashvalues])


def test_hash_table_gives_the_keys_reaching_each_threshold():
    texts = [FLOOD_WIRE, FLOOD_REWRITE, FLOOD_OTHER_EVENT, CHESS]
    sigs = [signature(shingles(t, 1), 128) for t in texts]
    table = HashTable(128)
    keys = [3, 7, 1500, 2]  # beyond the first allocation too
    for key, s in zip(keys, sigs):
        table.put(key, hash_values_from_bytes(signature_to_bytes(s)))
    for threshold in (0.0, 0.2, 0.5, 1.0):
        expected = sorted(k for k, s in zip(keys, sigs) if jaccard(sigs[0], s) >= threshold)
        assert table.reaching(sigs[0], np.array(keys + keys[::-1]), threshold).tolist() == expected
    assert table.keys().tolist() == [2, 3, 7, 1500]
    table.drop(7)
    assert table.keys().tolist() == [2, 3, 1500]
    copy = HashTable.from_bytes(table.to_bytes(), num_perm=128)  # as a checkpoint keeps it
    assert copy.keys().tolist() == [2, 3, 1500]
    assert copy.reaching(sigs[0], np.array([3, 1500, 2]), 0.0).tolist() == [2, 3, 1500]
    assert np.array_equal(copy._rows[[2, 3, 1500]], table._rows[[2, 3, 1500]])
    assert np.array_equal(copy._bytes[[2, 3, 1500]], table._bytes[[2, 3, 1500]])
    with pytest.raises(ValueError, match="holds \\[128\\] permutations; this index needs 64"):
        HashTable.from_bytes(table.to_bytes(), num_perm=64)
    with pytest.raises(ValueError, match="not a hash value file"):
        HashTable.from_bytes(b"junk", num_perm=128)
    table.clear()
    assert table.keys().tolist() == []


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_hash_table_reaching_is_the_full_comparison_whatever_the_fingerprints_say(data):
    # rows that agree with the query in some values, in the lowest byte only (a fingerprint match that is not a
    # value match) in others, and not at all in the rest, around every count the threshold can fall on
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    num_perm = data.draw(st.sampled_from([16, 100, 128, 200]) | st.integers(16, 1024))  # not only powers of two
    query = rng.integers(0, 2**32, num_perm, dtype=np.uint64)
    table, keys = HashTable(num_perm), []
    for key in range(data.draw(st.integers(1, 40))):
        equal, same_byte = sorted(rng.integers(0, num_perm + 1, 2))
        order = rng.permutation(num_perm)
        row = rng.integers(0, 2**32, num_perm, dtype=np.uint64)
        row[order[:equal]] = query[order[:equal]]
        row[order[equal:same_byte]] = (query[order[equal:same_byte]] & 0xFF) | (
            (((query[order[equal:same_byte]] >> 8) + 1) % 2**24) << 8)
        table.put(key, row.astype(np.uint32))
        keys += [key] * int(rng.integers(1, 3))
    sig = LeanMinHash(seed=1, hashvalues=query, scheme="affine32")
    threshold = data.draw(st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.8, 1.0]) | st.floats(0, 1))
    equal = {k: int(np.count_nonzero(table._rows[k] == query)) for k in keys}
    expected = sorted({k for k in keys if equal[k] / num_perm >= threshold})
    assert table.reaching(sig, np.array(keys, dtype=np.int64), threshold).tolist() == expected


def test_matches_needed_is_the_estimates_own_comparison():
    assert matches_needed(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in floating point: ceil would say 8
    assert matches_needed(0.2, 128) == 26
    assert matches_needed(0.0, 128) == matches_needed(-1.0, 128) == 0
    assert matches_needed(1.0, 128) == 128
    assert matches_needed(1.5, 128) == matches_needed(float("nan"), 128) == 129  # no count reaches it


def test_signature_bytes_round_trip():
    original = sig(FLOOD_WIRE)
    data = signature_to_bytes(original)
    assert len(data) == NUM_PERM * 8
    restored = signature_from_bytes(data)
    assert jaccard(restored, original) == 1.0
    assert jaccard(restored, sig(FLOOD_REWRITE)) == jaccard(original, sig(FLOOD_REWRITE))


def test_signature_is_datasketchs_own_minhash():
    # the shared permutations give exactly what datasketch computes on its own: indexes written by any version of
    # this package, and any other datasketch user with the same seed and scheme, compare with today's signatures
    for text in (FLOOD_WIRE, FLOOD_REWRITE, CHESS, "Kyïv, Žižek and 10,000 others"):
        for size in (1, 2):
            plain = MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32")
            plain.update_batch([s.encode("utf-8") for s in shingles(text, size)])
            assert np.array_equal(signature(shingles(text, size), NUM_PERM).hashvalues, plain.hashvalues)


def test_signatures_are_stable_across_calls():
    # fixed seed: a signature stored yesterday compares with one computed today
    assert signature_to_bytes(sig(FLOOD_WIRE)) == signature_to_bytes(sig(FLOOD_WIRE))


@pytest.fixture
def lsh() -> LSHIndex:
    index = LSHIndex(threshold=0.1, num_perm=NUM_PERM)
    index.add(1, sig(FLOOD_WIRE))
    index.add(2, sig(FLOOD_REWRITE))
    index.add(3, sig(CHESS))
    return index


def test_lsh_query_finds_rewrites_not_unrelated(lsh):
    assert len(lsh) == 3
    assert lsh.query(sig(FLOOD_WIRE)).tolist() == [1, 2]
    assert lsh.query(sig(CHESS)).tolist() == [3]


def test_lsh_remove(lsh):
    lsh.remove(1)
    lsh.remove(99)  # an unknown key is ignored
    assert len(lsh) == 2
    assert lsh.query(sig(FLOOD_WIRE)).tolist() == [2]


def test_lsh_bytes_round_trip(lsh):
    restored = LSHIndex.from_bytes(lsh.to_bytes(), threshold=0.1, num_perm=NUM_PERM)
    assert len(restored) == 3
    for text in (FLOOD_WIRE, FLOOD_REWRITE, CHESS, FLOOD_OTHER_EVENT):
        assert restored.query(sig(text)).tolist() == lsh.query(sig(text)).tolist()


def test_lsh_from_bytes_rejects_other_files_and_other_bandings(lsh):
    import pickle

    with pytest.raises(ValueError, match="not an LSH index file"):
        LSHIndex.from_bytes(pickle.dumps({"not": "an index"}), threshold=0.1, num_perm=NUM_PERM)
    with pytest.raises(ValueError, match="banding"):
        LSHIndex.from_bytes(lsh.to_bytes(), threshold=0.5, num_perm=NUM_PERM)


def test_lsh_refuses_a_key_given_before(lsh):
    lsh.remove(3)
    for key in (1, 3):
        with pytest.raises(ValueError, match="never reused"):
            lsh.add(key, sig(CHESS))


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])  # 2 rows a band, and more (band hashes mixed)
def test_lsh_proposes_what_datasketchs_minhashlsh_proposes(monkeypatch, threshold):
    import random

    from datasketch import MinHashLSH

    import detector.minhash

    monkeypatch.setattr(detector.minhash, "TAIL_LIMIT", 50)  # merge into the main arrays many times
    rng = random.Random(threshold)
    stories = [{f"s{s}-{w}" for w in range(12)} for s in range(60)]  # variants of few stories: many shared bands
    sigs = [signature({w for w in rng.choice(stories) if rng.random() < 0.9} | {f"x{rng.randint(0, 20)}"}, NUM_PERM)
            for _ in range(600)]
    ours = LSHIndex(threshold=threshold, num_perm=NUM_PERM)
    theirs = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    assert (ours.bands, ours.rows) == (theirs.b, theirs.r)

    def agree() -> int:
        answers = ours.query_many(np.vstack([s.hashvalues for s in sigs]))
        assert [a.tolist() for a in answers] == [sorted(theirs.query(s)) for s in sigs]
        return sum(len(a) for a in answers)

    for key, s in enumerate(sigs[:400]):
        ours.add(key, s)
        theirs.insert(key, s)
        if key % 97 == 0:
            agree()
    for key in range(0, 400, 7):
        ours.remove(key)
        theirs.remove(key)
    agree()
    for key, s in enumerate(sigs[400:], start=400):
        ours.add(key, s)
        theirs.insert(key, s)
    agree()
    restored = LSHIndex.from_bytes(ours.to_bytes(), threshold=threshold, num_perm=NUM_PERM)
    assert len(restored) == len(theirs.keys)
    ours = restored
    assert agree() > 2 * len(sigs)  # many proposals besides each document itself
