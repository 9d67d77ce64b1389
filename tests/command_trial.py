"""A command trial for tests/test_command.py: records what it got, then reports metrics.

    python command_trial.py MODE [ARGS...]

It writes its argv (after MODE) and its HPT_* environment to $HPT_ARTIFACT_DIR/seen.json, then:
stdout: prints noise and a JSON object as the last line; file: writes $HPT_METRICS_FILE;
none: prints no JSON; fail: a line on stderr, exit 3; sleep: sleeps a minute.
"""

import json
import os
import sys
import time
from pathlib import Path

mode, args = sys.argv[1], sys.argv[2:]
env = {k: v for k, v in os.environ.items() if k.startswith("HPT_")}
Path(env["HPT_ARTIFACT_DIR"], "seen.json").write_text(json.dumps({"argv": args, "env": env, "cwd": os.getcwd()}))

if mode == "stdout":
    print("epoch 1 loss 0.5")
    print(json.dumps({"val_mse": 0.25, "note": "an early object, not the last"}))
    print(json.dumps({"val_mse": 1.5, "accuracy": 0.75}))
    print("done", file=sys.stderr)
elif mode == "file":
    Path(env["HPT_METRICS_FILE"]).write_text(json.dumps({"val_mse": 2.5}))
    print(json.dumps({"val_mse": 99.0}))  # the file wins
elif mode == "none":
    print("no metrics here")
elif mode == "fail":
    print("starting")
    print("Traceback (most recent call last): ...", file=sys.stderr)
    print("ValueError: lr must be positive", file=sys.stderr)
    sys.exit(3)
elif mode == "sleep":
    print("sleeping", flush=True)
    time.sleep(60)
