"""`glan browse`: the dataset browser's page, its path printed, opened in a browser or served on loopback."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path

PAGE = Path("results/browse/index.html")


def browse(directory: Path, open_it: bool, serve: bool) -> int:
    page = (directory / PAGE).resolve()
    if not page.is_file():
        print(f"{page} is not built yet: run `snakemake --cores 2 {PAGE}` (or a whole build) first")
        return 1
    print(page, flush=True)
    if serve:  # for a browser that refuses pages opened from disk
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page.parent))
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
            url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
            print(f"serving on {url} (Ctrl-C stops)", flush=True)
            if open_it:
                webbrowser.open(url)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    elif open_it:
        webbrowser.open(page.as_uri())
    return 0
