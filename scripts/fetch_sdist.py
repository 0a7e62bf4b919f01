"""Downloads one sdist by name and version from the configured Python package index.

`pip download --no-binary :all:` would also prepare the package's metadata, which for
llama-cpp-python means building cmake from source; this asks the index (PEP 691 JSON) for the
file and fetches it directly. Usage: fetch_sdist.py NAME VERSION FILENAME DEST
"""
import json
import os
import subprocess
import sys
import urllib.request


def index_url() -> str:
    configured = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True, text=True,
    ).stdout.strip()
    if configured:
        return configured.rstrip("/")
    from pip._internal.models.index import PyPI  # pip's own default index

    return PyPI.simple_url.rstrip("/")


def main() -> None:
    name, version, filename, dest = sys.argv[1:5]
    req = urllib.request.Request(
        f"{index_url()}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        files = json.load(resp)["files"]
    match = [f for f in files if f["filename"] == filename]
    if not match:
        sys.exit(f"{filename} not found in the index for {name} {version}")
    tmp = dest + ".part"
    with urllib.request.urlopen(match[0]["url"], timeout=600) as resp, open(tmp, "wb") as out:
        while chunk := resp.read(1 << 20):
            out.write(chunk)
    os.replace(tmp, dest)


if __name__ == "__main__":
    main()
