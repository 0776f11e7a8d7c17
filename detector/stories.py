"""The story steps of a Detector (mixed into it): rescoring candidate pairs as term rarity in the index changes,
and grouping documents into stories with stable ids."""

from __future__ import annotations

import functools
from collections.abc import Collection

from . import clusters as story_clusters
from .documents import parse_published
from .evidence import Terms, TermStats, term_overlap
from .parallel import fork_map
from .records import StoredPair

#: where a candidate pair came from: the same normalised text, the MinHash LSH, the nearest document vectors, rare
#: specific terms both hold (Settings.rare_terms), sentences both hold word for word (Settings.shared_sentences).
EXACT, MINHASH, EMBEDDING, RARE_TERMS, SENTENCES = "exact", "minhash", "embedding", "rare_terms", "sentences"
#: every candidate pair is rescored at each batch while the index holds fewer texts than this; beyond, whenever
#: the number of texts has grown by this factor since the last rescoring (term rarity then moves little).
RESCORE_EVERY_BATCH_BELOW = 2_000
RESCORE_GROWTH = 2.0
#: the largest story-graph component that a batch which only adds documents regroups whole; beyond, the batch's
#: documents join the stories they link to (see StorySteps._merge_into_stories).
REGROUP_LIMIT = 2_000
#: pairs rescored together (on both cores): bounds the memory rescoring holds, whatever the index size.
RESCORE_CHUNK = 50_000


