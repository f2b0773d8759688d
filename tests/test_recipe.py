"""Recipe: JSON round trip, a stable content key, and impossible recipes refused in one line."""
from __future__ import annotations

from dataclasses import replace

import pytest
from transformers import BertConfig, RobertaConfig

from compress.errors import UserInputError
from compress.models import PACKAGED
from compress.recipe import Recipe

TEACHER = BertConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64)


def test_json_round_trip_and_key():
    r = Recipe(task="sst2", student_layers=3, heads_kept=6, ffn_kept=768, max_train_examples=1000, activation="relu")
    assert r.teacher == PACKAGED
    back = Recipe.from_json(r.to_json())
    assert back == r and back.key() == r.key()
    assert Recipe.from_dict(r.to_dict()) == r
    assert replace(r, kd_lr=2e-4).key() != r.key()
    assert len({Recipe(task="sst2").key(), Recipe(task="rte").key()}) == 2


def test_whole_numbers_in_float_fields_give_the_same_key_as_floats():
    """A script's ``teacher_epochs=1`` and a preset's ``1.0`` are one fine-tune: one cache entry."""
    ints = Recipe(task="sst2", teacher_epochs=1, kd_epochs=3, redistill_hidden_weight=1, kd_lr=1)
    floats = Recipe(task="sst2", teacher_epochs=1.0, kd_epochs=3.0, redistill_hidden_weight=1.0, kd_lr=1.0)
    assert ints == floats and ints.key() == floats.key() and ints.to_json() == floats.to_json()
    assert isinstance(ints.teacher_epochs, float) and '"teacher_epochs": 1.0' in ints.to_json()
    assert Recipe(task="sst2", student_layers=3).student_layers == 3  # int fields stay ints


def test_fields_added_later_leave_older_keys_alone():
    r = Recipe(task="sst2", student_layers=4, heads_kept=4)
    assert "redistill_hidden_weight" not in r.to_dict()  # so models cached before the field still hit
    layered = replace(r, redistill_hidden_weight=1.0)
    assert layered.to_dict()["redistill_hidden_weight"] == 1.0 and layered.key() != r.key()
    assert Recipe.from_json(layered.to_json()) == layered
    assert "prune_rounds" not in r.to_dict() and replace(r, prune_rounds=2).key() != r.key()
    assert "select_on" not in r.to_dict() and replace(r, select_on="train").key() != r.key()
    assert Recipe.from_json(replace(r, select_on="train").to_json()).select_on == "train"
    assert "redistill_keep" not in r.to_dict() and replace(r, redistill_keep="last").key() != r.key()
    auto = replace(r, redistill_keep="auto")
    assert auto.key() not in (r.key(), replace(r, redistill_keep="last").key()) and Recipe.from_json(auto.to_json()) == auto


def test_gradual_pruning_schedule_is_geometric_and_ends_on_the_target():
    r = Recipe(task="sst2", heads_kept=3, ffn_kept=384, prune_rounds=2)
    assert r.prune_schedule(12, 1536) == [(6, 768), (3, 384)]
    assert replace(r, prune_rounds=1).prune_schedule(12, 1536) == [(3, 384)]
    assert replace(r, heads_kept=None, prune_rounds=3).prune_schedule(12, 1536) == [(None, 968), (None, 610), (None, 384)]


@pytest.mark.parametrize("text, words", [
    ('{"task": "sst2", "layers": 3}', "unknown field"),
    ('{"student_layers": 3}', "'task' is required"),
    ('{"task": "sst2", "route": "random"}', "route"),
    ('{"task": "sst2", "student_layers": 0}', "student_layers"),
    ('{"task": "sst2", "activation": "tanh"}', "activation"),
    ('{"task": "sst2", "redistill_hidden_weight": -1}', "redistill_hidden_weight"),
    ('{"task": "sst2", "prune_rounds": 0}', "prune_rounds"),
    ('{"task": "sst2", "prune_rounds": 1.5}', "prune_rounds"),
    ('{"task": "sst2", "select_on": "test"}', "select_on must be one of dev, train"),
    ('{"task": "sst2", "redistill_keep": "first"}', "redistill_keep must be one of best, last, auto"),
    ("{not json", "not valid JSON"),
])
def test_bad_json_refused(text, words):
    with pytest.raises(UserInputError, match=words) as err:
        Recipe.from_json(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("recipe, words", [
    (Recipe(task="sst2", heads_kept=5), "heads_kept=5"),
    (Recipe(task="sst2", student_layers=5), "deeper than the teacher"),
    (Recipe(task="sst2", ffn_kept=65), "intermediate size 64"),
    (Recipe(task="sst2", student_layers=0), "student_layers"),
    (Recipe(task="sst2", heads_kept=0), "heads_kept"),
])
def test_impossible_recipes_refused(recipe, words):
    with pytest.raises(UserInputError, match=words) as err:
        recipe.validate(TEACHER)
    assert "\n" not in str(err.value)


def test_student_of_another_family_refused():
    other = RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    with pytest.raises(UserInputError, match="roberta model but the teacher is bert"):
        Recipe(task="sst2", student_init="some/roberta", student_layers=2).validate(TEACHER, other)


def test_possible_recipe_passes():
    Recipe(task="sst2", student_layers=2, heads_kept=2, ffn_kept=32, activation="relu").validate(TEACHER)
