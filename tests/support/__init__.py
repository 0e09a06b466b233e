"""What the tests share that is not a test: driving a turn (``turns``), a live API on a real
socket (``live_api``), the browser tests' Chromium and proxy (``browser``), knowledge-base
files (``kb_files``), an ingestion worker to kill (``dead_worker``) and the repository's paths
(``paths``)."""
