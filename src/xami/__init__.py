"""xami: find, classify and mask instrumental artefacts in XMM-Newton Optical Monitor images."""

from xami.classes import CLASSES, ArtefactClass
from xami.errors import InputError, NoDetectionsWarning, XamiError
from xami.structures import Instances

__version__ = "0.1.0"

__all__ = [
    "CLASSES",
    "ArtefactClass",
    "InputError",
    "Instances",
    "NoDetectionsWarning",
    "XamiError",
    "__version__",
]
