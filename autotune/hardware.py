"""What the machine is: physical cores and their SMT siblings, ISA flags, GPU.

The pool pins instances to physical cores (FastFormers section 6.2: one instance per core
group beats one big thread pool), and every Measurement carries a fingerprint of the
hardware it was taken on, because results from different machines do not compare.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from compress.provenance import cpu_info

ISA_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "fma")
_SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Hardware:
    cpu_model: str
    logical_cpus: int
    cores: tuple[tuple[int, ...], ...]  # physical cores usable by this process, each = its logical CPUs
    isa: tuple[str, ...]
    gpu: str | None
    memory_gb: float
    machine: str

    @property
    def physical_cores(self) -> int:
        return len(self.cores)

    @property
    def has_vnni(self) -> bool:
        return "avx512_vnni" in self.isa or "avx_vnni" in self.isa

    def fingerprint(self) -> dict:
        return asdict(self) | {"hash": self.hash}

    @property
    def hash(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _parse_list(text: str) -> list[int]:
    """Linux CPU list syntax: ``0-3,8,10-11``."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def physical_cores(allowed: set[int] | None = None) -> tuple[tuple[int, ...], ...]:
    """Group the CPUs this process may use by physical core (thread_siblings_list; without sysfs
    topology each CPU counts as a core)."""
    allowed = set(os.sched_getaffinity(0)) if allowed is None else allowed
    groups: dict[tuple[int, ...], None] = {}
    for cpu in sorted(allowed):
        f = _SYS_CPU / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        sib = tuple(c for c in _parse_list(f.read_text()) if c in allowed) if f.is_file() else (cpu,)
        groups.setdefault(sib or (cpu,), None)
    return tuple(groups)


def _gpu() -> str | None:
    if shutil.which("nvidia-smi") or Path("/proc/driver/nvidia").exists():
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - a broken CUDA install is "no GPU" here
            pass
        return "nvidia (driver present, CUDA unavailable)"
    return None


@functools.lru_cache(maxsize=1)
def detect() -> Hardware:
    model, flags = cpu_info()
    isa = tuple(f for f in ISA_FLAGS if f in flags)
    return Hardware(
        cpu_model=model,
        logical_cpus=len(os.sched_getaffinity(0)),
        cores=physical_cores(),
        isa=isa,
        gpu=_gpu(),
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        machine=platform.machine(),
    )
