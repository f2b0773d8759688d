"""Sign-matching attention: exact when every key is kept, sparser attention when not."""
from __future__ import annotations

import copy

import pytest
import torch

from compress.errors import UserInputError
from compress.sign_matching import apply
from tests._tiny import tiny_bert


def test_keep_all_is_exact_and_fewer_keys_get_zero_weight():
    model = tiny_bert(layers=2, heads=4, hidden=32, intermediate=64, init_range=0.2)
    ids = torch.randint(1000, 2000, (3, 10))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0  # a padded row: padding must stay unattended
    with torch.no_grad():
        exact = model(input_ids=ids, attention_mask=mask, output_attentions=True)
        full = apply(copy.deepcopy(model), 1.0)(input_ids=ids, attention_mask=mask, output_attentions=True)
        sparse = apply(copy.deepcopy(model), 0.3)(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert torch.allclose(full.logits, exact.logits, atol=1e-5)
    att = sparse.attentions[0]
    assert torch.all(att[0, :, :, 7:] == 0)
    nonzero = (att > 0).sum(-1)
    assert nonzero.min() >= 3 and nonzero.float().mean() < 5  # ceil(0.3 × 10) keys, ties aside
    assert not torch.allclose(sparse.logits, exact.logits)
    with pytest.raises(UserInputError):
        apply(model, 0.0)
