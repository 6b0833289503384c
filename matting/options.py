"""``OutputOptions``: the one parse, validation and default of every per-request option.

Every entry point (command lines, batch, REST, dashboard, Python API) builds an ``OutputOptions``
with :meth:`OutputOptions.parse` and hands it down; the Triton postprocess step parses the same
strings from its input tensors with the same method. ``model`` and ``tta`` are not tensors: they pick
the ensemble that serves the request (``OutputOptions.ensemble``). Values are
case-insensitive and may use the aliases below; an invalid value raises :class:`OptionsError` naming
the option and what it accepts. Every message quotes user input through :func:`quoted`, so a
megabyte-long value never comes back as a megabyte-long error.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import ImageColor

from matting.contract import PRETRAINED_NETWORKS, ensemble_for

KINDS = ("rgba", "alpha", "composite")
FORMATS = ("png", "webp")
#: "original": the photo's colours; "estimate": foreground colours estimated from the matte, which
#: removes the background's colour bleeding into hair and soft edges (costs ~2 s at 12 MP).
FOREGROUNDS = ("original", "estimate")
#: How the network's low-resolution matte becomes full size (matting.refine.full_resolution_matte):
#: plain LANCZOS (rembg's way), the guided filter or the closed-form band.
REFINE_MODES = ("none", "guided", "closed-form")
#: The networks a request may choose; none named means the server's default (``matting``).
MODELS = PRETRAINED_NETWORKS
#: Test-time augmentation: "flip" averages the matte with the mirrored photo's matte, better on every
#: metric of ``make quality`` for twice the network time (README, "Matte quality").
TTA_MODES = ("none", "flip")
#: Other spellings users type, per option → the canonical value.
ALIASES = {
    "model": {"fast": "u2netp", "quality": "u2net", "u2-net": "u2net", "u2-netp": "u2netp"},
    "kind": {"cutout": "rgba", "transparent": "rgba", "matte": "alpha", "mask": "alpha", "background": "composite"},
    "format": {},
    "tta": {"off": "none", "mirror": "flip"},
    "foreground": {"decontaminate": "estimate"},
    "refine": {"off": "none", "guided-filter": "guided", "closed_form": "closed-form", "closedform": "closed-form"},
}
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp"}
#: Error messages quote at most this much of a bad value: a 1 MB option must not come back as a 1 MB error.
QUOTED_CHARS = 40
#: The longest option value accepted (the longest valid one, a colour like 'rgb(255, 255, 255)' or
#: 'lightgoldenrodyellow', is about 20): longer values are refused before they are parsed.
MAX_OPTION_CHARS = 64


class OptionsError(ValueError):
    """A per-request option is invalid; the message names the option and its allowed values."""


def quoted(value: str) -> str:
    """``value`` for an error message: quoted, and cut to QUOTED_CHARS characters."""
    return repr(value if len(value) <= QUOTED_CHARS else value[:QUOTED_CHARS] + "…")


def check_length(option: str, value: str | bytes | None) -> None:
    """Refuse an option value over MAX_OPTION_CHARS (characters, or bytes as received) before anything
    else looks at it."""
    if value is not None and len(value) > MAX_OPTION_CHARS:
        raise OptionsError(f"{option} is {len(value):,} {'bytes' if isinstance(value, bytes) else 'characters'} long; "
                           f"option values are at most {MAX_OPTION_CHARS}")


def parse_choice(option: str, value: str | None, allowed: tuple[str, ...], default: str | None) -> str | None:
    """One choice option: empty or None → ``default``; else case-insensitive, with ``ALIASES[option]``."""
    text = (value or "").strip().lower()
    if not text:
        return default
    text = ALIASES[option].get(text, text)
    if text not in allowed:
        aliases = ", ".join(f"{alias}={canonical}" for alias, canonical in ALIASES[option].items())
        raise OptionsError(f"{option} must be one of {', '.join(allowed)}{f' (or {aliases})' if aliases else ''}, "
                           f"not {quoted(value)}")
    return text


def parse_color(text: str) -> tuple[int, int, int]:
    """'#RRGGBB', '#RGB', a CSS colour name or 'R,G,B' (each 0–255) → an RGB triple; values outside
    0–255 (also through 'rgb(300,0,0)' or 'hsl(…)') are refused, not clamped."""
    text = text.strip()
    rgb = None
    if "," in text and not text.lower().startswith(("rgb", "hsl", "hsv")):
        parts = [part.strip() for part in text.split(",")]
        if len(parts) == 3 and all(part.isdigit() for part in parts):
            rgb = tuple(int(part) for part in parts)
    else:
        try:
            rgb = ImageColor.getrgb(text)[:3]
        except ValueError:
            pass
    if rgb is None or not all(0 <= value <= 255 for value in rgb):
        raise OptionsError(f"bg_color {quoted(text)} is not a colour: use '#RRGGBB', a name like 'white' "
                           f"or 'R,G,B' with each value 0-255")
    return rgb


@dataclass(frozen=True)
class OutputOptions:
    """What the caller wants back: the cut-out, the matte alone, or a composite on a colour or picture."""

    kind: str = "rgba"
    format: str = "png"
    bg_color: tuple[int, int, int] = (255, 255, 255)
    foreground: str = "original"
    #: The default is the best variant measured by ``make quality`` (README).
    refine: str = "none"
    #: One of MODELS, or None for the server's default network.
    model: str | None = None
    tta: str = "none"

    @classmethod
    def parse(cls, kind: str | None = None, format: str | None = None, bg_color: str | None = None,
              foreground: str | None = None, refine: str | None = None, model: str | None = None,
              tta: str | None = None) -> OutputOptions:
        """Validate user-supplied strings (names as in matting.contract.OPTION_INPUTS, ``model`` and
        ``tta``); empty or None means the default. Every length is checked before any value is parsed."""
        given = {"kind": kind, "format": format, "bg_color": bg_color, "foreground": foreground, "refine": refine,
                 "model": model, "tta": tta}
        for option, value in given.items():
            check_length(option, value)
        return cls(
            kind=parse_choice("kind", kind, KINDS, cls.kind),
            format=parse_choice("format", format, FORMATS, cls.format),
            bg_color=parse_color(bg_color) if bg_color and bg_color.strip() else cls.bg_color,
            foreground=parse_choice("foreground", foreground, FOREGROUNDS, cls.foreground),
            refine=parse_choice("refine", refine, REFINE_MODES, cls.refine),
            model=parse_choice("model", model, MODELS, cls.model),
            tta=parse_choice("tta", tta, TTA_MODES, cls.tta),
        )

    def as_strings(self) -> dict[str, str]:
        """The options as the strings :meth:`parse` reads back: what a client sends to the ensemble
        (``model`` and ``tta`` travel as the ensemble's name instead)."""
        return {"kind": self.kind, "format": self.format, "bg_color": self.bg_color_hex,
                "foreground": self.foreground, "refine": self.refine}

    @property
    def ensemble(self) -> str:
        return ensemble_for(self.model, self.tta)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def bg_color_hex(self) -> str:
        return "#%02x%02x%02x" % self.bg_color
