"""The optional extras: what each installs, and one import that names the extra when it is missing.

``pip install xami`` predicts with ONNX Runtime; ``xami[train]`` adds PyTorch, ultralytics and
ONNX (training, the torch backend, ONNX export, the SAM segmentor), ``xami[dask]`` Dask.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from xami.errors import MissingExtraError

EXTRAS = {
    "torch": "train",
    "torchvision": "train",
    "ultralytics": "train",
    "onnx": "train",
    "dask": "dask",
    "distributed": "dask",
}
"""The extra that installs each optional top-level package."""


def import_extra(module: str, feature: str) -> ModuleType:
    """Import ``module`` of an optional extra, or say which extra to install.

    Parameters
    ----------
    module : str
        A dotted module name whose top-level package is a key of `EXTRAS` (``"torch"``,
        ``"distributed"``, ``"ultralytics.utils"``).
    feature : str
        What needs it, for the message (``"the torch backend"``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    xami.errors.MissingExtraError
        The package is not installed; the message names the ``pip install`` command.

    Examples
    --------
    >>> import_extra("distributed", "Dask runs").__name__
    'distributed'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = missing_extra(err, feature)
        if missing is None or missing.package != module.partition(".")[0]:
            raise  # the package is there but something it needs is broken: show that
        raise missing from None


def missing_extra(err: ModuleNotFoundError, feature: str) -> MissingExtraError | None:
    """The `MissingExtraError` of a failed import of an extra's package, else None.

    Parameters
    ----------
    err : ModuleNotFoundError
        A failed import (``err.name`` is the module that was not found).
    feature : str
        What needed it, for the message.

    Returns
    -------
    xami.errors.MissingExtraError or None
        None when the missing module belongs to no extra (a real bug, to be shown as it is).

    Examples
    --------
    >>> print(missing_extra(ModuleNotFoundError(name="torch.nn"), "training"))
    training needs torch, which is not installed: pip install "xami[train]"
    """
    package = (err.name or "").partition(".")[0]
    return MissingExtraError(feature, package, EXTRAS[package]) if package in EXTRAS else None
