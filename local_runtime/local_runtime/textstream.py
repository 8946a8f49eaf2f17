"""Incremental detokenization: UTF-8 reassembly and stop sequences that may span tokens."""

import codecs


class TextStream:
    """Turns token bytes into text that is safe to emit, holding back a possible stop-sequence prefix."""

    def __init__(self, stops: list[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [stop for stop in stops if stop]
        self._pending = ""
        self.stopped = False

    def push(self, data: bytes) -> str:
        """Text that can be emitted now; sets `stopped` when a stop sequence appears."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(data)
        cut = min((index for stop in self._stops if (index := self._pending.find(stop)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            text, self._pending = self._pending[:cut], ""
            return text
        hold = self._partial_stop_length()
        text = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(text) :]
        return text

    def flush(self) -> str:
        """Whatever is held back once generation has ended without a stop sequence."""
        if self.stopped:
            return ""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return text

    def _partial_stop_length(self) -> int:
        """Length of the longest pending suffix that could still grow into a stop sequence."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:size]):
                    longest = size
                    break
        return longest
