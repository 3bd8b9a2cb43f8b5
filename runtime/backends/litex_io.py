"""``LitexIO``: the FPGA driver's register/DMA layer for an array in a LiteX SoC (ECP5 boards).

The host reaches the SoC's Wishbone bus through LiteX's own host tools: ``litex_server`` owns the
cable (UART bridge or Etherbone) and this process talks to it with LiteX's ``RemoteClient``.
Registers are single bus words; streams go through the SoC's word FIFOs (layout:
``morphware.bitstreams.link``). There is no DMA engine on the board, so this class is the DMA:
whenever a transfer is in flight, every register access first *pumps* — one burst read of the
three FIFO levels, then as many queued input words as fit and every output word waiting — so the
driver's unchanged sequence (arm, send, START, poll STATUS, collect) keeps the array fed while it
polls. The array stalls (and counts STALLS, not CYCLES) whenever the link is slower than it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from morphware.bitstreams import link
from morphware.runtime.backends.fpga_driver import ArrayIO, DriverError
from morphware.systolic.params import ArrayParams

MAX_BURST = 255             # Etherbone record counts and UART bridge lengths are one byte
# Words posted (written without a reply) between two round trips. Writes are fire-and-forget, so
# without a bound the host could queue more bytes than the far end buffers (LiteX's simulated
# serial port keeps 2 KiB and drops the rest; an Etherbone core takes one packet at a time).
# 256 words are ~1.2 KB on the UART wire.
MAX_POSTED_WORDS = 256
CLIENT_TIMEOUT_S = 30.0


@dataclass
class LinkStats:
    """What crossed the bridge, counted per bus request: words each way (registers, levels and
    stream data), read requests (each a round trip; writes are posted), UART wire bytes."""

    words_out: int = 0
    words_in: int = 0
    reads: int = 0
    writes: int = 0
    uart_bytes: int = 0
    seconds: float = 0.0

    @property
    def payload_bytes(self) -> int:
        return 4 * (self.words_out + self.words_in)

    def count_read(self, words: int) -> None:
        self.reads += 1
        self.words_in += words
        self.uart_bytes += 2 + 4 + 4 * words  # cmd, length, address; then the data back

    def count_write(self, words: int) -> None:
        self.writes += 1
        self.words_out += words
        self.uart_bytes += 6 * -(-words // 8) + 4 * words  # LiteX's CommUART: 8 words a burst


def remote_client(host: str = "127.0.0.1", port: int = 1234,
                  timeout_s: float = CLIENT_TIMEOUT_S) -> Any:
    """LiteX's ``RemoteClient`` connected to a ``litex_server``; a bridge that does not answer
    raises ``DriverError`` (LiteX's own client would return zeros)."""
    from litex.tools.litex_client import RemoteClient

    class _Client(RemoteClient):  # type: ignore[misc]
        def receive_packet(self, sock: Any, addr_size: int) -> Any:
            packet = super().receive_packet(sock, addr_size)
            if packet == 0:
                raise DriverError(f"litex_server at {host}:{port} did not answer within "
                                  f"{timeout_s} s (board unplugged or bridge stuck?)")
            return packet

    client = _Client(host=host, port=port, csr_csv=None)
    try:
        client.open()
    except OSError as e:
        raise DriverError(f"cannot reach litex_server at {host}:{port} ({e}); start it with "
                          "`litex_server --uart --uart-port /dev/ttyUSB0` or "
                          "`morphware bitstream serve`") from e
    client.socket.settimeout(timeout_s)
    return client


def server_address() -> tuple[str, int]:
    """Where litex_server listens: ``$MORPHWARE_LITEX_SERVER`` (host:port), else 127.0.0.1:1234."""
    text = os.environ.get("MORPHWARE_LITEX_SERVER", "127.0.0.1:1234")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"MORPHWARE_LITEX_SERVER must be host:port, got {text!r}")
    return host, int(port)


