"""Run every deployment of prefect.yaml in this one process, for a single lab server.

    python deployments/serve.py /mnt/s0/Data [--alyx BLOCK_NAME]

is the same as ``one-flows serve --root /mnt/s0/Data [--alyx BLOCK_NAME]``; see README.md here.
"""

import argparse

from one_flows.prefect.serve import serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="The data folder to register sessions from.")
    parser.add_argument("--alyx", help="The name of the AlyxCredentials block to register into.")
    args = parser.parse_args()
    serve(parameters={"root": args.root, **({"alyx": args.alyx} if args.alyx else {})})
