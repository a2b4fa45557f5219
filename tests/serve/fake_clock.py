"""A hand-moved clock for the accounts layer (limits, ledger, keys take `clock=`), so tests move
time by days without sleeping."""


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
