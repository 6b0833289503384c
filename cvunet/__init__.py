"""CV-UNet matting: the network, the image ops shared by every entry point, and serving helpers.

Importing the package stays light (no torch): the Triton python steps import ``cvunet.imageops``.
"""

__version__ = "0.1.0"
