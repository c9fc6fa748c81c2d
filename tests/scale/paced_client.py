"""Send GET requests to an Alyx server through a client that keeps to its shared rate limit.

    python tests/scale/paced_client.py ALYX_URL N

Stops after N requests, or when the Prefect server grants no more slots within 3 s; prints the
number of GET requests sent. Credentials come from the environment; so does the Prefect server.
"""

import sys

from one_flows.alyx import AlyxClient
from one_flows.prefect.ratelimit import pace_by_shared_limit


def main(url: str, n: str) -> None:
    sent = 0
    with AlyxClient(url) as alyx:
        if not pace_by_shared_limit(alyx, timeout_seconds=3):
            raise SystemExit(f"the Prefect server has no shared rate limit for {url}")
        try:
            for _ in range(int(n)):
                alyx.get("/subjects/KS022")
                sent += 1
        except TimeoutError:
            pass
    print(sent)


if __name__ == "__main__":
    main(*sys.argv[1:])
