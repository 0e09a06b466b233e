"""``python -m llama_cpp.server``, with llama.cpp's extra buffer types off.

The wheel pip builds from source targets the build machine's CPU (``GGML_NATIVE``), AMX
included when the CPU reports it. Some VMs (this project's CI among them) report AMX but fault
on its first instruction (``ldtilecfg``: a general protection fault, the server dies with
SIGSEGV on its first request). llama.cpp reaches AMX only through its "extra buffer types"
(weight repacking); ``use_extra_bufts = False`` keeps every matrix multiply on the ordinary
AVX paths. The server has no flag for it, so this launcher sets it in the default model
parameters and then runs the server's own ``main`` with the command line as given.

Usage: ``python -m tests.support.llama_server --model FILE --port P ...`` (the server's flags).
"""

from __future__ import annotations

from typing import Any


def _no_extra_buffers() -> None:
    import llama_cpp
    from llama_cpp import llama as llama_module

    default = llama_cpp.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = params
    llama_module.llama_cpp.llama_model_default_params = params


def main() -> None:
    _no_extra_buffers()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
