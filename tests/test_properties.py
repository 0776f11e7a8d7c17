"""Invariants of the dedup step over streams (hypothesis): a stream fed twice adds nothing, and the stories found do
not depend on the order the documents arrive in."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conftest import (BRIDGE, CHESS, FLOOD_OTHER_EVENT, FLOOD_OTHER_REWRITE, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS,
                      TEST_SETTINGS, FakeEncoder, doc)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector import Detector

CORPUS = [doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE), doc("italy", FLOOD_OTHER_EVENT),
          doc("italy-rewrite", FLOOD_OTHER_REWRITE), doc("chess", CHESS), doc("bridge", BRIDGE),
          doc("copy", FLOOD_WIRE)]


def stories(documents, batch_size: int) -> set[frozenset[str]]:
    with tempfile.TemporaryDirectory() as folder:
        with Detector.open(Path(folder) / "index", encoder=FakeEncoder(), settings=TEST_SETTINGS,
                           params=TEST_PARAMS) as detector:
            detector.add_many(documents, batch_size=batch_size)
            return {frozenset(c.members) for c in detector.clusters()}


REFERENCE = stories(CORPUS, batch_size=len(CORPUS))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(CORPUS), batch_size=st.integers(min_value=1, max_value=4))
def test_stories_do_not_depend_on_arrival_order(order, batch_size):
    assert stories(order, batch_size) == REFERENCE


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subset=st.lists(st.sampled_from(CORPUS), min_size=1, max_size=7, unique_by=lambda d: d.id),
       batch_size=st.integers(min_value=1, max_value=3))
def test_feeding_a_stream_twice_adds_nothing(subset, batch_size):
    encoder = FakeEncoder()
    with tempfile.TemporaryDirectory() as folder:
        with Detector.open(Path(folder) / "index", encoder=encoder, settings=TEST_SETTINGS,
                           params=TEST_PARAMS) as detector:
            first = detector.add_many(subset, batch_size=batch_size)
            encoded, pairs = encoder.sentences_encoded, detector.store.count_pairs()
            clusters = detector.cluster_of()
            now = detector.decisions([d.id for d in subset])
            second = detector.add_many(subset, batch_size=batch_size)
            # the same decisions as on arrival; cluster and canonical member as the stories stand now (stories
            # may have grown after a document arrived)
            assert [(d.status, d.relation, d.matched_id, d.score) for d in second] == \
                [(d.status, d.relation, d.matched_id, d.score) for d in first]
            assert second == now
            assert encoder.sentences_encoded == encoded
            assert detector.store.count_pairs() == pairs and detector.cluster_of() == clusters
            assert detector.store.count_documents() == len(subset)


def test_the_reference_stories_are_not_trivial():
    # the order test means something only if the corpus forms real stories: two floods kept apart although the
    # bridge article resembles both, an exact copy joined to its story, an unrelated singleton
    assert REFERENCE == {frozenset({"wire", "rewrite", "copy", "bridge"}), frozenset({"italy", "italy-rewrite"}),
                         frozenset({"chess"})}
