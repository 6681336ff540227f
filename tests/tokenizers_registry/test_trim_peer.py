"""Peer comparison: on the same counts, our keep rule for a Unigram tokenizer keeps what
vocabtrimmer (Ushio et al. 2023, `vocab_miner` + `VocabTrimmer.trim_vocab`) would keep.

vocabtrimmer's rule, reimplemented here from its source (no hub download, no dependency):

    freq   = [(token, count, id) for id, count in counts.items() if count >= min_frequency]
    target_vocab_size None  -> mined = freq
    otherwise (every token treated as 'native', i.e. no script filter)
                            -> mined = sorted(freq, key=count, reverse=True)[:target_vocab_size]
                               (a stable sort: ties keep the order of first occurrence in the corpus)
    vocab  = special tokens (unk, bos, eos, pad ...) + mined + tokens_to_keep

Our plan adds only the pieces SentencePiece needs to score text exactly as before (the
lowest- and highest-scored NORMAL pieces, reason 'pinned'): our kept set must equal
vocabtrimmer's plus those two.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_trim_formats import flores

from tokenizers_registry.formats import load_format, open_trimmer
from tokenizers_registry.training import train_sentencepiece
from tokenizers_registry.trim.plan import plan_keep

pytestmark = pytest.mark.shared


def vocabtrimmer_keep(ordered_ids: list[int], specials: set[int], min_frequency: int,
                      target_vocab_size: int | None, tokens_to_keep: set[int]) -> set[int]:
    """vocabtrimmer's keep set; `ordered_ids` is the corpus token stream (its counting order)."""
    fq: dict[int, int] = {}
    for i in ordered_ids:  # update_fq: a dict filled in order of first occurrence
        fq[i] = fq.get(i, 0) + 1
    freq = [(i, c) for i, c in fq.items() if c >= min_frequency]
    if target_vocab_size is None:
        mined = freq
    else:
        if target_vocab_size >= len(freq):
            raise ValueError("vocabulary size is already smaller than the target_vocab_size")
        mined = sorted(freq, key=lambda x: x[1], reverse=True)[:target_vocab_size]
    return set(specials) | {i for i, _ in mined} | set(tokens_to_keep)


@pytest.fixture(scope="module")
def unigram(tmp_path_factory):
    path = train_sentencepiece("unigram", flores("dev", 400), 3000, tmp_path_factory.mktemp("peer") / "uni.model",
                               byte_fallback=False)
    tok = load_format("sentencepiece-model", path, {})
    stream = [i for ids in tok.encode_batch(flores("dev", 150)) for i in ids]
    counts = np.bincount(np.asarray(stream), minlength=tok.vocab_size)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    # vocabtrimmer's "special tokens" of a SentencePiece tokenizer: unk plus the control pieces
    specials = {i for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)}
    return path, stream, counts, specials


@pytest.mark.parametrize("min_frequency", [1, 2, 5])
def test_min_frequency_rule_matches_vocabtrimmer(unigram, min_frequency):
    path, stream, counts, specials = unigram
    trimmer = open_trimmer(path, "sentencepiece-model", {})
    user = ["▁zebra"] if trimmer.id_of("▁zebra") is not None else []
    plan = plan_keep(trimmer, counts, min_frequency=min_frequency, keep_tokens=user)
    peer = vocabtrimmer_keep(stream, specials, min_frequency, None, {trimmer.id_of(t) for t in user})
    ours = set(plan.keep.tolist())
    pinned = {i for i, why in plan.reason.items() if why == "pinned"}
    assert ours == peer | pinned  # equal, up to the pinned pieces
    assert len(pinned) == 2 and len(ours - peer) <= 2
    assert plan.n_closure == 0  # Unigram has no merges to close over


def test_top_n_rule_matches_vocabtrimmer(unigram):
    path, stream, counts, specials = unigram
    order = sorted((c for c in counts.tolist() if c > 0), reverse=True)
    # vocabtrimmer breaks ties by first occurrence, we by id: compare at a cut-off without a tie
    n = next(k for k in range(500, len(order)) if order[k - 1] > order[k])
    trimmer = open_trimmer(path, "sentencepiece-model", {})
    plan = plan_keep(trimmer, counts, min_frequency=2, top_n=n)
    peer = vocabtrimmer_keep(stream, specials, 2, n, set())
    pinned = {i for i, why in plan.reason.items() if why == "pinned"}
    assert set(plan.keep.tolist()) == peer | pinned
    top = {i for i, c in enumerate(counts.tolist()) if c >= max(order[n - 1], 2)}
    assert len(top) == n and peer == specials | top
