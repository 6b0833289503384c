"""The torch-free matting library: everything a request needs, importable anywhere (Triton steps,
clients, REST, dashboard).

``contract`` names what crosses the wire; ``options`` parses every request option once; ``codec``
decodes and encodes; ``networks`` prepares inputs and reads outputs per network; ``refine`` brings a
matte to full resolution; ``compose`` builds the output; ``files``, ``paths``, ``previews`` and
``metrics`` serve the rest. Nothing here imports torch (tests/matting/test_imports.py proves it).
"""
