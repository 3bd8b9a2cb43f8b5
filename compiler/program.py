"""The Program: what the compiler produces and every executor runs (format: docs/program-format.md).

One file, no pickle: an ``.npz`` archive (a zip) holding a UTF-8 JSON header under the key
``__header__`` and every weight image / scale array under its own key.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from morphware.compiler.errors import ProgramFormatError
from morphware.systolic.params import ArrayParams

FORMAT = "morphware-program"
FORMAT_VERSION = 2
HEADER_KEY = "__header__"


@dataclass
class Program:
    """Instructions (JSON-able dicts, in execution order), arrays they reference, target circuit.

    ``input_shape`` is the per-sample shape of the model's input as the user feeds it (ONNX
    layout, batch axis dropped); ``outputs`` lists ``(name, per-sample shape)`` of each result,
    in the model's order.
    """

    params: ArrayParams
    input_name: str
    input_shape: tuple[int, ...]
    outputs: list[tuple[str, tuple[int, ...]]]
    instructions: list[dict[str, Any]]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    circuit: str = "ws"  # the registered circuit (morphware.systolic.circuit) it targets

    @property
    def output_name(self) -> str:
        return self.outputs[0][0]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.outputs[0][1]

    @property
    def gemms(self) -> list[dict[str, Any]]:
        return [i for i in self.instructions if i["op"] == "gemm"]

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "circuit": self.circuit,
            "params": self.params.to_dict(),
            "input": {"name": self.input_name, "shape": list(self.input_shape)},
            "outputs": [{"name": n, "shape": list(s)} for n, s in self.outputs],
            "instructions": self.instructions, "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write the Program to ``path`` (conventionally ``*.mwp``); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = np.frombuffer(json.dumps(self.header(), sort_keys=True).encode(), dtype=np.uint8)
        with path.open("wb") as f:
            np.savez_compressed(f, **{HEADER_KEY: blob}, **self.arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a Program; a foreign or differently versioned file raises ProgramFormatError."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if HEADER_KEY not in z.files:
                    raise ProgramFormatError(f"{path}: not a morphware Program (no {HEADER_KEY})")
                head = json.loads(z[HEADER_KEY].tobytes().decode())
                arrays = {k: z[k] for k in z.files if k != HEADER_KEY}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            if isinstance(e, ProgramFormatError):
                raise
            raise ProgramFormatError(f"{path}: not a readable Program file ({e})") from e
        return cls.from_header(head, arrays, str(path))

    @classmethod
    def from_header(cls, head: dict[str, Any], arrays: dict[str, np.ndarray],
                    where: str = "program") -> Program:
        if head.get("format") != FORMAT:
            raise ProgramFormatError(f"{where}: format {head.get('format')!r} is not {FORMAT!r}")
        if head.get("version") != FORMAT_VERSION:
            raise ProgramFormatError(
                f"{where}: Program format version {head.get('version')!r}; this morphware reads "
                f"version {FORMAT_VERSION} only: recompile the model with this version")
        missing = sorted({v for i in head["instructions"] for k, v in i.items()
                          if k.endswith("_key") and v not in arrays})
        if missing:
            raise ProgramFormatError(f"{where}: arrays missing from the file: {', '.join(missing)}")
        outputs = [(o["name"], tuple(o["shape"])) for o in head["outputs"]]
        return cls(ArrayParams.from_dict(head["params"]), head["input"]["name"],
                   tuple(head["input"]["shape"]), outputs, head["instructions"], arrays,
                   head.get("meta", {}), head["circuit"])