class StorySteps:
    """Rescoring and story grouping, on the Detector's store, scorer, parameters and caches."""

    def _links(self) -> dict[tuple[int, int], float]:
        """The weight of every candidate pair in the story graph: rescored with the index's current term
        frequencies while the index is small or has doubled since the last rescoring (rarity in the
        index changes as documents arrive; rescoring keeps the stories independent of arrival order), else as
        stored."""
        if self._rescore_due():
            self.store.set_rescored_at(self._stats().documents)
            return self._rescore()
        return self._stored_links(self.store.pair_scores())

    def _stored_links(self, rows) -> dict[tuple[int, int], float]:
        """Story-graph weights of pairs as stored: (a_key, b_key, probability, relation) rows."""
        return {(a, b): self.scorer.link(probability, relation) for a, b, probability, relation in rows}

    def _copies(self, keys: list[int] | None = None) -> list[tuple[int, int]]:
        """The pairs of copies (Store.copy_pairs) among `keys`, or all: each copy holds as much of the other as a
        duplicate must of the shorter text (duplicate_containment)."""
        return self.store.copy_pairs(self.params.duplicate_containment, keys)

    def _rescore_due(self) -> bool:
        texts = self._stats().documents
        return texts < RESCORE_EVERY_BATCH_BELOW or texts >= self.store.rescored_at() * RESCORE_GROWTH

    def _rescore(self) -> dict[tuple[int, int], float]:
        """Score candidate pairs again with the index's current term frequencies: every pair while the index is
        small; beyond, only the pairs that some term similarity could put on the other side of the threshold (the
        others keep their stored probability: their verdict cannot change, and rescoring them all costs time in
        proportion to the whole index at every rescoring)."""
        stats = self._stats()
        every_pair = stats.documents < RESCORE_EVERY_BATCH_BELOW
        published = self.store.published_dates()
        scores: dict[tuple[int, int], float] = {}
        changed: list[StoredPair] = []
        todo: list[StoredPair] = []

        def rescore() -> None:  # a chunk of pairs, the term scores on both cores
            terms = {key: self._terms_of(key) for pair in todo for key in (pair.a_key, pair.b_key)}
            found = fork_map(functools.partial(_term_score, terms, stats), [(p.a_key, p.b_key) for p in todo])
            for pair, term_score in zip(todo, found):
                features = with_days_apart({**pair.features, "term_cosine": term_score}, published[pair.a_key],
                                           published[pair.b_key])
                score = self.scorer.score(features, exact=EXACT in pair.sources)
                if (score.probability, score.relation) != (pair.probability, pair.relation):
                    changed.append(StoredPair(pair.a_key, pair.b_key, pair.sources, features, score.probability,
                                              score.relation))
                scores[(pair.a_key, pair.b_key)] = score.link
            todo.clear()

        for pair in self.store.all_pairs():
            if not every_pair and EXACT not in pair.sources and not self.scorer.could_cross(pair.features,
                                                                                            "term_cosine"):
                scores[(pair.a_key, pair.b_key)] = self.scorer.link(pair.probability, pair.relation)
                continue
            todo.append(pair)
            if len(todo) >= RESCORE_CHUNK:
                rescore()
        rescore()
        self.store.put_pairs(changed)
        return scores

    def _terms_of(self, key: int) -> Terms:
        view = self._views.get(key)
        if view is not None:
            return view.terms
        terms = self._terms_cache.get(key)
        if terms is None:
            terms = self._terms_cache[key] = Terms(**self.store.terms(key))
        return terms

    def _recluster(self, added: list[int] | None = None, loosened: Collection[int] = ()) -> None:
        """Group every document into stories and give the stories ids. With `added` (a batch that only added
        documents) and no rescoring due, only the stories the new documents can reach through same-story pairs are
        regrouped: no other pair changed, so every other story stays as it is, and the result is the same as
        regrouping everything, at the cost of the batch rather than of the index. `loosened`: those of `added`
        whose stored pairs changed (compared again, Detector._compare_again): their stories may split."""
        if added is not None and not self._inherited and not self._rescore_due():
            self._recluster_around(added, loosened)
            return
        keys = self.store.keys()
        scores = self._links()
        groups = story_clusters.story_groups(keys, scores, self.params.grouping_threshold,
                                             attach=self.params.same_story_threshold, copies=self._copies())
        previous = self.store.cluster_map()
        for doc_id, cluster in self._inherited.items():
            doc = self.store.document(doc_id)
            if doc is not None and cluster is not None:
                previous.setdefault(doc.key, cluster)
        self._inherited.clear()
        assignment = story_clusters.assign_ids(groups, previous, self.store.next_cluster_number)
        self.store.set_clusters(assignment.cluster_of, assignment.merges, assignment.next_number)

    def _recluster_around(self, added: list[int], loosened: Collection[int] = ()) -> None:
        """Regroup the connected components (of same-story pairs) that hold the added documents. Stories are
        average-linkage groups inside components, and adding documents only joins components (the documents whose
        pairs were compared again are among `added`, so their components are found from those pairs as they are
        now), so every old story of these members lies inside them and keeps or merges its id exactly as a full
        regrouping would. A component of more than REGROUP_LIMIT documents is not regrouped whole at every batch:
        see _merge_into_stories."""
        members = self.store.linked_component(added, self.params.grouping_threshold, self.params.same_story_threshold,
                                              limit=REGROUP_LIMIT)
        if members is None:
            self._merge_into_stories(added, loosened)
            return
        members = sorted(members)
        scores = self._stored_links(self.store.pair_scores_among(members))
        groups = story_clusters.story_groups(members, scores, self.params.grouping_threshold,
                                             attach=self.params.same_story_threshold, copies=self._copies(members))
        assignment = story_clusters.assign_ids(groups, self.store.clusters_of(members), self.store.next_cluster_number)
        self.store.update_clusters(assignment.cluster_of, assignment.merges, assignment.next_number)

    def _merge_into_stories(self, added: list[int], loosened: Collection[int] = ()) -> None:
        """Group the added documents with the stories they link to, those stories taken whole: average linkage
        starts from each story as a group and each added document alone, so stories may merge with each other and
        with the new documents, but none is split, except that a document attached alone to a story (see
        clusters.attach_singletons) starts alone again. Regrouping a whole component instead costs its pairs at every
        batch, and a large index can hold a component of thousands of documents (many reports on one topic, each
        linked to a few others); this costs the pairs of the stories the batch reaches. Only the order of merges can
        differ from a full regrouping, which the next rescoring (when the index has doubled) does again, and copies
        are one node only where both are among the stories reached. The stories of `loosened` documents, whose
        pairs were compared again and may no longer hold them together, start from their members alone (a member
        whose place is now in a story the batch does not reach stays alone until the next full regrouping)."""
        reached = sorted(self.store.linked(added, self.params.grouping_threshold, self.params.same_story_threshold)
                         | set(added))
        previous = self.store.clusters_of(reached)
        stories = self.store.cluster_keys(sorted(set(previous.values())))
        members = sorted({k for keys in stories.values() for k in keys} | set(reached))
        scores = self._stored_links(self.store.pair_scores_among(members))
        threshold, attach = self.params.grouping_threshold, self.params.same_story_threshold
        cluster_of = {key: cluster for cluster, keys in stories.items() for key in keys}
        loose = {cluster_of[k] for k in loosened if k in cluster_of}
        whole = [sorted(keys) for cluster, keys in stories.items() if cluster not in loose]
        alone = [k for k in members if k not in cluster_of or cluster_of[k] in loose]
        groups = story_clusters.regroup_from(whole, alone, scores, threshold, attach, self._copies(members))
        assignment = story_clusters.assign_ids(groups, cluster_of, self.store.next_cluster_number)
        self.store.update_clusters(assignment.cluster_of, assignment.merges, assignment.next_number)


def with_days_apart(features: dict[str, float], a: str | None, b: str | None) -> dict[str, float]:
    """The features, with `days_apart` when both documents have a published date (and without it otherwise)."""
    features = {k: v for k, v in features.items() if k != "days_apart"}
    if a and b:
        features["days_apart"] = abs((parse_published(a) - parse_published(b)).total_seconds()) / 86400.0
    return features


def _term_score(terms: dict[int, Terms], stats: TermStats, pair: tuple[int, int]) -> float:
    return term_overlap(terms[pair[0]], terms[pair[1]], stats=stats, indexed=(True, True), explain=False).score
