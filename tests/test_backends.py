"""The engine registry: names, one-line refusals, what each built-in backend declares."""
from __future__ import annotations

import pytest

from autotune.backends import registry
from autotune.backends.registry import EngineSpec
from autotune.runtime import Runtime
from autotune.space import SearchSpace
from compress.errors import UserInputError

BUILTIN = ("torch-fp32", "torch-int8", "ort-fp32", "ort-int8", "ort-int8-selective", "ort-cuda-fp16")


def _space(*engines: str) -> SearchSpace:
    return SearchSpace((6,), (12,), (1536,), engines=engines, layouts=((1, 1),))


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_builtins_are_registered_in_order_with_what_they_need():
    assert registry.names()[:len(BUILTIN)] == BUILTIN
    fams = {n: registry.get(n).family for n in BUILTIN}
    assert fams == {n: "torch" if n.startswith("torch") else "onnxruntime" for n in BUILTIN}
    assert registry.get("ort-int8-selective").needs == ("significance",)
    assert registry.get("ort-cuda-fp16").devices == ("cuda",) and registry.get("ort-int8").devices == ("cpu",)


def test_an_unknown_engine_is_refused_in_one_line_naming_the_known_ones(tmp_path):
    for call in (lambda: registry.get("tensorrt"), lambda: registry.prepare("tensorrt", tmp_path, tmp_path),
                 lambda: registry.load(EngineSpec("tensorrt", str(tmp_path)), 1)):
        with pytest.raises(UserInputError) as err:
            call()
        assert _one_line(err) == f"unknown engine 'tensorrt'; known: {', '.join(registry.names())}"
    with pytest.raises(UserInputError) as err:
        Runtime("tensorrt")
    assert _one_line(err) == f"unknown engine 'tensorrt'; known engines: {', '.join(registry.names())}"
    with pytest.raises(UserInputError) as err:
        _space("ort-int8", "tensorrt").validate(6, 12, 1536, 2)
    assert _one_line(err).startswith("search space: unknown engine 'tensorrt'; known: torch-fp32, torch-int8, ")


def test_module_factory_engines_pass_the_space_and_a_missing_one_fails_there():
    _space("ort-int8", "tests.tinymodels:raising_engine").validate(6, 12, 1536, 2)
    assert registry.get("tests.tinymodels:raising_engine").family == "plugin"
    Runtime("tests.no_such_module:engine")  # stored results naming it stay readable
    for bad, why in (("tests.no_such_module:engine", "ModuleNotFoundError"), ("tests.tinymodels:nothing", "AttributeError"),
                     ("tests.tinymodels:DATA", "neither a Backend nor a factory")):
        with pytest.raises(UserInputError) as err:
            _space(bad).validate(6, 12, 1536, 2)
        assert _one_line(err).startswith(f"search space: engine {bad!r}: ") and why in str(err.value)


def test_cuda_backend_is_refused_without_cuda_in_one_line(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    _space("ort-cuda-fp16").validate(6, 12, 1536, 2)  # searchable anywhere: its trials fail with the reason
    for call in (lambda: registry.prepare("ort-cuda-fp16", tmp_path, tmp_path),
                 lambda: registry.load(EngineSpec("ort-cuda-fp16", str(tmp_path / "model.onnx")), 1)):
        with pytest.raises(UserInputError) as err:
            call()
        assert "CUDAExecutionProvider" in _one_line(err)
