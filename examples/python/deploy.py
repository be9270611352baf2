"""Deploy an app on the golden path from Python, as `paved deploy` does, and print the result.

    python examples/python/deploy.py my-service ghcr.io/company/my-service:v1.2.3 production

With no paved.toml around, this deploys to the embedded GitOps target under ./.paved (no
cluster needed). Progress goes to stderr; bad input exits 2 with the hint, as the CLI does.
"""

from __future__ import annotations

import sys

import paved


def show(progress: paved.Progress) -> None:
    print(f"  {progress.step}: {progress.message}", file=sys.stderr)


def main(argv: list[str]) -> int:
    app, image, env = (argv + ["my-service", "ghcr.io/company/my-service:v1.2.3", "production"][len(argv):])[:3]
    platform = paved.Platform(state_dir=".paved", progress=show)
    try:
        out = platform.deploy(app=app, image=image, env=env, replicas=3, cpu_limit="2000m")
    except paved.PavedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, paved.InvalidInput) else 1
    state = "deployed" if out.changed else "already up to date"
    print(f"{out.app} {state} in {out.environment}: revision {out.revision} ({out.location})")
    if out.url:
        print(out.url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
