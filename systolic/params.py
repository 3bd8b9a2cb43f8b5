"""Parameters of a weight-stationary systolic array instance."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ArrayParams:
    """One circuit configuration.

    rows (R) is the K extent of a weight tile, cols (C) its N extent. acc_depth is how many output
    rows (M) one GEMM command may hold in the on-chip accumulator; larger M is split by the host.
    """

    rows: int = 8
    cols: int = 8
    data_bits: int = 8
    acc_bits: int = 32
    acc_depth: int = 256

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"array shape must be positive, got {self.rows}x{self.cols}")
        if self.data_bits not in (8, 16):
            raise ValueError(f"data_bits must be 8 or 16, got {self.data_bits}")
        if self.acc_bits != 32:
            raise ValueError(f"acc_bits must be 32, got {self.acc_bits}")
        if self.acc_depth < 1:
            raise ValueError(f"acc_depth must be positive, got {self.acc_depth}")

    @property
    def qmin(self) -> int:
        return -(1 << (self.data_bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.data_bits - 1)) - 1

    @property
    def tag(self) -> str:
        """Short stable name, used for simulator build caches and bitstream manifests."""
        return f"r{self.rows}c{self.cols}d{self.data_bits}a{self.acc_bits}m{self.acc_depth}"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> ArrayParams:
        return cls(**{k: int(d[k]) for k in ("rows", "cols", "data_bits", "acc_bits", "acc_depth") if k in d})
