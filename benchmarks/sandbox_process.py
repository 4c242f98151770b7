"""Run a sandbox in its own process (as a real provider is), printing its URL once it listens.

``python benchmarks/sandbox_process.py LIBRARY [throttle_bytes_per_s (0: none)] [polls_to_complete]``
"""

import sys

from stemlab.sandbox import serve


def announce(sandbox):
    print(sandbox.url, flush=True)


if __name__ == "__main__":
    throttle = float(sys.argv[2]) if len(sys.argv) > 2 and float(sys.argv[2]) > 0 else None
    polls = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    serve(sys.argv[1], port=0, on_ready=announce, polls_to_complete=polls, throttle_bytes_per_s=throttle,
          cqtai_key="sk-bench", apiframe_key="afk_bench")
