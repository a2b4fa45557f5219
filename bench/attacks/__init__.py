"""The attack classes of bench/attack.py, grouped by what they attack, and the harness they share.

harness.py           results, the in-process servers, raw sockets, the /health poller
code_and_secrets.py  1 client-chosen code, 2 sealed reasoning replay, 3 revoked keys
limits.py            4 rejected requests use quota, 5 TPM bursts, 9 strategy amplification
load.py              6 abandoned strategy streams, 7 event-loop stalls, 8 body size and slow connections
api.py               11 OpenAI parameters
gate.py              10 the deploy gate sidestepped
card_honesty.py      12 card honesty
cards.py             hand-made results and card stores that gate.py and card_honesty.py build cards from
"""