class LitexIO(ArrayIO):
    """Register and stream access to the array at ``base`` on a LiteX bus (``RemoteClient``)."""

    def __init__(self, bus: Any, params: ArrayParams, base: int = link.ARRAY_ORIGIN):
        self.bus = bus
        self.p = params
        self.base = base
        self.stats = LinkStats()
        info = link.decode_link_info(self._read(link.LINK_INFO))
        want = link.beat_words(params)
        if info["magic"] != link.MAGIC:
            raise DriverError(f"no Morphware array at {base:#x} on this bus (LINK_INFO magic "
                              f"{info['magic']:#x}); is the right bitstream loaded?")
        if {k: info[k] for k in want} != want:
            raise DriverError(f"the SoC's streams carry {info} bus words per beat, the Program "
                              f"needs {want}: the bitstream is for another array shape")
        d = self._read(link.DEPTHS, 2)
        self.depth = {"a": d[0] & 0xFFFF, "w": d[0] >> 16, "o": d[1]}
        self._tx: dict[str, list[np.ndarray]] = {"a": [], "w": []}
        self._rx: list[np.ndarray] = []
        self._rx_left = 0
        self._lanes = params.cols

    @classmethod
    def connect(cls, params: ArrayParams, host: str = "127.0.0.1", port: int = 1234,
                base: int = link.ARRAY_ORIGIN) -> LitexIO:
        bus = remote_client(host, port)
        try:
            return cls(bus, params, base)
        except BaseException:
            bus.close()
            raise

    # -- bus access, counted
    def _read(self, offset: int, length: int | None = None) -> Any:
        t = time.perf_counter()
        value = self.bus.read(self.base + offset, length)
        self.stats.count_read(1 if length is None else length)
        self.stats.seconds += time.perf_counter() - t
        return value

    def _write(self, offset: int, words: list[int]) -> None:
        t = time.perf_counter()
        self.bus.write(self.base + offset, words)
        self.stats.count_write(len(words))
        self.stats.seconds += time.perf_counter() - t

    # -- ArrayIO
    def read(self, offset: int) -> int:
        if self.busy:
            self.pump()
        return int(self._read(offset))

    def write(self, offset: int, value: int) -> None:
        if self.busy:
            self.pump()
        self._write(offset, [int(value) & 0xFFFFFFFF])

    def send(self, channel: str, beats: np.ndarray, lane_bits: int) -> None:
        if channel not in self._tx:
            raise ValueError(f"no input stream {channel!r}")
        self._tx[channel].append(link.pack_words(beats, lane_bits))
        self.pump()

    def receive(self, beats: int, lanes: int) -> None:
        if lanes != self._lanes:
            raise ValueError(f"the output stream has {self._lanes} lanes, not {lanes}")
        self._rx_left += int(beats) * link.words_per_beat(32 * lanes)

    def collect(self, timeout_s: float) -> np.ndarray:
        deadline = time.monotonic() + timeout_s
        while self.busy:
            if time.monotonic() > deadline:
                left = {ch: sum(x.size for x in q) for ch, q in self._tx.items()}
                raise DriverError(f"streams did not finish within {timeout_s} s: words unsent "
                                  f"{left}, output words missing {self._rx_left}")
            self.pump()
        out = np.concatenate(self._rx) if self._rx else np.zeros(0, np.uint32)
        self._rx = []
        return link.unpack_words(out, self._lanes)

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close is not None:
            close()

    # -- the host-side DMA
    @property
    def busy(self) -> bool:
        return self._rx_left > 0 or any(self._tx.values())

    def pump(self) -> None:
        """One round: read the FIFO levels, push what fits, drain what waits."""
        levels = self._read(link.LEVELS, 3)
        waiting = sum(1 for q in self._tx.values() if q)
        share = MAX_POSTED_WORDS // max(waiting, 1)
        for ch, level, window in (("w", levels[1], link.W_WINDOW), ("a", levels[0], link.A_WINDOW)):
            self._push(ch, min(self.depth[ch] - level, share), window)
        n = min(levels[2], self._rx_left)
        while n > 0:
            k = min(n, MAX_BURST)
            words = np.asarray(self._read(link.O_WINDOW, k), dtype=np.uint32)
            self._rx.append(words)
            self._rx_left -= k
            n -= k

    def _push(self, channel: str, room: int, window: int) -> None:
        queue = self._tx[channel]
        while room > 0 and queue:
            k = min(room, MAX_BURST, queue[0].size)
            self._write(window, [int(x) for x in queue[0][:k]])
            room -= k
            queue[0] = queue[0][k:]
            if queue[0].size == 0:
                queue.pop(0)
