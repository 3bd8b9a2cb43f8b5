"""The bitstream catalog: one JSON manifest per overlay (a board x an array configuration).

A manifest (``overlays/<name>.json``, schema below) records what was built and how to check it:

    {"format": 1, "name": "pynq-z2-ws8x8", "board": "pynq-z2", "part": "xc7z020clg400-1",
     "circuit": "ws_top", "params": {"rows": 8, "cols": 8, "data_bits": 8, "acc_bits": 32,
     "acc_depth": 256}, "clock_mhz": 100.0, "resources": {"LUT": 0, ...},
     "files": {"bitstream": {"path": "x.bit", "sha256": "<64 hex>"}, "hwh": {...}},
     "ip": {"array": "ws_top_0", "dma_a": "dma_a", "dma_w": "dma_w", "dma_o": "dma_o"}}

That is a PYNQ overlay (``"transport": "pynq"``, the default): the ``.hwh`` beside the ``.bit``
and the IP names of the array and its three DMAs. An ECP5 overlay built by ``morphware bitstream
build`` (``bitstreams/build.py``) says ``"transport": "litex"``: one ``bitstream`` file and a
``link`` object (``base`` of the array's bus region, ``uart_baud``, ``etherbone`` null or
``{"ip", "udp_port"}``); its manifest also records ``fmax_mhz``, the tool versions and the
exact build command (kept in ``extra``).

File paths are relative to the manifest. ``select_overlay`` picks the overlay whose circuit
parameters fit a Program on a board and verifies its files: a missing file or a hash mismatch is
an error, never a silent fallback to another overlay (whose shape would be wrong).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphware.systolic.params import ArrayParams

FORMAT = 1
OVERLAYS = Path(__file__).resolve().parent / "overlays"
TRANSPORTS = ("pynq", "litex")
REQUIRED_FILES = {"pynq": ("bitstream", "hwh"),  # PYNQ needs the .hwh beside the .bit
                  "litex": ("bitstream",)}
REQUIRED_IP = ("array", "dma_a", "dma_w", "dma_o")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest is malformed; the message names the file and the field."""


class BitstreamMissingError(FileNotFoundError):
    """A file a manifest lists is not on disk."""


class BitstreamHashError(ValueError):
    """A file's SHA-256 differs from the manifest's (corrupt, or built from something else)."""


class NoOverlayError(LookupError):
    """No overlay in the catalog fits the board and the array parameters."""


@dataclass(frozen=True)
class FileEntry:
    role: str
    path: Path  # absolute
    sha256: str | None  # None: listed but not built yet


@dataclass(frozen=True)
class Manifest:
    """One overlay, validated."""

    name: str
    board: str
    part: str
    circuit: str
    params: ArrayParams
    clock_mhz: float
    resources: dict[str, int]
    files: dict[str, FileEntry]
    ip: dict[str, str]
    source: Path
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    transport: str = "pynq"
    link: dict[str, Any] = field(default_factory=dict)

    def file(self, role: str) -> Path:
        """The verified path of one of the overlay's files."""
        entry = self.files[role]
        verify_file(entry, self.source)
        return entry.path

    def verify_files(self) -> None:
        """Raise BitstreamMissingError / BitstreamHashError for the first bad file."""
        for entry in self.files.values():
            verify_file(entry, self.source)

    def fits(self, params: ArrayParams) -> bool:
        """Whether a Program compiled for ``params`` runs on this circuit: same shape and
        widths, and at least as deep an accumulator (the host splits M by the Program's depth)."""
        p = self.params
        return ((p.rows, p.cols, p.data_bits, p.acc_bits)
                == (params.rows, params.cols, params.data_bits, params.acc_bits)
                and p.acc_depth >= params.acc_depth)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_file(entry: FileEntry, manifest: Path) -> None:
    if not entry.path.is_file():
        raise BitstreamMissingError(
            f"{manifest}: {entry.role} file {entry.path} is missing; build the overlay "
            f"(bitstreams/README.md) or copy the built file there")
    if entry.sha256 is None:
        raise BitstreamHashError(f"{manifest}: {entry.role} file {entry.path} has no recorded "
                                 "sha256; record the hash of the built file in the manifest")
    got = sha256_file(entry.path)
    if got != entry.sha256:
        raise BitstreamHashError(f"{manifest}: {entry.role} file {entry.path} has sha256 {got}, "
                                 f"the manifest says {entry.sha256}")


