"""Best of a batch by likeness: the order in which an artist would keep the renders of several seeds.

The numbers are Face Similarity's own (`similarity.face_similarity`); this only orders them. Renders without a
face go last (a lost face is the worst result, not an unknown one) and equal scores keep batch order, so the
same batch always gives the same pick.
"""
from .errors import PulidError
from .similarity import format_report


def check_k(k):
    """`k` if it is a whole number of 1 or more; an error naming `k` otherwise (checked before any model runs)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PulidError(f"`k` must be a whole number of 1 or more (how many images to keep), not {k!r}.")
    return k


def rank_by_likeness(results, k):
    """The first `k` of `results` (similarity.SimilarityResult), highest likeness first, faceless last.

    The sort is stable: ties, and faceless results among themselves, keep batch order. A `k` above the batch size
    gives the whole batch; a `k` below 1 is an error naming `k`.
    """
    check_k(k)
    ordered = sorted(results, key=lambda r: (r.similarity is None, 0.0 if r.similarity is None else -r.similarity))
    return ordered[:k]


def ranking_report(kept, total):
    """Face Similarity's lines ('index: similarity' or 'index: no face') in kept order, then how many were kept."""
    return f"{format_report(kept)}\nkept {len(kept)} of {total} images, highest likeness first"


def index_list(kept):
    """The batch indices of the kept results, comma-separated ("2,0,3"): the `indices` output."""
    return ",".join(str(r.index) for r in kept)
