"""Make ultralytics run offline, quietly and on every core; call `ultralytics_offline` before use.

What ultralytics would otherwise do (measured on this project's reference machine): look up DNS
hosts at import, check PyPI for updates, download ``Arial.ttf`` on every dataset check (even with
``YOLO_OFFLINE=1``), auto-install missing packages, send analytics, write settings under
``~/.config``, try to pip-install pi-heif whenever Pillow cannot identify a file (it patches
``PIL.Image.open``), run every train/predict call on ``cpu_count - 1`` threads (1 on 2 cores),
and unpickle checkpoints with ``weights_only=False`` (a ``.pt`` file could run code).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType

from xami.cache import cache_dir
from xami.extras import import_extra


def _install_font(config_dir: Path) -> None:
    """Put matplotlib's DejaVuSans where ultralytics looks for Arial.ttf (no download)."""
    import matplotlib

    target = config_dir / "Ultralytics" / "Arial.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        shutil.copyfile(source, target)


def ultralytics_offline(threads: int | None = None) -> ModuleType:
    """Import ultralytics configured for offline use and return the module.

    Sets ``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=false``, ``ULTRALYTICS_SAFE_LOAD=1`` and a private
    ``YOLO_CONFIG_DIR`` (unless already set) before the first import, turns on ultralytics'
    ``weights_only`` checkpoint loading, provides the font ultralytics would download, turns off
    settings sync and integrations, and makes ultralytics keep torch's thread count.

    Parameters
    ----------
    threads : int, optional
        Torch threads for ultralytics' train/predict calls; None keeps torch's current setting
        (all cores unless the user or ``OMP_NUM_THREADS`` said otherwise) instead of
        ultralytics' ``cpu_count - 1``.

    Returns
    -------
    module
        The imported ``ultralytics`` package.

    Raises
    ------
    xami.errors.MissingExtraError
        PyTorch or ultralytics is not installed (``xami[train]``).
    """
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))
    _install_font(Path(os.environ["YOLO_CONFIG_DIR"]))

    torch = import_extra("torch", "the ultralytics detector")
    ultralytics = import_extra("ultralytics", "the ultralytics detector")
    import ultralytics.nn.tasks as tasks
    import ultralytics.utils.patches as patches
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics.utils import SETTINGS

    # ultralytics patches PIL.Image.open to pip-install pi-heif on an unreadable image; keep
    # Pillow's own error instead (xami reads only FITS, PNG and JPEG)
    patches._pil_plugins_registered = True
    # ultralytics' own checkpoint loads use weights_only=True as well (its opt-in safe load),
    # behind xami's check (`xami.models.safe_load`), also when ultralytics was imported first
    if hasattr(tasks, "SAFE_LOAD"):
        tasks.SAFE_LOAD = True

    updates = {"sync": False, "clearml": False, "comet": False, "dvc": False, "mlflow": False,
               "raytune": False, "tensorboard": False, "wandb": False, "hub": False}
    if any(SETTINGS.get(k) != v for k, v in updates.items() if k in SETTINGS):
        SETTINGS.update({k: v for k, v in updates.items() if k in SETTINGS})
    if threads is not None:
        torch.set_num_threads(threads)
    torch_utils.NUM_THREADS = torch.get_num_threads()
    return ultralytics
