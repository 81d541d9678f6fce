"""Deduplicating a webhook with the dedup module from Python, using plain redis-py.

The module needs no special client: DEDUP.* are ordinary commands sent with execute_command.
This script plays two workers receiving the same delivery and checks every reply, so it doubles
as a test: it exits non-zero if the server answers anything unexpected.

    python3 webhook_dedup.py [port]
"""

import hashlib
import secrets
import sys

import redis

LEASE_MS = 30_000
RETENTION_MS = 96 * 3600 * 1000


def new_owner() -> str:
    # A fresh random secret per attempt: only the holder can extend, release or complete.
    return secrets.token_hex(20)


def claim(r: redis.Redis, event_id: str, body: bytes, owner: str):
    """Returns (state, details): CLAIMED (token), HELD (pttl), DONE (result), MISMATCH (pttl)."""
    fingerprint = hashlib.sha256(body).hexdigest()
    reply = r.execute_command("DEDUP.CLAIM", f"webhook:{event_id}", LEASE_MS, owner, "FP", fingerprint)
    state = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    return state, reply[1:]


def handle(r: redis.Redis, event_id: str, body: bytes, create_record) -> tuple[int, bytes]:
    """What a webhook endpoint does with one delivery: returns (HTTP status, response body)."""
    owner = new_owner()
    state, details = claim(r, event_id, body, owner)
    if state == "CLAIMED":
        try:
            record_id = create_record(body)
        except Exception:
            # Let the sender's retry run the work again instead of waiting for the lease to end.
            r.execute_command("DEDUP.RELEASE", f"webhook:{event_id}", owner)
            raise
        done = r.execute_command("DEDUP.COMPLETE", f"webhook:{event_id}", RETENTION_MS, owner,
                                 "RESULT", record_id)
        assert done == 1, "lease lost before completion"
        return 200, record_id
    if state == "DONE":
        return 200, details[1] or b""          # replay the first answer
    if state == "HELD":
        return 409, b"in progress"              # the sender retries later
    if state == "MISMATCH":
        return 422, b"same id, different payload"
    raise RuntimeError(f"unexpected reply {state}")


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    r = redis.Redis(host="127.0.0.1", port=port)
    body = b'{"type":"payment.succeeded","amount":4200}'
    records = []

    def create_record(payload: bytes) -> bytes:
        records.append(payload)
        return f"record-{len(records)}".encode()

    # Worker A takes the event; a duplicate arriving meanwhile at worker B is told it is in progress.
    owner_a = new_owner()
    state, details = claim(r, "evt_py_1", body, owner_a)
    assert state == "CLAIMED", state
    token = details[0]
    state, _ = claim(r, "evt_py_1", body, new_owner())
    assert state == "HELD", state
    assert r.execute_command("DEDUP.COMPLETE", "webhook:evt_py_1", RETENTION_MS, owner_a,
                             "RESULT", "record-1") == 1
    # A late duplicate gets the first answer back.
    state, details = claim(r, "evt_py_1", body, new_owner())
    assert state == "DONE" and details[1] == b"record-1", (state, details)
    # Same id, different payload.
    state, _ = claim(r, "evt_py_1", b'{"amount":1}', new_owner())
    assert state == "MISMATCH", state
    status = r.execute_command("DEDUP.STATUS", "webhook:evt_py_1")
    assert status[0] in (b"DONE", "DONE") and status[2] == token, status

    # The handler: three deliveries of one event create one record.
    answers = [handle(r, "evt_py_2", body, create_record) for _ in range(3)]
    assert answers == [(200, b"record-1")] * 3, answers
    assert len(records) == 1, records

    # Errors come back as exceptions with a code, never as a verdict.
    try:
        r.execute_command("DEDUP.CLAIM", "webhook:evt_py_3", 0, new_owner())
        raise AssertionError("ttl 0 accepted")
    except redis.ResponseError as e:
        assert str(e).startswith("ttl-ms must be an integer"), e

    print("python (redis-py %s): claim/complete flow OK" % redis.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