def _field(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ManifestError(f"{where}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise ManifestError(f"{where}: field {key!r} has the wrong type ({type(v).__name__})")
    return v


def _files(d: dict[str, Any], root: Path, where: str, transport: str) -> dict[str, FileEntry]:
    files = _field(d, "files", dict, where)
    missing = [r for r in REQUIRED_FILES[transport] if r not in files]
    if missing:
        raise ManifestError(f"{where}: files lacks {missing}")
    out = {}
    for role, e in files.items():
        w = f"{where}: files.{role}"
        if not isinstance(e, dict):
            raise ManifestError(f"{w} must be an object with path and sha256")
        rel = _field(e, "path", str, w)
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ManifestError(f"{w}.path must be relative to the manifest, got {rel!r}")
        digest = e.get("sha256")
        if digest is not None and (not isinstance(digest, str) or not _HEX64.fullmatch(digest)):
            raise ManifestError(f"{w}.sha256 must be 64 lower-case hex digits or null")
        out[role] = FileEntry(role, (root / rel).resolve(), digest)
    return out


def parse_manifest(d: dict[str, Any], source: Path) -> Manifest:
    """Validate a manifest document; every error names ``source`` and the field."""
    where = str(source)
    if not isinstance(d, dict):
        raise ManifestError(f"{where}: a manifest is a JSON object")
    if d.get("format") != FORMAT:
        raise ManifestError(f"{where}: field 'format' must be {FORMAT}, got {d.get('format')!r}")
    try:
        params = ArrayParams.from_dict(_field(d, "params", dict, where))
    except (ValueError, TypeError, KeyError) as e:
        raise ManifestError(f"{where}: field 'params' is invalid: {e}") from e
    clock = _field(d, "clock_mhz", (int, float), where)
    if clock <= 0:
        raise ManifestError(f"{where}: field 'clock_mhz' must be > 0")
    resources = d.get("resources", {})
    if not isinstance(resources, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in resources.values()):
        raise ManifestError(f"{where}: field 'resources' must map names to counts >= 0")
    transport = d.get("transport", "pynq")
    if transport not in TRANSPORTS:
        raise ManifestError(f"{where}: field 'transport' must be one of {TRANSPORTS}, "
                            f"got {transport!r}")
    ip: dict[str, Any] = {}
    link: dict[str, Any] = {}
    if transport == "pynq":
        ip = _field(d, "ip", dict, where)
        missing_ip = [k for k in REQUIRED_IP if not isinstance(ip.get(k), str)]
        if missing_ip:
            raise ManifestError(f"{where}: field 'ip' lacks IP names for {missing_ip}")
    else:
        link = _link(_field(d, "link", dict, where), f"{where}: link")
    known = {"format", "name", "board", "part", "circuit", "params", "clock_mhz", "resources",
             "files", "ip", "notes", "transport", "link"}
    return Manifest(
        name=_field(d, "name", str, where), board=_field(d, "board", str, where),
        part=_field(d, "part", str, where), circuit=_field(d, "circuit", str, where),
        params=params, clock_mhz=float(clock), resources=dict(resources),
        files=_files(d, source.parent, where, transport), ip=dict(ip), source=source,
        notes=str(d.get("notes", "")), extra={k: v for k, v in d.items() if k not in known},
        transport=transport, link=link)


def _link(link: dict[str, Any], where: str) -> dict[str, Any]:
    """A LiteX overlay's host link: bus base, UART baud, optional Etherbone endpoint."""
    base = _field(link, "base", int, where)
    baud = _field(link, "uart_baud", int, where)
    if base < 0 or base % 4 or baud <= 0:
        raise ManifestError(f"{where}: base must be a word address >= 0 and uart_baud > 0")
    eth = link.get("etherbone")
    if eth is not None and not (isinstance(eth, dict) and isinstance(eth.get("ip"), str)
                                and isinstance(eth.get("udp_port"), int)):
        raise ManifestError(f"{where}.etherbone must be null or {{ip: str, udp_port: int}}")
    return dict(link)


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path).resolve()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ManifestError(f"{path}: no such manifest") from e
    except ValueError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from e
    return parse_manifest(doc, path)


def user_overlays() -> Path:
    """Where ``morphware bitstream build`` puts overlays built on this machine."""
    from morphware.systolic.sim import cache_root

    return cache_root().parent / "overlays"


def catalog_dirs() -> list[Path]:
    """Folders in ``$MORPHWARE_BITSTREAMS`` (os.pathsep list), this machine's built overlays,
    then the shipped ones — in that order of precedence."""
    extra = [Path(p) for p in os.environ.get("MORPHWARE_BITSTREAMS", "").split(os.pathsep) if p]
    return [*extra, user_overlays(), OVERLAYS]


def catalog(dirs: list[Path] | None = None) -> list[Manifest]:
    """Every manifest in ``dirs`` (default ``catalog_dirs()``), validated. Names are unique
    within a folder; an earlier folder's overlay hides a later one of the same name (a local
    rebuild of a shipped overlay replaces it)."""
    out: dict[str, Manifest] = {}
    for d in dirs if dirs is not None else catalog_dirs():
        here: dict[str, Path] = {}
        for path in sorted(Path(d).glob("*.json")):
            m = load_manifest(path)
            if m.name in here:
                raise ManifestError(f"{path}: overlay name {m.name!r} also used by "
                                    f"{here[m.name]}")
            here[m.name] = path
            out.setdefault(m.name, m)
    return list(out.values())


def select_overlay(params: ArrayParams, board: str, dirs: list[Path] | None = None,
                   verify: bool = True) -> Manifest:
    """The overlay for ``board`` that fits a Program compiled for ``params`` (the smallest
    sufficient accumulator depth); its files are verified unless ``verify`` is False."""
    fitting = [m for m in catalog(dirs) if m.board == board and m.fits(params)]
    if not fitting:
        have = sorted(f"{m.board}:{m.params.rows}x{m.params.cols}/int{m.params.data_bits}"
                      for m in catalog(dirs))
        raise NoOverlayError(f"no overlay for board {board!r} fits array "
                             f"{params.rows}x{params.cols} int{params.data_bits} "
                             f"(depth >= {params.acc_depth}); catalog has {have or 'nothing'}")
    chosen = min(fitting, key=lambda m: (m.params.acc_depth, m.name))
    if verify:
        chosen.verify_files()
    return chosen


def detect_board() -> str:
    """This board's name: ``$MORPHWARE_BOARD``, else ``$BOARD`` (set by PYNQ images), lower-case."""
    board = os.environ.get("MORPHWARE_BOARD") or os.environ.get("BOARD")
    if not board:
        raise NoOverlayError("cannot tell which board this is: set MORPHWARE_BOARD (e.g. pynq-z2)")
    return board.strip().lower().replace("_", "-")
